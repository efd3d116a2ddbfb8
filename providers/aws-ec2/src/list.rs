//! `list_managed` and the tag lookups `deploy` and `probe` share: `DescribeInstances`
//! filtered by lifeboat's tags, every page followed with the SDK's paginator.
//!
//! Ownership is decided in two steps. EC2 filters narrow the listing to the owner's
//! installation (and drill) server-side, but a filter can only require a tag, never its
//! absence: "production, so no drill tag" and "made before owners, so no owner tag" are
//! checked here, on the tags of every instance that came back ([`belongs_to`]).

use aws_sdk_ec2::types::{Filter, Instance, InstanceStateName};
use lifeboat_provider::{
    DeployRequest, DeploymentRef, Generation, Op, Owner, ProviderError, labels,
};

use crate::Ec2Provider;
use crate::classify::from_sdk;
use crate::instance::{belongs_to, endpoint_of, owner_of, port_of, tag_value};

/// States of an instance that still exists as far as a workload is concerned.
const ALIVE: [&str; 4] = ["pending", "running", "stopping", "stopped"];

pub(crate) async fn list_managed(
    provider: &Ec2Provider,
    owner: Option<&Owner>,
) -> Result<Vec<DeploymentRef>, ProviderError> {
    let instances = owned_instances(provider, owner, &[], Op::ListManaged).await?;
    Ok(instances
        .iter()
        .filter_map(|i| deployment_ref(provider, i))
        .collect())
}

/// The live instance of (workload, generation) of the request's owner, if an earlier
/// deploy of that owner started one. Another owner's copy of the same generation is
/// never found, so a drill cannot adopt production's instance (nor the other way round).
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
    let instances = owned_instances(provider, Some(&req.owner), &extra, op).await?;
    Ok(instances.iter().find_map(|i| deployment_ref(provider, i)))
}

/// The live managed instances (with the `extra` tags) of exactly `owner`; `None` means
/// the instances without an owner tag.
async fn owned_instances(
    provider: &Ec2Provider,
    owner: Option<&Owner>,
    extra: &[(&str, &str)],
    op: Op,
) -> Result<Vec<Instance>, ProviderError> {
    // The owner's tags only narrow the listing server-side; `belongs_to` decides.
    let owner_tags = owner.map(Owner::labels).unwrap_or_default();
    let mut filters = extra.to_vec();
    filters.extend(owner_tags.iter().map(|(k, v)| (*k, v.as_str())));
    let instances = managed_instances(provider, &filters, Some(&ALIVE), op).await?;
    Ok(instances
        .into_iter()
        .filter(|i| belongs_to(i, owner))
        .collect())
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

/// The deployment an instance carries, from its tags (its owner included); `None`
/// (logged) when the tags are not lifeboat's, e.g. edited by hand.
pub(crate) fn deployment_ref(provider: &Ec2Provider, instance: &Instance) -> Option<DeploymentRef> {
    let handle = instance.instance_id()?.to_owned();
    let workload = tag_value(instance, labels::WORKLOAD);
    let generation = tag_value(instance, labels::GENERATION).and_then(|g| g.parse::<u64>().ok());
    let (Some(workload), Some(generation)) = (workload, generation) else {
        tracing::warn!(provider = %provider.name, instance = %handle, "managed instance without valid workload/generation tags; ignored");
        return None;
    };
    let port = port_of(instance);
    Some(DeploymentRef {
        workload: workload.to_owned(),
        generation: Generation(generation),
        endpoint: endpoint_of(instance, provider.config.address, port),
        handle,
        owner: owner_of(instance),
    })
}

/// Whether an instance's state counts as gone for lifeboat.
pub(crate) fn is_gone(state: Option<&InstanceStateName>) -> bool {
    matches!(
        state,
        Some(InstanceStateName::ShuttingDown | InstanceStateName::Terminated)
    )
}
