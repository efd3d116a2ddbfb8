//! Drills beside a running daemon whose workloads run in Kubernetes, against a real
//! kube-apiserver and etcd: the drill's own Deployments and Services go into the very
//! namespace production runs in, and a shadow drill, or `lifeboat drill --cleanup`
//! after a drill killed with SIGKILL, removes exactly those — every production object
//! keeps its uid and the daemon's placements stay as they were.

#![cfg(feature = "kubernetes")]

#[path = "support/cli.rs"]
mod cli;

use std::collections::BTreeMap;
use std::time::Duration;

use cli::{Lab, SHORT_POLICY, placements, wait_for};
use lifeboat_testkit::kube::{Controllers, IMAGE_WORKLOAD_RULES, KubeApiServer};
use lifeboat_testkit::require_kube;
use nix::sys::signal::Signal;

/// Waits are for hangs, not speed: the machine is shared.
const PATIENCE: Duration = Duration::from_secs(180);

/// Production's namespace (vendor `acme`) and the one a drill of losing acme goes to.
const NAMESPACES: [&str; 2] = ["shop-a", "shop-b"];

/// The Deployments and Services of `namespace`, by kind and name, with their uids.
fn objects(server: &KubeApiServer, namespace: &str) -> BTreeMap<String, String> {
    let mut objects = BTreeMap::new();
    for (kind, path) in [
        (
            "Deployment",
            format!("/apis/apps/v1/namespaces/{namespace}/deployments"),
        ),
        (
            "Service",
            format!("/api/v1/namespaces/{namespace}/services"),
        ),
    ] {
        let list = server.get(&path).expect("listing the namespace");
        for item in list["items"].as_array().into_iter().flatten() {
            let meta = &item["metadata"];
            objects.insert(
                format!("{kind}/{}", meta["name"].as_str().unwrap_or_default()),
                meta["uid"].as_str().unwrap_or_default().to_owned(),
            );
        }
    }
    objects
}

/// A lab whose two providers are namespaces of `server`, each reached with the
/// adapter's own least-privilege token.
fn lab(server: &KubeApiServer) -> Lab {
    let mut providers = Vec::new();
    for (name, vendor, namespace) in [
        ("cluster-a", "acme", NAMESPACES[0]),
        ("cluster-b", "metal", NAMESPACES[1]),
    ] {
        let token = server
            .service_account(namespace, "lifeboat", IMAGE_WORKLOAD_RULES, &[])
            .expect("a service account");
        let kubeconfig = server.kubeconfig(namespace, &token).expect("a kubeconfig");
        providers.push(serde_json::json!({
            "name": name, "vendor": vendor, "capacity": {"replicas": 10},
            "adapter": {"kind": "kubernetes", "kubeconfig": kubeconfig,
                "namespace": namespace, "timeout_secs": 5},
        }));
    }
    let workloads: Vec<serde_json::Value> = ["api", "web"]
        .iter()
        .map(|w| {
            serde_json::json!({"name": w, "image": "nginx:1.27", "port": 80,
                "placement": ["cluster-a", "cluster-b"]})
        })
        .collect();
    let config = serde_json::json!({
        "vendors": [{"name": "acme"}, {"name": "metal"}],
        "providers": providers,
        "workloads": workloads,
        "cutover": {"kind": "endpoints-file", "path": "endpoints.json"},
    });
    let yaml: serde_yaml::Value = serde_json::from_value(config).expect("YAML from JSON");
    Lab::new(yaml, SHORT_POLICY)
}

#[test]
fn drills_beside_the_daemon_leave_the_namespaces_production_objects_alone() {
    require_kube!();
    let server = KubeApiServer::start().unwrap();
    let lab = lab(&server);
    let _controllers = Controllers::start(&[&server], &NAMESPACES);
    let mut daemon = lab.start("run", &["run", "-c", lab.config_arg()]);
    let placed = wait_for(PATIENCE, "the daemon to place both workloads", || {
        if let Some(exit) = daemon.exited() {
            panic!("the daemon ended ({exit}):\n{}", daemon.stderr_so_far());
        }
        let placed = placements(&lab.status_when_ready()?);
        (placed.len() == 2 && placed.values().all(|(p, _)| p == "cluster-a")).then_some(placed)
    });
    let production = objects(&server, NAMESPACES[0]);
    assert_eq!(
        production.len(),
        4,
        "a Deployment and a Service each: {production:?}"
    );
    let as_before = || {
        objects(&server, NAMESPACES[0]) == production && objects(&server, NAMESPACES[1]).is_empty()
    };

    let args = [
        "drill",
        "-c",
        lab.config_arg(),
        "--mode",
        "shadow",
        "--lose",
        "acme",
    ];
    let shadow = lab.run(&args);
    assert_eq!(shadow.code, Some(0), "{}", shadow.output());
    // Deleted objects go once the garbage collector's stand-in has finalised them.
    wait_for(PATIENCE, "the shadow drill's objects gone", || {
        as_before().then_some(())
    });
    assert_eq!(placements(&lab.status()), placed, "{}", shadow.output());

    let killed = lab.start("killed", &args);
    wait_for(
        PATIENCE,
        "the drill's own objects beside production",
        || (objects(&server, NAMESPACES[0]).len() > production.len()).then_some(()),
    );
    killed.signal(Signal::SIGKILL);
    let ended = killed.wait();
    assert_eq!(ended.code, None, "killed by a signal\n{}", ended.output());
    assert!(!as_before(), "a killed drill leaves its objects");

    let cleanup = lab.run(&["drill", "--cleanup", "-c", lab.config_arg()]);
    assert_eq!(cleanup.code, Some(0), "{}", cleanup.output());
    assert!(cleanup.stdout.contains("retired"), "{}", cleanup.output());
    wait_for(PATIENCE, "the killed drill's objects gone", || {
        as_before().then_some(())
    });
    assert_eq!(placements(&lab.status()), placed);
    assert!(daemon.exited().is_none(), "the daemon still runs");
}
