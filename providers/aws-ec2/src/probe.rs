//! `probe`: one authenticated call (`DescribeAccountAttributes`) tells reachability and
//! account standing; a listing of managed instances gives free capacity and the
//! instances AWS stopped or terminated without lifeboat asking.

use aws_sdk_ec2::types::{AccountAttributeName, Instance, InstanceStateName};
use lifeboat_provider::{Capacity, DeploymentRef, Op, Probe, ProbeReport};

use crate::classify::from_sdk;
use crate::instance::tag_value;
use crate::list::{deployment_ref, is_gone, managed_instances};
use crate::{Ec2Provider, tags};

pub(crate) async fn probe(provider: &Ec2Provider) -> Probe {
    // Bounded by the SDK's operation timeout (see `Ec2Config::operation_timeout`),
    // which comes back as `Timeout`.
    let attributes = provider
        .probe_client
        .describe_account_attributes()
        // The model only names two attributes; EC2 accepts `max-instances` too.
        .attribute_names(AccountAttributeName::from("max-instances"))
        .send()
        .await
        .map_err(|e| from_sdk(Op::Probe, e))?;
    let account_max = attributes
        .account_attributes()
        .iter()
        .filter(|a| a.attribute_name() == Some("max-instances"))
        .flat_map(|a| a.attribute_values())
        .find_map(|v| v.attribute_value().and_then(|v| v.parse::<u64>().ok()));
    let max = provider.config.max_instances.or(account_max);

    let instances = managed_instances(provider, &[], None, Op::Probe).await?;
    let active = instances
        .iter()
        .filter(|i| {
            let state = i.state().and_then(|s| s.name());
            !is_gone(state) && state != Some(&InstanceStateName::Stopped)
        })
        .count() as u64;
    let lost: Vec<DeploymentRef> = instances
        .iter()
        .filter(|i| is_lost(i))
        .filter_map(|i| deployment_ref(provider, i))
        .collect();
    for dep in &lost {
        tracing::warn!(provider = %provider.name, workload = %dep.workload, instance = %dep.handle, "probe: managed instance stopped or terminated without lifeboat asking");
    }
    Ok(ProbeReport {
        degraded: None,
        // Free room for lifeboat: the limit minus lifeboat's own running instances
        // (other instances of the account are not counted).
        capacity: max.map(|max| Capacity {
            replicas: Some(max.saturating_sub(active)),
            ..Capacity::default()
        }),
        lost,
    })
}

/// A managed instance is lost when it is stopping, stopped or terminating and lifeboat
/// never retired it (no retired tag): AWS (spot reclaim, host failure, suspension) or a
/// human acted, and the controller should know.
pub(crate) fn is_lost(instance: &Instance) -> bool {
    let state = instance.state().and_then(|s| s.name());
    let down = is_gone(state)
        || matches!(
            state,
            Some(InstanceStateName::Stopping | InstanceStateName::Stopped)
        );
    down && tag_value(instance, tags::RETIRED) != Some("true")
}

#[cfg(test)]
mod tests {
    use aws_sdk_ec2::types::{InstanceState, Tag};

    use super::*;

    fn instance(state: InstanceStateName, retired: bool) -> Instance {
        let mut builder = Instance::builder().state(InstanceState::builder().name(state).build());
        if retired {
            builder = builder.tags(Tag::builder().key(tags::RETIRED).value("true").build());
        }
        builder.build()
    }

    #[test]
    fn only_unasked_stops_and_terminations_are_lost() {
        use InstanceStateName::*;
        let table = [
            (Pending, false, false),
            (Running, false, false),
            (Stopping, false, true),
            (Stopped, false, true),
            (ShuttingDown, false, true),
            (Terminated, false, true),
            (Terminated, true, false),
            (ShuttingDown, true, false),
            (Running, true, false),
        ];
        for (state, retired, lost) in table {
            assert_eq!(
                is_lost(&instance(state.clone(), retired)),
                lost,
                "{state:?} retired={retired}"
            );
        }
    }
}
