//! `retire`: deletes every object of a deployment, with foreground propagation so that a
//! Deployment's ReplicaSets and Pods go before it. Already gone is success, and so is an
//! object that no longer carries the reference's generation and owner: for that owner,
//! the copy is gone.

use kube::api::DynamicObject;
use lifeboat_provider::{DeploymentRef, ErrorClass, Op, Owner, ProviderError, labels};

use crate::handle::{self, ObjectKey};
use crate::{KubernetesProvider, classify, objects};

/// How often a delete is retried when the object changed between read and delete.
const ATTEMPTS: usize = 3;

/// Deletes the objects of `dep` that still belong to its generation and owner. Returns
/// once the API server has accepted the deletions.
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
/// their names across generations) or it carries another owner than `dep.owner` (a
/// forged or mistaken reference, such as a drill's cleanup naming production's copy),
/// using the version just read as a precondition so that a takeover racing with the
/// delete is not undone.
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
            tracing::debug!(%key, "not retired: it belongs to another generation or owner");
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

/// Whether the object's labels still say `dep`'s workload, generation and owner (for a
/// reference without an owner, that the object has none: it predates owners too).
fn ours(object: &DynamicObject, dep: &DeploymentRef) -> bool {
    let labels = object.metadata.labels.as_ref();
    let label = |k: &str| labels.and_then(|l| l.get(k)).map(String::as_str);
    label(labels::MANAGED) == Some("true")
        && label(labels::WORKLOAD) == Some(dep.workload.as_str())
        && label(labels::GENERATION) == Some(dep.generation.to_string().as_str())
        && Owner::from_labels(label).as_ref() == dep.owner.as_ref()
}

#[cfg(test)]
mod tests {
    use super::*;
    use lifeboat_provider::Generation;
    use serde_json::json;

    fn dep(owner: Option<Owner>) -> DeploymentRef {
        DeploymentRef {
            workload: "api".into(),
            generation: Generation(1),
            handle: "apps/v1/Deployment/prod/api-g1".into(),
            endpoint: None,
            owner,
        }
    }

    #[test]
    fn only_objects_labelled_with_the_references_owner_are_retired() {
        let object = |extra: &[(&str, &str)]| -> DynamicObject {
            let mut labels = json!({"lifeboat.dev/managed": "true", "lifeboat.dev/workload": "api",
                                    "lifeboat.dev/generation": "1"});
            for (k, v) in extra {
                labels[*k] = (*v).into();
            }
            serde_json::from_value(json!({"apiVersion": "apps/v1", "kind": "Deployment",
                "metadata": {"name": "api-g1", "labels": labels}}))
            .unwrap()
        };
        let prod = Owner::installation("prod-1");
        let drill = Owner::drill("prod-1", "d42");
        let of_prod = object(&[(labels::OWNER, "prod-1")]);
        let of_drill = object(&[(labels::OWNER, "prod-1"), (labels::DRILL, "d42")]);
        let unowned = object(&[]);
        assert!(ours(&of_prod, &dep(Some(prod.clone()))));
        assert!(ours(&of_drill, &dep(Some(drill.clone()))));
        // A drill's reference to production's copy, and the other way round.
        assert!(!ours(&of_prod, &dep(Some(drill.clone()))));
        assert!(!ours(&of_drill, &dep(Some(prod.clone()))));
        assert!(ours(&unowned, &dep(None)));
        assert!(!ours(&unowned, &dep(Some(prod))));
        assert!(!ours(&of_drill, &dep(None)));
    }
}
