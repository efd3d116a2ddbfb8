//! `lifeboat run`: the daemon. It finishes what a crashed predecessor left unfinished,
//! fences stale copies, places what is unplaced, then probes, decides and evacuates
//! until it is told to stop. One daemon per state folder (the store's lock).

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use jiff::Timestamp;
use rand::RngExt;
use tokio_util::sync::CancellationToken;

use crate::config::{Config, Mode};
use crate::controller::{self, Controller};
use crate::drill::scheduled::Scheduler;
use crate::execute::{Executor, Report};
use crate::providers::{self, BuildOptions};
use crate::store::Store;

/// Runs the daemon until `stop` is cancelled. An evacuation in flight when it is
/// cancelled is interrupted at a step boundary of the journal and resumed by the next
/// start.
pub async fn run(
    config: Arc<Config>,
    build: &BuildOptions,
    stop: CancellationToken,
) -> anyhow::Result<()> {
    std::fs::create_dir_all(&config.state_dir)
        .with_context(|| format!("creating the state folder {}", config.state_dir.display()))?;
    let store = Arc::new(Store::open(&config.state_dir)?);
    let owner = crate::installation::owner(&config)?;
    let providers = providers::build_all_with(&config, build).await?;
    let executor = Executor::new(
        owner.clone(),
        providers.clone(),
        crate::cutover::build(&config)?,
        store.clone(),
        config.policy.clone(),
        &controller::workloads(&config),
    );
    tracing::info!(
        installation = %owner,
        state = %config.state_dir.display(),
        providers = providers.len(),
        workloads = config.workloads.len(),
        mode = ?config.policy.mode,
        "lifeboat started"
    );

    for report in executor
        .resume()
        .await
        .context("resuming unfinished evacuations")?
    {
        log_report("resumed evacuation", &report);
    }
    let stale = executor
        .retire_stale()
        .await
        .context("fencing stale copies")?;
    for (provider, copy) in &stale.retired {
        tracing::info!(%provider, workload = %copy.workload, generation = %copy.generation, "retired a stale copy");
    }
    for error in &stale.errors {
        tracing::warn!("{error}");
    }
    // A drill that died (killed, its machine lost) left copies only it owned; they go
    // now, before they can be mistaken for capacity in use.
    match crate::drill::cleanup::clean_up_dead_drills(&config, build).await {
        Ok(Some(cleanup)) if !cleanup.retired.is_empty() || !cleanup.complete() => {
            tracing::info!("{}", cleanup.describe());
        }
        Ok(_) => {}
        Err(e) => tracing::warn!("cleaning up after dead drills: {e:#}"),
    }

    let mut drills = Scheduler::new(&config, build, Timestamp::now());
    let mut controller = Controller::new(config.clone(), providers, store.clone(), executor)?;
    let mut last_plan = None;
    loop {
        let round = controller.round().await?;
        let plan = controller.plan(&round.decision)?;
        let summary = Some((plan.moves.clone(), plan.stranded.clone()));
        let acting = match config.policy.mode {
            Mode::Auto => !plan.moves.is_empty(),
            Mode::Confirm | Mode::Observe => {
                if summary != last_plan && !(plan.moves.is_empty() && plan.stranded.is_empty()) {
                    tracing::warn!(
                        mode = ?config.policy.mode,
                        moves = ?plan.moves.iter().map(|m| (&m.workload, &m.targets)).collect::<Vec<_>>(),
                        "a plan is waiting; not acting in this mode"
                    );
                }
                false
            }
        };
        if summary != last_plan {
            for stranded in &plan.stranded {
                tracing::error!(workload = %stranded.workload, reason = %stranded.reason, "workload stranded: nowhere to go");
            }
            last_plan = summary;
        }
        if acting {
            // A drill never overlaps an evacuation: it stops and cleans up first.
            drills.cancel(&store, "an evacuation starts").await;
            // The evacuation runs to its end (or to the stop signal); the journal lets
            // the next start finish what a stop interrupted.
            tokio::select! {
                report = controller.executor().execute(&plan) => log_report("evacuation", &report?),
                _ = stop.cancelled() => {
                    tracing::info!("stopping during an evacuation; the next start resumes it");
                    break;
                }
            }
        }
        drills.tick(&config, &store, Timestamp::now()).await;
        let pause = jittered(config.policy.probe_interval);
        tokio::select! {
            _ = tokio::time::sleep(pause) => {}
            _ = stop.cancelled() => break,
        }
    }
    drills.shut_down(&store).await;
    tracing::info!("lifeboat stopped");
    Ok(())
}

/// The probe interval plus up to 10 % random jitter, so many controllers (or many
/// providers behind one API) are not probed in lockstep.
fn jittered(interval: Duration) -> Duration {
    let jitter = interval.mul_f64(rand::rng().random_range(0.0..0.1));
    interval + jitter
}

fn log_report(what: &str, report: &Report) {
    for m in &report.moves {
        // Time the target's adapter spent on its own (a cold-standby power-on), apart
        // from the time to healthy it is part of.
        let phases: Vec<String> = m
            .phases
            .iter()
            .map(|t| format!("{} {:.1}s", t.phase, t.duration.as_secs_f64()))
            .collect();
        tracing::info!(evacuation = %report.evacuation, workload = %m.workload, outcome = ?m.outcome,
            time_to_healthy = ?m.time_to_healthy, phases = %phases.join(", "), "{what}: move finished");
    }
    for s in &report.stranded {
        tracing::error!(evacuation = %report.evacuation, workload = %s.workload, reason = %s.reason, "{what}: stranded");
    }
}
