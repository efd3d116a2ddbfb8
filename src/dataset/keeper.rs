//! Keeping every dataset's warm standby, once a round: deploy it where
//! [`super::standby_target`] says, retire it when it is no longer the right one, and read
//! its lag from the primary (a signal: an alert when it passes the `rpo`).
//!
//! Never blocks the round on a seed: a deploy returns once the provider accepted it, and
//! the next rounds look at the copy until it streams. A dataset whose workload is moving
//! is left alone until the move ends (its standby is becoming the primary).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use lifeboat_provider::{DeployRequest, DeploymentState, Owner, Provider};

use super::{
    DatasetState, Datasets, LagReading, Member, StandbyCopy, as_standby_of, standby_name,
    standby_target,
};
use crate::config::Config;
use crate::store::Store;

/// What [`keep`] works with.
pub struct Keeping<'a> {
    /// The configuration (workloads, providers, vendors).
    pub config: &'a Config,
    /// The providers, by name, as the controller calls them.
    pub providers: &'a BTreeMap<String, Arc<dyn Provider>>,
    /// Whose copies the standbys are.
    pub owner: &'a Owner,
    /// Placements, in-flight moves, and the datasets' last states.
    pub store: &'a Store,
    /// The methods.
    pub datasets: &'a Datasets,
    /// Providers being left now: no standby goes there, and one there is replaced.
    pub leaving: &'a BTreeSet<String>,
    /// Whether a standby may be deployed or retired now (not while the kill switch is
    /// thrown: the lag is still read).
    pub may_deploy: bool,
    /// Each provider call's bound (a deploy, an inspect, a retire).
    pub timeout: Duration,
    /// Each read of a member's lag: short, so a member that hangs does not hold the
    /// round up (the probes' bound).
    pub read_timeout: Duration,
    /// The round's time.
    pub now: Timestamp,
}

/// One round of keeping: every dataset's state after it, also stored. Errors only when
/// the store fails; what goes wrong with a provider or a member is the dataset's
/// `problem`, and its alert is logged when it starts and when it ends.
pub async fn keep(k: &Keeping<'_>) -> anyhow::Result<BTreeMap<String, DatasetState>> {
    let placements = k.store.placements()?;
    let moving: BTreeSet<String> = (k.store.unfinished_evacuations()?.into_iter())
        .flat_map(|ev| ev.plan.moves.into_iter().map(|m| m.workload))
        .collect();
    let before = k.store.datasets()?;
    let mut after = BTreeMap::new();
    for w in &k.config.workloads {
        let Some(data) = &w.data else { continue };
        let (method, shipping) = (k.datasets.method(&w.name), k.datasets.shipping(&w.name));
        if method.is_none() && shipping.is_none() {
            continue;
        }
        let mut state = before.get(&w.name).cloned().unwrap_or_else(|| {
            DatasetState::new(&w.name, data.method.as_str(), data.rpo, data.synchronous)
        });
        let alerted = state.alert();
        if moving.contains(&w.name) {
            after.insert(w.name.clone(), state);
            continue;
        }
        let Some(placement) = placements.get(&w.name) else {
            state.primary = None;
            state.problem = Some("not placed yet".into());
            after.insert(w.name.clone(), state);
            continue;
        };
        let primary_at = placement
            .deployment
            .as_ref()
            .and_then(|d| d.endpoint.clone());
        state.primary = Some(Member {
            provider: placement.provider.clone(),
            generation: placement.generation,
            endpoint: primary_at.clone(),
        });
        state.problem = None;
        let Some(method) = method else {
            if let (Some(shipping), Some(primary_at)) = (shipping, &primary_at) {
                ship(k, shipping, primary_at, placement.generation, &mut state).await;
            } else {
                state.problem = Some("the primary's endpoint is not known yet".into());
            }
            finish(k, &mut state, alerted, &mut after);
            continue;
        };
        let target = standby_target(k.config, w, &placement.provider, k.leaving);
        let next = placement.generation.next();

        // The standby of the last round may be the primary now (a move promoted it), or
        // belong to an older primary, or sit where it should not any more.
        if let Some(sb) = state.standby.take() {
            let promoted = sb.deployment.generation == placement.generation
                && sb.provider == placement.provider;
            // Another owner's standby (an earlier drill's record) is not this one's to
            // keep, nor to retire.
            let mine = sb.deployment.owner.as_ref() == Some(k.owner);
            let keep = sb.deployment.generation == next
                && Some(sb.provider.as_str()) == target
                && sb.deployment.owner.as_ref() == Some(k.owner);
            // While paused, nothing is retired (nor deployed): the record stays.
            if keep || !k.may_deploy {
                state.standby = Some(sb);
            } else if mine && !promoted {
                retire(k, &sb).await;
            }
        }
        let Some(primary_at) = primary_at else {
            state.problem = Some("the primary's endpoint is not known yet".into());
            finish(k, &mut state, alerted, &mut after);
            continue;
        };
        if state.standby.is_none() && !k.may_deploy {
            state.problem =
                Some("paused: no standby is deployed while the kill switch is on".into());
        } else if state.standby.is_none() {
            match target {
                None => {
                    state.problem = Some(format!(
                        "no provider at another vendor than {}'s to keep a standby on",
                        placement.provider
                    ));
                }
                Some(target) => match deploy(k, w, target, &primary_at, next).await {
                    Ok(sb) => state.standby = Some(sb),
                    Err(why) => state.problem = Some(why),
                },
            }
        }
        state.lag = None;
        if let Some(sb) = &mut state.standby {
            match look(k, sb).await {
                Ok(true) => {
                    let read =
                        tokio::time::timeout(k.read_timeout, method.lag(&primary_at, &sb.stream));
                    match read.await {
                        Ok(Ok(Some(lag))) => {
                            if data.synchronous && !lag.synchronous {
                                // Given once the standby streams, never before: a primary
                                // waiting for an absent standby takes no write at all.
                                let required =
                                    method.require_standby(&primary_at, Some(&sb.stream));
                                match tokio::time::timeout(k.timeout, required).await {
                                    Ok(Ok(())) => {}
                                    Ok(Err(e)) => {
                                        state.problem = Some(format!("requiring the standby: {e}"));
                                    }
                                    Err(_) => {
                                        state.problem =
                                            Some("requiring the standby timed out".into());
                                    }
                                }
                            }
                            state.lag = Some(LagReading {
                                bytes: lag.bytes,
                                seconds: lag.seconds,
                                synchronous: lag.synchronous,
                                at: k.now,
                            });
                        }
                        Ok(Ok(None)) => {
                            state.problem =
                                Some(format!("the standby on {} is not streaming", sb.provider));
                        }
                        Ok(Err(e)) => state.problem = Some(format!("reading the lag: {e}")),
                        Err(_) => state.problem = Some("reading the lag timed out".into()),
                    }
                }
                Ok(false) => {
                    state.problem = Some(format!("the standby on {} is being seeded", sb.provider));
                }
                Err(why) => {
                    state.problem = Some(why);
                    if k.may_deploy
                        && let Some(sb) = state.standby.take()
                    {
                        retire(k, &sb).await;
                    }
                }
            }
        }
        finish(k, &mut state, alerted, &mut after);
    }
    k.store.put_datasets(&after, &moving, k.now)?;
    Ok(after)
}

/// Marks the protection window and logs an alert that starts or ends.
fn finish(
    k: &Keeping<'_>,
    state: &mut DatasetState,
    alerted: Option<String>,
    after: &mut BTreeMap<String, DatasetState>,
) {
    if state.protected() {
        state.unprotected_since = None;
    } else if state.unprotected_since.is_none() {
        state.unprotected_since = Some(k.now);
    }
    match (alerted.is_some(), state.alert()) {
        (false, Some(alert)) => tracing::warn!(workload = %state.workload, "{alert}"),
        (true, None) => {
            tracing::info!(workload = %state.workload, "the data is within its rpo again")
        }
        _ => {}
    }
    after.insert(state.workload.clone(), state.clone());
}

/// A snapshot dataset's round: the snapshot that finished is the one to restore from
/// now, and the next starts once the last is `every` old. Snapshots go on while the kill
/// switch is thrown (they read the primary, they move nothing) and while the primary's
/// provider is being left (a last snapshot is worth the most then).
async fn ship(
    k: &Keeping<'_>,
    shipping: &Arc<super::Shipping>,
    primary: &lifeboat_provider::Endpoint,
    generation: lifeboat_provider::Generation,
    state: &mut DatasetState,
) {
    use super::shipping::Progress;
    // A snapshot of an earlier primary restores as well as ever, but its age now says
    // how much the current one would lose.
    let due = (state.snapshot.as_ref()).is_none_or(|s| s.age(k.now) >= shipping.every());
    let bound = k.timeout.max(shipping.every());
    match (shipping.round(&state.workload, primary, generation, due, bound)).await {
        Progress::Shipped(snapshot) => {
            tracing::info!(workload = %state.workload, id = %snapshot.id, size = ?snapshot.size, "snapshot shipped");
            state.snapshot = Some(snapshot);
            state.snapshot_failed = None;
        }
        Progress::Failed(why) => {
            tracing::warn!(workload = %state.workload, %why, "the snapshot failed");
            state.snapshot_failed = Some(why);
        }
        Progress::Running | Progress::Idle => {}
    }
    // Said until a snapshot succeeds again, not only in the round that saw it fail.
    if let Some(why) = &state.snapshot_failed {
        state.problem = Some(format!("the last snapshot failed: {why}"));
    }
    state.lag = state.snapshot.as_ref().map(|s| LagReading {
        bytes: 0,
        seconds: s.age(k.now).as_secs_f64(),
        synchronous: false,
        at: k.now,
    });
}

async fn deploy(
    k: &Keeping<'_>,
    w: &crate::config::WorkloadConfig,
    target: &str,
    primary: &lifeboat_provider::Endpoint,
    generation: lifeboat_provider::Generation,
) -> Result<StandbyCopy, String> {
    let provider = k
        .providers
        .get(target)
        .ok_or_else(|| format!("{target} is not a configured provider"))?;
    let mut spec = crate::workload::spec(w);
    super::name_member(&mut spec, generation, k.owner);
    as_standby_of(&mut spec, primary, generation);
    let req = DeployRequest {
        workload: spec,
        generation,
        owner: k.owner.clone(),
    };
    match tokio::time::timeout(k.timeout, provider.deploy(&req)).await {
        Ok(Ok(deployment)) => {
            tracing::info!(workload = %w.name, provider = target, %generation, "standby deployed: seeding from {primary}");
            Ok(StandbyCopy {
                provider: target.to_owned(),
                deployment,
                since: k.now,
                stream: standby_name(&w.name, generation),
            })
        }
        Ok(Err(e)) => Err(format!("deploying the standby on {target}: {e}")),
        Err(_) => Err(format!("deploying the standby on {target} timed out")),
    }
}

/// Whether the standby is healthy (its endpoint noted); `Err` when it failed or is
/// gone, so it is replaced.
async fn look(k: &Keeping<'_>, sb: &mut StandbyCopy) -> Result<bool, String> {
    let Some(provider) = k.providers.get(&sb.provider) else {
        return Err(format!("{} is not a configured provider", sb.provider));
    };
    match tokio::time::timeout(k.timeout, provider.inspect(&sb.deployment)).await {
        Ok(Ok(DeploymentState::Healthy { endpoint })) => {
            sb.deployment.endpoint = Some(endpoint);
            Ok(true)
        }
        Ok(Ok(DeploymentState::Pending { .. } | DeploymentState::Running { .. })) => Ok(false),
        Ok(Ok(DeploymentState::Failed { reason })) => {
            Err(format!("the standby on {} failed: {reason}", sb.provider))
        }
        Ok(Ok(DeploymentState::Gone)) => Err(format!("the standby on {} is gone", sb.provider)),
        // Not answering says nothing about the copy: look again next round.
        Ok(Err(_)) | Err(_) => Ok(false),
    }
}

async fn retire(k: &Keeping<'_>, sb: &StandbyCopy) {
    let Some(provider) = k.providers.get(&sb.provider) else {
        return;
    };
    match tokio::time::timeout(k.timeout, provider.retire(&sb.deployment)).await {
        Ok(Ok(())) => {
            tracing::info!(workload = %sb.deployment.workload, provider = %sb.provider, "standby retired")
        }
        // A standby is newer than its placement, so stale fencing leaves it; the drill's
        // or the daemon's cleanup of its owner's copies finds it.
        _ => {
            tracing::warn!(workload = %sb.deployment.workload, provider = %sb.provider, "the old standby could not be retired now")
        }
    }
}
