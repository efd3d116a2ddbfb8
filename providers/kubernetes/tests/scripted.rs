//! The adapter through a real `kube::Client` whose HTTP service is scripted with
//! `tower-test`, for what the real API server in `api_server.rs` cannot be made to do on
//! demand: answer 409 to a delete or an apply whose precondition stopped holding in the
//! instant between read and write, proxy to a workload that answers (it refuses loopback
//! endpoints, and no pods run there), report a pod that cannot pull its image (no kubelet),
//! and give each error status exactly as the client receives it (`api_server.rs` injects
//! 429, 503, resets and hangs through a proxy in front of the real server). Each script is the request sequence the adapter must make, with
//! the answers a real API server gives.

use std::collections::BTreeMap;

use http::{Request, Response};
use kube::client::Body;
use lifeboat_provider::{
    DeployRequest, DeploymentRef, DeploymentState, ErrorClass, Generation, HealthCheck, Owner,
    Provider, Resources, Run, WorkloadSpec,
};
use lifeboat_provider_kubernetes::{KubernetesConfig, KubernetesProvider};
use serde_json::{Value, json};
use tokio::task::JoinHandle;

/// One request the adapter must make (method and path) and the answer it gets.
struct Exchange {
    method: &'static str,
    path: String,
    status: u16,
    body: Vec<u8>,
}

fn exchange(method: &'static str, path: &str, status: u16, body: Value) -> Exchange {
    Exchange {
        method,
        path: path.to_owned(),
        status,
        body: body.to_string().into_bytes(),
    }
}

/// A request as the scripted server saw it.
#[derive(Debug)]
struct Seen {
    query: String,
    body: Value,
}

/// A provider whose client talks to the script; the task returns what it saw, and fails
/// when a request differs from the script.
fn scripted(script: Vec<Exchange>) -> (KubernetesProvider, JoinHandle<Vec<Seen>>) {
    let (service, mut handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let task = tokio::spawn(async move {
        let mut seen = Vec::new();
        for step in script {
            let (request, reply) = handle
                .next_request()
                .await
                .expect("the adapter stopped before the script ended");
            assert_eq!(
                (request.method().as_str(), request.uri().path()),
                (step.method, step.path.as_str()),
                "unexpected request {}",
                request.uri()
            );
            let query = request.uri().query().unwrap_or("").to_owned();
            let bytes = request.into_body().collect_bytes().await.unwrap();
            let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
            seen.push(Seen { query, body });
            reply.send_response(
                Response::builder()
                    .status(step.status)
                    .header(http::header::CONTENT_TYPE, "application/json")
                    .body(Body::from(step.body))
                    .unwrap(),
            );
        }
        seen
    });
    let client = kube::Client::new(service, "prod");
    let mut config = KubernetesConfig::from_kubeconfig("/unused");
    config.capacity = Some(lifeboat_provider::Capacity::default());
    (
        KubernetesProvider::with_client("scripted", config, client, "prod"),
        task,
    )
}

fn status(code: u16, reason: &str, message: &str) -> Value {
    json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
           "message": message, "reason": reason, "code": code})
}

fn workload() -> WorkloadSpec {
    WorkloadSpec {
        name: "api".into(),
        run: Run::Image {
            image: "ghcr.io/acme/api:1.4".into(),
            command: vec![],
        },
        env: BTreeMap::new(),
        port: Some(8080),
        resources: Resources::default(),
        replicas: 2,
        health: Some(HealthCheck::Http {
            path: "/healthz".into(),
        }),
        extra: BTreeMap::new(),
    }
}

fn owner() -> Owner {
    Owner::installation("test")
}

fn request() -> DeployRequest {
    DeployRequest {
        workload: workload(),
        generation: Generation(1),
        owner: owner(),
    }
}

/// The labels of [`owner`]'s objects of generation `generation`, as the server holds them.
fn labels(generation: u64) -> Value {
    json!({"lifeboat.dev/managed": "true", "lifeboat.dev/workload": "api",
           "lifeboat.dev/generation": generation.to_string(), "lifeboat.dev/owner": "test",
           "lifeboat.dev/copy": NAME, "app.kubernetes.io/managed-by": "lifeboat"})
}

fn deployment(resource_version: &str, available: u64) -> Value {
    json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": NAME, "namespace": "prod", "uid": "6b0c7c36-1111-4d5e-9d0e-3f7f1b2a9c01",
                     "resourceVersion": resource_version, "generation": 1, "labels": labels(1)},
        "spec": {"replicas": 2, "selector": {"matchLabels": {}}, "template": {}},
        "status": {"observedGeneration": 1, "replicas": 2, "updatedReplicas": 2,
                   "availableReplicas": available}})
}

fn service() -> Value {
    json!({"apiVersion": "v1", "kind": "Service",
        "metadata": {"name": NAME, "namespace": "prod", "uid": "6b0c7c36-2222-4d5e-9d0e-3f7f1b2a9c01",
                     "resourceVersion": "12", "labels": labels(1),
                     "annotations": {"lifeboat.dev/health-path": "/healthz"}},
        "spec": {"type": "ClusterIP", "clusterIP": "10.43.12.7",
                 "ports": [{"name": "serve", "port": 8080, "targetPort": 8080, "protocol": "TCP"}]}})
}

fn dep() -> DeploymentRef {
    DeploymentRef {
        workload: "api".into(),
        generation: Generation(1),
        handle: format!("apps/v1/Deployment/prod/{NAME},v1/Service/prod/{NAME}"),
        endpoint: None,
        owner: Some(owner()),
    }
}

/// The object name of [`owner`]'s copy of generation 1, its discriminator written out:
/// names of objects already in clusters must not change between versions.
const NAME: &str = "api-g1-197c2b25";
const DEPLOYMENT: &str = "/apis/apps/v1/namespaces/prod/deployments/api-g1-197c2b25";
const SERVICE: &str = "/api/v1/namespaces/prod/services/api-g1-197c2b25";
const PODS: &str = "/api/v1/namespaces/prod/pods";

#[tokio::test]
async fn an_apply_over_an_existing_object_is_conditional_and_read_again_on_conflict() {
    // The object changes between the read and the apply (a controller writing its
    // status, or another owner recreating it): the apply's resourceVersion no longer
    // holds, the real server answers 409, and the adapter checks the owner again.
    let (k8s, script) = scripted(vec![
        exchange("GET", DEPLOYMENT, 200, deployment("41", 0)),
        exchange(
            "PATCH",
            DEPLOYMENT,
            409,
            status(
                409,
                "Conflict",
                r#"Operation cannot be fulfilled on deployments.apps "api-g1-197c2b25": the object has been modified; please apply your changes to the latest version and try again"#,
            ),
        ),
        exchange("GET", DEPLOYMENT, 200, deployment("42", 1)),
        exchange("PATCH", DEPLOYMENT, 200, deployment("43", 1)),
        exchange("GET", SERVICE, 200, service()),
        exchange("PATCH", SERVICE, 200, service()),
    ]);
    assert_eq!(k8s.deploy(&request()).await.unwrap().handle, dep().handle);
    let seen = script.await.unwrap();
    assert_eq!(seen[1].body["metadata"]["resourceVersion"], "41");
    assert_eq!(seen[3].body["metadata"]["resourceVersion"], "42");
    assert_eq!(seen[5].body["metadata"]["resourceVersion"], "12");
}

#[tokio::test]
async fn api_errors_through_the_client_are_classified() {
    // `/version` is often open to anyone; the namespaced list is the authenticated read
    // that meets a rejection.
    let cases = [
        (
            401,
            "Unauthorized",
            "Unauthorized",
            ErrorClass::CredentialsRejected,
        ),
        (
            403,
            "Forbidden",
            r#"deployments.apps is forbidden: User "system:serviceaccount:ops:lifeboat" cannot list resource "deployments" in API group "apps" in the namespace "prod""#,
            ErrorClass::PermissionDenied,
        ),
        (
            429,
            "TooManyRequests",
            "Too many requests, please try again later.",
            ErrorClass::Throttled,
        ),
        (
            500,
            "InternalError",
            "Internal error occurred: etcdserver: request timed out",
            ErrorClass::Unavailable,
        ),
        (
            503,
            "ServiceUnavailable",
            "the server is currently unable to handle the request",
            ErrorClass::Unavailable,
        ),
        (
            504,
            "Timeout",
            "the server was unable to return a response in the time allotted",
            ErrorClass::Timeout,
        ),
    ];
    for (code, reason, message, class) in cases {
        let (k8s, script) = scripted(vec![
            exchange(
                "GET",
                "/version",
                200,
                json!({"major": "1", "minor": "37", "gitVersion": "v1.37.0"}),
            ),
            exchange(
                "GET",
                "/apis/apps/v1/namespaces/prod/deployments",
                code,
                status(code, reason, message),
            ),
        ]);
        let err = k8s.probe().await.unwrap_err();
        assert_eq!(err.class, class, "{code}: {err}");
        assert_eq!(
            err.code.as_deref(),
            Some(format!("{code} {reason}").as_str())
        );
        script.await.unwrap();
    }
}

#[tokio::test]
async fn a_delete_whose_precondition_fails_is_read_again_and_retried() {
    // A real server checks `preconditions.resourceVersion` and answers 409 Conflict when
    // the object changed since it was read; kmock ignores preconditions.
    let (k8s, script) = scripted(vec![
        exchange(
            "GET",
            SERVICE,
            404,
            status(404, "NotFound", r#"services "api-g1-197c2b25" not found"#),
        ),
        exchange("GET", DEPLOYMENT, 200, deployment("41", 2)),
        exchange(
            "DELETE",
            DEPLOYMENT,
            409,
            status(
                409,
                "Conflict",
                r#"Operation cannot be fulfilled on deployments.apps "api-g1-197c2b25": the ResourceVersion in the precondition (41) does not match the ResourceVersion in record (42). The object might have been modified"#,
            ),
        ),
        exchange("GET", DEPLOYMENT, 200, deployment("42", 2)),
        exchange("DELETE", DEPLOYMENT, 200, deployment("43", 2)),
    ]);
    k8s.retire(&dep()).await.unwrap();
    let seen = script.await.unwrap();
    assert_eq!(seen[2].body["propagationPolicy"], "Foreground");
    assert_eq!(seen[2].body["preconditions"]["resourceVersion"], "41");
    assert_eq!(seen[4].body["preconditions"]["resourceVersion"], "42");
}

#[tokio::test]
async fn the_health_check_goes_through_the_service_proxy() {
    let proxy = "/api/v1/namespaces/prod/services/api-g1-197c2b25:8080/proxy/healthz";
    let ready = || {
        vec![
            exchange("GET", DEPLOYMENT, 200, deployment("7", 2)),
            exchange("GET", SERVICE, 200, service()),
            exchange(
                "GET",
                PODS,
                200,
                json!({"kind": "PodList", "apiVersion": "v1", "metadata": {}, "items": []}),
            ),
        ]
    };

    let mut script = ready();
    script.push(Exchange {
        method: "GET",
        path: proxy.into(),
        status: 200,
        body: b"ok".to_vec(),
    });
    let (k8s, task) = scripted(script);
    match k8s.inspect(&dep()).await.unwrap() {
        DeploymentState::Healthy { endpoint } => {
            assert_eq!(
                (endpoint.host.as_str(), endpoint.port),
                ("api-g1-197c2b25.prod.svc", 8080)
            );
        }
        other => panic!("expected healthy, got {other:?}"),
    }
    task.await.unwrap();

    // The workload answers, but not 2xx: running, not healthy.
    let mut script = ready();
    script.push(Exchange {
        method: "GET",
        path: proxy.into(),
        status: 500,
        body: b"database unreachable".to_vec(),
    });
    let (k8s, task) = scripted(script);
    assert!(matches!(
        k8s.inspect(&dep()).await.unwrap(),
        DeploymentState::Running { endpoint: Some(_) }
    ));
    task.await.unwrap();
}

#[tokio::test]
async fn a_pod_that_cannot_pull_its_image_fails_the_deployment() {
    let pods = json!({"kind": "PodList", "apiVersion": "v1", "metadata": {}, "items": [{
        "metadata": {"name": "api-g1-197c2b25-7d4b9c-x2x9q", "namespace": "prod"},
        "status": {"phase": "Pending", "containerStatuses": [{
            "name": "api", "ready": false, "restartCount": 0, "image": "ghcr.io/acme/api:1.4", "imageID": "",
            "state": {"waiting": {"reason": "ImagePullBackOff",
                "message": "Back-off pulling image \"ghcr.io/acme/api:1.4\""}}}]}}]});
    let (k8s, task) = scripted(vec![
        exchange("GET", DEPLOYMENT, 200, deployment("7", 0)),
        exchange("GET", SERVICE, 200, service()),
        exchange("GET", PODS, 200, pods),
    ]);
    match k8s.inspect(&dep()).await.unwrap() {
        DeploymentState::Failed { reason } => {
            assert!(reason.contains("ImagePullBackOff"), "{reason}")
        }
        other => panic!("expected failed, got {other:?}"),
    }
    let seen = task.await.unwrap();
    // This owner's pods only: a drill's copy of the same generation may be stuck too.
    assert!(
        seen[2].query.contains(
            "labelSelector=lifeboat.dev%2Fworkload%3Dapi%2Clifeboat.dev%2Fgeneration%3D1\
             %2Clifeboat.dev%2Fowner%3Dtest%2C%21lifeboat.dev%2Fdrill"
        ),
        "{}",
        seen[2].query
    );
}
