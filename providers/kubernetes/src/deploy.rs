//! `deploy`: a workload becomes a Deployment and a Service (or the workload's own raw
//! manifests), applied server-side so that repeating it changes nothing.
//!
//! Building the objects is pure ([`build`]); [`deploy`] only applies them, and never
//! over an object another owner holds: an object of the same name is read first, and
//! applied over only while its owner labels say the request's owner.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{Deployment, DeploymentSpec};
use k8s_openapi::api::core::v1::{
    Container, ContainerPort, EnvVar, HTTPGetAction, PodSpec, PodTemplateSpec, Probe,
    ResourceRequirements, Service, ServicePort, ServiceSpec, TCPSocketAction,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::api::DynamicObject;
use lifeboat_provider::{
    DeployRequest, DeploymentRef, Endpoint, ErrorClass, Generation, HealthCheck, Op, Owner,
    ProviderError, Run, WorkloadSpec, labels,
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
/// The label that tells one copy's pods from every other's: its value is the copy's
/// object name. The Deployment's and the Service's selectors use it, because workload
/// and generation alone would also select another owner's copy of the same generation
/// in the namespace (a Service would send production traffic to a drill's pods), and a
/// selector cannot say "without the drill label".
pub const COPY_LABEL: &str = "lifeboat.dev/copy";
/// The well-known label naming the tool that manages an object, for people and tools
/// that look at the cluster rather than at lifeboat's own labels.
const MANAGED_BY_LABEL: &str = "app.kubernetes.io/managed-by";
/// How often an apply is tried again when the object changed between read and apply.
const ATTEMPTS: usize = 3;

/// Applies the objects of `req` and returns their handle. Idempotent: the names derive
/// from (workload, generation, owner) and apply converges on the same objects. An object
/// of that name that another owner holds is refused as `InvalidRequest`, not taken over.
pub async fn deploy(
    provider: &KubernetesProvider,
    req: &DeployRequest,
) -> Result<DeploymentRef, ProviderError> {
    let invalid = |m: String| ProviderError::new(ErrorClass::InvalidRequest, Op::Deploy, m);
    let built = build(
        &req.workload,
        req.generation,
        &req.owner,
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
        apply_owned(provider, req, &key, &object).await?;
        keys.push(key);
    }
    Ok(DeploymentRef {
        workload: req.workload.name.clone(),
        generation: req.generation,
        handle: handle::encode(&keys),
        endpoint: built.endpoint,
        owner: Some(req.owner.clone()),
    })
}

/// Applies one object unless an object of its name is held by another owner than
/// `req.owner`. An object that exists is applied over on condition that it is still the
/// version just checked (`metadata.resourceVersion` in the applied manifest is a
/// precondition), so one deleted and recreated by another owner in between is read and
/// checked again rather than overwritten. A missing object is created by the apply; two
/// owners creating the same name at the same instant is the one race left, and only raw
/// manifests can meet it (generated names differ per owner).
async fn apply_owned(
    provider: &KubernetesProvider,
    req: &DeployRequest,
    key: &ObjectKey,
    object: &Value,
) -> Result<(), ProviderError> {
    let fail = |doing: &str, e| classify::provider_error(Op::Deploy, &format!("{doing} {key}"), e);
    for _ in 0..ATTEMPTS {
        let existing = objects::get(&provider.kinds, &provider.client, key)
            .await
            .map_err(|e| fail("reading", e))?;
        let mut desired = object.clone();
        if let Some(existing) = &existing {
            // An apply would change the doomed object, and the copy would vanish with it
            // once the garbage collector is done; the server refuses to create the name
            // again until then.
            if existing.metadata.deletion_timestamp.is_some() {
                return Err(ProviderError::new(
                    ErrorClass::Unavailable,
                    Op::Deploy,
                    format!("{key} is still being deleted; try again once it is gone"),
                ));
            }
            if let Some(why) = foreign(existing, &req.owner) {
                return Err(ProviderError::new(
                    ErrorClass::InvalidRequest,
                    Op::Deploy,
                    format!(
                        "{key} exists and {why}: deploying {} generation {} for {} would \
                         take it over (raw manifests keep their names, so owners that share \
                         them need a namespace each)",
                        req.workload.name, req.generation, req.owner
                    ),
                ));
            }
            let version = existing.metadata.resource_version.clone();
            if let (Some(version), Some(meta)) = (
                version,
                desired.get_mut("metadata").and_then(Value::as_object_mut),
            ) {
                meta.insert("resourceVersion".into(), version.into());
            }
        }
        match objects::apply(&provider.kinds, &provider.client, key, &desired).await {
            Ok(_) => return Ok(()),
            // The precondition failed (409), or the object went away meanwhile (a real
            // server will not create with a resourceVersion): read it again.
            Err(e)
                if existing.is_some()
                    && (classify::is_conflict(&e) || classify::is_not_found(&e)) =>
            {
                continue;
            }
            Err(e) => return Err(fail("applying", e)),
        }
    }
    Err(ProviderError::new(
        ErrorClass::Internal,
        Op::Deploy,
        format!("{key} kept changing while being applied; try again"),
    ))
}

/// Why applying over `existing` would take over an object that `owner` does not hold,
/// if it would. An object labelled with `owner` is its own. One with no owner label
/// (made before owners existed, or not by lifeboat at all, which raw manifests may take
/// over as they always could) an installation may adopt; a drill never changes anything
/// but its own copies. Pure.
pub fn foreign(existing: &DynamicObject, owner: &Owner) -> Option<String> {
    let labels = existing.metadata.labels.as_ref();
    let found = Owner::from_labels(|k| labels.and_then(|l| l.get(k)).map(String::as_str));
    match found {
        Some(found) if &found == owner => None,
        Some(found) => Some(format!("belongs to {found}")),
        None if !owner.is_drill() => None,
        None => Some(
            "carries no owner label (it was made before owners existed, or not by lifeboat), \
             and a drill changes only its own copies"
                .to_owned(),
        ),
    }
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

/// The labels of every object of (workload, generation, owner): the provider's extra
/// labels, then lifeboat's own, which win (an extra label cannot pass an object off as
/// another owner's).
pub fn object_labels(
    config: &KubernetesConfig,
    workload: &str,
    generation: Generation,
    owner: &Owner,
) -> BTreeMap<String, String> {
    let mut out = config.labels.clone();
    // Production copies carry no drill label at all; an extra label must not make one.
    out.remove(labels::DRILL);
    out.insert(labels::WORKLOAD.to_owned(), workload.to_owned());
    out.insert(labels::GENERATION.to_owned(), generation.to_string());
    out.insert(labels::MANAGED.into(), "true".into());
    out.insert(MANAGED_BY_LABEL.into(), "lifeboat".into());
    for (key, value) in owner.labels() {
        out.insert(key.to_owned(), value);
    }
    out
}

/// The labels that select the pods of one copy: workload and generation for people
/// reading them, [`COPY_LABEL`] to keep other owners' copies out.
fn selector_labels(workload: &str, generation: Generation, name: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        (labels::WORKLOAD.to_owned(), workload.to_owned()),
        (labels::GENERATION.to_owned(), generation.to_string()),
        (COPY_LABEL.to_owned(), name.to_owned()),
    ])
}

/// Why an owner cannot label Kubernetes objects, if it cannot: its ids go into label
/// values (and selectors) unchanged.
fn invalid_owner(owner: &Owner) -> Option<String> {
    [Some(&owner.installation), owner.drill.as_ref()]
        .into_iter()
        .flatten()
        .find_map(|id| Owner::check_id(id).err())
        .map(|why| format!("owner {owner} cannot label Kubernetes objects: {why}"))
}

/// Builds the objects for one owner's copy of a workload at a generation. Pure. Errors
/// are messages for an `InvalidRequest`.
pub fn build(
    spec: &WorkloadSpec,
    generation: Generation,
    owner: &Owner,
    namespace: &str,
    config: &KubernetesConfig,
) -> Result<Built, String> {
    if let Some(problem) = handle::invalid_workload_name(&spec.name) {
        return Err(problem);
    }
    if let Some(problem) = invalid_owner(owner) {
        return Err(problem);
    }
    let labels = object_labels(config, &spec.name, generation, owner);
    match spec.extra.get(MANIFESTS_KEY) {
        Some(manifests) => from_manifests(spec, generation, namespace, &labels, manifests),
        None => standard(spec, generation, owner, namespace, config, labels),
    }
}

fn standard(
    spec: &WorkloadSpec,
    generation: Generation,
    owner: &Owner,
    namespace: &str,
    config: &KubernetesConfig,
    mut all_labels: BTreeMap<String, String>,
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
    let name = handle::object_name(&spec.name, generation, owner);
    let selector = selector_labels(&spec.name, generation, &name);
    all_labels.extend(selector.clone());
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

/// Raw manifests are applied as given (their names are not suffixed with the generation
/// or the owner, so a newer generation takes the same objects over, and another owner's
/// deploy of them is refused), with `our_labels` added and `LIFEBOAT_GENERATION` set in
/// every container of a pod template.
fn from_manifests(
    spec: &WorkloadSpec,
    generation: Generation,
    namespace: &str,
    our_labels: &BTreeMap<String, String>,
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
        for (k, v) in our_labels {
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
