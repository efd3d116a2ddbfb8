//! `inspect`: the rollout status of a deployment's objects, then its health check through
//! its Service.
//!
//! The rollout verdict ([`rollout`], [`combine`]) is pure: it reads the fields a
//! Deployment, StatefulSet or DaemonSet controller writes (`observedGeneration`,
//! updated/available replicas, conditions). Pods are read too, only to spot the waits that
//! never end on their own (an image that cannot be pulled, a crash loop).

use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, DynamicObject, ListParams};
use lifeboat_provider::{
    DeploymentRef, DeploymentState, Endpoint, ErrorClass, Op, Owner, ProviderError, labels,
};
use serde_json::Value;

use crate::deploy::HEALTH_PATH_ANNOTATION;
use crate::handle::{self, ObjectKey};
use crate::{KubernetesProvider, classify, objects};

/// How far one workload object's rollout has come.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rollout {
    /// Nothing serves yet.
    Pending(String),
    /// Some replicas serve, not all of the current spec.
    Running(String),
    /// Every desired replica of the current spec is available.
    Ready,
    /// It will not get there without intervention.
    Failed(String),
}

impl Rollout {
    fn rank(&self) -> u8 {
        match self {
            Rollout::Ready => 0,
            Rollout::Running(_) => 1,
            Rollout::Pending(_) => 2,
            Rollout::Failed(_) => 3,
        }
    }
}

/// The worst of several rollouts (`Ready` when there are none: a deployment of plain
/// objects such as ConfigMaps is ready once they exist).
pub fn combine(rollouts: impl IntoIterator<Item = Rollout>) -> Rollout {
    rollouts
        .into_iter()
        .max_by_key(Rollout::rank)
        .unwrap_or(Rollout::Ready)
}

/// The kinds whose rollout [`rollout`] understands.
pub fn has_rollout(kind: &str) -> bool {
    matches!(kind, "Deployment" | "StatefulSet" | "DaemonSet")
}

/// The rollout of a Deployment, StatefulSet or DaemonSet, from the object as read.
pub fn rollout(kind: &str, object: &Value) -> Rollout {
    let int = |path: &str| object.pointer(path).and_then(Value::as_i64);
    for condition in object
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let field = |f: &str| condition.get(f).and_then(Value::as_str).unwrap_or("");
        let message = format!("{}: {}", field("reason"), field("message"));
        if field("type") == "Progressing"
            && field("status") == "False"
            && field("reason") == "ProgressDeadlineExceeded"
        {
            return Rollout::Failed(message);
        }
        if field("type") == "ReplicaFailure" && field("status") == "True" {
            return Rollout::Failed(message);
        }
    }
    let generation = int("/metadata/generation").unwrap_or(0);
    let observed = int("/status/observedGeneration").unwrap_or(0);
    if observed < generation || object.get("status").is_none() {
        return Rollout::Pending(format!(
            "the {kind} controller has not seen the current spec yet"
        ));
    }
    let (desired, updated, available) = if kind == "DaemonSet" {
        (
            int("/status/desiredNumberScheduled").unwrap_or(0),
            int("/status/updatedNumberScheduled").unwrap_or(0),
            int("/status/numberAvailable").unwrap_or(0),
        )
    } else {
        let available = int("/status/availableReplicas")
            .or_else(|| int("/status/readyReplicas"))
            .unwrap_or(0);
        (
            int("/spec/replicas").unwrap_or(1),
            int("/status/updatedReplicas").unwrap_or(0),
            available,
        )
    };
    if desired <= 0 || (updated >= desired && available >= desired) {
        Rollout::Ready
    } else if available > 0 {
        Rollout::Running(format!(
            "{available} of {desired} replicas available, {updated} updated"
        ))
    } else {
        Rollout::Pending(format!("0 of {desired} replicas available"))
    }
}

/// Container waits that do not end without a change (a new image, a fixed config).
const STUCK_REASONS: [&str; 6] = [
    "ErrImagePull",
    "ImagePullBackOff",
    "InvalidImageName",
    "CreateContainerConfigError",
    "CreateContainerError",
    "CrashLoopBackOff",
];

/// The first pod container stuck in a wait of [`STUCK_REASONS`], as a reason.
pub fn stuck_pod(pods: &[Pod]) -> Option<String> {
    pods.iter().find_map(|pod| {
        let statuses = pod.status.as_ref()?.container_statuses.as_ref()?;
        statuses.iter().find_map(|c| {
            let waiting = c.state.as_ref()?.waiting.as_ref()?;
            let reason = waiting.reason.as_deref()?;
            STUCK_REASONS.contains(&reason).then(|| {
                format!(
                    "pod {} container {}: {reason}: {}",
                    pod.metadata.name.as_deref().unwrap_or("?"),
                    c.name,
                    waiting.message.as_deref().unwrap_or("")
                )
            })
        })
    })
}

/// Reads every object of the handle and returns the deployment's state.
pub async fn inspect(
    provider: &KubernetesProvider,
    dep: &DeploymentRef,
) -> Result<DeploymentState, ProviderError> {
    let keys = handle::decode(&dep.handle).ok_or_else(|| {
        ProviderError::new(
            ErrorClass::NotFound,
            Op::Inspect,
            format!("{:?} is not a Kubernetes deployment handle", dep.handle),
        )
    })?;
    let mut present = Vec::new();
    let mut missing = Vec::new();
    for key in &keys {
        let object = objects::get(&provider.kinds, &provider.client, key)
            .await
            .map_err(|e| classify::provider_error(Op::Inspect, &format!("reading {key}"), e))?;
        match object.filter(|o| belongs(o, dep)) {
            Some(o) => present.push((key, o)),
            None => missing.push(key),
        }
    }
    if present.is_empty() {
        return Ok(DeploymentState::Gone);
    }
    if let Some(key) = missing.first() {
        return Ok(DeploymentState::Failed {
            reason: format!("{key} no longer exists"),
        });
    }
    let mut rollouts = Vec::new();
    for (key, object) in &present {
        if has_rollout(&key.kind) {
            let value = serde_json::to_value(object).unwrap_or(Value::Null);
            rollouts.push(rollout(&key.kind, &value));
        }
    }
    if let Some(reason) = pods_stuck(provider, dep).await? {
        rollouts.push(Rollout::Failed(reason));
    }
    let service = present
        .iter()
        .find(|(k, _)| k.kind == "Service" && k.api_version == "v1");
    let endpoint = service.and_then(|(k, o)| service_endpoint(k, o));
    Ok(match combine(rollouts) {
        Rollout::Failed(reason) => DeploymentState::Failed { reason },
        Rollout::Pending(detail) => DeploymentState::Pending { detail },
        Rollout::Running(_) => DeploymentState::Running { endpoint },
        Rollout::Ready => {
            let health = match service {
                Some((key, object)) => check_through_service(provider, key, object).await?,
                None => Health::Unchecked,
            };
            match health {
                Health::Failing(why) => {
                    tracing::debug!(workload = %dep.workload, %why, "health check through the Service fails");
                    DeploymentState::Running { endpoint }
                }
                Health::Passing | Health::Unchecked => DeploymentState::Healthy {
                    // A workload without a Service serves no port; it is named by its
                    // first object.
                    endpoint: endpoint.unwrap_or_else(|| Endpoint {
                        host: format!(
                            "{}.{}",
                            keys[0].name,
                            keys[0].namespace.as_deref().unwrap_or("")
                        ),
                        port: 0,
                    }),
                },
            }
        }
    })
}

/// An object still belongs to this deployment while it carries its generation (raw
/// manifests keep their names, so a newer generation takes them over) and its owner (an
/// object of another owner under this handle is, for this owner, gone), and is not
/// being deleted.
fn belongs(object: &DynamicObject, dep: &DeploymentRef) -> bool {
    let labels = object.metadata.labels.as_ref();
    let label = |k: &str| labels.and_then(|l| l.get(k)).map(String::as_str);
    object.metadata.deletion_timestamp.is_none()
        && label(labels::GENERATION) == Some(dep.generation.to_string().as_str())
        && Owner::from_labels(label).as_ref() == dep.owner.as_ref()
}

async fn pods_stuck(
    provider: &KubernetesProvider,
    dep: &DeploymentRef,
) -> Result<Option<String>, ProviderError> {
    let pods: Api<Pod> = Api::namespaced(provider.client.clone(), &provider.namespace);
    // The owner too: another owner's copy of the same generation may share the
    // namespace, and its stuck pods say nothing about this copy.
    let selector = format!(
        "{}={},{}={},{}",
        labels::WORKLOAD,
        dep.workload,
        labels::GENERATION,
        dep.generation,
        crate::list::owner_selector(dep.owner.as_ref())
    );
    match pods.list(&ListParams::default().labels(&selector)).await {
        Ok(list) => Ok(stuck_pod(&list.items)),
        // Reading pods is a refinement; least-privilege RBAC may leave it out.
        Err(kube::Error::Api(s)) if s.code == 403 || s.code == 404 => Ok(None),
        Err(e) => Err(classify::provider_error(Op::Inspect, "listing pods", e)),
    }
}

/// Where a Service serves: the load balancer's address once it has one, else its
/// in-cluster name.
fn service_endpoint(key: &ObjectKey, service: &DynamicObject) -> Option<Endpoint> {
    let port = service
        .data
        .pointer("/spec/ports/0/port")
        .and_then(Value::as_u64)
        .and_then(|p| u16::try_from(p).ok())?;
    let ingress = service.data.pointer("/status/loadBalancer/ingress/0");
    let external = ingress.and_then(|i| {
        i.get("ip")
            .or_else(|| i.get("hostname"))
            .and_then(Value::as_str)
    });
    let host = match external {
        Some(h) => h.to_owned(),
        None => format!(
            "{}.{}.svc",
            key.name,
            key.namespace.as_deref().unwrap_or("default")
        ),
    };
    Some(Endpoint { host, port })
}

/// The outcome of the health check through the Service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Health {
    /// The workload answered 2xx.
    Passing,
    /// The workload answered, but not 2xx.
    Failing(String),
    /// No HTTP check, or the API server would not proxy to it (no proxy permission, no
    /// proxy support, no ready endpoint yet). The rollout's readiness probes, which run
    /// the same check from the kubelet, then stand for it.
    Unchecked,
}

/// Classifies a proxied answer: 2xx is the workload passing; a Kubernetes `Status` body
/// is the API server refusing to proxy; anything else is the workload failing.
pub fn proxied_health(status: u16, body: &[u8]) -> Health {
    if (200..300).contains(&status) {
        return Health::Passing;
    }
    let from_api_server = serde_json::from_slice::<Value>(body)
        .ok()
        .is_some_and(|v| v.get("kind").and_then(Value::as_str) == Some("Status"));
    if from_api_server {
        Health::Unchecked
    } else {
        Health::Failing(format!("HTTP {status}"))
    }
}

/// GETs the health path through the API server's service proxy
/// (`/api/v1/namespaces/NS/services/NAME:PORT/proxy/PATH`), which reaches the Service
/// from outside the cluster too.
async fn check_through_service(
    provider: &KubernetesProvider,
    key: &ObjectKey,
    service: &DynamicObject,
) -> Result<Health, ProviderError> {
    let path = service
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(HEALTH_PATH_ANNOTATION));
    let port = service
        .data
        .pointer("/spec/ports/0/port")
        .and_then(Value::as_u64);
    let (Some(path), Some(port)) = (path, port) else {
        return Ok(Health::Unchecked);
    };
    let uri = format!(
        "/api/v1/namespaces/{}/services/{}:{port}/proxy/{}",
        key.namespace.as_deref().unwrap_or("default"),
        key.name,
        path.trim_start_matches('/')
    );
    let request = http::Request::get(uri)
        .body(kube::client::Body::empty())
        .map_err(|e| {
            ProviderError::new(
                ErrorClass::Internal,
                Op::Inspect,
                format!("building the health check: {e}"),
            )
        })?;
    let response = provider.client.send(request).await.map_err(|e| {
        classify::provider_error(Op::Inspect, "health check through the Service", e)
    })?;
    let status = response.status().as_u16();
    let body = response
        .into_body()
        .collect_bytes()
        .await
        .unwrap_or_default();
    Ok(proxied_health(status, &body))
}

#[cfg(test)]
#[path = "inspect_tests.rs"]
mod tests;
