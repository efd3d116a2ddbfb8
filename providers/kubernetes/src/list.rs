//! `list_managed`: everything in the namespace that carries `lifeboat.dev/managed=true`
//! and one owner's labels, grouped into deployments by (workload, generation) labels. It
//! relies on the labels alone, so copies left by a crash or by an earlier controller are
//! found too, and another owner's never are.

use std::collections::BTreeMap;

use kube::api::{Api, DynamicObject, ListParams};
use lifeboat_provider::{DeploymentRef, ErrorClass, Generation, Op, Owner, ProviderError, labels};

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

/// The label selector of one owner's objects (`None`: of the objects with no owner).
/// A production owner's excludes its drills' objects, which carry the same owner label
/// and a drill label besides.
pub fn owner_selector(owner: Option<&Owner>) -> String {
    match owner {
        None => format!("!{}", labels::OWNER),
        Some(owner) => {
            let drill = match &owner.drill {
                Some(drill) => format!("{}={drill}", labels::DRILL),
                None => format!("!{}", labels::DRILL),
            };
            format!("{}={},{drill}", labels::OWNER, owner.installation)
        }
    }
}

/// Lists the managed deployments of `owner` (of no owner, for `None`) in the
/// provider's namespace.
pub async fn list_managed(
    provider: &KubernetesProvider,
    owner: Option<&Owner>,
) -> Result<Vec<DeploymentRef>, ProviderError> {
    // An id that is no label value would make a selector that means something else.
    let ids = owner
        .into_iter()
        .flat_map(|o| [Some(&o.installation), o.drill.as_ref()]);
    if let Some(why) = ids.flatten().find_map(|id| Owner::check_id(id).err()) {
        return Err(ProviderError::new(
            ErrorClass::InvalidRequest,
            Op::ListManaged,
            format!(
                "cannot select the objects of an owner with an id that is no label value: {why}"
            ),
        ));
    }
    let selector = format!("{}=true,{}", labels::MANAGED, owner_selector(owner));
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
    Ok(group(&found, &provider.namespace, owner))
}

/// Groups `owner`'s objects into deployments by their workload and generation labels;
/// objects without both are skipped (they were labelled by hand), and so are objects of
/// another owner: the selector already leaves them out on a real server, but a server
/// (or an emulator) that ignores part of a selector must not make one owner list
/// another's copies. Objects being deleted are skipped too: the API server accepted their
/// deletion, so for the contract they are gone (as `inspect` says), even while the garbage
/// collector still removes their dependents. Pure.
pub fn group(
    objects_found: &[DynamicObject],
    namespace: &str,
    owner: Option<&Owner>,
) -> Vec<DeploymentRef> {
    let mut groups: BTreeMap<(String, Generation), Vec<ObjectKey>> = BTreeMap::new();
    for object in objects_found {
        let labels = object.metadata.labels.as_ref();
        let label = |k: &str| labels.and_then(|l| l.get(k)).map(String::as_str);
        if !Owner::matches(Owner::from_labels(label).as_ref(), owner)
            || object.metadata.deletion_timestamp.is_some()
        {
            continue;
        }
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
                owner: owner.cloned(),
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
            None,
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

    #[test]
    fn each_owner_lists_only_its_own_objects() {
        let prod = Owner::installation("prod-1");
        let drill = Owner::drill("prod-1", "d42");
        let other = Owner::installation("prod-2");
        let labelled = |owner: Option<&Owner>| {
            let mut l = json!({"lifeboat.dev/managed": "true", "lifeboat.dev/workload": "api",
                               "lifeboat.dev/generation": "1"});
            for (k, v) in owner.map(Owner::labels).unwrap_or_default() {
                l[k] = v.into();
            }
            l
        };
        let found = [
            object("Deployment", "of-prod", labelled(Some(&prod))),
            object("Deployment", "of-drill", labelled(Some(&drill))),
            object("Deployment", "of-other", labelled(Some(&other))),
            object("Deployment", "of-nobody", labelled(None)),
        ];
        for (owner, name) in [
            (Some(&prod), "of-prod"),
            (Some(&drill), "of-drill"),
            (Some(&other), "of-other"),
            (None, "of-nobody"),
        ] {
            let refs = group(&found, "prod", owner);
            assert_eq!(refs.len(), 1, "{owner:?}: {refs:?}");
            assert_eq!(refs[0].handle, format!("apps/v1/Deployment/prod/{name}"));
            assert_eq!(refs[0].owner.as_ref(), owner);
        }
    }

    #[test]
    fn selectors_keep_drills_and_installations_apart() {
        assert_eq!(
            owner_selector(Some(&Owner::installation("prod-1"))),
            "lifeboat.dev/owner=prod-1,!lifeboat.dev/drill"
        );
        assert_eq!(
            owner_selector(Some(&Owner::drill("prod-1", "d42"))),
            "lifeboat.dev/owner=prod-1,lifeboat.dev/drill=d42"
        );
        assert_eq!(owner_selector(None), "!lifeboat.dev/owner");
    }
}
