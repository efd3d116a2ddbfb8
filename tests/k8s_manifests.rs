//! The in-cluster manifests: the committed CRDs match the Rust types, kubectl accepts
//! every manifest, and the example resources make a valid configuration.

#![cfg(feature = "kubernetes")]

use std::path::{Path, PathBuf};
use std::process::Command;

use lifeboat::k8s::cluster;
use lifeboat::k8s::resources::{Policy, Provider, Workload};
use lifeboat_testkit::kmock::Kmock;
use lifeboat_testkit::{repo_root, system_bin};

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

/// Runs kubectl against the emulator, returning its stdout; fails the test on a
/// non-zero exit with kubectl's stderr.
fn kubectl(kubeconfig: &Path, args: &[&str]) -> String {
    let kubectl = system_bin("/usr/bin/kubectl", "kubernetes-client").unwrap();
    let output = Command::new(kubectl)
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
fn kubectl_accepts_every_manifest() {
    // kubectl's client-side dry run still asks a server for discovery (to map kinds to
    // resources), so it runs against the emulator. The emulator serves no OpenAPI
    // document, hence `--validate=false`: kubectl's schema validation needs one. The
    // CRDs are created for real first, since the custom resources of the examples can
    // only be mapped once their CRDs are served (as on a real cluster).
    let kmock = Kmock::start(None).unwrap();
    let kubeconfig = kmock.kubeconfig("lifeboat", None).unwrap();
    let dir = manifests();
    let crds = kubectl(
        &kubeconfig,
        &[
            "apply",
            "--validate=false",
            "-f",
            dir.join("crds.yaml").to_str().unwrap(),
        ],
    );
    assert_eq!(crds.lines().count(), 6, "{crds}");

    let mut expected = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "yaml") {
            expected += documents(&path);
        }
    }
    let out = kubectl(
        &kubeconfig,
        &[
            "apply",
            "--dry-run=client",
            "--validate=false",
            "-f",
            dir.to_str().unwrap(),
        ],
    );
    assert_eq!(out.lines().count(), expected, "{out}");
    assert!(out.contains("deployment.apps/lifeboat"), "{out}");
    assert!(
        out.contains("role.rbac.authorization.k8s.io/lifeboat"),
        "{out}"
    );

    let examples = dir.join("examples");
    let out = kubectl(
        &kubeconfig,
        &[
            "apply",
            "--dry-run=client",
            "--validate=false",
            "-f",
            examples.to_str().unwrap(),
        ],
    );
    assert_eq!(out.lines().count(), 5, "{out}");

    // The kustomization renders, and holds every manifest but the examples.
    let rendered = kubectl(&kubeconfig, &["kustomize", dir.to_str().unwrap()]);
    assert_eq!(
        rendered.matches("\nkind: ").count() + usize::from(rendered.starts_with("kind: ")),
        expected,
        "{rendered}"
    );
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
