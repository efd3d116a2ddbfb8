//! `probe`: is the cluster there, does it still accept our credentials, may we do what
//! lifeboat does, and how much can it hold.
//!
//! `GET /version` proves reachability; listing the managed Deployments of the namespace
//! is the authenticated read (clusters often serve `/version` to anyone, so it alone
//! says nothing about credentials); SelfSubjectAccessReviews for the verbs lifeboat uses
//! turn missing permissions into a degraded provider before a deploy fails on them.

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, SelfSubjectAccessReview, SelfSubjectAccessReviewSpec,
};
use k8s_openapi::api::core::v1::Node;
use kube::api::{Api, ListParams, PostParams};
use lifeboat_provider::{Capacity, Op, ProbeReport, ProviderError, labels};

use crate::quantity::{cpu_millis, memory_mib, parse};
use crate::{KubernetesProvider, classify};

/// The (verb, group, resource) triples lifeboat needs in its namespace.
pub const NEEDED: [(&str, &str, &str); 7] = [
    ("list", "apps", "deployments"),
    ("get", "apps", "deployments"),
    ("patch", "apps", "deployments"),
    ("delete", "apps", "deployments"),
    ("get", "", "services"),
    ("patch", "", "services"),
    ("delete", "", "services"),
];

/// Probes the cluster; see the module documentation for what each call proves.
pub async fn probe(provider: &KubernetesProvider) -> Result<ProbeReport, ProviderError> {
    let client = &provider.client;
    client
        .apiserver_version()
        .await
        .map_err(|e| classify::provider_error(Op::Probe, "GET /version", e))?;
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), &provider.namespace);
    deployments
        .list_metadata(
            &ListParams::default()
                .labels(&format!("{}=true", labels::MANAGED))
                .limit(1),
        )
        .await
        .map_err(|e| {
            classify::provider_error(
                Op::Probe,
                &format!("listing deployments in namespace {}", provider.namespace),
                e,
            )
        })?;
    let denied = denied_permissions(provider).await?;
    let capacity = match provider.config.capacity {
        Some(fixed) => Some(fixed),
        None => node_capacity(provider).await?,
    };
    Ok(ProbeReport {
        degraded: (!denied.is_empty()).then(|| {
            format!(
                "missing permissions in namespace {}: {}",
                provider.namespace,
                denied.join(", ")
            )
        }),
        capacity,
        lost: Vec::new(),
    })
}

/// The needed permissions the API server says we lack, as `verb resource.group`.
async fn denied_permissions(provider: &KubernetesProvider) -> Result<Vec<String>, ProviderError> {
    let reviews: Api<SelfSubjectAccessReview> = Api::all(provider.client.clone());
    let mut denied = Vec::new();
    for (verb, group, resource) in NEEDED {
        let review = SelfSubjectAccessReview {
            spec: SelfSubjectAccessReviewSpec {
                resource_attributes: Some(ResourceAttributes {
                    namespace: Some(provider.namespace.clone()),
                    verb: Some(verb.into()),
                    group: Some(group.into()),
                    resource: Some(resource.into()),
                    ..ResourceAttributes::default()
                }),
                ..SelfSubjectAccessReviewSpec::default()
            },
            ..SelfSubjectAccessReview::default()
        };
        match reviews.create(&PostParams::default(), &review).await {
            Ok(answer) if answer.status.as_ref().is_some_and(|s| s.allowed) => {}
            Ok(_) => denied.push(if group.is_empty() {
                format!("{verb} {resource}")
            } else {
                format!("{verb} {resource}.{group}")
            }),
            // Some clusters refuse self-reviews; the authenticated read already passed,
            // so the probe stands without them.
            Err(kube::Error::Api(s)) if s.code == 403 || s.code == 404 => return Ok(Vec::new()),
            Err(e) => {
                return Err(classify::provider_error(
                    Op::Probe,
                    "reviewing permissions",
                    e,
                ));
            }
        }
    }
    Ok(denied)
}

/// The sum of the nodes' allocatable resources; `None` when nodes may not be listed.
async fn node_capacity(provider: &KubernetesProvider) -> Result<Option<Capacity>, ProviderError> {
    let nodes: Api<Node> = Api::all(provider.client.clone());
    match nodes.list(&ListParams::default()).await {
        Ok(list) => Ok(allocatable(&list.items)),
        Err(kube::Error::Api(s)) if s.code == 403 => Ok(None),
        Err(e) => Err(classify::provider_error(Op::Probe, "listing nodes", e)),
    }
}

/// Sums the allocatable pods, CPU and memory of schedulable nodes; `None` when no node
/// reports any (capacity unknown rather than zero). Pure.
pub fn allocatable(nodes: &[Node]) -> Option<Capacity> {
    let mut counted = 0;
    let mut total = Capacity {
        replicas: Some(0),
        cpu_millis: Some(0),
        memory_mib: Some(0),
    };
    for node in nodes {
        if node.spec.as_ref().and_then(|s| s.unschedulable) == Some(true) {
            continue;
        }
        let Some(alloc) = node.status.as_ref().and_then(|s| s.allocatable.as_ref()) else {
            continue;
        };
        counted += 1;
        let get = |k: &str| alloc.get(k).and_then(|q| parse(&q.0));
        let add = |slot: &mut Option<u64>, v: Option<u64>| {
            *slot = slot.map(|s| s.saturating_add(v.unwrap_or(0)));
        };
        add(&mut total.replicas, get("pods").map(|p| p as u64));
        add(&mut total.cpu_millis, get("cpu").map(cpu_millis));
        add(&mut total.memory_mib, get("memory").map(memory_mib));
    }
    (counted > 0).then_some(total)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn node(alloc: serde_json::Value, unschedulable: bool) -> Node {
        serde_json::from_value(json!({
            "metadata": {"name": "n"},
            "spec": {"unschedulable": unschedulable},
            "status": {"allocatable": alloc},
        }))
        .unwrap()
    }

    #[test]
    fn capacity_sums_schedulable_nodes() {
        let nodes = [
            node(
                json!({"cpu": "3800m", "memory": "15896Mi", "pods": "110"}),
                false,
            ),
            node(
                json!({"cpu": "4", "memory": "16374584Ki", "pods": "110"}),
                false,
            ),
            node(json!({"cpu": "64", "memory": "256Gi", "pods": "250"}), true),
        ];
        assert_eq!(
            allocatable(&nodes),
            Some(Capacity {
                replicas: Some(220),
                cpu_millis: Some(7800),
                memory_mib: Some(15896 + 15990),
            })
        );
        assert_eq!(allocatable(&[]), None);
    }
}
