//! Removing what drills made, and only that.
//!
//! A drill is recorded in its store with its owner before it creates anything
//! ([`crate::store::DrillRun`]). Cleanup retires, on every provider, the copies that
//! carry that owner (found by `list_managed`) and those its journal names, with a
//! timeout on every call; the run is marked cleaned once a listing finds nothing left.
//! It never lists or retires by any other owner, so production copies and other
//! drills' copies are out of its reach by construction.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use jiff::Timestamp;
use lifeboat_provider::{DeploymentRef, Owner, Provider};

use crate::config::Config;
use crate::providers::{self, BuildOptions};
use crate::store::{DrillRun, Store};

/// How long one list or retire call of a cleanup may take.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(30);

/// The folder, below the installation's state folder, where drills keep their state.
pub const STATE_SUBDIR: &str = "drill";

/// What a cleanup did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Cleanup {
    /// The drills whose copies are all gone now.
    pub cleaned: Vec<String>,
    /// Copies found (by the drill's owner) and retired, with their provider.
    pub retired: Vec<(String, DeploymentRef)>,
    /// What is left, each as `provider: handle (why)`, with the drill it belongs to.
    pub left: Vec<String>,
}

impl Cleanup {
    /// Whether nothing of the drills is left.
    pub fn complete(&self) -> bool {
        self.left.is_empty()
    }

    /// One line for a human, or several when something is left.
    pub fn describe(&self) -> String {
        let mut out = format!(
            "cleanup: retired {} drill copies, {} drills cleaned",
            self.retired.len(),
            self.cleaned.len()
        );
        for left in &self.left {
            out.push_str(&format!("\n  left: {left}"));
        }
        out
    }
}

/// The configuration a drill of `config` runs with: the same providers and workloads,
/// its own state below the installation's.
pub fn drill_config(config: &Config) -> Config {
    let mut drill = config.clone();
    drill.state_dir = config.state_dir.join(STATE_SUBDIR);
    drill
}

/// Removes the copies of every drill of `store` that is not cleaned yet, on
/// `providers` (built for the drill's configuration).
pub async fn clean_runs(
    providers: &BTreeMap<String, Arc<dyn Provider>>,
    store: &Store,
    runs: &[DrillRun],
) -> anyhow::Result<Cleanup> {
    let recorded = store.recorded_deployments()?;
    let mut cleanup = Cleanup::default();
    for run in runs {
        let journaled: Vec<(String, DeploymentRef)> = recorded
            .iter()
            .filter(|(_, d)| d.owner.as_ref() == Some(&run.owner))
            .cloned()
            .collect();
        let left = clean_one(providers, run, journaled, &mut cleanup.retired).await;
        if left.is_empty() {
            store.drill_run_cleaned(&run.id, Timestamp::now())?;
            cleanup.cleaned.push(run.id.clone());
        } else {
            cleanup
                .left
                .extend(left.into_iter().map(|l| format!("drill {}: {l}", run.id)));
        }
    }
    Ok(cleanup)
}

/// Retires one drill's copies; returns what is left (or could not be checked).
async fn clean_one(
    providers: &BTreeMap<String, Arc<dyn Provider>>,
    run: &DrillRun,
    journaled: Vec<(String, DeploymentRef)>,
    retired: &mut Vec<(String, DeploymentRef)>,
) -> Vec<String> {
    let mut left = Vec::new();
    let mut done: BTreeSet<(String, String)> = BTreeSet::new();
    // What the providers list by the drill's owner is what exists (and is counted as
    // retired); what only the journal names may be gone already, but a provider that
    // cannot list may still retire it by handle.
    let mut todo: Vec<(String, DeploymentRef, bool)> = Vec::new();
    for (name, listed) in list_everywhere(providers, &run.owner).await {
        match listed {
            Ok(copies) => todo.extend(copies.into_iter().map(|c| (name.clone(), c, true))),
            Err(why) => left.push(format!("{name}: could not list its copies ({why})")),
        }
    }
    todo.extend(journaled.into_iter().map(|(name, dep)| (name, dep, false)));
    for (name, dep, listed) in todo {
        if !done.insert((name.clone(), dep.handle.clone())) {
            continue;
        }
        let Some(provider) = providers.get(&name) else {
            continue;
        };
        match call(provider.retire(&dep)).await {
            Ok(()) if listed => retired.push((name, dep)),
            Ok(()) => {}
            Err(why) => left.push(format!("{name}: {} ({why})", dep.handle)),
        }
    }
    // A deploy that was in flight when the drill died may land a copy late; the
    // listing after the retires is what says "nothing left".
    if left.is_empty() {
        for (name, listed) in list_everywhere(providers, &run.owner).await {
            match listed {
                Ok(copies) => left.extend(
                    copies
                        .iter()
                        .map(|c| format!("{name}: {} (still listed after retire)", c.handle)),
                ),
                Err(why) => left.push(format!("{name}: could not list its copies ({why})")),
            }
        }
    }
    left
}

/// Every provider's copies of `owner`, asked all at once (one provider that hangs
/// costs its timeout once), in the providers' order.
async fn list_everywhere(
    providers: &BTreeMap<String, Arc<dyn Provider>>,
    owner: &Owner,
) -> Vec<(String, Result<Vec<DeploymentRef>, String>)> {
    let mut listings = tokio::task::JoinSet::new();
    let mut names = BTreeMap::new();
    for (name, provider) in providers {
        let (provider, owner) = (provider.clone(), owner.clone());
        let task = listings.spawn(async move { call(provider.list_managed(Some(&owner))).await });
        names.insert(task.id(), name.clone());
    }
    let mut out = BTreeMap::new();
    while let Some(joined) = listings.join_next_with_id().await {
        let (id, listed) = match joined {
            Ok((id, listed)) => (id, listed),
            Err(e) => (e.id(), Err(format!("the listing failed: {e}"))),
        };
        if let Some(name) = names.remove(&id) {
            out.insert(name, listed);
        }
    }
    out.into_iter().collect()
}

async fn call<T>(
    future: impl std::future::Future<Output = Result<T, lifeboat_provider::ProviderError>>,
) -> Result<T, String> {
    match tokio::time::timeout(CALL_TIMEOUT, future).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err(format!("no answer within {CALL_TIMEOUT:?}")),
    }
}

/// Whether a drill of `config` runs right now (it holds the drill state's lock).
pub fn drill_running(config: &Config) -> bool {
    matches!(
        crate::store::writer_pid(&drill_config(config).state_dir),
        Ok(Some(_))
    )
}

/// `lifeboat drill --cleanup` and the daemon's start: removes what drills of `config`
/// that died left behind. `Ok(None)` when a drill is running right now (it holds the
/// drill state's lock, and cleans up after itself) or no drill ever ran.
pub async fn clean_up_dead_drills(
    config: &Config,
    build: &BuildOptions,
) -> anyhow::Result<Option<Cleanup>> {
    let config = drill_config(config);
    if !config.state_dir.join(crate::store::DB_FILE).exists() {
        return Ok(None);
    }
    let store = match Store::open(&config.state_dir) {
        Ok(store) => store,
        Err(e) if crate::store::is_locked(&e) => return Ok(None),
        Err(e) => return Err(e),
    };
    let runs = store.uncleaned_drill_runs()?;
    if runs.is_empty() {
        return Ok(Some(Cleanup::default()));
    }
    let providers = providers::build_all_with(&config, build)
        .await
        .context("building the providers to clean up after drills")?;
    clean_runs(&providers, &store, &runs).await.map(Some)
}
