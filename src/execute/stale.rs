//! Fencing after the fact: copies that must never serve again are retired.

use std::collections::{BTreeMap, BTreeSet};

use anyhow::Context;
use lifeboat_provider::{DeploymentRef, Generation};
use serde::Serialize;
use tokio::task::JoinSet;

use super::Inner;
use super::steps::orphan;

/// What [`super::Executor::retire_stale`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct StaleReport {
    /// Stale copies retired, with their provider.
    pub retired: Vec<(String, DeploymentRef)>,
    /// Orphans retired now that their provider answers again.
    pub orphans_retired: Vec<(String, DeploymentRef)>,
    /// Providers that could not be listed, and copies that could not be retired.
    pub errors: Vec<String>,
}

pub(crate) async fn retire_stale(inner: &Inner) -> anyhow::Result<StaleReport> {
    let timeout = inner.policy.step_timeout;
    let placements = inner.store.placements()?;
    // Copies of moves still in flight are newer than their placement on purpose.
    let mut in_flight: BTreeSet<(String, Generation)> = BTreeSet::new();
    for ev in inner.store.unfinished_evacuations()? {
        for mv in ev.plan.moves {
            in_flight.insert((mv.workload, mv.generation));
        }
    }
    let mut report = StaleReport::default();
    // A drill never adopts: copies made before owners existed are production's.
    let mut owners = vec![Some(&inner.owner)];
    if !inner.owner.is_drill() {
        owners.push(None);
    }
    // Every provider is listed at once: one that hangs costs its timeout once, not
    // once per provider before it, while the daemon waits to start watching.
    let mut listings = JoinSet::new();
    for (name, provider) in &inner.providers {
        for owner in &owners {
            let (name, provider, owner) = (name.clone(), provider.clone(), owner.cloned());
            listings.spawn(async move {
                let listed = tokio::time::timeout(timeout, provider.list_managed(owner.as_ref()));
                (name, listed.await)
            });
        }
    }
    let mut listed: BTreeMap<String, Vec<DeploymentRef>> = BTreeMap::new();
    while let Some(joined) = listings.join_next().await {
        let (name, outcome) = joined.context("a provider listing panicked")?;
        match outcome {
            Ok(Ok(copies)) => listed.entry(name).or_default().extend(copies),
            Ok(Err(e)) => report.errors.push(format!("{name}: {e}")),
            Err(_) => report
                .errors
                .push(format!("{name}: list-managed timed out")),
        }
    }
    for (name, provider) in &inner.providers {
        let copies = listed.remove(name).unwrap_or_default();
        for dep in copies {
            let Some(current) = placements.get(&dep.workload) else {
                continue;
            };
            let named = current
                .deployment
                .as_ref()
                .is_some_and(|d| d.handle == dep.handle && *name == current.provider);
            let stale = if dep.owner.is_none() {
                // Adopted from before owners: only the copy a placement names lives on.
                !named
            } else {
                dep.generation < current.generation
                    || (dep.generation == current.generation && *name != current.provider)
            };
            if !stale || in_flight.contains(&(dep.workload.clone(), dep.generation)) {
                continue;
            }
            match tokio::time::timeout(timeout, provider.retire(&dep)).await {
                Ok(Ok(())) => {
                    // It may have been an orphan too; it is gone either way.
                    inner.store.remove_orphan(name, &dep.handle)?;
                    report.retired.push((name.clone(), dep));
                }
                outcome => {
                    let reason = match outcome {
                        Ok(Err(e)) => e.to_string(),
                        _ => "retire timed out".to_owned(),
                    };
                    report.errors.push(orphan(inner, name, &dep, &reason)?);
                }
            }
        }
    }
    // Orphans are at providers that were lost, and may hang still: all at once too.
    let mut retires = JoinSet::new();
    for o in inner.store.orphans()? {
        let Some(provider) = inner.providers.get(&o.provider).cloned() else {
            continue;
        };
        retires.spawn(async move {
            let retired = tokio::time::timeout(timeout, provider.retire(&o.deployment)).await;
            (o, matches!(retired, Ok(Ok(()))))
        });
    }
    while let Some(joined) = retires.join_next().await {
        let (o, retired) = joined.context("an orphan's retire panicked")?;
        if retired {
            inner
                .store
                .remove_orphan(&o.provider, &o.deployment.handle)?;
            report.orphans_retired.push((o.provider, o.deployment));
        }
    }
    Ok(report)
}
