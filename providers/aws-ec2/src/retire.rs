//! `retire`: check the instance is still the reference owner's, mark it as retired by
//! lifeboat, then `TerminateInstances`.
//!
//! The mark (a tag) is what lets `probe` tell an instance lifeboat retired from one AWS
//! (or a human) stopped or terminated behind its back.
//!
//! The owner check reads the instance's tags just before terminating; EC2 has no
//! conditional terminate, so a re-tag between the two calls is not seen. Nothing in
//! lifeboat re-tags an owner, and the IAM policy can add the same condition server-side
//! (`aws:ResourceTag/lifeboat.dev/owner`).

use aws_sdk_ec2::types::Tag;
use lifeboat_provider::{DeploymentRef, ErrorClass, Op, ProviderError};

use crate::classify::from_sdk;
use crate::inspect::owned_instance;
use crate::{Ec2Provider, tags};

pub(crate) async fn retire(
    provider: &Ec2Provider,
    dep: &DeploymentRef,
) -> Result<(), ProviderError> {
    if owned_instance(provider, dep, Op::Retire).await?.is_none() {
        // Gone, or another owner's: for this owner there is nothing left to remove.
        return Ok(());
    }
    let marked = provider
        .client
        .create_tags()
        .resources(&dep.handle)
        .tags(Tag::builder().key(tags::RETIRED).value("true").build())
        .send()
        .await;
    if let Err(e) = marked {
        let err = from_sdk(Op::Retire, e);
        match err.class {
            ErrorClass::NotFound => return Ok(()),
            // A state EC2 will not tag (terminated already, for example) does not stop
            // the termination; everything else (denied, throttled, down) does.
            ErrorClass::InvalidRequest
                if err.code.as_deref() != Some("InvalidInstanceID.Malformed") =>
            {
                tracing::debug!(provider = %provider.name, instance = %dep.handle, error = %err, "retire: could not tag; terminating anyway");
            }
            _ => return Err(err),
        }
    }
    match provider
        .client
        .terminate_instances()
        .instance_ids(&dep.handle)
        .send()
        .await
    {
        Ok(_) => {
            tracing::info!(provider = %provider.name, workload = %dep.workload, generation = %dep.generation, instance = %dep.handle, "retire: instance terminating");
            Ok(())
        }
        Err(e) => match from_sdk(Op::Retire, e) {
            err if err.class == ErrorClass::NotFound => Ok(()),
            err => Err(err),
        },
    }
}
