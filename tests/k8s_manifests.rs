//! The in-cluster manifests: the committed CRDs match the Rust types, every manifest
//! applies server-side to a real API server, and the example resources make a valid
//! configuration.

#![cfg(feature = "kubernetes")]

use std::path::{Path, PathBuf};
use std::process::Command;

use lifeboat::k8s::cluster;
use lifeboat::k8s::resources::{Policy, Provider, Workload};
use lifeboat_testkit::kube::{self, KubeApiServer};
use lifeboat_testkit::{repo_root, require_kube};

fn manifests() -> PathBuf {
    repo_root().join("manifests")
}

#[test]
fn the_committed_crds_are_what_lifeboat_crds_prints() {
    let output = Command::new(env!("CARGO_BIN_EXE_lifeboat"))
        .arg("crds")
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    let printed = String::from_utf8(output.stdout).unwrap();
    let committed = std::fs::read_to_string(manifests().join("crds.yaml")).unwrap();
    assert!(
        printed == committed,
        "manifests/crds.yaml drifted from the Rust types: run \
         `cargo run -- crds > manifests/crds.yaml` and commit it"
    );
}

/// Runs the built kubectl (the API server's version) with `kubeconfig`, returning its
/// stdout; fails the test on a non-zero exit with kubectl's stderr.
fn kubectl(kubeconfig: &Path, args: &[&str]) -> String {
    let output = Command::new(kube::kubectl())
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .args(args)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "kubectl {args:?} failed: {stderr}");
    String::from_utf8(output.stdout).unwrap()
}

fn documents(path: &Path) -> usize {
    let text = std::fs::read_to_string(path).unwrap();
    text.split("\n---\n")
        .filter(|doc| doc.lines().any(|l| l.starts_with("kind:")))
        .count()
}

#[test]
fn every_manifest_applies_server_side_to_a_real_api_server() {
    require_kube!();
    // The real server validates every object against its schema (the CRDs' own
    // structural schemas included) and server-side apply records the field manager.
    let server = KubeApiServer::start().unwrap();
    let kubeconfig = server.admin_kubeconfig("lifeboat").unwrap();
    let dir = manifests();
    let out = kubectl(
        &kubeconfig,
        &["apply", "--server-side", "-k", dir.to_str().unwrap()],
    );
    let mut expected = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "yaml") {
            expected += documents(&path);
        }
    }
    assert_eq!(out.lines().count(), expected, "{out}");
    assert!(
        out.contains("deployment.apps/lifeboat serverside-applied"),
        "{out}"
    );
    assert!(
        out.contains("role.rbac.authorization.k8s.io/lifeboat serverside-applied"),
        "{out}"
    );
    kubectl(
        &kubeconfig,
        &[
            "wait",
            "--for=condition=Established",
            "--timeout=60s",
            "crd",
            "--all",
        ],
    );

    // The example resources are valid instances of the CRDs, as the server checks them.
    let examples = dir.join("examples");
    let out = kubectl(
        &kubeconfig,
        &["apply", "--server-side", "-f", examples.to_str().unwrap()],
    );
    assert_eq!(out.lines().count(), 5, "{out}");

    // The printer columns the CRDs declare are what `kubectl get` shows.
    let table = kubectl(
        &kubeconfig,
        &["get", "providers.lifeboat.dev", "-n", "lifeboat"],
    );
    let header = table.lines().next().unwrap_or_default();
    for column in ["NAME", "VENDOR", "CONDITION"] {
        assert!(header.contains(column), "{table}");
    }

    // A resource that breaks the schema is refused by the server, naming the field.
    let bad = server.dir_file(
        "bad-workload.yaml",
        "apiVersion: lifeboat.dev/v1alpha1\nkind: Workload\nmetadata:\n  name: bad\n  namespace: lifeboat\nspec:\n  replicas: many\n",
    );
    let output = Command::new(kube::kubectl())
        .arg("--kubeconfig")
        .arg(&kubeconfig)
        .args(["apply", "--server-side", "-f"])
        .arg(&bad)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "accepted: {stderr}");
    assert!(stderr.contains("spec.replicas"), "{stderr}");
}

fn read_all<T: serde::de::DeserializeOwned>(path: &Path) -> Vec<T> {
    let text = std::fs::read_to_string(path).unwrap();
    text.split("\n---\n")
        .map(|doc| serde_yaml::from_str(doc).unwrap())
        .collect()
}

#[test]
fn the_examples_make_a_valid_configuration() {
    let examples = manifests().join("examples");
    let providers: Vec<Provider> = read_all(&examples.join("providers.yaml"));
    let workloads: Vec<Workload> = read_all(&examples.join("workloads.yaml"));
    let policies: Vec<Policy> = read_all(&examples.join("policy.yaml"));
    let assembled = cluster::assemble(
        &providers,
        &workloads,
        &policies,
        Path::new("/var/lib/lifeboat"),
    )
    .unwrap();
    assert_eq!(assembled.config.providers.len(), 2);
    assert_eq!(assembled.config.workload("api").unwrap().depends_on, ["db"]);
}
