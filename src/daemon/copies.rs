//! Each round, a look at every workload's live copy through its provider's `inspect`
//! (which runs the workload's health check): the I/O half of [`crate::watch`].

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use lifeboat_provider::Provider;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::clock::Clock;
use crate::model::{Condition, Placement};
use crate::probe::ProbeResult;
use crate::watch::{CopyWatch, Seen};

/// Looks at once this many copies, at most: a thousand workloads must not mean a
/// thousand requests to one vendor at the same instant.
const AT_ONCE: usize = 16;

/// Looks at the live copy of every placed workload, except those in `busy` (moving:
/// their evacuation watches them) and those on a provider that is not `Healthy` or
/// `Degraded` (that provider's own condition decides what happens to them), and records
/// what each look found in `watches`. Watches of workloads no longer placed are
/// dropped. Each look is bounded by `timeout`; one that runs out says nothing about
/// the copy.
pub(super) async fn look(
    watches: &mut BTreeMap<String, CopyWatch>,
    placements: &BTreeMap<String, Placement>,
    providers: &BTreeMap<String, Arc<dyn Provider>>,
    conditions: &BTreeMap<String, Condition>,
    busy: &BTreeSet<&String>,
    timeout: Duration,
    clock: &Clock,
) {
    watches.retain(|workload, _| placements.contains_key(workload));
    let limit = Arc::new(Semaphore::new(AT_ONCE));
    let mut looks = JoinSet::new();
    for (workload, placement) in placements {
        let Some(deployment) = placement.deployment.clone() else {
            continue;
        };
        let answering = matches!(
            conditions.get(&placement.provider),
            Some(Condition::Healthy | Condition::Degraded { .. })
        );
        if busy.contains(workload) || !answering {
            continue;
        }
        let Some(provider) = providers.get(&placement.provider).cloned() else {
            continue;
        };
        let (limit, placement, clock) = (limit.clone(), placement.clone(), clock.clone());
        looks.spawn(async move {
            let _permit = limit.acquire_owned().await;
            let seen = match tokio::time::timeout(timeout, provider.inspect(&deployment)).await {
                Ok(Ok(state)) => Seen::of(&state),
                Ok(Err(error)) => Seen::Unknown {
                    detail: error.to_string(),
                },
                Err(_) => Seen::Unknown {
                    detail: format!("no answer within {timeout:?}"),
                },
            };
            (placement, seen, clock.now())
        });
    }
    while let Some(joined) = looks.join_next().await {
        let Ok((placement, seen, at)) = joined else {
            continue;
        };
        let watch = watches.entry(placement.workload.clone()).or_default();
        let was_unhealthy = watch.unhealthy_since.is_some()
            && watch.provider == placement.provider
            && watch.generation == placement.generation;
        if let Seen::Unhealthy { detail } = &seen
            && !was_unhealthy
        {
            tracing::warn!(workload = %placement.workload, provider = %placement.provider,
                generation = %placement.generation, "the workload's copy is unhealthy: {detail}");
        }
        if seen == Seen::Healthy && was_unhealthy {
            tracing::info!(workload = %placement.workload, provider = %placement.provider,
                "the workload's copy is healthy again");
        }
        watch.observe(&placement.provider, placement.generation, seen, at);
    }
}

/// Records the copies the providers' probes reported `lost` (stopped or removed by the
/// vendor): each one still the live copy of its workload is replaced at once, within the
/// replacement limit, instead of after the grace period.
pub(super) fn lost(
    watches: &mut BTreeMap<String, CopyWatch>,
    placements: &BTreeMap<String, Placement>,
    probes: &[ProbeResult],
    at: Timestamp,
) {
    for probe in probes {
        let provider = &probe.signal.provider;
        for copy in probe.report.iter().flat_map(|r| &r.lost) {
            let live = placements
                .get(&copy.workload)
                .is_some_and(|p| &p.provider == provider && p.generation == copy.generation);
            if !live {
                continue;
            }
            let seen = Seen::Lost {
                detail: format!(
                    "{provider} reports it lost (stopped or removed without lifeboat asking)"
                ),
            };
            let watch = watches.entry(copy.workload.clone()).or_default();
            // Told once per copy: the provider goes on reporting it until it is replaced,
            // and a copy held back by the replacement limit stays lost for a while.
            let told =
                watch.lost && &watch.provider == provider && watch.generation == copy.generation;
            if !told {
                tracing::warn!(workload = %copy.workload, %provider, generation = %copy.generation,
                    "the provider reports the workload's copy lost: it is replaced without a grace period");
            }
            watch.observe(provider, copy.generation, seen, at);
        }
    }
}
