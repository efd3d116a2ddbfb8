//! `lifeboat run`: the daemon. It finishes what a crashed predecessor left unfinished,
//! fences stale copies, places what is unplaced, then probes, decides and evacuates
//! until it is told to stop. One daemon per state folder (the store's lock).

mod copies;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use rand::RngExt;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::api::{ApiState, Heartbeat};
use crate::clock::Clock;
use crate::config::Config;
use crate::control::{Control, Verdict};
use crate::controller::{self, Controller, Round};
use crate::deadline;
use crate::decide::Decision;
use crate::drill::scheduled::{DrillRequest, ScheduledResult, Scheduler};
use crate::execute::{ExecOptions, Executor, Report};
use crate::metrics::Metrics;
use crate::model::{Condition, Plan};
use crate::notify::{Event, Notifier};
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
    let control = Control::new(store.clone())?;
    let executor = executor(
        &config,
        owner.clone(),
        &providers,
        &store,
        &control,
        Clock::system(),
    )?;
    let metrics = Arc::new(Metrics::new());
    let heartbeat = Arc::new(Heartbeat::default());
    let token = crate::api::auth::daemon_token(&config, &config.state_dir)?;
    let api_state = Arc::new(ApiState {
        config: config.clone(),
        store: store.clone(),
        control: control.clone(),
        metrics: metrics.clone(),
        heartbeat: heartbeat.clone(),
    });
    let api = crate::api::serve(api_state, token, stop.clone()).await?;
    let notifier = {
        let metrics = metrics.clone();
        let options = crate::notify::Options {
            observe: Some(Arc::new(move |webhook, delivery| {
                metrics.notification(webhook, delivery)
            })),
            ..crate::notify::Options::default()
        };
        Notifier::from_config(&config, &owner.installation, options)?
    };
    let parts = Parts {
        config,
        store,
        providers,
        executor,
        control,
        metrics,
        heartbeat,
        notifier,
    };
    let ended = reconcile(parts, build, &mut Standalone, &stop).await;
    api.stopped().await;
    ended.map(|_| ())
}

/// The executor a daemon acts through: `config`'s cutover and policy, over
/// `providers` and `store`, for `owner`, holding every step while `control`'s kill
/// switch is thrown, stamping and deciding by `clock`.
pub fn executor(
    config: &Config,
    owner: lifeboat_provider::Owner,
    providers: &BTreeMap<String, Arc<dyn lifeboat_provider::Provider>>,
    store: &Arc<Store>,
    control: &Control,
    clock: Clock,
) -> anyhow::Result<Executor> {
    Ok(Executor::new(
        owner,
        providers.clone(),
        crate::cutover::build(config)?,
        store.clone(),
        config.policy.clone(),
        &controller::workloads(config),
    )
    .with_options(ExecOptions {
        pause: control.switch(),
        clock,
        datasets: crate::dataset::Datasets::build(config, config.policy.step_timeout)?,
        ..ExecOptions::default()
    }))
}

/// What the loop runs on: one configuration, its store, adapters and executor, and
/// the operator's and the monitoring's handles on it.
pub struct Parts {
    /// The configuration.
    pub config: Arc<Config>,
    /// Its store (this process holds its lock).
    pub store: Arc<Store>,
    /// Its providers' adapters.
    pub providers: BTreeMap<String, Arc<dyn lifeboat_provider::Provider>>,
    /// The executor over them (with the kill switch of `control`).
    pub executor: Executor,
    /// The kill switch and approvals.
    pub control: Control,
    /// Where the loop records what it sees.
    pub metrics: Arc<Metrics>,
    /// What `/readyz` reads.
    pub heartbeat: Arc<Heartbeat>,
    /// The webhooks.
    pub notifier: Notifier,
}

/// Why [`reconcile`] returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    /// `stop` was cancelled.
    Stopped,
    /// The host said the configuration changed: build new [`Parts`] and go on.
    Reload,
}

/// What the host of the loop says happened outside it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// Something bears on the decisions (a Notice): start the next round now.
    Wake,
    /// The configuration changed: end the loop with [`Ended::Reload`].
    Reload,
}

/// Where the loop runs: a standalone process ([`Standalone`]) or a cluster, whose
/// resources bring notices and configuration in and show state in their status.
/// The loop calls these at its edges; every method but [`Host::changed`] may fail,
/// which ends the loop with that error (a lost lease, a store gone).
#[async_trait::async_trait]
pub trait Host: Send {
    /// Before each round: bring in what the surroundings say (the cluster's Notices),
    /// and make sure this daemon may still act.
    async fn before_round(&mut self, _store: &Store) -> anyhow::Result<()> {
        Ok(())
    }

    /// After each round: show what it found.
    async fn after_round(&mut self, _round: &Round, _store: &Store) -> anyhow::Result<()> {
        Ok(())
    }

    /// Just before an evacuation starts, with the departures that caused it: the last
    /// chance to refuse (this replica no longer leads).
    async fn evacuation_starts(
        &mut self,
        _plan: &Plan,
        _decision: &Decision,
    ) -> anyhow::Result<()> {
        Ok(())
    }

    /// An evacuation (started, or resumed at start) finished.
    async fn evacuation_finished(&mut self, _report: &Report) -> anyhow::Result<()> {
        Ok(())
    }

    /// The drills the surroundings ask for (a cluster's `Drill` resources) beside the
    /// config's, when they changed since the last call; `None` when they did not (by
    /// default, there are none).
    fn drill_requests(&mut self) -> Option<Vec<DrillRequest>> {
        None
    }

    /// A drill the daemon ran ended (or was cancelled): show its result.
    async fn drill_finished(&mut self, _result: &ScheduledResult) -> anyhow::Result<()> {
        Ok(())
    }

    /// Resolves when something outside changed; never, by default. Must be cancel
    /// safe: the loop waits on it beside its timers and drops it each round.
    async fn changed(&mut self) -> Change {
        std::future::pending().await
    }
}

/// `lifeboat run` on its own: the config file is the whole configuration, and the
/// API the whole surface.
pub struct Standalone;

#[async_trait::async_trait]
impl Host for Standalone {}

/// The daemon's loop over `parts` until `stop` (or a [`Change::Reload`] from `host`):
/// finishes what a crashed predecessor left, fences stale copies, cleans up after dead
/// drills, then probes, decides, plans and evacuates every round, watching the
/// workloads' copies and running the scheduled drills, with evacuations running beside
/// the rounds.
pub async fn reconcile(
    parts: Parts,
    build: &BuildOptions,
    host: &mut dyn Host,
    stop: &CancellationToken,
) -> anyhow::Result<Ended> {
    let Parts {
        config,
        store,
        providers,
        executor,
        control,
        metrics,
        heartbeat,
        notifier,
    } = parts;
    let owner = executor.owner().clone();
    let clock = executor.clock().clone();
    // Three intervals (and their probes) without a round means the loop is stuck.
    metrics.leading(true);
    heartbeat.expect_every((config.policy.probe_interval + config.policy.probe_timeout) * 3);
    let mut steps = executor.subscribe();
    let step_metrics = metrics.clone();
    tokio::spawn(async move {
        loop {
            match steps.recv().await {
                Ok(event) => step_metrics.step(&event),
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                Err(tokio::sync::broadcast::error::RecvError::Closed) => break,
            }
        }
    });
    tracing::info!(
        installation = %owner,
        state = %config.state_dir.display(),
        providers = providers.len(),
        workloads = config.workloads.len(),
        mode = ?config.policy.mode,
        "lifeboat started"
    );
    if let Some(pause) = control.paused() {
        tracing::warn!(reason = %pause.reason, since = %pause.since, "paused: no step starts until `lifeboat resume`");
    }

    for report in executor
        .resume()
        .await
        .context("resuming unfinished evacuations")?
    {
        log_report("resumed evacuation", &report);
        notifier.send(&Event::evacuation_finished(&report));
        host.evacuation_finished(&report).await?;
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

    let mut drills = Scheduler::new(&config, build, clock.now());
    let watched = providers.clone();
    let mut controller =
        Controller::new(config.clone(), providers, store.clone(), executor)?.remembering()?;
    store.daemon_started(std::process::id(), clock.now())?;
    // The watch over the workloads' copies, kept across restarts: a grace period under
    // way goes on, and the replacement limit still counts what the last daemon did.
    let mut watches = store.copy_watches()?;
    let patience = config.policy.patience();
    let mut limited_told: BTreeSet<String> = BTreeSet::new();
    let mut last_plan = None;
    let mut last_schedules: Vec<deadline::Schedule> = Vec::new();
    let mut drills_unread: Option<String> = None;
    // What webhooks were last told, so each change is told once: notices by id (those
    // in force at start are not news), and the workloads known to be stranded.
    let mut notices_told: BTreeMap<i64, String> = (store.notices(true)?.into_iter())
        .map(|n| (n.id, n.notice.scope.to_string()))
        .collect();
    let mut stranded_told: BTreeSet<String> = BTreeSet::new();
    // Evacuations run beside the loop, which goes on probing and deciding: a second
    // vendor lost mid-evacuation is seen within its confirmations, the moves headed
    // there fall through, and the workloads it held are planned again.
    let mut running: JoinSet<anyhow::Result<Report>> = JoinSet::new();
    let mut moving: BTreeMap<tokio::task::Id, BTreeSet<String>> = BTreeMap::new();
    let mut ended = Ended::Stopped;
    let (leaving, leaving_now) = tokio::sync::watch::channel(BTreeSet::new());
    let _keeping = (!controller.executor().datasets().is_empty()).then(|| {
        tokio_util::task::AbortOnDropHandle::new(tokio::spawn(keep_datasets(
            controller.dataset_keeper(),
            leaving_now,
            metrics.clone(),
            config.policy.probe_interval,
        )))
    });
    loop {
        host.before_round(&store).await?;
        let round = controller.round().await?;
        let notices = store.notices(true)?;
        metrics.round(&round.probes, &round.conditions, &notices, clock.now());
        heartbeat.beat();
        store.daemon_round(clock.now())?;
        for (provider, from, to) in &round.changes {
            // A first sight of a healthy provider is no news, nor is a new reason for
            // the same condition (a degraded probe's message).
            let news = match from {
                Some(from) => from.kind() != to.kind(),
                None => *to != Condition::Healthy,
            };
            if news {
                notifier.send(&Event::ConditionChanged {
                    provider: provider.clone(),
                    from: from.clone(),
                    to: to.clone(),
                });
            }
        }
        tell_notices(&notifier, &notices, &mut notices_told);
        host.after_round(&round, &store).await?;
        controller.executor().set_departing(
            (round.decision.departures.iter())
                .map(|d| d.provider.clone())
                .collect(),
        );
        // A workload already moving is its evacuation's business; the next round plans
        // it again if it landed somewhere being left.
        let busy: BTreeSet<&String> = moving.values().flatten().collect();
        let placements = store.placements()?;
        copies::lost(&mut watches, &placements, &round.probes, clock.now());
        copies::look(
            &mut watches,
            &placements,
            &watched,
            &round.conditions,
            &busy,
            config.policy.probe_timeout,
            &clock,
        )
        .await;
        let now_leaving: BTreeSet<String> = (round.decision.departures.iter())
            .map(|d| d.provider.clone())
            .collect();
        leaving.send_if_modified(|was| {
            let changed = *was != now_leaving;
            *was = now_leaving;
            changed
        });
        let mut assessment = crate::watch::assess(&watches, &patience, clock.now());
        // A moving workload's old copy is not looked at any more: its move decides.
        assessment.replace.retain(|w, _| !busy.contains(w));
        assessment.limited.retain(|w, _| !busy.contains(w));
        for (workload, (until, replacements)) in &assessment.limited {
            if limited_told.insert(workload.clone()) {
                tracing::error!(%workload, replacements, %until,
                    "the workload's copy is unhealthy and was replaced too often already: left as it is");
                notifier.send(&Event::ReplacementsLimited {
                    workload: workload.clone(),
                    replacements: *replacements,
                    until: *until,
                });
            }
        }
        limited_told.retain(|w| assessment.limited.contains_key(w));
        let replace: BTreeSet<String> = assessment.replace.keys().cloned().collect();
        let mut plan = controller.plan_replacing(&round.decision, &replace)?;
        plan.moves.retain(|m| !busy.contains(&m.workload));
        plan.stranded.retain(|s| !busy.contains(&s.workload));
        // Moves with a deadline wait for their time; the others go now.
        let history = if plan.moves.iter().any(|m| m.deadline.is_some()) {
            let (history, unread) = observed_moves(&config, &store)?;
            if unread != drills_unread {
                if let Some(why) = &unread {
                    tracing::warn!(
                        "deadline estimates go on without the drills' measurements: {why}"
                    );
                }
                drills_unread = unread;
            }
            history
        } else {
            deadline::History::new()
        };
        let (plan, schedules) = deadline::split(&config, plan, &history, clock.now());
        if schedules != last_schedules {
            for s in &schedules {
                let was_at_risk = (last_schedules.iter()).any(|l| l.at_risk && l.by == s.by);
                if s.at_risk && !was_at_risk {
                    notifier.send(&Event::DeadlineAtRisk {
                        by: s.by,
                        estimated_finish: s.estimated_finish,
                        workloads: s.workloads.clone(),
                    });
                }
                if s.at_risk {
                    tracing::error!(by = %s.by, estimated_finish = %s.estimated_finish, workloads = ?s.workloads,
                        "deadline at risk: the evacuation is expected to finish after it; starting now");
                } else {
                    tracing::info!(by = %s.by, start_at = %s.start_at, estimate = ?s.estimate, workloads = ?s.workloads,
                        "evacuation before a deadline scheduled");
                }
            }
            metrics.schedules(&schedules);
            control.set_schedules(schedules.clone());
            last_schedules = schedules;
        }
        let verdict = control
            .approvals()
            .offer(config.policy.mode, &plan, clock.now());
        let summary = Some((plan.moves.clone(), plan.stranded.clone()));
        for stranded in &plan.stranded {
            if stranded_told.insert(stranded.workload.clone()) {
                notifier.send(&Event::Stranded {
                    workload: stranded.workload.clone(),
                    reason: stranded.reason.clone(),
                });
            }
        }
        stranded_told.retain(|w| plan.stranded.iter().any(|s| &s.workload == w));
        if summary != last_plan {
            for stranded in &plan.stranded {
                tracing::error!(workload = %stranded.workload, reason = %stranded.reason, "workload stranded: nowhere to go");
            }
            if verdict == Verdict::Observe {
                tracing::warn!(
                    moves = ?plan.moves.iter().map(|m| (&m.workload, &m.targets)).collect::<Vec<_>>(),
                    "a plan is ready; mode observe does not act on it"
                );
            }
        }
        match &verdict {
            Verdict::Wait { id, new: true } => tracing::warn!(
                evacuation = %id,
                moves = ?plan.moves.iter().map(|m| (&m.workload, &m.targets)).collect::<Vec<_>>(),
                "an evacuation waits for approval: `lifeboat evacuations approve {id}`"
            ),
            Verdict::Rejected if summary != last_plan => {
                tracing::warn!("the plan was rejected; it waits until it changes")
            }
            _ => {}
        }
        last_plan = summary;
        metrics.control(
            control.paused().is_some(),
            usize::from(control.approvals().pending().is_some()),
        );
        if verdict == Verdict::Act {
            host.evacuation_starts(&plan, &round.decision).await?;
            // A drill never overlaps an evacuation: it stops and cleans up first.
            if let Some(result) = drills.cancel(&store, "an evacuation starts").await {
                drill_finished(&notifier, &metrics, &result);
                host.drill_finished(&result).await?;
            }
            metrics.evacuation_started();
            notifier.send(&Event::evacuation_started(&plan));
            for m in plan.moves.iter().filter(|m| replace.contains(&m.workload)) {
                let (since, detail) = &assessment.replace[&m.workload];
                tracing::warn!(workload = %m.workload, from = ?m.from, targets = ?m.targets,
                    unhealthy_since = %since, "replacing the workload's unhealthy copy: {detail}");
                if let Some(watch) = watches.get_mut(&m.workload) {
                    watch.replaced(patience.window, clock.now());
                }
                notifier.send(&Event::CopyReplaced {
                    workload: m.workload.clone(),
                    provider: m.from.clone().unwrap_or_default(),
                    detail: detail.clone(),
                });
            }
            if !running.is_empty() {
                tracing::info!(
                    moves = plan.moves.len(),
                    "more to move while an evacuation runs: a second one starts beside it"
                );
            }
            let workloads = plan.moves.iter().map(|m| m.workload.clone()).collect();
            let executor = controller.executor().clone();
            let task = running.spawn(async move { executor.execute(&plan).await });
            moving.insert(task.id(), workloads);
        }
        store.put_copy_watches(&watches, clock.now())?;
        heartbeat.evacuating(!running.is_empty());
        if let Some(requests) = host.drill_requests() {
            drills.request(requests, clock.now());
        }
        if running.is_empty()
            && let Some(result) = drills.tick(&config, &store, clock.now()).await
        {
            drill_finished(&notifier, &metrics, &result);
            host.drill_finished(&result).await?;
        }
        let pause = jittered(config.policy.probe_interval);
        tokio::select! {
            _ = tokio::time::sleep(pause) => {}
            // An operator acted (a notice, an approval, resume): take it now.
            _ = control.woken() => {}
            Some(finished) = running.join_next_with_id(), if !running.is_empty() => {
                let (id, report) = match finished {
                    Ok((id, report)) => (id, report),
                    Err(join) => (join.id(), Err(anyhow::anyhow!("an evacuation task failed: {join}"))),
                };
                moving.remove(&id);
                // The store failed under the executor: stop rather than act without a
                // journal.
                let report = report?;
                metrics.evacuation_finished(&report);
                log_report("evacuation", &report);
                notifier.send(&Event::evacuation_finished(&report));
                host.evacuation_finished(&report).await?;
                heartbeat.evacuating(!running.is_empty());
            }
            change = host.changed() => if change == Change::Reload {
                tracing::info!("the configuration changed; reloading");
                ended = Ended::Reload;
                break;
            },
            _ = stop.cancelled() => break,
        }
    }
    if !running.is_empty() {
        // Dropped at an await point: the journal lets the next start finish them.
        tracing::info!("stopping during an evacuation; the next start resumes it");
        running.shutdown().await;
    }
    if let Some(result) = drills.shut_down(&store).await {
        drill_finished(&notifier, &metrics, &result);
        if let Err(e) = host.drill_finished(&result).await {
            tracing::warn!("showing the drill's result: {e:#}");
        }
    }
    // The last events (an evacuation's end) are worth a short wait, never a hang.
    if !notifier.flush(Duration::from_secs(5)).await {
        tracing::warn!("stopping with webhook events undelivered");
    }
    if ended == Ended::Stopped {
        tracing::info!("lifeboat stopped");
    }
    Ok(ended)
}

/// The probe interval plus up to 10 % random jitter, so many controllers (or many
/// providers behind one API) are not probed in lockstep.
fn jittered(interval: Duration) -> Duration {
    let jitter = interval.mul_f64(rand::rng().random_range(0.0..0.1));
    interval + jitter
}

/// Tells the webhooks of notices raised and lifted since the last round.
fn tell_notices(
    notifier: &Notifier,
    notices: &[crate::store::NoticeRecord],
    told: &mut BTreeMap<i64, String>,
) {
    for record in notices {
        if let std::collections::btree_map::Entry::Vacant(entry) = told.entry(record.id) {
            entry.insert(record.notice.scope.to_string());
            notifier.send(&Event::NoticeRaised {
                id: record.id,
                scope: record.notice.scope.to_string(),
                deadline: record.notice.deadline,
                reason: record.notice.reason.clone(),
            });
        }
    }
    told.retain(|id, scope| {
        let in_force = notices.iter().any(|n| n.id == *id);
        if !in_force {
            notifier.send(&Event::NoticeCleared {
                id: *id,
                scope: std::mem::take(scope),
            });
        }
        in_force
    });
}

/// A scheduled drill ended: its verdict goes to the metrics and the webhooks.
/// How many of the latest evacuations and drills the deadline estimates learn from.
const OBSERVED: u32 = 20;

/// The moves earlier evacuations and drills measured, for [`deadline::split`]. The
/// drills run from the command line keep their own store, read here without its lock;
/// when it cannot be read the estimate goes on without it, and the second value says
/// why.
fn observed_moves(
    config: &Config,
    store: &Store,
) -> anyhow::Result<(deadline::History, Option<String>)> {
    let mut samples = store.moves_observed(OBSERVED)?;
    samples.extend(crate::drill::measured::samples(
        &store.latest_drills(OBSERVED)?,
    ));
    let drills = crate::drill::cleanup::drill_config(config).state_dir;
    let mut unread = None;
    if drills.join(crate::store::DB_FILE).exists() {
        match Store::open_read_only(&drills).and_then(|s| s.latest_drills(OBSERVED)) {
            Ok(records) => samples.extend(crate::drill::measured::samples(&records)),
            Err(e) => unread = Some(format!("{}: {e:#}", drills.display())),
        }
    }
    Ok((deadline::history(samples), unread))
}

fn drill_finished(notifier: &Notifier, metrics: &Metrics, result: &ScheduledResult) {
    metrics.drill(result.report.as_ref().is_some_and(|r| r.objectives_met));
    notifier.send(&Event::drill_finished(result));
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

/// Keeps the datasets every `interval`, beside the rounds: a standby's deploy that
/// hangs until its timeout, or a slow read of a member, never holds the probing up
/// (lifeboat never stops watching). `leaving` is what the last round decided to leave;
/// a dataset that is moving is left to its move. Ends when the loop drops it.
async fn keep_datasets(
    keeper: crate::controller::DatasetKeeper,
    mut leaving: tokio::sync::watch::Receiver<BTreeSet<String>>,
    metrics: Arc<Metrics>,
    interval: Duration,
) {
    loop {
        let now_leaving = leaving.borrow_and_update().clone();
        match keeper.keep(&now_leaving).await {
            Ok(datasets) => metrics.datasets(&datasets),
            // The store failing is the rounds' to report (they stop acting on it).
            Err(e) => tracing::warn!("keeping the datasets: {e:#}"),
        }
        // A new decision (a provider being left) is acted on at once, not an interval
        // later: its standbys must go elsewhere.
        tokio::select! {
            () = tokio::time::sleep(interval) => {}
            changed = leaving.changed() => if changed.is_err() { return },
        }
    }
}
