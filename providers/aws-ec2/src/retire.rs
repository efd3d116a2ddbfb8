//! `retire`: mark the instance as retired by lifeboat, then `TerminateInstances`.
//!
//! The mark (a tag) is what lets `probe` tell an instance lifeboat retired from one AWS
//! (or a human) stopped or terminated behind its back.

use aws_sdk_ec2::types::Tag;
use lifeboat_provider::{DeploymentRef, ErrorClass, Op, ProviderError};

use crate::classify::from_sdk;
use crate::{Ec2Provider, tags};

pub(crate) async fn retire(
    provider: &Ec2Provider,
    dep: &DeploymentRef,
) -> Result<(), ProviderError> {
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
