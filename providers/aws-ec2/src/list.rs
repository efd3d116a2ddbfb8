//! `list_managed` and the tag lookups `deploy` and `probe` share: `DescribeInstances`
//! filtered by lifeboat's tags, every page followed with the SDK's paginator.

use aws_sdk_ec2::types::{Filter, Instance, InstanceStateName};
use lifeboat_provider::{DeployRequest, DeploymentRef, Generation, Op, ProviderError, labels};

use crate::classify::from_sdk;
use crate::inspect::{endpoint_of, tag_value};
use crate::{Ec2Provider, tags};

/// States of an instance that still exists as far as a workload is concerned.
const ALIVE: [&str; 4] = ["pending", "running", "stopping", "stopped"];

pub(crate) async fn list_managed(
    provider: &Ec2Provider,
) -> Result<Vec<DeploymentRef>, ProviderError> {
    let instances = managed_instances(provider, &[], Some(&ALIVE), Op::ListManaged).await?;
    Ok(instances
        .iter()
        .filter_map(|i| deployment_ref(provider, i))
        .collect())
}

/// The live instance of (workload, generation), if an earlier deploy started one.
pub(crate) async fn find_generation(
    provider: &Ec2Provider,
    req: &DeployRequest,
    op: Op,
) -> Result<Option<DeploymentRef>, ProviderError> {
    let generation = req.generation.to_string();
    let extra = [
        (labels::WORKLOAD, req.workload.name.as_str()),
        (labels::GENERATION, generation.as_str()),
    ];
    let instances = managed_instances(provider, &extra, Some(&ALIVE), op).await?;
    Ok(instances.iter().find_map(|i| deployment_ref(provider, i)))
}

/// Every instance tagged managed by lifeboat (and with the `extra` tags), in the given
/// states (all states when `None`), across all pages.
pub(crate) async fn managed_instances(
    provider: &Ec2Provider,
    extra: &[(&str, &str)],
    states: Option<&[&str]>,
    op: Op,
) -> Result<Vec<Instance>, ProviderError> {
    let mut filters = vec![tag_filter(labels::MANAGED, "true")];
    filters.extend(extra.iter().map(|(k, v)| tag_filter(k, v)));
    if let Some(states) = states {
        filters.push(
            Filter::builder()
                .name("instance-state-name")
                .set_values(Some(states.iter().map(|s| s.to_string()).collect()))
                .build(),
        );
    }
    // Probes list through their own client (see `Ec2Provider::probe_client`).
    let client = if op == Op::Probe {
        &provider.probe_client
    } else {
        &provider.client
    };
    let mut pages = client
        .describe_instances()
        .set_filters(Some(filters))
        .max_results(provider.page_size)
        .into_paginator()
        .send();
    let mut instances = Vec::new();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| from_sdk(op, e))?;
        instances.extend(
            page.reservations()
                .iter()
                .flat_map(|r| r.instances())
                .cloned(),
        );
    }
    Ok(instances)
}

fn tag_filter(key: &str, value: &str) -> Filter {
    Filter::builder()
        .name(format!("tag:{key}"))
        .values(value)
        .build()
}

/// The deployment an instance carries, from its tags; `None` (logged) when the tags are
/// not lifeboat's, e.g. edited by hand.
pub(crate) fn deployment_ref(provider: &Ec2Provider, instance: &Instance) -> Option<DeploymentRef> {
    let handle = instance.instance_id()?.to_owned();
    let workload = tag_value(instance, labels::WORKLOAD);
    let generation = tag_value(instance, labels::GENERATION).and_then(|g| g.parse::<u64>().ok());
    let (Some(workload), Some(generation)) = (workload, generation) else {
        tracing::warn!(provider = %provider.name, instance = %handle, "managed instance without valid workload/generation tags; ignored");
        return None;
    };
    let port = tag_value(instance, tags::PORT).and_then(|p| p.parse::<u16>().ok());
    Some(DeploymentRef {
        workload: workload.to_owned(),
        generation: Generation(generation),
        endpoint: endpoint_of(instance, provider.config.address, port),
        handle,
    })
}

/// Whether an instance's state counts as gone for lifeboat.
pub(crate) fn is_gone(state: Option<&InstanceStateName>) -> bool {
    matches!(
        state,
        Some(InstanceStateName::ShuttingDown | InstanceStateName::Terminated)
    )
}
