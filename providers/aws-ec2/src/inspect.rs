//! `inspect`: an instance's EC2 state and status checks, then the workload's own health
//! check on the instance address when one is defined and reachable from here. An
//! instance whose tags name another owner than the reference's is `Gone` for it.

use aws_sdk_ec2::types::{Instance, InstanceStateName, SummaryStatus};
use lifeboat_provider::{DeploymentRef, DeploymentState, Endpoint, ErrorClass, Op, ProviderError};

use crate::Ec2Provider;
use crate::classify::from_sdk;
use crate::instance::{address_of, belongs_to, endpoint_of, health_of, owner_of, port_of};

pub(crate) async fn inspect(
    provider: &Ec2Provider,
    dep: &DeploymentRef,
) -> Result<DeploymentState, ProviderError> {
    let Some(instance) = owned_instance(provider, dep, Op::Inspect).await? else {
        return Ok(DeploymentState::Gone);
    };
    let instance = &instance;
    let state = instance.state().and_then(|s| s.name()).cloned();
    Ok(match state {
        Some(InstanceStateName::Running) => running(provider, instance).await?,
        Some(InstanceStateName::ShuttingDown | InstanceStateName::Terminated) => {
            DeploymentState::Gone
        }
        Some(state @ (InstanceStateName::Stopping | InstanceStateName::Stopped)) => {
            DeploymentState::Failed {
                reason: format!("instance is {}: {}", state.as_str(), state_reason(instance)),
            }
        }
        Some(other) => DeploymentState::Pending {
            detail: format!("instance is {}", other.as_str()),
        },
        None => DeploymentState::Pending {
            detail: "instance state not reported yet".into(),
        },
    })
}

/// The instance behind `dep.handle`, while its tags still name `dep.owner`; `None` when
/// EC2 does not know the id (it forgets terminated instances after a while) or the
/// instance is another owner's, which for this owner is the same as gone.
pub(crate) async fn owned_instance(
    provider: &Ec2Provider,
    dep: &DeploymentRef,
    op: Op,
) -> Result<Option<Instance>, ProviderError> {
    let described = provider
        .client
        .describe_instances()
        .instance_ids(&dep.handle)
        .send()
        .await;
    let out = match described {
        Ok(out) => out,
        Err(e) => match from_sdk(op, e) {
            err if err.class == ErrorClass::NotFound => return Ok(None),
            err => return Err(err),
        },
    };
    let Some(instance) = out
        .reservations()
        .iter()
        .flat_map(|r| r.instances())
        .find(|i| i.instance_id() == Some(dep.handle.as_str()))
    else {
        return Ok(None);
    };
    if !belongs_to(instance, dep.owner.as_ref()) {
        // A forged or stale reference (a drill's cleanup naming production's instance,
        // an id reused in records): not this owner's to look at or touch.
        tracing::debug!(provider = %provider.name, instance = %dep.handle, wanted = ?dep.owner, found = ?owner_of(instance), "instance is not this owner's; treated as gone");
        return Ok(None);
    }
    Ok(Some(instance.clone()))
}

async fn running(
    provider: &Ec2Provider,
    instance: &Instance,
) -> Result<DeploymentState, ProviderError> {
    let id = instance.instance_id().unwrap_or_default();
    let endpoint = endpoint_of(instance, provider.config.address, port_of(instance));

    let status = provider
        .client
        .describe_instance_status()
        .instance_ids(id)
        .include_all_instances(true)
        .send()
        .await
        .map_err(|e| from_sdk(Op::Inspect, e))?;
    let checks: Vec<Option<&SummaryStatus>> = status
        .instance_statuses()
        .iter()
        .flat_map(|s| {
            [
                s.instance_status().and_then(|x| x.status()),
                s.system_status().and_then(|x| x.status()),
            ]
        })
        .collect();
    if checks.contains(&Some(&SummaryStatus::Impaired)) {
        return Ok(DeploymentState::Failed {
            reason: "EC2 status checks report the instance impaired".into(),
        });
    }
    let checks_ok = !checks.is_empty()
        && checks
            .iter()
            .all(|c| matches!(c, Some(SummaryStatus::Ok | SummaryStatus::NotApplicable)));

    match (health_of(instance), endpoint) {
        (Some(check), Some(endpoint)) => {
            let timeout = provider.config.health_timeout();
            match lifeboat_provider::health::check(&check, &endpoint, timeout).await {
                Ok(_) => Ok(DeploymentState::Healthy { endpoint }),
                Err(why) => {
                    // Unreachable from here is not proof of failure (lifeboat may sit
                    // outside the VPC): it stays running, and the controller's deadline
                    // decides.
                    tracing::debug!(provider = %provider.name, %why, "not healthy yet");
                    Ok(DeploymentState::Running {
                        endpoint: Some(endpoint),
                    })
                }
            }
        }
        (Some(_), None) => Ok(DeploymentState::Running { endpoint: None }),
        (None, endpoint) if checks_ok => {
            // Without a check of its own, EC2's status checks are the health signal. A
            // workload that serves no port reports port 0.
            let fallback = || {
                address_of(instance, provider.config.address).map(|host| Endpoint { host, port: 0 })
            };
            match endpoint.or_else(fallback) {
                Some(endpoint) => Ok(DeploymentState::Healthy { endpoint }),
                None => Ok(DeploymentState::Running { endpoint: None }),
            }
        }
        (None, endpoint) => Ok(DeploymentState::Running { endpoint }),
    }
}

fn state_reason(instance: &Instance) -> String {
    instance
        .state_reason()
        .and_then(|r| r.message().or(r.code()))
        .unwrap_or("no reason given")
        .to_owned()
}
