//! `deploy`: a workload becomes a Deployment and a Service (or the workload's own raw
//! manifests), applied server-side so that repeating it changes nothing.
//!
//! Building the objects is pure ([`build`]); [`deploy`] only applies them.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{Deployment, DeploymentSpec};
use k8s_openapi::api::core::v1::{
    Container, ContainerPort, EnvVar, HTTPGetAction, PodSpec, PodTemplateSpec, Probe,
    ResourceRequirements, Service, ServicePort, ServiceSpec, TCPSocketAction,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use lifeboat_provider::{
    DeployRequest, DeploymentRef, Endpoint, ErrorClass, Generation, HealthCheck, Op, ProviderError,
    Run, WorkloadSpec, labels,
};
use serde_json::Value;

use crate::config::{KubernetesConfig, ServiceType};
use crate::handle::{self, ObjectKey};
use crate::{KubernetesProvider, classify, objects};

/// The annotation on a workload's Service that tells `inspect` which path to check
/// through it (inspect sees the handle, not the workload spec).
pub const HEALTH_PATH_ANNOTATION: &str = "lifeboat.dev/health-path";
/// The name of the container port and the Service port.
const PORT_NAME: &str = "serve";
/// The key of [`WorkloadSpec::extra`] holding raw manifests.
pub const MANIFESTS_KEY: &str = "manifests";

/// Applies the objects of `req` and returns their handle. Idempotent: the names derive
/// from (workload, generation) and apply converges on the same objects.
pub async fn deploy(
    provider: &KubernetesProvider,
    req: &DeployRequest,
) -> Result<DeploymentRef, ProviderError> {
    let invalid = |m: String| ProviderError::new(ErrorClass::InvalidRequest, Op::Deploy, m);
    let built = build(
        &req.workload,
        req.generation,
        &provider.namespace,
        &provider.config,
    )
    .map_err(invalid)?;
    let mut keys = Vec::with_capacity(built.objects.len());
    for (mut key, mut object) in built.objects {
        let kind = provider
            .kinds
            .resolve(&provider.client, &key.api_version, &key.kind)
            .await
            .map_err(|e| {
                let doing = format!("resolving kind {} of {}", key.kind, key.api_version);
                let err = classify::provider_error(Op::Deploy, &doing, e);
                // Discovery answers 404 for a group or kind the cluster does not serve:
                // the manifest cannot be applied here as written.
                if err.class == ErrorClass::NotFound {
                    ProviderError {
                        class: ErrorClass::InvalidRequest,
                        ..err
                    }
                } else {
                    err
                }
            })?;
        // Only namespaced objects carry a namespace; for the others it would be refused.
        if let Some(meta) = object.get_mut("metadata").and_then(Value::as_object_mut) {
            if kind.namespaced {
                meta.insert("namespace".into(), key.namespace.clone().into());
            } else {
                meta.remove("namespace");
                key.namespace = None;
            }
        }
        objects::apply(&provider.kinds, &provider.client, &key, &object)
            .await
            .map_err(|e| classify::provider_error(Op::Deploy, &format!("applying {key}"), e))?;
        keys.push(key);
    }
    Ok(DeploymentRef {
        workload: req.workload.name.clone(),
        generation: req.generation,
        handle: handle::encode(&keys),
        endpoint: built.endpoint,
    })
}

/// The objects of one deployment, in the order they are applied, and where it will
/// serve when that is known before it runs.
#[derive(Debug, Clone, PartialEq)]
pub struct Built {
    /// Each object with its identity.
    pub objects: Vec<(ObjectKey, Value)>,
    /// The in-cluster address of the Service, for a `ClusterIP` Service.
    pub endpoint: Option<Endpoint>,
}

/// The labels of every object of (workload, generation): the provider's extra labels,
/// then lifeboat's own, which win.
pub fn object_labels(
    config: &KubernetesConfig,
    workload: &str,
    generation: Generation,
) -> BTreeMap<String, String> {
    let mut out = config.labels.clone();
    out.extend(selector_labels(workload, generation));
    out.insert(labels::MANAGED.into(), "true".into());
    out
}

/// The labels that select the pods of one generation.
fn selector_labels(workload: &str, generation: Generation) -> BTreeMap<String, String> {
    BTreeMap::from([
        (labels::WORKLOAD.to_owned(), workload.to_owned()),
        (labels::GENERATION.to_owned(), generation.to_string()),
    ])
}

/// Builds the objects for a workload at a generation. Pure. Errors are messages for an
/// `InvalidRequest`.
pub fn build(
    spec: &WorkloadSpec,
    generation: Generation,
    namespace: &str,
    config: &KubernetesConfig,
) -> Result<Built, String> {
    if let Some(problem) = handle::invalid_workload_name(&spec.name) {
        return Err(problem);
    }
    match spec.extra.get(MANIFESTS_KEY) {
        Some(manifests) => from_manifests(spec, generation, namespace, config, manifests),
        None => standard(spec, generation, namespace, config),
    }
}

fn standard(
    spec: &WorkloadSpec,
    generation: Generation,
    namespace: &str,
    config: &KubernetesConfig,
) -> Result<Built, String> {
    let (image, command) = match &spec.run {
        Run::Image { image, command } => (image.clone(), command.clone()),
        Run::Command { .. } => {
            return Err(format!(
                "workload {} is a host command; a Kubernetes provider runs container images \
                 (give it an image, or raw manifests)",
                spec.name
            ));
        }
    };
    let name = handle::object_name(&spec.name, generation);
    let all_labels = object_labels(config, &spec.name, generation);
    let selector = selector_labels(&spec.name, generation);
    let meta = |annotations: Option<BTreeMap<String, String>>| ObjectMeta {
        name: Some(name.clone()),
        namespace: Some(namespace.to_owned()),
        labels: Some(all_labels.clone()),
        annotations,
        ..ObjectMeta::default()
    };

    let mut env: BTreeMap<String, String> = spec.env.clone();
    env.insert(labels::GENERATION_ENV.into(), generation.to_string());
    let mut requests = BTreeMap::new();
    if spec.resources.cpu_millis > 0 {
        requests.insert(
            "cpu".into(),
            Quantity(format!("{}m", spec.resources.cpu_millis)),
        );
    }
    if spec.resources.memory_mib > 0 {
        requests.insert(
            "memory".into(),
            Quantity(format!("{}Mi", spec.resources.memory_mib)),
        );
    }
    let readiness = match (&spec.health, spec.port) {
        (Some(check), Some(port)) => Some(readiness_probe(check, port)),
        _ => None,
    };
    let container = Container {
        name: spec.name.clone(),
        image: Some(image),
        command: (!command.is_empty()).then_some(command),
        env: Some(
            env.into_iter()
                .map(|(name, value)| EnvVar {
                    name,
                    value: Some(value),
                    ..EnvVar::default()
                })
                .collect(),
        ),
        ports: spec.port.map(|port| {
            vec![ContainerPort {
                name: Some(PORT_NAME.into()),
                container_port: i32::from(port),
                ..ContainerPort::default()
            }]
        }),
        resources: (!requests.is_empty()).then(|| ResourceRequirements {
            requests: Some(requests),
            ..ResourceRequirements::default()
        }),
        readiness_probe: readiness,
        ..Container::default()
    };
    let deployment = Deployment {
        metadata: meta(None),
        spec: DeploymentSpec {
            replicas: Some(i32::try_from(spec.replicas).unwrap_or(i32::MAX)),
            selector: LabelSelector {
                match_labels: Some(selector.clone()),
                ..LabelSelector::default()
            },
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(all_labels.clone()),
                    ..ObjectMeta::default()
                }),
                spec: Some(PodSpec {
                    containers: vec![container],
                    ..PodSpec::default()
                }),
            },
            ..DeploymentSpec::default()
        },
        status: None,
    };
    let key = |api_version: &str, kind: &str| ObjectKey {
        api_version: api_version.into(),
        kind: kind.into(),
        namespace: Some(namespace.to_owned()),
        name: name.clone(),
    };
    let mut objects = vec![(key("apps/v1", "Deployment"), to_json(&deployment)?)];

    let mut endpoint = None;
    if let Some(port) = spec.port {
        let annotations = match &spec.health {
            Some(HealthCheck::Http { path }) => Some(BTreeMap::from([(
                HEALTH_PATH_ANNOTATION.to_owned(),
                path.clone(),
            )])),
            _ => None,
        };
        let service = Service {
            metadata: meta(annotations),
            spec: Some(ServiceSpec {
                type_: Some(config.service_type.as_str().into()),
                selector: Some(selector),
                ports: Some(vec![ServicePort {
                    name: Some(PORT_NAME.into()),
                    port: i32::from(port),
                    target_port: Some(IntOrString::Int(i32::from(port))),
                    ..ServicePort::default()
                }]),
                ..ServiceSpec::default()
            }),
            status: None,
        };
        objects.push((key("v1", "Service"), to_json(&service)?));
        if config.service_type == ServiceType::ClusterIP {
            endpoint = Some(Endpoint {
                host: format!("{name}.{namespace}.svc"),
                port,
            });
        }
    }
    Ok(Built { objects, endpoint })
}

fn readiness_probe(check: &HealthCheck, port: u16) -> Probe {
    let port = IntOrString::Int(i32::from(port));
    match check {
        HealthCheck::Http { path } => Probe {
            http_get: Some(HTTPGetAction {
                path: Some(path.clone()),
                port,
                ..HTTPGetAction::default()
            }),
            period_seconds: Some(5),
            ..Probe::default()
        },
        HealthCheck::Tcp => Probe {
            tcp_socket: Some(TCPSocketAction {
                port,
                ..TCPSocketAction::default()
            }),
            period_seconds: Some(5),
            ..Probe::default()
        },
    }
}

fn to_json<T: serde::Serialize>(object: &T) -> Result<Value, String> {
    serde_json::to_value(object).map_err(|e| format!("serialising a manifest: {e}"))
}

/// Raw manifests are applied as given (their names are not suffixed with the generation,
/// so a newer generation takes the same objects over), with lifeboat's labels added and
/// `LIFEBOAT_GENERATION` set in every container of a pod template.
fn from_manifests(
    spec: &WorkloadSpec,
    generation: Generation,
    namespace: &str,
    config: &KubernetesConfig,
    manifests: &Value,
) -> Result<Built, String> {
    let list = manifests
        .as_array()
        .filter(|l| !l.is_empty())
        .ok_or_else(|| {
            format!(
                "workload {}: `manifests` must be a non-empty list of Kubernetes objects",
                spec.name
            )
        })?;
    let our_labels = object_labels(config, &spec.name, generation);
    let mut objects = Vec::with_capacity(list.len());
    for (i, manifest) in list.iter().enumerate() {
        let field = |f: &str| {
            manifest
                .get(f)
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
        };
        let (Some(api_version), Some(kind)) = (field("apiVersion"), field("kind")) else {
            return Err(format!(
                "workload {}: manifest #{i} needs apiVersion and kind",
                spec.name
            ));
        };
        let meta = manifest.get("metadata");
        let Some(name) = meta.and_then(|m| m.get("name")).and_then(Value::as_str) else {
            return Err(format!(
                "workload {}: manifest #{i} ({kind}) needs metadata.name",
                spec.name
            ));
        };
        let object_namespace = meta
            .and_then(|m| m.get("namespace"))
            .and_then(Value::as_str)
            .unwrap_or(namespace);
        // No real name holds these; refusing them keeps the handle unambiguous.
        let bad = |s: &str| s.contains([',', '/']);
        if api_version.contains(',') || bad(kind) || bad(name) || bad(object_namespace) {
            return Err(format!(
                "workload {}: manifest #{i} ({kind} {name:?}) has an invalid name",
                spec.name
            ));
        }
        let mut object = manifest.clone();
        let labels_map = object
            .as_object_mut()
            .and_then(|o| {
                o.entry("metadata")
                    .or_insert_with(|| Value::Object(Default::default()))
                    .as_object_mut()
            })
            .and_then(|m| {
                m.entry("labels")
                    .or_insert_with(|| Value::Object(Default::default()))
                    .as_object_mut()
            })
            .ok_or_else(|| {
                format!(
                    "workload {}: manifest #{i} ({kind}) has a malformed metadata",
                    spec.name
                )
            })?;
        for (k, v) in &our_labels {
            labels_map.insert(k.clone(), v.clone().into());
        }
        set_generation_env(&mut object, generation);
        objects.push((
            ObjectKey {
                api_version: api_version.to_owned(),
                kind: kind.to_owned(),
                namespace: Some(object_namespace.to_owned()),
                name: name.to_owned(),
            },
            object,
        ));
    }
    Ok(Built {
        objects,
        endpoint: None,
    })
}

/// Sets `LIFEBOAT_GENERATION` in every container of the object's pod template (for
/// Deployments, StatefulSets, DaemonSets, Jobs); other objects are left alone.
fn set_generation_env(object: &mut Value, generation: Generation) {
    let Some(containers) = object
        .pointer_mut("/spec/template/spec/containers")
        .and_then(Value::as_array_mut)
    else {
        return;
    };
    for container in containers {
        let Some(c) = container.as_object_mut() else {
            continue;
        };
        let env = c.entry("env").or_insert_with(|| Value::Array(Vec::new()));
        if let Some(env) = env.as_array_mut() {
            env.retain(|e| e.get("name").and_then(Value::as_str) != Some(labels::GENERATION_ENV));
            env.push(serde_json::json!({"name": labels::GENERATION_ENV, "value": generation.to_string()}));
        }
    }
}

#[cfg(test)]
#[path = "deploy_tests.rs"]
mod tests;
