//! The adapter against kmock's Kubernetes emulator, served over HTTP on loopback by
//! `tests/peers/kmock_server.py` (installed by `tests/peers/install.sh`).
//!
//! Where the emulator differs from a real API server the launcher narrows the gap
//! (metadata, label selectors, apply that creates, bearer tokens, forbid rules); what
//! remains is said next to the test it affects, and `scripted.rs` covers those cases
//! with the real server's answers.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use lifeboat_provider::{
    DeployRequest, DeploymentRef, DeploymentState, ErrorClass, Generation, HealthCheck, Owner,
    Provider, Resources, Run, WorkloadSpec, conformance,
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

/// The installation the tests deploy as.
fn owner() -> Owner {
    Owner::installation("test")
}

/// A drill of [`owner`].
fn drill() -> Owner {
    Owner::drill("test", "d1")
}

fn request(spec: WorkloadSpec, generation: u64) -> DeployRequest {
    request_for(spec, generation, &owner())
}

fn request_for(spec: WorkloadSpec, generation: u64, owner: &Owner) -> DeployRequest {
    DeployRequest {
        workload: spec,
        generation: Generation(generation),
        owner: owner.clone(),
    }
}

/// The object name of [`owner`]'s copy of `workload` at `generation`.
fn name(workload: &str, generation: u64) -> String {
    format!("{workload}-g{generation}-{}", owner().discriminator())
}

/// Creates `object` (JSON) at `path` behind the adapter's back.
fn create(kmock: &Kmock, path: &str, object: &Value) {
    let (status, body) = kmock
        .request(
            "POST",
            path,
            Some(("application/json", &object.to_string())),
        )
        .unwrap();
    assert!(status < 300, "{status} {body}");
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
    assert_eq!(dep.owner, Some(owner()));
    let api_g1 = name("api", 1);
    assert_eq!(
        dep.handle,
        format!("apps/v1/Deployment/prod/{api_g1},v1/Service/prod/{api_g1}")
    );
    assert_eq!(deployments(&kmock), std::slice::from_ref(&api_g1));

    // The emulator runs no Deployment controller: until a status is written, the
    // rollout has not been observed.
    assert!(
        matches!(
            k8s.inspect(&dep).await.unwrap(),
            DeploymentState::Pending { .. }
        ),
        "no status yet"
    );
    let path = format!("/apis/apps/v1/namespaces/{NS}/deployments/{api_g1}");
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
            assert_eq!(endpoint.host, format!("{api_g1}.prod.svc"));
            assert_eq!(endpoint.port, 8080);
        }
        other => panic!("expected healthy, got {other:?}"),
    }

    let managed = k8s.list_managed(Some(&owner())).await.unwrap();
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
    assert_eq!(k8s.list_managed(Some(&owner())).await.unwrap(), []);
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
    assert_eq!(deployments(&kmock), [name("api", 1)]);

    // Make before break: the next generation runs beside the first.
    let second = k8s.deploy(&request(workload("api"), 2)).await.unwrap();
    assert_eq!(deployments(&kmock), [name("api", 1), name("api", 2)]);
    let managed: Vec<(String, u64)> = k8s
        .list_managed(Some(&owner()))
        .await
        .unwrap()
        .into_iter()
        .map(|d| (d.workload, d.generation.0))
        .collect();
    assert_eq!(managed, [("api".into(), 1), ("api".into(), 2)]);

    k8s.retire(&first).await.unwrap();
    assert_eq!(deployments(&kmock), [name("api", 2)]);
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
    assert_eq!(job["metadata"]["labels"]["lifeboat.dev/owner"], "test");
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
    let err = k8s.list_managed(Some(&owner())).await.unwrap_err();
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
    create(
        &kmock,
        &format!("/apis/apps/v1/namespaces/{NS}/deployments"),
        &foreign,
    );
    let ours = k8s.deploy(&request(workload("api"), 3)).await.unwrap();
    assert_eq!(deployments(&kmock), [name("api", 3), "billing".into()]);
    let managed = k8s.list_managed(Some(&owner())).await.unwrap();
    assert_eq!(managed.len(), 1, "{managed:?}");
    assert_eq!(managed[0].handle, ours.handle);
    assert!(k8s.list_managed(None).await.unwrap().is_empty());
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
    assert_eq!(added.metadata.name, Some(name("api", 1)));
    let added_version: u64 = added.metadata.resource_version.unwrap().parse().unwrap();

    k8s.retire(&dep).await.unwrap();
    match events.try_next().await.unwrap().unwrap() {
        WatchEvent::Deleted(d) => {
            assert_eq!(d.metadata.name, Some(name("api", 1)));
            let deleted_version: u64 = d.metadata.resource_version.unwrap().parse().unwrap();
            assert!(deleted_version > added_version);
        }
        other => panic!("expected the managed Deployment deleted, got {other:?}"),
    }
}

/// Plays the Deployment controller the emulator lacks, on a thread of its own: every
/// Deployment whose current spec has not been observed yet gets the status a real
/// cluster's controller writes once all its pods are ready. Stopped on drop.
struct RolloutController {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl RolloutController {
    fn start(kmock: Arc<Kmock>) -> RolloutController {
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        let thread = std::thread::spawn(move || {
            while !stopped.load(Ordering::Relaxed) {
                roll_out(&kmock);
                std::thread::sleep(Duration::from_millis(100));
            }
        });
        RolloutController {
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for RolloutController {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn roll_out(kmock: &Kmock) {
    let path = format!("/apis/apps/v1/namespaces/{NS}/deployments");
    let Ok((200, body)) = kmock.request("GET", &path, None) else {
        return;
    };
    let Ok(list) = serde_json::from_str::<Value>(&body) else {
        return;
    };
    for d in list["items"].as_array().into_iter().flatten() {
        let generation = &d["metadata"]["generation"];
        let Some(name) = d["metadata"]["name"].as_str() else {
            continue;
        };
        if &d["status"]["observedGeneration"] == generation {
            continue;
        }
        let replicas = d["spec"]["replicas"].as_u64().unwrap_or(1);
        let status = json!({"observedGeneration": generation, "replicas": replicas,
            "updatedReplicas": replicas, "readyReplicas": replicas, "availableReplicas": replicas});
        // A Deployment retired meanwhile refuses the write; the next round forgets it.
        let _ = kmock.set_status(&format!("{path}/{name}"), &status.to_string());
    }
}

#[tokio::test]
async fn the_adapter_conforms_to_the_contract() {
    let kmock = Arc::new(Kmock::start(None).unwrap());
    let _controller = RolloutController::start(kmock.clone());
    let k8s = provider(&kmock, None).await;
    let mut fixture = conformance::Fixture::new(workload("conf"), "conformance");
    // The emulator runs no pods, but the controller above makes rollouts complete, and
    // the health check through the Service stands unchecked (no service proxy): a copy
    // becomes healthy as soon as its Deployment is rolled out.
    fixture.healthy_within = Some(Duration::from_secs(10));
    fixture.invalid = Some(WorkloadSpec {
        run: Run::Command {
            command: vec!["/usr/bin/api".into()],
        },
        ..workload("conf")
    });
    let report = conformance::run(&k8s, &fixture).await;
    println!("{report}");
    assert!(report.passed(), "{report}");
    assert_eq!(deployments(&kmock), Vec::<String>::new(), "left behind");
}

#[tokio::test]
async fn objects_from_before_owners_are_listed_only_as_unowned() {
    let kmock = Kmock::start(None).unwrap();
    let k8s = provider(&kmock, None).await;
    // What the adapter made before owners existed: managed, with workload and
    // generation, under the old name and without owner labels.
    let old = json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "api-g1", "namespace": NS, "labels": {
            "lifeboat.dev/managed": "true", "lifeboat.dev/workload": "api",
            "lifeboat.dev/generation": "1"}},
        "spec": {"replicas": 1}});
    create(
        &kmock,
        &format!("/apis/apps/v1/namespaces/{NS}/deployments"),
        &old,
    );
    let ours = k8s.deploy(&request(workload("api"), 2)).await.unwrap();

    let unowned = k8s.list_managed(None).await.unwrap();
    assert_eq!(
        unowned,
        [DeploymentRef {
            workload: "api".into(),
            generation: Generation(1),
            handle: "apps/v1/Deployment/prod/api-g1".into(),
            endpoint: None,
            owner: None,
        }]
    );
    let owned = k8s.list_managed(Some(&owner())).await.unwrap();
    assert_eq!(
        owned.iter().map(|d| &d.handle).collect::<Vec<_>>(),
        [&ours.handle]
    );
    assert_eq!(k8s.list_managed(Some(&drill())).await.unwrap(), []);

    // A drill's reference to it (a cleanup gone wrong) sees it gone and leaves it alone.
    let forged = DeploymentRef {
        owner: Some(drill()),
        ..unowned[0].clone()
    };
    assert_eq!(k8s.inspect(&forged).await.unwrap(), DeploymentState::Gone);
    k8s.retire(&forged).await.unwrap();
    assert_eq!(deployments(&kmock), ["api-g1".to_owned(), name("api", 2)]);
    // Its own, unowned reference still reaches it.
    assert!(matches!(
        k8s.inspect(&unowned[0]).await.unwrap(),
        DeploymentState::Pending { .. }
    ));
    k8s.retire(&unowned[0]).await.unwrap();
    assert_eq!(deployments(&kmock), [name("api", 2)]);
}

#[tokio::test]
async fn a_deploy_never_takes_over_another_owners_object() {
    let kmock = Kmock::start(None).unwrap();
    let k8s = provider(&kmock, None).await;
    let conf = format!("/api/v1/namespaces/{NS}/configmaps/batch-conf");
    let owner_labels = || {
        let (_, body) = kmock.request("GET", &conf, None).unwrap();
        let labels = serde_json::from_str::<Value>(&body).unwrap()["metadata"]["labels"].clone();
        (
            labels["lifeboat.dev/owner"].clone(),
            labels["lifeboat.dev/drill"].clone(),
        )
    };
    // Raw manifests keep their names, so another owner's deploy meets the same object.
    let mut spec = workload("batch");
    spec.extra.insert(
        "manifests".into(),
        json!([{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "batch-conf"},
                "data": {"k": "v"}}]),
    );
    let prod_copy = k8s.deploy(&request(spec.clone(), 1)).await.unwrap();
    for other in [drill(), Owner::installation("elsewhere")] {
        let err = k8s
            .deploy(&request_for(spec.clone(), 1, &other))
            .await
            .unwrap_err();
        assert_eq!(err.class, ErrorClass::InvalidRequest, "{err}");
        assert!(err.message.contains("belongs to test"), "{err}");
    }
    assert_eq!(owner_labels(), (json!("test"), Value::Null));
    // The owner itself deploys again as before.
    assert_eq!(
        k8s.deploy(&request(spec.clone(), 1)).await.unwrap(),
        prod_copy
    );
    k8s.retire(&prod_copy).await.unwrap();

    // An object made before owners: a drill refuses it, the installation adopts it.
    let old = json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "batch-conf", "namespace": NS, "labels": {
            "lifeboat.dev/managed": "true", "lifeboat.dev/workload": "batch",
            "lifeboat.dev/generation": "1"}}});
    create(&kmock, &format!("/api/v1/namespaces/{NS}/configmaps"), &old);
    let err = k8s
        .deploy(&request_for(spec.clone(), 2, &drill()))
        .await
        .unwrap_err();
    assert_eq!(err.class, ErrorClass::InvalidRequest, "{err}");
    assert_eq!(owner_labels(), (Value::Null, Value::Null));
    let adopted = k8s.deploy(&request(spec, 2)).await.unwrap();
    assert_eq!(owner_labels(), (json!("test"), Value::Null));
    assert_eq!(k8s.list_managed(None).await.unwrap(), []);
    assert_eq!(k8s.list_managed(Some(&owner())).await.unwrap(), [adopted]);
}
