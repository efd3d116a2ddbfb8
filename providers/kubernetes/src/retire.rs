//! `retire`: deletes every object of a deployment, with foreground propagation so that a
//! Deployment's ReplicaSets and Pods go before it. Already gone is success.

use kube::api::DynamicObject;
use lifeboat_provider::{DeploymentRef, ErrorClass, Op, ProviderError, labels};

use crate::handle::{self, ObjectKey};
use crate::{KubernetesProvider, classify, objects};

/// How often a delete is retried when the object changed between read and delete.
const ATTEMPTS: usize = 3;

/// Deletes the objects of `dep` that still belong to its generation. Returns once the
/// API server has accepted the deletions.
pub async fn retire(
    provider: &KubernetesProvider,
    dep: &DeploymentRef,
) -> Result<(), ProviderError> {
    let keys = handle::decode(&dep.handle).ok_or_else(|| {
        ProviderError::new(
            ErrorClass::NotFound,
            Op::Retire,
            format!("{:?} is not a Kubernetes deployment handle", dep.handle),
        )
    })?;
    for key in keys.iter().rev() {
        retire_object(provider, dep, key).await?;
    }
    Ok(())
}

/// Deletes one object unless a newer generation has taken it over (raw manifests keep
/// their names across generations), using the version just read as a precondition so
/// that a takeover racing with the delete is not undone.
async fn retire_object(
    provider: &KubernetesProvider,
    dep: &DeploymentRef,
    key: &ObjectKey,
) -> Result<(), ProviderError> {
    let fail = |doing: &str, e| classify::provider_error(Op::Retire, &format!("{doing} {key}"), e);
    for _ in 0..ATTEMPTS {
        let Some(object) = objects::get(&provider.kinds, &provider.client, key)
            .await
            .map_err(|e| fail("reading", e))?
        else {
            return Ok(());
        };
        if !ours(&object, dep) {
            tracing::debug!(%key, "not retired: it belongs to another generation now");
            return Ok(());
        }
        match objects::delete(
            &provider.kinds,
            &provider.client,
            key,
            object.metadata.resource_version.clone(),
        )
        .await
        {
            Ok(()) => return Ok(()),
            Err(e) if classify::is_conflict(&e) => continue,
            Err(e) => return Err(fail("deleting", e)),
        }
    }
    Err(ProviderError::new(
        ErrorClass::Internal,
        Op::Retire,
        format!("{key} kept changing while being deleted; try again"),
    ))
}

fn ours(object: &DynamicObject, dep: &DeploymentRef) -> bool {
    let labels = object.metadata.labels.as_ref();
    let label = |k: &str| labels.and_then(|l| l.get(k)).map(String::as_str);
    label(labels::MANAGED) == Some("true")
        && label(labels::WORKLOAD) == Some(dep.workload.as_str())
        && label(labels::GENERATION) == Some(dep.generation.to_string().as_str())
}
