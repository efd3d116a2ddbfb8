//! `list_managed`: everything in the namespace that carries `lifeboat.dev/managed=true`,
//! grouped into deployments by (workload, generation) labels. It relies on the labels
//! alone, so copies left by a crash or by another controller are found too.

use std::collections::BTreeMap;

use kube::api::{Api, DynamicObject, ListParams};
use lifeboat_provider::{DeploymentRef, Generation, Op, ProviderError, labels};

use crate::handle::{self, ObjectKey};
use crate::{KubernetesProvider, classify, objects};

/// The kinds searched, as (apiVersion, kind, required). Deployments and Services are what
/// lifeboat builds, so failing to list them is an error; the others come only with raw
/// manifests and are skipped when RBAC does not allow listing them. Objects of other
/// kinds (or namespaces) from raw manifests are retired through their handle but not
/// found again after a crash.
const KINDS: [(&str, &str, bool); 5] = [
    ("apps/v1", "Deployment", true),
    ("v1", "Service", true),
    ("apps/v1", "StatefulSet", false),
    ("apps/v1", "DaemonSet", false),
    ("v1", "ConfigMap", false),
];

/// Lists the managed deployments of the provider's namespace.
pub async fn list_managed(
    provider: &KubernetesProvider,
) -> Result<Vec<DeploymentRef>, ProviderError> {
    let selector = format!("{}=true", labels::MANAGED);
    let mut found = Vec::new();
    for (api_version, kind, required) in KINDS {
        let resolved = provider
            .kinds
            .resolve(&provider.client, api_version, kind)
            .await
            .map_err(|e| {
                classify::provider_error(Op::ListManaged, &format!("resolving {kind}"), e)
            })?;
        let api: Api<DynamicObject> = Api::namespaced_with(
            provider.client.clone(),
            &provider.namespace,
            &resolved.resource,
        );
        match api.list(&ListParams::default().labels(&selector)).await {
            Ok(list) => found.extend(list.items.into_iter().map(|mut o| {
                // Items of a list carry no apiVersion/kind of their own on every server.
                o.types.get_or_insert_with(|| kube::api::TypeMeta {
                    api_version: api_version.into(),
                    kind: kind.into(),
                });
                o
            })),
            Err(kube::Error::Api(s)) if !required && (s.code == 403 || s.code == 404) => {
                tracing::debug!(kind, code = s.code, "skipped listing managed objects");
            }
            Err(e) => {
                return Err(classify::provider_error(
                    Op::ListManaged,
                    &format!("listing {kind}s labelled {selector}"),
                    e,
                ));
            }
        }
    }
    Ok(group(&found, &provider.namespace))
}

/// Groups objects into deployments by their workload and generation labels; objects
/// without both are skipped (they were labelled by hand). Pure.
pub fn group(objects_found: &[DynamicObject], namespace: &str) -> Vec<DeploymentRef> {
    let mut groups: BTreeMap<(String, Generation), Vec<ObjectKey>> = BTreeMap::new();
    for object in objects_found {
        let labels = object.metadata.labels.as_ref();
        let workload = labels.and_then(|l| l.get(labels::WORKLOAD));
        let generation = labels
            .and_then(|l| l.get(labels::GENERATION))
            .and_then(|g| g.parse().ok())
            .map(Generation);
        let (Some(workload), Some(generation), Some(key)) =
            (workload, generation, objects::key_of(object, namespace))
        else {
            continue;
        };
        groups
            .entry((workload.clone(), generation))
            .or_default()
            .push(key);
    }
    groups
        .into_iter()
        .map(|((workload, generation), mut keys)| {
            // Workload objects first, so the handle reads like the deploy that made it.
            keys.sort_by_key(|k| (k.kind != "Deployment", k.kind.clone(), k.name.clone()));
            DeploymentRef {
                workload,
                generation,
                handle: handle::encode(&keys),
                endpoint: None,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn object(kind: &str, name: &str, labels: serde_json::Value) -> DynamicObject {
        serde_json::from_value(json!({
            "apiVersion": if kind == "Deployment" { "apps/v1" } else { "v1" },
            "kind": kind,
            "metadata": {"name": name, "namespace": "prod", "labels": labels},
        }))
        .unwrap()
    }

    #[test]
    fn objects_group_by_workload_and_generation() {
        let l = |w: &str, g: &str| json!({"lifeboat.dev/managed": "true", "lifeboat.dev/workload": w, "lifeboat.dev/generation": g});
        let refs = group(
            &[
                object("Service", "api-g1", l("api", "1")),
                object("Deployment", "api-g1", l("api", "1")),
                object("Deployment", "api-g2", l("api", "2")),
                object("Deployment", "db-g1", l("db", "1")),
                object(
                    "Deployment",
                    "stray",
                    json!({"lifeboat.dev/managed": "true"}),
                ),
                object("Deployment", "bad-gen", l("api", "x")),
            ],
            "prod",
        );
        let got: Vec<(String, u64, String)> = refs
            .into_iter()
            .map(|r| (r.workload, r.generation.0, r.handle))
            .collect();
        assert_eq!(
            got,
            [
                (
                    "api".into(),
                    1,
                    "apps/v1/Deployment/prod/api-g1,v1/Service/prod/api-g1".into()
                ),
                ("api".into(), 2, "apps/v1/Deployment/prod/api-g2".into()),
                ("db".into(), 1, "apps/v1/Deployment/prod/db-g1".into()),
            ]
        );
    }
}
