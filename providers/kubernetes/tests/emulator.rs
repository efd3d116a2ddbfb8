//! The adapter against kmock's Kubernetes emulator, served over HTTP on loopback by
//! `tests/peers/kmock_server.py` (installed by `tests/peers/install.sh`).
//!
//! Where the emulator differs from a real API server the launcher narrows the gap
//! (metadata, label selectors, apply that creates, bearer tokens, forbid rules); what
//! remains is said next to the test it affects, and `scripted.rs` covers those cases
//! with the real server's answers.

use std::collections::BTreeMap;

use lifeboat_provider::{
    DeployRequest, DeploymentRef, DeploymentState, ErrorClass, Generation, HealthCheck, Provider,
    Resources, Run, WorkloadSpec,
};
use lifeboat_provider_kubernetes::{KubernetesConfig, KubernetesProvider, connect};
use lifeboat_testkit::kmock::Kmock;
use serde_json::{Value, json};

const NS: &str = "prod";

fn workload(name: &str) -> WorkloadSpec {
    WorkloadSpec {
        name: name.into(),
        run: Run::Image {
            image: "ghcr.io/acme/api:1.4".into(),
            command: vec![],
        },
        env: BTreeMap::from([("MODE".into(), "prod".into())]),
        port: Some(8080),
        resources: Resources {
            cpu_millis: 100,
            memory_mib: 64,
        },
        replicas: 2,
        health: Some(HealthCheck::Http {
            path: "/healthz".into(),
        }),
        extra: BTreeMap::new(),
    }
}

fn request(spec: WorkloadSpec, generation: u64) -> DeployRequest {
    DeployRequest {
        workload: spec,
        generation: Generation(generation),
    }
}

async fn provider(kmock: &Kmock, token: Option<&str>) -> KubernetesProvider {
    let kubeconfig = kmock.kubeconfig(NS, token).unwrap();
    connect("cluster-a", KubernetesConfig::from_kubeconfig(kubeconfig))
        .await
        .unwrap()
}

/// The Deployments the emulator holds in the namespace, by name, read behind the
/// adapter's back.
fn deployments(kmock: &Kmock) -> Vec<String> {
    let (status, body) = kmock
        .request(
            "GET",
            &format!("/apis/apps/v1/namespaces/{NS}/deployments"),
            None,
        )
        .unwrap();
    assert_eq!(status, 200, "{body}");
    let list: Value = serde_json::from_str(&body).unwrap();
    let mut names: Vec<String> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["metadata"]["name"].as_str().unwrap().to_owned())
        .collect();
    names.sort();
    names
}

#[tokio::test]
async fn deploy_inspect_list_retire() {
    let kmock = Kmock::start(None).unwrap();
    let k8s = provider(&kmock, None).await;

    let dep = k8s.deploy(&request(workload("api"), 1)).await.unwrap();
    assert_eq!(dep.workload, "api");
    assert_eq!(
        dep.handle,
        "apps/v1/Deployment/prod/api-g1,v1/Service/prod/api-g1"
    );
    assert_eq!(deployments(&kmock), ["api-g1"]);

    // The emulator runs no Deployment controller: until a status is written, the
    // rollout has not been observed.
    assert!(
        matches!(
            k8s.inspect(&dep).await.unwrap(),
            DeploymentState::Pending { .. }
        ),
        "no status yet"
    );
    let path = format!("/apis/apps/v1/namespaces/{NS}/deployments/api-g1");
    let (_, body) = kmock.request("GET", &path, None).unwrap();
    let generation =
        serde_json::from_str::<Value>(&body).unwrap()["metadata"]["generation"].clone();
    kmock
        .set_status(
            &path,
            &json!({"observedGeneration": generation, "replicas": 2, "updatedReplicas": 2, "availableReplicas": 1})
                .to_string(),
        )
        .unwrap();
    assert!(matches!(
        k8s.inspect(&dep).await.unwrap(),
        DeploymentState::Running { endpoint: Some(_) }
    ));
    kmock
        .set_status(
            &path,
            &json!({"observedGeneration": generation, "replicas": 2, "updatedReplicas": 2, "availableReplicas": 2})
                .to_string(),
        )
        .unwrap();
    // The emulator has no service proxy (it answers 404 with a Status), so the health
    // check through the Service is unchecked and the readiness probes, which run the
    // same check, stand for it. `scripted.rs` covers a proxy that answers.
    match k8s.inspect(&dep).await.unwrap() {
        DeploymentState::Healthy { endpoint } => {
            assert_eq!(
                (endpoint.host.as_str(), endpoint.port),
                ("api-g1.prod.svc", 8080)
            );
        }
        other => panic!("expected healthy, got {other:?}"),
    }

    let managed = k8s.list_managed().await.unwrap();
    assert_eq!(
        managed,
        [DeploymentRef {
            endpoint: None,
            ..dep.clone()
        }]
    );

    k8s.retire(&dep).await.unwrap();
    assert_eq!(deployments(&kmock), Vec::<String>::new());
    assert_eq!(k8s.inspect(&dep).await.unwrap(), DeploymentState::Gone);
    assert_eq!(k8s.list_managed().await.unwrap(), []);
    // Already gone is success.
    k8s.retire(&dep).await.unwrap();
}

#[tokio::test]
async fn repeated_deploys_keep_one_deployment_and_generations_coexist() {
    let kmock = Kmock::start(None).unwrap();
    let k8s = provider(&kmock, None).await;
    let first = k8s.deploy(&request(workload("api"), 1)).await.unwrap();
    let again = k8s.deploy(&request(workload("api"), 1)).await.unwrap();
    assert_eq!(first, again);
    assert_eq!(deployments(&kmock), ["api-g1"]);

    // Make before break: the next generation runs beside the first.
    let second = k8s.deploy(&request(workload("api"), 2)).await.unwrap();
    assert_eq!(deployments(&kmock), ["api-g1", "api-g2"]);
    let managed: Vec<(String, u64)> = k8s
        .list_managed()
        .await
        .unwrap()
        .into_iter()
        .map(|d| (d.workload, d.generation.0))
        .collect();
    assert_eq!(managed, [("api".into(), 1), ("api".into(), 2)]);

    k8s.retire(&first).await.unwrap();
    assert_eq!(deployments(&kmock), ["api-g2"]);
    assert!(matches!(
        k8s.inspect(&second).await.unwrap(),
        DeploymentState::Pending { .. }
    ));
}

#[tokio::test]
async fn raw_manifests_go_through_discovery_and_a_newer_generation_takes_them_over() {
    let kmock = Kmock::start(None).unwrap();
    let k8s = provider(&kmock, None).await;
    let mut spec = workload("batch");
    // Job is not among the kinds the adapter knows up front: it is found by discovery.
    spec.extra.insert(
        "manifests".into(),
        json!([
            {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "batch-conf"}, "data": {"k": "v"}},
            {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "batch-run"},
             "spec": {"template": {"spec": {"containers": [{"name": "run", "image": "busybox"}]}}}}
        ]),
    );
    let first = k8s.deploy(&request(spec.clone(), 1)).await.unwrap();
    assert_eq!(
        first.handle,
        "v1/ConfigMap/prod/batch-conf,batch/v1/Job/prod/batch-run"
    );
    let (_, job) = kmock
        .request("GET", "/apis/batch/v1/namespaces/prod/jobs/batch-run", None)
        .unwrap();
    let job: Value = serde_json::from_str(&job).unwrap();
    assert_eq!(job["metadata"]["labels"]["lifeboat.dev/generation"], "1");
    assert_eq!(
        job["spec"]["template"]["spec"]["containers"][0]["env"],
        json!([{"name": "LIFEBOAT_GENERATION", "value": "1"}])
    );
    // Plain objects and a Job have no rollout to wait for.
    assert!(matches!(
        k8s.inspect(&first).await.unwrap(),
        DeploymentState::Healthy { .. }
    ));

    let second = k8s.deploy(&request(spec, 2)).await.unwrap();
    // The old generation's objects now belong to the new one: retiring the old one
    // leaves them alone, and it reads as gone.
    k8s.retire(&first).await.unwrap();
    assert_eq!(k8s.inspect(&first).await.unwrap(), DeploymentState::Gone);
    assert!(matches!(
        k8s.inspect(&second).await.unwrap(),
        DeploymentState::Healthy { .. }
    ));
    k8s.retire(&second).await.unwrap();
    assert_eq!(k8s.inspect(&second).await.unwrap(), DeploymentState::Gone);
}

#[tokio::test]
async fn a_manifest_of_an_unknown_kind_is_an_invalid_request() {
    let kmock = Kmock::start(None).unwrap();
    let k8s = provider(&kmock, None).await;
    let mut spec = workload("odd");
    spec.extra.insert(
        "manifests".into(),
        json!([{"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}}]),
    );
    let err = k8s.deploy(&request(spec, 1)).await.unwrap_err();
    assert_eq!(err.class, ErrorClass::InvalidRequest, "{err}");
}

#[tokio::test]
async fn probe_reads_version_namespace_permissions_and_node_capacity() {
    let kmock = Kmock::start(Some("good-token")).unwrap();
    let k8s = provider(&kmock, Some("good-token")).await;
    let report = k8s.probe().await.unwrap();
    assert_eq!(report.degraded, None);
    // No nodes, no capacity figure (unknown, not zero).
    assert_eq!(report.capacity, None);

    let node = json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n1"},
        "status": {"allocatable": {"cpu": "3800m", "memory": "8Gi", "pods": "110"}}});
    let (status, body) = kmock
        .request(
            "POST",
            "/api/v1/nodes",
            Some(("application/json", &node.to_string())),
        )
        .unwrap();
    assert!(status < 300, "{status} {body}");
    let capacity = k8s.probe().await.unwrap().capacity.unwrap();
    assert_eq!(
        (capacity.replicas, capacity.cpu_millis, capacity.memory_mib),
        (Some(110), Some(3800), Some(8192))
    );
}

#[tokio::test]
async fn a_wrong_token_is_credentials_rejected() {
    let kmock = Kmock::start(Some("good-token")).unwrap();
    let k8s = provider(&kmock, Some("stale-token")).await;
    let err = k8s.probe().await.unwrap_err();
    assert_eq!(err.class, ErrorClass::CredentialsRejected, "{err}");
    assert_eq!(err.code.as_deref(), Some("401 Unauthorized"));
    assert!(!err.to_string().contains("stale-token"), "{err}");
}

#[tokio::test]
async fn revoked_credentials_show_on_the_next_probe() {
    let mut kmock = Kmock::start(Some("good-token")).unwrap();
    let k8s = provider(&kmock, Some("good-token")).await;
    k8s.probe().await.unwrap();
    kmock.set_token(Some("rotated-by-the-vendor")).unwrap();
    let err = k8s.probe().await.unwrap_err();
    assert_eq!(err.class, ErrorClass::CredentialsRejected, "{err}");
    let err = k8s.list_managed().await.unwrap_err();
    assert_eq!(err.class, ErrorClass::CredentialsRejected, "{err}");
}

#[tokio::test]
async fn missing_permissions_degrade_the_probe_and_fail_the_deploy() {
    let kmock = Kmock::start(None).unwrap();
    let k8s = provider(&kmock, None).await;
    kmock
        .forbid(&["patch deployments", "delete services"])
        .unwrap();
    let report = k8s.probe().await.unwrap();
    let degraded = report.degraded.expect("degraded");
    assert!(
        degraded.contains("patch deployments.apps") && degraded.contains("delete services"),
        "{degraded}"
    );
    let err = k8s.deploy(&request(workload("api"), 1)).await.unwrap_err();
    assert_eq!(err.class, ErrorClass::PermissionDenied, "{err}");
    assert_eq!(err.code.as_deref(), Some("403 Forbidden"));
}

#[tokio::test]
async fn an_unreachable_cluster_is_unavailable() {
    // Start and stop an emulator so that its port is known to refuse connections.
    let kmock = Kmock::start(None).unwrap();
    let kubeconfig = kmock.kubeconfig(NS, None).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let kept = dir.path().join("kubeconfig");
    std::fs::copy(&kubeconfig, &kept).unwrap();
    drop(kmock);
    let k8s = connect("gone", KubernetesConfig::from_kubeconfig(kept))
        .await
        .unwrap();
    let err = k8s.probe().await.unwrap_err();
    assert_eq!(err.class, ErrorClass::Unavailable, "{err}");
}

#[tokio::test]
async fn objects_without_the_managed_label_are_not_listed() {
    let kmock = Kmock::start(None).unwrap();
    let k8s = provider(&kmock, None).await;
    // Someone else's Deployment in the same namespace (the emulator honours label
    // selectors through its launcher, as a real server does).
    let foreign = json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "billing", "namespace": NS, "labels": {"app": "billing"}},
        "spec": {"replicas": 1}});
    let (status, body) = kmock
        .request(
            "POST",
            &format!("/apis/apps/v1/namespaces/{NS}/deployments"),
            Some(("application/json", &foreign.to_string())),
        )
        .unwrap();
    assert!(status < 300, "{status} {body}");
    let ours = k8s.deploy(&request(workload("api"), 3)).await.unwrap();
    assert_eq!(deployments(&kmock), ["api-g3", "billing"]);
    let managed = k8s.list_managed().await.unwrap();
    assert_eq!(managed.len(), 1, "{managed:?}");
    assert_eq!(managed[0].handle, ours.handle);
}

#[tokio::test]
async fn the_emulator_streams_watch_events_filtered_by_label() {
    use futures::{StreamExt, TryStreamExt};
    use k8s_openapi::api::apps::v1::Deployment;
    use kube::api::{Api, WatchEvent, WatchParams};

    // A check of the launcher, for the watchers of the in-cluster mode: live events,
    // label selectors and resourceVersions as a real server serves them.
    let kmock = Kmock::start(None).unwrap();
    let k8s = provider(&kmock, None).await;
    let api: Api<Deployment> = Api::namespaced(k8s.client().clone(), NS);
    let params = WatchParams::default().labels("lifeboat.dev/managed=true");
    let mut events = api.watch(&params, "0").await.unwrap().boxed();

    let foreign = json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "billing", "labels": {"app": "billing"}}, "spec": {"replicas": 1}});
    kmock
        .request(
            "POST",
            &format!("/apis/apps/v1/namespaces/{NS}/deployments"),
            Some(("application/json", &foreign.to_string())),
        )
        .unwrap();
    let dep = k8s.deploy(&request(workload("api"), 1)).await.unwrap();
    let added = match events.try_next().await.unwrap().unwrap() {
        WatchEvent::Added(d) => d,
        other => panic!("expected the managed Deployment added, got {other:?}"),
    };
    assert_eq!(added.metadata.name.as_deref(), Some("api-g1"));
    let added_version: u64 = added.metadata.resource_version.unwrap().parse().unwrap();

    k8s.retire(&dep).await.unwrap();
    match events.try_next().await.unwrap().unwrap() {
        WatchEvent::Deleted(d) => {
            assert_eq!(d.metadata.name.as_deref(), Some("api-g1"));
            let deleted_version: u64 = d.metadata.resource_version.unwrap().parse().unwrap();
            assert!(deleted_version > added_version);
        }
        other => panic!("expected the managed Deployment deleted, got {other:?}"),
    }
}
