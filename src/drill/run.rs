//! Running a drill: place the workloads, fence a vendor/account/provider at the adapter
//! boundary, let the real controller loop detect, decide, plan, move and cut over, and
//! measure it all with monotonic time, from the moment the fault is injected.
//!
//! A drill keeps its own state (`STATE_DIR/drill`), so it never touches the records of a
//! daemon, and always cleans up what it started: on success, on failure and when it is
//! interrupted (the caller cancels `stop`).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use jiff::Timestamp;
use lifeboat_provider::Owner;
use tokio::sync::broadcast;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::assemble::{Assembly, StepTimes, assemble};
use super::cleanup;
use super::prober;
use super::report::{DataOutcome, DrillReport, TimelineEvent, fmt_ms};
use super::words;
use super::writer;
use crate::config::{Config, CutoverConfig, DrillMode, Scenario};
use crate::controller;
use crate::controller::Controller;
use crate::cutover;
use crate::decide::Decision;
use crate::execute::{ExecEvent, ExecOptions, Executor, Report};
use crate::fault::FaultSwitch;
use crate::model::{Cause, Departure};
use crate::providers::{self, BuildOptions};
use crate::store::{DrillRun, Outcome, Store};

/// What to drill.
#[derive(Debug, Clone)]
pub struct DrillOptions {
    /// A vendor, `vendor/account` or provider name.
    pub lose: String,
    /// The fault to inject.
    pub scenario: Scenario,
    /// Live (cut over, then fail back) or shadow (verify copies only).
    pub mode: DrillMode,
    /// Stop the copies at the lost providers when the fault starts (a vendor's
    /// suspension takes the running workloads down too). Live drills only: a shadow
    /// drill leaves the serving copies alone.
    pub blackout: bool,
    /// How adapters are built (the program behind `lifeboat` in local commands).
    pub build: BuildOptions,
    /// Give up waiting for detection and evacuation after this long.
    pub patience: Duration,
    /// How often the independent prober requests each public endpoint.
    pub probe_every: Duration,
}

/// How long a drill waits for detection and evacuation: enough for the confirmations,
/// the grace period and every step's attempts, never less than a minute.
pub fn patience(config: &Config) -> Duration {
    let p = &config.policy;
    let detect = p.probe_interval * (p.confirmations + 2) + p.unreachable_grace;
    let steps = p.step_timeout * p.step_attempts * 6;
    (detect + steps).max(Duration::from_secs(60))
}

/// Progress lines for a human watching the drill.
pub type Progress = Arc<dyn Fn(String) + Send + Sync>;

/// How a drill is told to stop: `stop` ends the drill and cleans up (the first Ctrl-C
/// or SIGTERM), `abort` gives up on the cleanup too (a second one), leaving what is
/// left recorded for `lifeboat drill --cleanup`.
#[derive(Debug, Clone, Default)]
pub struct Interrupts {
    /// End the drill, then clean up.
    pub stop: CancellationToken,
    /// Stop cleaning up as well.
    pub abort: CancellationToken,
}

/// Runs one drill and returns its report. Everything the drill started is retired before
/// this returns, also when `interrupts.stop` is cancelled (Ctrl-C) or something fails;
/// only `interrupts.abort` cuts the cleanup short, and says what is left.
pub async fn run(
    config: &Config,
    options: DrillOptions,
    progress: Progress,
    interrupts: Interrupts,
) -> anyhow::Result<DrillReport> {
    let Interrupts { stop, abort: again } = interrupts;
    let source = config.source.clone();
    let Some(scope) = config.resolve_scope(&options.lose) else {
        bail!(
            "--lose {:?} names no vendor, vendor/account or provider of {}",
            options.lose,
            config.source.display()
        );
    };
    let lost: Vec<String> = config
        .providers_in(&scope)
        .iter()
        .map(|p| p.name.clone())
        .collect();

    // The drill's owner: every copy it makes says "this installation, this drill", so
    // its placement never adopts a production copy and its cleanup never sees one.
    let installation = crate::installation::id(config)?;
    let started = Timestamp::now();
    let id = crate::installation::drill_id(started);
    let owner = Owner::drill(installation, id.clone());

    // The drill's own state: a daemon's records and copies stay untouched.
    let mut config = cleanup::drill_config(config);
    let traffic = drill_traffic(&mut config, options.mode);
    let config = Arc::new(config);
    std::fs::create_dir_all(&config.state_dir)
        .with_context(|| format!("creating {}", config.state_dir.display()))?;
    let store = Arc::new(Store::open(&config.state_dir).map_err(|e| {
        if crate::store::is_locked(&e) {
            e.context("another drill of this installation is running")
        } else {
            e
        }
    })?);

    let built = providers::build_all_with(&config, &options.build).await?;
    // Leftovers of an earlier drill that died would skew this one: its copies go first.
    let earlier = store.uncleaned_drill_runs()?;
    if !earlier.is_empty() {
        let cleaned = cleanup::clean_runs(&built, &store, &earlier).await?;
        progress(cleaned.describe());
    }
    let run = DrillRun {
        id: id.clone(),
        owner: owner.clone(),
        mode: options.mode.as_str().to_owned(),
        lose: options.lose.clone(),
        pid: std::process::id(),
        started,
        cleaned: None,
    };
    store.begin_drill_run(&run)?;
    progress(format!("drill {id} (copies owned by {owner})"));
    let (wrapped, switches) =
        providers::with_fault_switches(built.clone(), config.policy.probe_timeout);
    // The workloads are placed for real in every mode: a shadow drill verifies copies
    // of running workloads, so only the evacuation runs in shadow.
    let placer = Executor::new(
        owner.clone(),
        wrapped.clone(),
        match traffic {
            DrillTraffic::Skipped(_) => Arc::new(cutover::Skipped),
            _ => cutover::build(&config)?,
        },
        store.clone(),
        config.policy.clone(),
        &controller::workloads(&config),
    );
    let executor = placer.clone().with_options(ExecOptions {
        shadow: options.mode == DrillMode::Shadow,
        datasets: crate::dataset::Datasets::build(&config, config.policy.step_timeout)?,
        ..ExecOptions::default()
    });

    if let Some(note) = traffic.note() {
        progress(note);
    }
    let drill = Drill {
        traffic: traffic.clone(),
        config: config.clone(),
        options: &options,
        lost: &lost,
        switches: &switches,
        progress: progress.clone(),
        placer,
    };
    let controller = Controller::new(config.clone(), wrapped.clone(), store.clone(), executor)?;
    let outcome = tokio::select! {
        outcome = drill.run(controller) => outcome,
        _ = stop.cancelled() => Err(anyhow::anyhow!("drill interrupted")),
    };
    for switch in switches.values() {
        switch.clear();
    }
    // A second Ctrl-C stops the cleanup too; whatever is left is recorded with the
    // drill, so `lifeboat drill --cleanup` (or the daemon's next start) removes it.
    let cleaned = tokio::select! {
        cleaned = cleanup::clean_runs(&built, &store, std::slice::from_ref(&run)) => cleaned?,
        _ = again.cancelled() => {
            progress(format!(
                "cleanup interrupted: drill {id} may have left copies; remove them with \
                 `lifeboat drill --cleanup -c {}`",
                source.display()
            ));
            return Err(anyhow::anyhow!("drill interrupted during cleanup"));
        }
    };
    progress(cleaned.describe());
    if !cleaned.complete() {
        progress(format!(
            "some copies of drill {id} are left; `lifeboat drill --cleanup -c {}` retries",
            source.display()
        ));
    }
    forget_placements(&store);
    let report = outcome?;
    store
        .put_drill(&report, Timestamp::now())
        .context("storing the drill report")?;
    Ok(report)
}

struct Drill<'a> {
    /// Where the drill's traffic goes (see [`DrillTraffic`]).
    traffic: DrillTraffic,
    config: Arc<Config>,
    options: &'a DrillOptions,
    lost: &'a [String],
    switches: &'a BTreeMap<String, FaultSwitch>,
    progress: Progress,
    /// Places the workloads before the fault (never in shadow mode).
    placer: Executor,
}

impl Drill<'_> {
    async fn run(&self, mut controller: Controller) -> anyhow::Result<DrillReport> {
        let say = |line: String| (self.progress)(line);
        let started_at = Timestamp::now();

        say(format!("placing {} workloads", self.config.workloads.len()));
        let initial = controller.plan(&Decision::default())?;
        let placed = if initial.moves.is_empty() {
            None
        } else {
            Some(self.placer.execute(&initial).await?)
        };
        if let Some(report) = &placed
            && !report.all_moved()
        {
            bail!(
                "the workloads could not be placed before the drill: {}",
                failures(report)
            );
        }
        let placements = controller.store().placements()?;
        let affected: BTreeSet<String> = placements
            .values()
            .filter(|p| self.lost.contains(&p.provider))
            .map(|p| p.workload.clone())
            .collect();
        for p in placements.values() {
            say(format!(
                "  {} runs on {} (generation {})",
                p.workload, p.provider, p.generation
            ));
        }
        if affected.is_empty() {
            say(format!(
                "no workload runs on {}: nothing to move",
                self.options.lose
            ));
        }
        self.await_standbys(&controller).await?;

        // The prober starts before the fault so it sees the service up first.
        let stop_probing = CancellationToken::new();
        let targets = match self.traffic {
            DrillTraffic::Skipped(_) => Vec::new(),
            _ => prober::targets(&self.config),
        };
        let warmup = Duration::from_secs(1);
        let zero_estimate = Instant::now() + warmup;
        let cutover: Arc<dyn cutover::Cutover> = match self.traffic {
            DrillTraffic::Skipped(_) => Arc::new(cutover::Skipped),
            _ => cutover::build(&self.config)?,
        };
        let probing = prober::spawn(
            targets,
            cutover,
            self.options.probe_every,
            zero_estimate,
            stop_probing.clone(),
        );
        tokio::time::sleep_until(zero_estimate).await;

        let stop_writing = CancellationToken::new();
        let writers = self.start_writers(&controller, &stop_writing);
        let mut events = controller.executor().subscribe();
        let shipped = self.shipped_snapshots(&controller)?;
        let zero = Instant::now();
        let fault_at = controller.clock().now();
        // A shadow drill moves no traffic, so stopping the serving copies would be an
        // outage that nothing repairs: it never blacks out.
        if self.options.blackout && self.options.mode == DrillMode::Live {
            let stopped = self.black_out(&controller).await;
            say(format!(
                "[{:>7}] blackout: stopped {stopped} copies at {}",
                "0ms",
                self.lost.join(", ")
            ));
        }
        for name in self.lost {
            if let Some(switch) = self.switches.get(name) {
                switch.set(self.options.scenario);
            }
        }
        let ms = move |at: Instant| {
            u64::try_from(at.saturating_duration_since(zero).as_millis()).unwrap_or(u64::MAX)
        };
        let mut timeline = vec![TimelineEvent {
            at_ms: 0,
            workload: None,
            what: format!(
                "fault injected: {} on {}",
                self.options.scenario.as_str(),
                self.lost.join(", ")
            ),
        }];
        if let Some(note) = self.traffic.note() {
            timeline.push(TimelineEvent {
                at_ms: 0,
                workload: None,
                what: note,
            });
        }
        say(format!(
            "[{:>7}] fault injected: {} {}",
            "0ms",
            self.options.lose,
            self.options.scenario.as_str()
        ));

        // Detect → decide → plan → execute, exactly as the daemon does it.
        let mut detected_after_ms = None;
        let mut evacuation: Option<Report> = None;
        let deadline = zero + self.options.patience;
        while evacuation.is_none() && !affected.is_empty() {
            if Instant::now() > deadline {
                say(format!(
                    "gave up: not evacuated within {:?}",
                    self.options.patience
                ));
                break;
            }
            let round = controller.round().await?;
            for (provider, _, condition) in &round.changes {
                let line = format!("{provider}: {condition}");
                say(format!("[{:>7}] {line}", fmt_ms(ms(Instant::now()))));
                timeline.push(TimelineEvent {
                    at_ms: ms(Instant::now()),
                    workload: None,
                    what: line,
                });
            }
            if round
                .decision
                .departures
                .iter()
                .any(|d| self.lost.contains(&d.provider))
            {
                let at = ms(Instant::now());
                detected_after_ms = Some(at);
                say(format!(
                    "[{:>7}] detected: leaving {}",
                    fmt_ms(at),
                    round.decision.leaving()
                ));
                timeline.push(TimelineEvent {
                    at_ms: at,
                    workload: None,
                    what: "detected".into(),
                });
                let shown = self.show_progress(controller.executor().subscribe(), ms);
                let report = controller.act(&round.decision).await?;
                shown.abort();
                evacuation = Some(report.unwrap_or_else(|| Report {
                    evacuation: String::new(),
                    moves: Vec::new(),
                    stranded: Vec::new(),
                }));
                break;
            }
            tokio::time::sleep(self.config.policy.probe_interval).await;
        }

        // Let the prober see the settled state before it stops. A caching client holds
        // the old answer for up to the TTL after the switch, so that is waited out too:
        // stopping earlier would cut the outage short and report less downtime than
        // clients had.
        tokio::time::sleep(Duration::from_millis(500) + longest_ttl(&self.config)).await;
        stop_probing.cancel();
        let logs = probing.await.unwrap_or_default();
        let mut steps = StepTimes::default();
        while let Ok(event) = events.try_recv() {
            steps.note(&event, &ms, &mut timeline);
        }

        stop_writing.cancel();
        let mut data = self.measure_data(&controller, writers).await;
        self.await_protection(&controller, zero, &mut data).await;
        data.extend(self.snapshot_outcomes(shipped, fault_at));
        let failback = match (self.options.mode, &evacuation) {
            (DrillMode::Live, Some(report)) if report.all_moved() => {
                Some(self.fail_back(&controller, report).await)
            }
            _ => None,
        };
        if failback.is_some() {
            self.measure_after_failback(&controller, &mut data).await;
        }

        Ok(assemble(Assembly {
            config: &self.config,
            lose: &self.options.lose,
            scenario: self.options.scenario,
            mode: self.options.mode,
            lost: self.lost,
            started_at,
            detected_after_ms,
            evacuation: evacuation.as_ref(),
            affected: &affected,
            steps: &steps,
            logs: &logs,
            failback,
            timeline,
            data,
        }))
    }

    /// Waits until every dataset's standby streams (synchronously, when so configured)
    /// before the fault: a drill measures a move from a protected dataset, and the move
    /// never waits for a base backup that could have been taken before.
    async fn await_standbys(&self, controller: &Controller) -> anyhow::Result<()> {
        if controller.executor().datasets().is_empty() {
            return Ok(());
        }
        let deadline = Instant::now() + self.options.patience;
        loop {
            let states = controller.keep_datasets(&BTreeSet::new()).await?;
            let ready = |d: &crate::dataset::DatasetState| {
                d.lag
                    .as_ref()
                    .is_some_and(|l| l.synchronous == d.synchronous)
            };
            if states.values().all(ready) {
                for d in states.values() {
                    if let Some(s) = &d.snapshot {
                        (self.progress)(format!(
                            "  {}'s snapshot {} is shipped{}",
                            d.workload,
                            s.id,
                            s.size.map(|b| format!(" ({b} bytes)")).unwrap_or_default()
                        ));
                    }
                    let (Some(sb), Some(lag)) = (&d.standby, &d.lag) else {
                        continue;
                    };
                    (self.progress)(format!(
                        "  {}'s standby streams on {} ({} bytes behind{})",
                        d.workload,
                        sb.provider,
                        lag.bytes,
                        if lag.synchronous { ", synchronous" } else { "" }
                    ));
                }
                return Ok(());
            }
            if Instant::now() > deadline {
                let waiting: Vec<String> = (states.values())
                    .filter(|d| !ready(d))
                    .map(|d| {
                        let why = d.problem.as_deref().unwrap_or("not streaming yet");
                        format!("{} ({why})", d.workload)
                    })
                    .collect();
                bail!(
                    "the standbys did not stream within {:?}: {}",
                    self.options.patience,
                    waiting.join("; ")
                );
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Each snapshot dataset's last shipped snapshot, just before the fault (live
    /// drills: a shadow drill moves no data).
    fn shipped_snapshots(
        &self,
        controller: &Controller,
    ) -> anyhow::Result<BTreeMap<String, crate::dataset::Snapshot>> {
        if self.options.mode != DrillMode::Live {
            return Ok(BTreeMap::new());
        }
        let datasets = controller.executor().datasets();
        Ok((controller.store().datasets()?.into_iter())
            .filter(|(name, _)| datasets.shipping(name).is_some())
            .filter_map(|(name, d)| Some((name, d.snapshot?)))
            .collect())
    }

    /// What each snapshot dataset's move could lose: the data since its last snapshot
    /// before the fault, next to the `rpo` objective.
    fn snapshot_outcomes(
        &self,
        shipped: BTreeMap<String, crate::dataset::Snapshot>,
        fault_at: jiff::Timestamp,
    ) -> Vec<DataOutcome> {
        let mut outcomes = Vec::new();
        for (name, snapshot) in shipped {
            let Some(data) = self.config.workload(&name).and_then(|w| w.data.as_ref()) else {
                continue;
            };
            let age = snapshot.age(fault_at);
            let as_ms = |d: Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
            let met = age <= data.rpo;
            let outcome = DataOutcome {
                workload: name,
                method: data.method.as_str().to_owned(),
                synchronous: false,
                last_acknowledged: 0,
                rows_present: None,
                rows_lost: 0,
                rpo_ms: as_ms(age),
                rpo_objective_ms: as_ms(data.rpo),
                refused: 0,
                after_failback: None,
                problem: (!met)
                    .then(|| format!("the last snapshot was {} old", fmt_ms(as_ms(age)))),
                snapshot: Some(snapshot.id),
                unprotected_ms: None,
                unprotected: None,
                met,
            };
            (self.progress)(outcome.summary());
            outcomes.push(outcome);
        }
        outcomes
    }

    /// A writer per dataset, in live drills (a shadow drill moves no data).
    fn start_writers(
        &self,
        controller: &Controller,
        stop: &CancellationToken,
    ) -> Vec<(String, tokio::task::JoinHandle<writer::Written>)> {
        if self.options.mode != DrillMode::Live {
            return Vec::new();
        }
        let datasets = controller.executor().datasets();
        (self.config.workloads.iter())
            .filter_map(|w| Some((w.name.clone(), datasets.method(&w.name)?.clone())))
            .map(|(name, method)| {
                let handle = writer::spawn(
                    name.clone(),
                    method,
                    controller.store().clone(),
                    stop.clone(),
                );
                (name, handle)
            })
            .collect()
    }

    /// What each dataset's new primary has of the rows its writer had acknowledged.
    async fn measure_data(
        &self,
        controller: &Controller,
        writers: Vec<(String, tokio::task::JoinHandle<writer::Written>)>,
    ) -> Vec<DataOutcome> {
        let mut outcomes = Vec::new();
        for (name, handle) in writers {
            let written = handle.await.unwrap_or_default();
            let (Some(w), Some(method)) = (
                self.config.workload(&name),
                controller.executor().datasets().method(&name),
            ) else {
                continue;
            };
            let Some(data) = &w.data else { continue };
            let rows = match writer::primary_of(controller.store(), &name) {
                Some(primary) => {
                    (method.rows(&primary, written.last()).await).map_err(|e| e.to_string())
                }
                None => Err("the primary's endpoint is not known".to_owned()),
            };
            let objective = data.rpo;
            let mut outcome = DataOutcome {
                workload: name.clone(),
                method: data.method.as_str().to_owned(),
                synchronous: data.synchronous,
                last_acknowledged: written.last(),
                rows_present: None,
                rows_lost: 0,
                rpo_ms: 0,
                rpo_objective_ms: u64::try_from(objective.as_millis()).unwrap_or(u64::MAX),
                refused: written.refused,
                after_failback: None,
                snapshot: None,
                unprotected_ms: None,
                unprotected: None,
                met: false,
                problem: None,
            };
            match rows {
                Ok(rows) => {
                    let (prefix, present) = rows.map_or((0, 0), |r| (r.prefix, r.present));
                    let (lost, span) = written.lost(prefix, present);
                    outcome.rows_present = Some(present);
                    outcome.rows_lost = lost;
                    outcome.rpo_ms = u64::try_from(span.as_millis()).unwrap_or(u64::MAX);
                    outcome.met = span <= objective;
                    if !outcome.met {
                        outcome.problem = Some(format!(
                            "{lost} acknowledged rows lost, {} of writes, over the rpo",
                            fmt_ms(outcome.rpo_ms)
                        ));
                    }
                }
                Err(why) => {
                    outcome.problem = Some(format!("the new primary could not be asked: {why}"));
                }
            }
            (self.progress)(outcome.summary());
            outcomes.push(outcome);
        }
        outcomes
    }

    /// After the move, keeps every dataset as the daemon would, while the lost
    /// providers stay lost, until a new standby streams at the next vendor: how long
    /// the data was unprotected. A dataset with no provider left at another vendor
    /// than its new primary's stays unprotected until the lost vendor returns (the
    /// failback seeds it again), and the report says so.
    async fn await_protection(
        &self,
        controller: &Controller,
        zero: Instant,
        data: &mut [DataOutcome],
    ) {
        let leaving: BTreeSet<String> = self.lost.iter().cloned().collect();
        let placements = controller.store().placements().unwrap_or_default();
        let mut waiting = Vec::new();
        for d in data.iter_mut() {
            let (Some(w), Some(p)) = (
                self.config.workload(&d.workload),
                placements.get(&d.workload),
            ) else {
                continue;
            };
            match crate::dataset::standby_target(&self.config, w, &p.provider, &leaving) {
                Some(_) => waiting.push(d.workload.clone()),
                None => {
                    d.unprotected = Some(format!(
                        "no provider at another vendor than {}'s while {} is lost, until the failback",
                        p.provider, self.options.lose
                    ));
                }
            }
        }
        let deadline = Instant::now() + self.options.patience;
        while !waiting.is_empty() {
            let states = match controller.keep_datasets(&leaving).await {
                Ok(states) => states,
                Err(e) => {
                    tracing::warn!("keeping the datasets after the move: {e:#}");
                    break;
                }
            };
            let now = zero.elapsed();
            for d in data.iter_mut() {
                if waiting.contains(&d.workload)
                    && states.get(&d.workload).is_some_and(|s| s.streaming())
                {
                    d.unprotected_ms = Some(u64::try_from(now.as_millis()).unwrap_or(u64::MAX));
                    waiting.retain(|w| *w != d.workload);
                }
            }
            if Instant::now() > deadline {
                for d in data.iter_mut().filter(|d| waiting.contains(&d.workload)) {
                    d.unprotected = Some(format!(
                        "no standby streamed again within {:?}",
                        self.options.patience
                    ));
                }
                break;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// After the failback, every row the writer had acknowledged should be at the
    /// primary again (it was re-seeded from the new one before taking over).
    async fn measure_after_failback(&self, controller: &Controller, data: &mut [DataOutcome]) {
        for d in data {
            let Some(method) = controller.executor().datasets().method(&d.workload) else {
                continue;
            };
            let Some(primary) = writer::primary_of(controller.store(), &d.workload) else {
                continue;
            };
            match method.rows(&primary, d.last_acknowledged).await {
                Ok(rows) => {
                    let present = rows.map_or(0, |r| r.present);
                    d.after_failback = Some(present);
                    let kept = d.rows_present.unwrap_or(0);
                    if present < kept {
                        d.met = false;
                        d.problem = Some(format!(
                            "after the failback the primary has {present} rows, not the {kept} \
                             the drill's primary had"
                        ));
                    }
                }
                Err(e) => {
                    d.met = false;
                    d.problem = Some(format!("the primary after the failback: {e}"));
                }
            }
        }
    }

    /// Stops every copy at the lost providers, before their fault switches close, the
    /// way a vendor's suspension stops the instances too. Returns how many it stopped.
    async fn black_out(&self, controller: &Controller) -> usize {
        let mut stopped = 0;
        for name in self.lost {
            let Some(provider) = controller.provider(name) else {
                continue;
            };
            let Ok(copies) = provider
                .list_managed(Some(controller.executor().owner()))
                .await
            else {
                continue;
            };
            for copy in copies {
                if provider.retire(&copy).await.is_ok() {
                    stopped += 1;
                }
            }
        }
        stopped
    }

    /// Prints each step transition as it happens, in the user's words (see
    /// [`words::tell`]): `db: deployed on metal-1`, and an unreachable source as the
    /// expected fallback it is rather than a failure.
    fn show_progress(
        &self,
        mut events: broadcast::Receiver<ExecEvent>,
        ms: impl Fn(Instant) -> u64 + Send + 'static,
    ) -> tokio::task::JoinHandle<()> {
        let progress = self.progress.clone();
        let shadow = self.options.mode == DrillMode::Shadow;
        let config = self.config.clone();
        tokio::spawn(async move {
            while let Ok(e) = events.recv().await {
                if !words::does_something(&config, &e.workload, e.step) {
                    continue;
                }
                if let Some(told) = words::tell(&e, shadow) {
                    // A `!` lets trouble stand out among lines of progress.
                    let mark = if told.trouble { "! " } else { "" };
                    progress(format!("[{:>7}] {mark}{}", fmt_ms(ms(e.at)), told.line));
                }
            }
        })
    }

    /// Live drills end where they started: the fault is lifted and every moved workload
    /// goes back, through the same executor (a fence on the providers it moved to).
    async fn fail_back(&self, controller: &Controller, evacuation: &Report) -> String {
        for switch in self.switches.values() {
            switch.clear();
        }
        let targets: BTreeSet<&str> = evacuation
            .moves
            .iter()
            .filter_map(|m| match &m.outcome {
                Outcome::Moved { to, .. } => Some(to.as_str()),
                _ => None,
            })
            .collect();
        let departures = targets
            .iter()
            .map(|t| Departure {
                provider: (*t).to_owned(),
                reason: "drill failback".into(),
                deadline: None,
                cause: Cause::Fenced {
                    by: "drill failback".into(),
                },
            })
            .collect();
        (self.progress)("failing back".into());
        match controller
            .act(&Decision {
                departures,
                ..Decision::default()
            })
            .await
        {
            Ok(Some(report)) if report.all_moved() => {
                format!("ok: {} workloads moved back", report.moves.len())
            }
            Ok(Some(report)) => format!("incomplete: {}", failures(&report)),
            Ok(None) => "nothing to move back".into(),
            Err(e) => format!("failed: {e:#}"),
        }
    }
}

/// Forgets the drill's placements and datasets: the next drill places its own copies
/// (and standbys) again.
fn forget_placements(store: &Store) {
    if let Ok(placements) = store.placements() {
        for workload in placements.keys() {
            let _ = store.remove_placement(workload);
        }
    }
    let _ = store.put_datasets(&BTreeMap::new(), &Default::default(), Timestamp::now());
}

/// The longest TTL the cutover gives a name (zero when clients do not cache answers).
pub(super) fn longest_ttl(config: &Config) -> Duration {
    match &config.cutover {
        CutoverConfig::Dns(dns) => dns
            .records
            .values()
            .filter_map(|r| r.ttl)
            .fold(dns.ttl, Duration::max),
        _ => Duration::ZERO,
    }
}

fn failures(report: &Report) -> String {
    let mut parts: Vec<String> = report
        .moves
        .iter()
        .filter(|m| !matches!(m.outcome, Outcome::Moved { .. } | Outcome::Verified { .. }))
        .map(|m| format!("{}: {:?}", m.workload, m.outcome))
        .collect();
    parts.extend(
        report
            .stranded
            .iter()
            .map(|s| format!("{}: stranded ({})", s.workload, s.reason)),
    );
    parts.join("; ")
}

/// Where a drill's traffic goes. A live drill uses the config's cutover (the guard in
/// [`super::guard`] has decided it may); a shadow drill moves no production traffic.
#[derive(Debug, Clone, PartialEq, Eq)]
enum DrillTraffic {
    /// The config's own cutover (live drills).
    Real,
    /// A shadow drill's endpoints file of its own, in the drill's state folder: the
    /// drill's copies find each other there, and production's file is never written.
    DrillScoped(std::path::PathBuf),
    /// A shadow drill over a cutover that real clients follow (DNS, exec): not
    /// exercised, and nothing probed through it; the text says so in the report.
    Skipped(&'static str),
}

impl DrillTraffic {
    /// The line the progress display and the report's event log show, if any.
    fn note(&self) -> Option<String> {
        match self {
            DrillTraffic::Real => None,
            DrillTraffic::DrillScoped(path) => Some(format!(
                "shadow: traffic goes through the drill's own endpoints file {}; production's \
                 is not touched",
                path.display()
            )),
            DrillTraffic::Skipped(kind) => Some(format!(
                "shadow: the {kind} cutover is not exercised (it would move real clients); \
                 copies are deployed and verified healthy, and no public name is probed"
            )),
        }
    }
}

/// Decides where the drill's traffic goes, pointing a shadow drill's endpoints file
/// into the drill's own state folder (`config` is the drill's configuration).
fn drill_traffic(config: &mut Config, mode: DrillMode) -> DrillTraffic {
    if mode == DrillMode::Live {
        return DrillTraffic::Real;
    }
    match &mut config.cutover {
        CutoverConfig::EndpointsFile { path } => {
            *path = config.state_dir.join("endpoints.json");
            DrillTraffic::DrillScoped(path.clone())
        }
        CutoverConfig::Exec { .. } => DrillTraffic::Skipped("exec"),
        CutoverConfig::Dns(_) => DrillTraffic::Skipped("DNS"),
    }
}
