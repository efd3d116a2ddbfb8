//! The adapter against a real kube-apiserver and etcd on loopback (see
//! `lifeboat_testkit::kube`), as a service account whose permissions come from a real
//! Role: server-side apply, label selectors, resourceVersions, watches, RBAC and token
//! revocation are the API server's own. Tests share one API server and keep apart by
//! namespace; no kubelet runs, so [`Controllers`] stands in for the Deployment controller
//! and the garbage collector where a test needs them.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use lifeboat_provider::{
    DeployRequest, DeploymentRef, DeploymentState, ErrorClass, Generation, HealthCheck, Owner,
    Provider, Resources, Run, WorkloadSpec, conformance,
};
use lifeboat_provider_kubernetes::{KubernetesConfig, KubernetesProvider, connect};
use lifeboat_testkit::kube::{Controllers, KubeApiServer, Rule, available};
use lifeboat_testkit::require_kube;
use serde_json::{Value, json};

/// What the adapter needs in its namespace.
const ADAPTER_RULES: &[Rule] = &[
    Rule {
        verbs: &[
            "get", "list", "watch", "create", "patch", "update", "delete",
        ],
        group: "apps",
        resources: &["deployments", "statefulsets", "daemonsets"],
    },
    Rule {
        verbs: &[
            "get", "list", "watch", "create", "patch", "update", "delete",
        ],
        group: "",
        resources: &[
            "services",
            "configmaps",
            "secrets",
            "pods",
            "services/proxy",
        ],
    },
    Rule {
        verbs: &[
            "get", "list", "watch", "create", "patch", "update", "delete",
        ],
        group: "batch",
        resources: &["jobs"],
    },
];

/// A namespace of a test's own on the shared API server, with the adapter's service
/// account in it.
struct Namespace {
    server: KubeApiServer,
    ns: String,
    token: String,
}

impl Namespace {
    fn new(server: KubeApiServer, rules: &[Rule]) -> Namespace {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let ns = format!("adapter-{}", NEXT.fetch_add(1, Ordering::Relaxed));
        let token = server.service_account(&ns, "lifeboat", rules, &[]).unwrap();
        Namespace { server, ns, token }
    }

    fn shared() -> Namespace {
        Namespace::new(KubeApiServer::shared().unwrap(), ADAPTER_RULES)
    }

    async fn provider(&self) -> KubernetesProvider {
        let kubeconfig = self.server.kubeconfig(&self.ns, &self.token).unwrap();
        connect("cluster-a", KubernetesConfig::from_kubeconfig(kubeconfig))
            .await
            .unwrap()
    }

    /// The Deployment controller and garbage collector for this namespace.
    fn controllers(&self) -> Controllers {
        Controllers::start(&[&self.server], &[&self.ns])
    }

    /// The names of the objects at `collection` (`deployments`, `configmaps`, ...) that
    /// are not being deleted, read behind the adapter's back.
    fn names(&self, collection: &str) -> Vec<String> {
        let path = match collection {
            "deployments" => format!("/apis/apps/v1/namespaces/{}/deployments", self.ns),
            other => format!("/api/v1/namespaces/{}/{other}", self.ns),
        };
        let list = self.server.get(&path).unwrap();
        let mut names: Vec<String> = list["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|o| o["metadata"]["deletionTimestamp"].is_null())
            .map(|o| o["metadata"]["name"].as_str().unwrap().to_owned())
            .filter(|n| n != "kube-root-ca.crt")
            .collect();
        names.sort();
        names
    }

    /// Waits until the live Deployments are `expected` (the garbage collector stand-in
    /// lets deleted ones go within a round).
    fn wait_for_deployments(&self, expected: &[String]) {
        self.server
            .wait_for(&format!("deployments {expected:?}"), || {
                Ok(self.names("deployments") == expected)
            })
            .unwrap_or_else(|e| panic!("{e:#}: {:?}", self.names("deployments")));
    }

    fn create(&self, collection: &str, object: &Value) {
        let path = match collection {
            "deployments" => format!("/apis/apps/v1/namespaces/{}/deployments", self.ns),
            other => format!("/api/v1/namespaces/{}/{other}", self.ns),
        };
        let (status, body) = self.server.request("POST", &path, Some(object)).unwrap();
        assert!(status < 300, "{status} {body}");
    }
}

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

#[tokio::test]
async fn deploy_inspect_list_retire() {
    require_kube!();
    let t = Namespace::shared();
    let k8s = t.provider().await;

    let dep = k8s.deploy(&request(workload("api"), 1)).await.unwrap();
    assert_eq!(dep.workload, "api");
    assert_eq!(dep.owner, Some(owner()));
    let api_g1 = name("api", 1);
    let ns = &t.ns;
    assert_eq!(
        dep.handle,
        format!("apps/v1/Deployment/{ns}/{api_g1},v1/Service/{ns}/{api_g1}")
    );
    assert_eq!(t.names("deployments"), std::slice::from_ref(&api_g1));
    // Applied by server-side apply under the adapter's field manager.
    let path = format!("/apis/apps/v1/namespaces/{ns}/deployments/{api_g1}");
    let object = t.server.get(&path).unwrap();
    let managers: Vec<&str> = object["metadata"]["managedFields"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["operation"] == "Apply")
        .map(|f| f["manager"].as_str().unwrap())
        .collect();
    assert_eq!(managers, ["lifeboat"], "{:#}", object["metadata"]);

    // No Deployment controller has observed the rollout yet.
    assert!(
        matches!(
            k8s.inspect(&dep).await.unwrap(),
            DeploymentState::Pending { .. }
        ),
        "no status yet"
    );
    let generation = object["metadata"]["generation"].as_i64().unwrap();
    let mut partly = available(generation, 2);
    partly["availableReplicas"] = json!(1);
    t.server.set_status(&path, &partly).unwrap();
    assert!(matches!(
        k8s.inspect(&dep).await.unwrap(),
        DeploymentState::Running { endpoint: Some(_) }
    ));
    t.server
        .set_status(&path, &available(generation, 2))
        .unwrap();
    // The Service has no endpoints (no pods run here): the server's service proxy
    // answers with a Status, the check stands unchecked and the readiness probes, which
    // run the same check, stand for it.
    match k8s.inspect(&dep).await.unwrap() {
        DeploymentState::Healthy { endpoint } => {
            assert_eq!(endpoint.host, format!("{api_g1}.{ns}.svc"));
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
    // Foreground deletion: the Deployment stays, marked for deletion, until the garbage
    // collector has removed its dependents; for the contract it is gone at once.
    assert_eq!(k8s.inspect(&dep).await.unwrap(), DeploymentState::Gone);
    assert_eq!(k8s.list_managed(Some(&owner())).await.unwrap(), []);
    let terminating = t.server.get(&path).unwrap();
    assert!(
        terminating["metadata"]["deletionTimestamp"].is_string(),
        "{terminating:#}"
    );
    // Already deleting, or already gone, is success.
    k8s.retire(&dep).await.unwrap();
    let _gc = t.controllers();
    t.wait_for_deployments(&[]);
    k8s.retire(&dep).await.unwrap();
}

#[tokio::test]
async fn repeated_deploys_keep_one_deployment_and_generations_coexist() {
    require_kube!();
    let t = Namespace::shared();
    let _controllers = t.controllers();
    let k8s = t.provider().await;
    let first = k8s.deploy(&request(workload("api"), 1)).await.unwrap();
    let again = k8s.deploy(&request(workload("api"), 1)).await.unwrap();
    assert_eq!(first, again);
    assert_eq!(t.names("deployments"), [name("api", 1)]);

    // Make before break: the next generation runs beside the first.
    let second = k8s.deploy(&request(workload("api"), 2)).await.unwrap();
    assert_eq!(t.names("deployments"), [name("api", 1), name("api", 2)]);
    let managed: Vec<(String, u64)> = k8s
        .list_managed(Some(&owner()))
        .await
        .unwrap()
        .into_iter()
        .map(|d| (d.workload, d.generation.0))
        .collect();
    assert_eq!(managed, [("api".into(), 1), ("api".into(), 2)]);

    k8s.retire(&first).await.unwrap();
    t.wait_for_deployments(&[name("api", 2)]);
    assert_ne!(
        k8s.inspect(&second).await.unwrap(),
        DeploymentState::Gone,
        "the second generation stays"
    );
}

#[tokio::test]
async fn a_field_changed_by_another_manager_is_taken_back_by_the_next_deploy() {
    require_kube!();
    let t = Namespace::shared();
    let k8s = t.provider().await;
    let dep = k8s.deploy(&request(workload("api"), 1)).await.unwrap();
    let path = format!(
        "/apis/apps/v1/namespaces/{}/deployments/{}",
        t.ns,
        name("api", 1)
    );
    // Someone scales lifeboat's copy by hand with an apply of their own: the server
    // refuses it (409, lifeboat's manager owns the field) unless they force it.
    let scale = json!({"apiVersion": "apps/v1", "kind": "Deployment",
                       "metadata": {"name": name("api", 1), "namespace": t.ns},
                       "spec": {"replicas": 5}});
    let (status, body) = t.server.apply_as("kubectl", false, &path, &scale).unwrap();
    assert_eq!(status, 409, "{body}");
    assert!(
        body.contains("lifeboat"),
        "names the manager holding the field: {body}"
    );
    let (status, body) = t.server.apply_as("kubectl", true, &path, &scale).unwrap();
    assert_eq!(status, 200, "{body}");
    assert_eq!(t.server.get(&path).unwrap()["spec"]["replicas"], 5);
    // lifeboat's deploy owns the spec it declares: it forces its fields back rather than
    // failing on the conflict, and the copy is its own again.
    assert_eq!(k8s.deploy(&request(workload("api"), 1)).await.unwrap(), dep);
    assert_eq!(t.server.get(&path).unwrap()["spec"]["replicas"], 2);
}

#[tokio::test]
async fn raw_manifests_go_through_discovery_and_a_newer_generation_takes_them_over() {
    require_kube!();
    let t = Namespace::shared();
    let _controllers = t.controllers();
    let k8s = t.provider().await;
    let mut spec = workload("batch");
    // Job is not among the kinds the adapter knows up front: it is found by discovery.
    spec.extra.insert(
        "manifests".into(),
        json!([
            {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "batch-conf"}, "data": {"k": "v"}},
            {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "batch-run"},
             "spec": {"template": {"spec": {"restartPolicy": "Never",
                      "containers": [{"name": "run", "image": "busybox"}]}}}}
        ]),
    );
    let first = k8s.deploy(&request(spec.clone(), 1)).await.unwrap();
    let ns = &t.ns;
    assert_eq!(
        first.handle,
        format!("v1/ConfigMap/{ns}/batch-conf,batch/v1/Job/{ns}/batch-run")
    );
    let job = t
        .server
        .get(&format!("/apis/batch/v1/namespaces/{ns}/jobs/batch-run"))
        .unwrap();
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

    let mut newer = spec.clone();
    newer.extra.insert(
        "manifests".into(),
        json!([{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "batch-conf"},
                "data": {"k": "v2"}}]),
    );
    let second = k8s.deploy(&request(newer, 2)).await.unwrap();
    // The old generation's objects now belong to the new one: retiring the old one
    // leaves them alone, and it reads as gone.
    k8s.retire(&first).await.unwrap();
    assert_eq!(k8s.inspect(&first).await.unwrap(), DeploymentState::Gone);
    assert_eq!(t.names("configmaps"), ["batch-conf"]);
    assert!(matches!(
        k8s.inspect(&second).await.unwrap(),
        DeploymentState::Healthy { .. }
    ));
    k8s.retire(&second).await.unwrap();
    assert_eq!(k8s.inspect(&second).await.unwrap(), DeploymentState::Gone);
}

#[tokio::test]
async fn a_manifest_the_server_refuses_is_an_invalid_request() {
    require_kube!();
    let t = Namespace::shared();
    let k8s = t.provider().await;
    let mut spec = workload("odd");
    spec.extra.insert(
        "manifests".into(),
        json!([{"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}}]),
    );
    let err = k8s.deploy(&request(spec, 1)).await.unwrap_err();
    assert_eq!(err.class, ErrorClass::InvalidRequest, "{err}");

    // The server's validation, which the emulator never did: a ConfigMap's data must be
    // strings.
    let mut spec = workload("odd");
    spec.extra.insert(
        "manifests".into(),
        json!([{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "bad"},
                "data": {"k": {"nested": true}}}]),
    );
    let err = k8s.deploy(&request(spec, 1)).await.unwrap_err();
    assert_eq!(err.class, ErrorClass::InvalidRequest, "{err}");
    assert!(err.message.contains("bad"), "{err}");
}

#[tokio::test]
async fn probe_reads_version_permissions_and_node_capacity() {
    require_kube!();
    // Nodes are cluster-wide: this test has an API server of its own.
    let server = KubeApiServer::start().unwrap();
    let t = Namespace::new(server.clone(), ADAPTER_RULES);
    let admin = server.admin_kubeconfig(&t.ns).unwrap();
    let k8s = connect("cluster-a", KubernetesConfig::from_kubeconfig(admin))
        .await
        .unwrap();
    let report = k8s.probe().await.unwrap();
    assert_eq!(report.degraded, None);
    // No nodes, no capacity figure (unknown, not zero).
    assert_eq!(report.capacity, None);

    let node = json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n1"}});
    let (status, body) = server
        .request("POST", "/api/v1/nodes", Some(&node))
        .unwrap();
    assert!(status < 300, "{status} {body}");
    server
        .set_status(
            "/api/v1/nodes/n1",
            &json!({"allocatable": {"cpu": "3800m", "memory": "8Gi", "pods": "110"}}),
        )
        .unwrap();
    let capacity = k8s.probe().await.unwrap().capacity.unwrap();
    assert_eq!(
        (capacity.replicas, capacity.cpu_millis, capacity.memory_mib),
        (Some(110), Some(3800), Some(8192))
    );
    // The service account may not list nodes: capacity is unknown, not an error.
    let restricted = t.provider().await;
    let report = restricted.probe().await.unwrap();
    assert_eq!((report.degraded, report.capacity), (None, None));
}

#[tokio::test]
async fn a_wrong_token_is_credentials_rejected() {
    require_kube!();
    let t = Namespace::shared();
    let kubeconfig = t.server.kubeconfig(&t.ns, "stale-token").unwrap();
    let k8s = connect("cluster-a", KubernetesConfig::from_kubeconfig(kubeconfig))
        .await
        .unwrap();
    let err = k8s.probe().await.unwrap_err();
    assert_eq!(err.class, ErrorClass::CredentialsRejected, "{err}");
    assert_eq!(err.code.as_deref(), Some("401 Unauthorized"));
    assert!(!err.to_string().contains("stale-token"), "{err}");
}

#[tokio::test]
async fn a_revoked_service_account_shows_on_the_next_probe() {
    require_kube!();
    let t = Namespace::shared();
    let k8s = t.provider().await;
    k8s.probe().await.unwrap();
    // The vendor deletes the account: its token is refused from then on.
    t.server.revoke(&t.ns, "lifeboat", &t.token).unwrap();
    // On a loaded machine the server can take longer than the client's timeout to look
    // the deleted account up; a timeout is then what the daemon sees, and its next probe
    // gets the answer. The first answer must be the rejection.
    let mut err = k8s.probe().await.unwrap_err();
    for _ in 0..3 {
        if err.class != ErrorClass::Timeout {
            break;
        }
        err = k8s.probe().await.unwrap_err();
    }
    assert_eq!(err.class, ErrorClass::CredentialsRejected, "{err}");
    let err = k8s.list_managed(Some(&owner())).await.unwrap_err();
    assert_eq!(err.class, ErrorClass::CredentialsRejected, "{err}");
    assert!(!err.to_string().contains(&t.token), "{err}");
}

#[tokio::test]
async fn missing_permissions_degrade_the_probe_and_fail_the_deploy() {
    require_kube!();
    let t = Namespace::new(
        KubeApiServer::shared().unwrap(),
        &[
            Rule {
                verbs: &["get", "list", "watch", "delete"],
                group: "apps",
                resources: &["deployments"],
            },
            Rule {
                verbs: &["get", "patch"],
                group: "",
                resources: &["services"],
            },
        ],
    );
    let k8s = t.provider().await;
    let report = k8s.probe().await.unwrap();
    let degraded = report.degraded.expect("degraded");
    assert!(
        degraded.contains("patch deployments.apps") && degraded.contains("delete services"),
        "{degraded}"
    );
    let err = k8s.deploy(&request(workload("api"), 1)).await.unwrap_err();
    assert_eq!(err.class, ErrorClass::PermissionDenied, "{err}");
    assert_eq!(err.code.as_deref(), Some("403 Forbidden"));

    // Granted again, the probe is clean at once.
    t.server
        .set_rules(&t.ns, "lifeboat", ADAPTER_RULES)
        .unwrap();
    assert_eq!(k8s.probe().await.unwrap().degraded, None);
}

#[tokio::test]
async fn an_unreachable_cluster_is_unavailable() {
    require_kube!();
    // A kubeconfig naming a loopback port nothing listens on.
    let t = Namespace::shared();
    let port = lifeboat_testkit::free_port();
    let kubeconfig = t
        .server
        .kubeconfig_for(&format!("https://127.0.0.1:{port}"), &t.ns, &t.token)
        .unwrap();
    let k8s = connect("gone", KubernetesConfig::from_kubeconfig(kubeconfig))
        .await
        .unwrap();
    let err = k8s.probe().await.unwrap_err();
    assert_eq!(err.class, ErrorClass::Unavailable, "{err}");
}

#[tokio::test]
async fn objects_without_the_managed_label_are_not_listed() {
    require_kube!();
    let t = Namespace::shared();
    let k8s = t.provider().await;
    t.create("deployments", &foreign_deployment("billing"));
    let ours = k8s.deploy(&request(workload("api"), 3)).await.unwrap();
    assert_eq!(t.names("deployments"), [name("api", 3), "billing".into()]);
    let managed = k8s.list_managed(Some(&owner())).await.unwrap();
    assert_eq!(managed.len(), 1, "{managed:?}");
    assert_eq!(managed[0].handle, ours.handle);
    assert!(k8s.list_managed(None).await.unwrap().is_empty());
}

/// A valid Deployment lifeboat did not make.
fn foreign_deployment(name: &str) -> Value {
    json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "labels": {"app": name}},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": name}},
                 "template": {"metadata": {"labels": {"app": name}},
                              "spec": {"containers": [{"name": name, "image": "busybox"}]}}}})
}

#[tokio::test]
async fn watches_stream_the_managed_objects_only() {
    use futures::{StreamExt, TryStreamExt};
    use k8s_openapi::api::apps::v1::Deployment;
    use kube::api::{Api, WatchEvent, WatchParams};

    require_kube!();
    let t = Namespace::shared();
    let k8s = t.provider().await;
    let api: Api<Deployment> = Api::namespaced(k8s.client().clone(), &t.ns);
    let params = WatchParams::default().labels("lifeboat.dev/managed=true");
    let mut events = api.watch(&params, "0").await.unwrap().boxed();

    t.create("deployments", &foreign_deployment("billing"));
    let dep = k8s.deploy(&request(workload("api"), 1)).await.unwrap();
    // The real server interleaves bookmarks (progress marks without an object).
    let mut next = async || loop {
        match events.try_next().await.unwrap().unwrap() {
            WatchEvent::Bookmark(_) => continue,
            event => return event,
        }
    };
    let added = match next().await {
        WatchEvent::Added(d) => d,
        other => panic!("expected the managed Deployment added, got {other:?}"),
    };
    assert_eq!(added.metadata.name, Some(name("api", 1)));
    k8s.retire(&dep).await.unwrap();
    // Foreground deletion first marks it (an update), then the object goes.
    match next().await {
        WatchEvent::Modified(d) => assert!(d.metadata.deletion_timestamp.is_some()),
        other => panic!("expected the Deployment marked for deletion, got {other:?}"),
    }
}

#[tokio::test]
async fn the_adapter_conforms_to_the_contract() {
    require_kube!();
    let t = Namespace::shared();
    let _controllers = t.controllers();
    let k8s = t.provider().await;
    let mut fixture = conformance::Fixture::new(workload("conf"), "conformance");
    // The controllers' stand-in makes rollouts complete, and the health check through
    // the Service stands unchecked (no endpoints): a copy becomes healthy as soon as its
    // Deployment is rolled out.
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
    t.wait_for_deployments(&[]);
}

#[tokio::test]
async fn objects_from_before_owners_are_listed_only_as_unowned() {
    require_kube!();
    let t = Namespace::shared();
    let _gc = t.controllers();
    let k8s = t.provider().await;
    // What the adapter made before owners existed: managed, with workload and
    // generation, under the old name and without owner labels.
    let mut old = foreign_deployment("api-g1");
    old["metadata"]["labels"] = json!({"app": "api-g1",
        "lifeboat.dev/managed": "true", "lifeboat.dev/workload": "api",
        "lifeboat.dev/generation": "1"});
    t.create("deployments", &old);
    let ours = k8s.deploy(&request(workload("api"), 2)).await.unwrap();

    let unowned = k8s.list_managed(None).await.unwrap();
    assert_eq!(
        unowned,
        [DeploymentRef {
            workload: "api".into(),
            generation: Generation(1),
            handle: format!("apps/v1/Deployment/{}/api-g1", t.ns),
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
    assert_eq!(
        t.names("deployments"),
        ["api-g1".to_owned(), name("api", 2)]
    );
    // Its own, unowned reference still reaches it.
    assert_ne!(
        k8s.inspect(&unowned[0]).await.unwrap(),
        DeploymentState::Gone
    );
    k8s.retire(&unowned[0]).await.unwrap();
    t.wait_for_deployments(&[name("api", 2)]);
}

#[tokio::test]
async fn a_deploy_never_takes_over_another_owners_object() {
    require_kube!();
    let t = Namespace::shared();
    let _gc = t.controllers();
    let k8s = t.provider().await;
    let conf = format!("/api/v1/namespaces/{}/configmaps/batch-conf", t.ns);
    let owner_labels = || {
        let labels = t.server.get(&conf).unwrap()["metadata"]["labels"].clone();
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
    // Until the garbage collector is done, the name cannot be deployed again.
    let err = k8s.deploy(&request(spec.clone(), 1)).await.unwrap_err();
    assert_eq!(err.class, ErrorClass::Unavailable, "{err}");
    assert!(err.message.contains("still being deleted"), "{err}");
    t.server
        .wait_for("the ConfigMap to go", || {
            Ok(t.server.request("GET", &conf, None)?.0 == 404)
        })
        .unwrap();

    // An object made before owners: a drill refuses it, the installation adopts it.
    let old = json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "batch-conf", "labels": {
            "lifeboat.dev/managed": "true", "lifeboat.dev/workload": "batch",
            "lifeboat.dev/generation": "1"}}});
    t.create("configmaps", &old);
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

#[tokio::test]
async fn throttling_outages_and_hangs_through_a_fault_proxy_are_classified() {
    require_kube!();
    // The real server does not throttle or fail on demand: a proxy in front of it does,
    // answering as an overloaded API server would.
    let t = Namespace::shared();
    let proxy = lifeboat_testkit::moto::Proxy::in_front_of(&t.server.url()).unwrap();
    let kubeconfig = t
        .server
        .kubeconfig_for(&proxy.url(), &t.ns, &t.token)
        .unwrap();
    let mut config = KubernetesConfig::from_kubeconfig(kubeconfig);
    config.timeout_secs = 2;
    let k8s = connect("cluster-a", config).await.unwrap();
    k8s.probe().await.unwrap();

    let throttled = json!({"kind": "Status", "apiVersion": "v1", "status": "Failure",
        "message": "Too many requests, please try again later.", "reason": "TooManyRequests",
        "details": {"retryAfterSeconds": 1}, "code": 429});
    proxy
        .set(
            json!({"mode": "status", "status": 429, "body": throttled.to_string(),
                     "ctype": "application/json", "headers": {"Retry-After": "1"}}),
        )
        .await
        .unwrap();
    let err = k8s.probe().await.unwrap_err();
    assert_eq!(err.class, ErrorClass::Throttled, "{err}");
    let err = k8s.deploy(&request(workload("api"), 1)).await.unwrap_err();
    assert_eq!(err.class, ErrorClass::Throttled, "{err}");

    let unavailable = json!({"kind": "Status", "apiVersion": "v1", "status": "Failure",
        "message": "etcdserver: leader changed", "reason": "ServiceUnavailable", "code": 503});
    proxy
        .set(
            json!({"mode": "status", "status": 503, "body": unavailable.to_string(),
                     "ctype": "application/json"}),
        )
        .await
        .unwrap();
    let err = k8s.list_managed(Some(&owner())).await.unwrap_err();
    assert_eq!(err.class, ErrorClass::Unavailable, "{err}");

    proxy.set(json!({"mode": "reset"})).await.unwrap();
    let err = k8s.probe().await.unwrap_err();
    assert_eq!(err.class, ErrorClass::Unavailable, "{err}");

    proxy
        .set(json!({"mode": "hang", "ms": 10000}))
        .await
        .unwrap();
    let err = k8s.probe().await.unwrap_err();
    assert_eq!(err.class, ErrorClass::Timeout, "{err}");

    proxy.set(json!({"mode": "none"})).await.unwrap();
    k8s.probe().await.unwrap();
    assert!(proxy.hits().await.unwrap() == 0);
}
