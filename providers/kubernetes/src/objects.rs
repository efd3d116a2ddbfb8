//! Untyped access to any kind of object: how lifeboat applies, reads and deletes its
//! Deployments and Services as well as whatever raw manifests a workload brings.
//!
//! Kinds are resolved to their REST resource through discovery (`/apis/<group>/<version>`)
//! once per kind and then cached; the handful of kinds lifeboat builds itself are known
//! without asking.

use std::collections::HashMap;
use std::sync::Mutex;

use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, StatefulSet};
use k8s_openapi::api::core::v1::{ConfigMap, Service};
use kube::api::{
    Api, ApiResource, DeleteParams, DynamicObject, GroupVersionKind, Patch, PatchParams,
};
use kube::discovery::Scope;

use crate::handle::ObjectKey;

/// The field manager of every server-side apply lifeboat makes.
pub const FIELD_MANAGER: &str = "lifeboat";

/// A resolved kind: its REST resource and whether its objects live in a namespace.
#[derive(Debug, Clone)]
pub struct Kind {
    /// The REST resource (group, version, plural).
    pub resource: ApiResource,
    /// Namespaced (`true`) or cluster-scoped.
    pub namespaced: bool,
}

/// The kinds resolved so far, shared by every call of one provider.
#[derive(Debug, Default)]
pub struct Kinds {
    cache: Mutex<HashMap<(String, String), Kind>>,
}

impl Kinds {
    /// The kinds lifeboat itself creates and lists, known without discovery.
    pub fn new() -> Kinds {
        let mut cache = HashMap::new();
        let mut known = |resource: ApiResource| {
            cache.insert(
                (resource.api_version.clone(), resource.kind.clone()),
                Kind {
                    resource,
                    namespaced: true,
                },
            );
        };
        known(ApiResource::erase::<Deployment>(&()));
        known(ApiResource::erase::<StatefulSet>(&()));
        known(ApiResource::erase::<DaemonSet>(&()));
        known(ApiResource::erase::<Service>(&()));
        known(ApiResource::erase::<ConfigMap>(&()));
        Kinds {
            cache: Mutex::new(cache),
        }
    }

    /// Resolves `apiVersion` + `kind`, asking the API server's discovery the first time.
    pub async fn resolve(
        &self,
        client: &kube::Client,
        api_version: &str,
        kind: &str,
    ) -> Result<Kind, kube::Error> {
        let cache_key = (api_version.to_owned(), kind.to_owned());
        if let Some(found) = self.lock().get(&cache_key) {
            return Ok(found.clone());
        }
        let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
        let gvk = GroupVersionKind::gvk(group, version, kind);
        let (resource, caps) = kube::discovery::pinned_kind(client, &gvk).await?;
        let resolved = Kind {
            resource,
            namespaced: matches!(caps.scope, Scope::Namespaced),
        };
        self.lock().insert(cache_key, resolved.clone());
        Ok(resolved)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<(String, String), Kind>> {
        // The map is only ever inserted into; a panic elsewhere cannot leave it torn.
        self.cache.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The API for one object's kind and namespace.
    pub async fn api(
        &self,
        client: &kube::Client,
        key: &ObjectKey,
    ) -> Result<Api<DynamicObject>, kube::Error> {
        let kind = self.resolve(client, &key.api_version, &key.kind).await?;
        Ok(match (&key.namespace, kind.namespaced) {
            (Some(ns), true) => Api::namespaced_with(client.clone(), ns, &kind.resource),
            _ => Api::all_with(client.clone(), &kind.resource),
        })
    }
}

/// Applies `object` (a complete manifest with apiVersion, kind and metadata.name) with
/// server-side apply under [`FIELD_MANAGER`], taking over fields other managers hold:
/// lifeboat's copy is the desired state. Creates the object when it is missing.
pub async fn apply(
    kinds: &Kinds,
    client: &kube::Client,
    key: &ObjectKey,
    object: &serde_json::Value,
) -> Result<DynamicObject, kube::Error> {
    let api = kinds.api(client, key).await?;
    api.patch(
        &key.name,
        &PatchParams::apply(FIELD_MANAGER).force(),
        &Patch::Apply(object),
    )
    .await
}

/// Reads one object; `None` when it does not exist.
pub async fn get(
    kinds: &Kinds,
    client: &kube::Client,
    key: &ObjectKey,
) -> Result<Option<DynamicObject>, kube::Error> {
    // By status code rather than kube's `get_opt`, which also wants the reason
    // `NotFound`: a proxy or gateway in front of the API server may word it otherwise.
    match kinds.api(client, key).await?.get(&key.name).await {
        Ok(object) => Ok(Some(object)),
        Err(e) if crate::classify::is_not_found(&e) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Deletes one object with foreground propagation (its dependents, such as a
/// Deployment's ReplicaSets and Pods, go first), on condition that it is still the
/// version that was read (`resource_version`). A missing object is not an error.
pub async fn delete(
    kinds: &Kinds,
    client: &kube::Client,
    key: &ObjectKey,
    resource_version: Option<String>,
) -> Result<(), kube::Error> {
    let api = kinds.api(client, key).await?;
    let mut params = DeleteParams::foreground();
    if resource_version.is_some() {
        params = params.preconditions(kube::api::Preconditions {
            resource_version,
            uid: None,
        });
    }
    match api.delete(&key.name, &params).await {
        Ok(_) => Ok(()),
        Err(e) if crate::classify::is_not_found(&e) => Ok(()),
        Err(e) => Err(e),
    }
}

/// The identity of an object as read from the API.
pub fn key_of(object: &DynamicObject, default_namespace: &str) -> Option<ObjectKey> {
    let types = object.types.as_ref()?;
    Some(ObjectKey {
        api_version: types.api_version.clone(),
        kind: types.kind.clone(),
        namespace: object
            .metadata
            .namespace
            .clone()
            .or_else(|| Some(default_namespace.to_owned())),
        name: object.metadata.name.clone()?,
    })
}
