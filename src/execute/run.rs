//! One evacuation: a task per move, each trying its targets in order.

use std::collections::BTreeMap;
use std::sync::Arc;

use anyhow::Context;
use lifeboat_provider::{DeploymentRef, Provider, Timing};
use tokio::sync::OwnedSemaphorePermit;
use tokio::task::JoinSet;
use tokio::time::Instant;

use super::concurrency::{Permits, Ticket, WaveGate};
use super::resume::Progress;
use super::steps::{TargetResult, TargetRun, orphan};
use super::{Inner, MoveLog, MoveReport, Report};
use crate::model::{Move, Step};
use crate::store::{Evacuation, Outcome, Status};

/// Runs (or resumes, with the journal's `progress`) every move of `ev` and marks the
/// evacuation finished. Dropping the future aborts every move where it stands; the
/// journal then holds what a later [`super::Executor::resume`] needs.
pub(crate) async fn run_evacuation(
    inner: Arc<Inner>,
    ev: Evacuation,
    mut progress: BTreeMap<String, Progress>,
) -> anyhow::Result<Report> {
    let ev = Arc::new(ev);
    let gate = WaveGate::new(ev.plan.moves.iter().map(|m| m.wave));
    let start = Instant::now();
    let mut reports: Vec<Option<MoveReport>> = vec![None; ev.plan.moves.len()];
    let mut tasks = JoinSet::new();
    // Spawned in plan order (waves first); the semaphores are fair, so earlier waves get
    // their permits first.
    for (index, mv) in ev.plan.moves.iter().enumerate() {
        let ticket = Ticket::new(&gate, mv.wave);
        if let Some(outcome) = inner.store.outcome(&ev.id, &mv.workload)? {
            reports[index] = Some(report(&ev, mv, outcome, None, None, Vec::new()));
            continue;
        }
        let p = progress.remove(&mv.workload).unwrap_or_default();
        // Taken here, in plan order, rather than inside the task: tasks start in no
        // particular order, and the plan's order (waves, deadline, priority) is the
        // order moves get to run in when the parallelism limit holds some back.
        let global = inner.limits.global().await;
        let (inner, ev) = (inner.clone(), ev.clone());
        tasks.spawn(async move {
            let report = run_move(&inner, &ev, index, ticket, global, p, start).await;
            (index, report)
        });
    }
    while let Some(joined) = tasks.join_next().await {
        let (index, report) = joined.context("a move task panicked")?;
        // A store failure stops everything: returning drops the other tasks.
        reports[index] = Some(report?);
    }
    inner
        .store
        .finish_evacuation(&ev.id, inner.options.clock.now())
        .context("marking the evacuation finished")?;
    Ok(Report {
        evacuation: ev.id.clone(),
        moves: reports.into_iter().flatten().collect(),
        stranded: ev.plan.stranded.clone(),
    })
}

fn report(
    ev: &Evacuation,
    mv: &Move,
    outcome: Outcome,
    time_to_healthy: Option<std::time::Duration>,
    time_to_cutover: Option<std::time::Duration>,
    phases: Vec<Timing>,
) -> MoveReport {
    MoveReport {
        workload: mv.workload.clone(),
        from: ev
            .sources
            .get(&mv.workload)
            .map(|s| s.provider.clone())
            .or_else(|| mv.from.clone()),
        outcome,
        time_to_healthy,
        time_to_cutover,
        phases,
    }
}

async fn run_move(
    inner: &Arc<Inner>,
    ev: &Evacuation,
    index: usize,
    mut ticket: Ticket,
    global: OwnedSemaphorePermit,
    progress: Progress,
    start: Instant,
) -> anyhow::Result<MoveReport> {
    let mv = &ev.plan.moves[index];
    let log = MoveLog {
        inner: inner.clone(),
        evacuation: ev.id.clone(),
        workload: mv.workload.clone(),
        generation: mv.generation,
    };
    let finish = |outcome: Outcome, healthy, cutover, phases| -> anyhow::Result<MoveReport> {
        inner
            .store
            .record_outcome(&ev.id, &mv.workload, &outcome, inner.options.clock.now())?;
        Ok(report(ev, mv, outcome, healthy, cutover, phases))
    };
    let Some(workload) = inner.workloads.get(&mv.workload) else {
        let reason = format!("workload {:?} is not in the configuration", mv.workload);
        return finish(Outcome::Stranded { reason }, None, None, Vec::new());
    };
    // Copies left on targets given up before a crash: retire them again (idempotent).
    for (target, dep) in &progress.abandoned_copies {
        clean_up(inner, mv, target, Some(dep)).await?;
    }
    let mut permits = Permits {
        global: Some(global),
        provider: None,
    };
    let mut errors = Vec::new();
    for target in mv
        .targets
        .iter()
        .filter(|t| !progress.abandoned.contains(t))
    {
        let Some(provider) = inner.providers.get(target) else {
            let detail = format!("provider {target:?} is not configured");
            log.write(
                Step::Deploy,
                0,
                Status::Abandoned,
                target,
                None,
                Some(detail.clone()),
            )
            .await?;
            errors.push(format!("{target}: {detail}"));
            continue;
        };
        permits.provider = inner.limits.provider(target).await;
        let run = TargetRun {
            inner,
            log: &log,
            mv,
            workload,
            source: ev.sources.get(&mv.workload),
            target,
            provider,
            done: progress.done_at(target),
            deployment: progress.deployment_at(target),
            start,
            ticket: &mut ticket,
            permits: &mut permits,
        };
        let result = run.run().await?;
        permits.provider = None;
        match result {
            TargetResult::Finished {
                outcome,
                healthy_after,
                cutover_after,
                phases,
            } => {
                if let Outcome::Superseded { .. } = outcome {
                    // The copy this move made is stale now; it must never serve.
                    clean_up(inner, mv, target, progress.deployment_at(target).as_ref()).await?;
                }
                return finish(outcome, healthy_after, cutover_after, phases);
            }
            TargetResult::Failed { step, error, copy } => {
                tracing::warn!(workload = %mv.workload, %target, ?step, %error, "giving up target");
                let detail = Some(error.to_string());
                log.write(step, 0, Status::Abandoned, target, copy.clone(), detail)
                    .await?;
                clean_up(inner, mv, target, copy.as_ref()).await?;
                errors.push(format!("{target}: {error}"));
            }
        }
    }
    let reason = if errors.is_empty() {
        "every target had been given up before".to_owned()
    } else {
        format!("no target worked: {}", errors.join("; "))
    };
    finish(Outcome::Stranded { reason }, None, None, Vec::new())
}

/// Retires this move's copy on a target given up: the known copy, or whatever
/// `list_managed` shows of (workload, generation) when a deploy may have gone through
/// without an answer. A copy that cannot be retired is recorded as an orphan.
async fn clean_up(
    inner: &Inner,
    mv: &Move,
    target: &str,
    known: Option<&DeploymentRef>,
) -> anyhow::Result<()> {
    let Some(provider) = inner.providers.get(target) else {
        return Ok(());
    };
    let timeout = inner.policy.step_timeout;
    let copies = match known {
        Some(dep) => vec![dep.clone()],
        None => {
            match tokio::time::timeout(timeout, provider.list_managed(Some(&inner.owner))).await {
                Ok(Ok(all)) => all
                    .into_iter()
                    .filter(|d| d.workload == mv.workload && d.generation == mv.generation)
                    .collect(),
                // Nothing known and nothing listable: a later retire_stale finds it.
                _ => Vec::new(),
            }
        }
    };
    for dep in copies {
        if let Err(reason) = retire_once(provider.as_ref(), &dep, timeout).await {
            orphan(inner, target, &dep, &reason)?;
        }
    }
    Ok(())
}

async fn retire_once(
    provider: &dyn Provider,
    dep: &DeploymentRef,
    timeout: std::time::Duration,
) -> Result<(), String> {
    match tokio::time::timeout(timeout, provider.retire(dep)).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err(format!("retire did not answer within {timeout:?}")),
    }
}
