//! The executor: runs a [`Plan`]'s moves against the providers, make before break.
//!
//! For each move, on its first target: deploy the copy at the move's generation → wait
//! until it is healthy → `before_cutover` hooks → cut over (only to a copy of the
//! workload's current generation: fencing) → `after_cutover` hooks → retire the source
//! if its provider answers, else record it as an orphan. A target that fails a step
//! before the cutover is given up (its copy retired when possible) and the move falls
//! through to the next target; with none left, the workload is stranded.
//!
//! * Waves: every move of wave `n` is past its cutover before any move of wave `n + 1`
//!   cuts over ([`concurrency`]); later waves may deploy meanwhile.
//! * Bounds: `policy.parallelism` moves at once, `policy.per_provider_parallelism` per
//!   target provider.
//! * Every attempt has `policy.step_timeout`; retryable classes get up to
//!   `policy.step_attempts` attempts with jittered exponential backoff ([`retry`]).
//! * Every transition is journaled in the [`Store`] **before** it is acted on, and
//!   [`Executor::resume`] finishes interrupted evacuations from the journal ([`resume`]).
//! * Progress is broadcast as [`ExecEvent`]s, for drills and live displays.

mod concurrency;
mod resume;
mod retry;
mod run;
mod stale;
mod steps;

pub use stale::StaleReport;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use jiff::Timestamp;

use crate::clock::Clock;
use lifeboat_provider::{DeploymentRef, Generation, Owner, Provider, Timing};
use serde::Serialize;
use tokio::sync::broadcast;
use tokio::time::Instant;

use crate::config::{PolicyConfig, WorkloadConfig};
use crate::control::PauseSwitch;
use crate::cutover::Cutover;
use crate::model::{Placement, Plan, Step, Stranded};
use crate::store::{Evacuation, JournalEntry, Outcome, Status, Store};
use concurrency::Limits;

/// Knobs of the executor that are not policy.
#[derive(Debug, Clone)]
pub struct ExecOptions {
    /// Shadow mode: deploy and verify the copies, then retire them; move no traffic.
    pub shadow: bool,
    /// Time between two `inspect` calls while waiting for health.
    pub health_poll: Duration,
    /// First retry delay; doubles per attempt.
    pub backoff_base: Duration,
    /// Longest retry delay.
    pub backoff_max: Duration,
    /// The kill switch: no step starts while it is thrown.
    pub pause: PauseSwitch,
    /// The time the journal and the placements are stamped with (the loop's clock).
    pub clock: Clock,
    /// The replication methods of the workloads with data: their move promotes the
    /// standby (and fences the old primary) before the cutover.
    pub datasets: crate::dataset::Datasets,
}

impl Default for ExecOptions {
    fn default() -> Self {
        ExecOptions {
            shadow: false,
            health_poll: Duration::from_millis(500),
            backoff_base: Duration::from_secs(1),
            backoff_max: Duration::from_secs(30),
            pause: PauseSwitch::default(),
            clock: Clock::system(),
            datasets: crate::dataset::Datasets::default(),
        }
    }
}

/// One step transition of one move, as it happens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecEvent {
    /// The evacuation.
    pub evacuation: String,
    /// The workload moving.
    pub workload: String,
    /// The step.
    pub step: Step,
    /// The transition.
    pub status: Status,
    /// Attempt number at this target.
    pub attempt: u32,
    /// The target provider.
    pub target: String,
    /// Error or note.
    pub detail: Option<String>,
    /// Monotonic time, for measuring (tokio's clock, so it follows a paused test clock).
    pub at: Instant,
    /// Wall-clock time, for reports.
    pub wall: Timestamp,
    /// On a `failed` line: no further attempt of this step follows at this target (the
    /// error is not retryable, or the attempts are used up), so what comes next is the
    /// step's fallback. For `retire_source` that fallback is expected, not a failure of
    /// the move: the old copy is recorded as an orphan and retired when its provider
    /// answers again. Lets a display say so without parsing the error text.
    pub last_attempt: bool,
}

impl ExecEvent {
    /// The event a journal line records, for a reader of the journal rather than of the
    /// executor: `at` places it on the reader's monotonic clock, and `last_attempt` is
    /// what the reader knows of later lines (the journal does not say).
    pub fn from_journal(
        entry: &crate::store::JournalEntry,
        at: Instant,
        last_attempt: bool,
    ) -> ExecEvent {
        ExecEvent {
            evacuation: entry.evacuation.clone(),
            workload: entry.workload.clone(),
            step: entry.step,
            status: entry.status,
            attempt: entry.attempt,
            target: entry.target.clone(),
            detail: entry.detail.clone(),
            at,
            wall: entry.at,
            last_attempt,
        }
    }
}

/// How one move went.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MoveReport {
    /// The workload.
    pub workload: String,
    /// Where it ran before.
    pub from: Option<String>,
    /// How it ended.
    pub outcome: Outcome,
    /// From the start of this run to the new copy being healthy.
    pub time_to_healthy: Option<Duration>,
    /// From the start of this run to traffic moving (the RTO, without DNS caching).
    pub time_to_cutover: Option<Duration>,
    /// Phases of the deploy that the target's adapter timed itself (`power-on` for a
    /// cold-standby server), read once the new copy was healthy; part of
    /// `time_to_healthy`, shown apart so hardware waits are not blamed on the workload.
    pub phases: Vec<Timing>,
}

/// The result of [`Executor::execute`] or of one resumed evacuation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Report {
    /// The evacuation's id in the store.
    pub evacuation: String,
    /// Every move of the plan, in plan order.
    pub moves: Vec<MoveReport>,
    /// What the plan itself could not place.
    pub stranded: Vec<Stranded>,
}

impl Report {
    /// Every move ended as planned (moved, or verified in shadow mode) and nothing was
    /// stranded.
    pub fn all_moved(&self) -> bool {
        self.stranded.is_empty()
            && self
                .moves
                .iter()
                .all(|m| matches!(m.outcome, Outcome::Moved { .. } | Outcome::Verified { .. }))
    }
}

impl Inner {
    /// Whether the controller has decided to leave `provider` since the plan was made.
    pub(crate) fn is_departing(&self, provider: &str) -> bool {
        self.departing.borrow().contains(provider)
    }

    /// Resolves once the controller decides to leave `provider`.
    pub(crate) async fn departed(&self, provider: &str) {
        let mut departing = self.departing.subscribe();
        // The sender lives as long as `self`: it cannot be dropped while we wait.
        let _ = departing.wait_for(|d| d.contains(provider)).await;
    }
}

/// Runs plans. Cheap to clone; clones share providers, store, limits and events.
#[derive(Clone)]
pub struct Executor {
    inner: Arc<Inner>,
}

pub(crate) struct Inner {
    /// Whose copies this executor makes and may retire: the installation, or a drill.
    owner: Owner,
    providers: BTreeMap<String, Arc<dyn Provider>>,
    cutover: Arc<dyn Cutover>,
    store: Arc<Store>,
    policy: PolicyConfig,
    workloads: BTreeMap<String, WorkloadConfig>,
    options: ExecOptions,
    limits: Limits,
    events: broadcast::Sender<ExecEvent>,
    /// Providers the controller decided to leave since the plans running now were
    /// made: no move deploys to, or cuts over to, one of them.
    departing: tokio::sync::watch::Sender<BTreeSet<String>>,
}

impl Executor {
    /// An executor acting for `owner` over these providers (by name), cutover backend,
    /// store, policy and workloads, with default [`ExecOptions`]. Every copy it deploys
    /// carries `owner`, and it lists, fences and retires that owner's copies only.
    pub fn new(
        owner: Owner,
        providers: BTreeMap<String, Arc<dyn Provider>>,
        cutover: Arc<dyn Cutover>,
        store: Arc<Store>,
        policy: PolicyConfig,
        workloads: &[WorkloadConfig],
    ) -> Executor {
        let limits = Limits::new(
            providers.keys(),
            policy.parallelism,
            policy.per_provider_parallelism,
        );
        Executor {
            inner: Arc::new(Inner {
                owner,
                providers,
                cutover,
                store,
                policy,
                workloads: workloads
                    .iter()
                    .map(|w| (w.name.clone(), w.clone()))
                    .collect(),
                options: ExecOptions::default(),
                limits,
                // Slow subscribers lose old events rather than slowing the moves down.
                events: broadcast::channel(1024).0,
                departing: tokio::sync::watch::Sender::new(BTreeSet::new()),
            }),
        }
    }

    /// The same executor with other options (with its own limits and event channel,
    /// so call it before sharing or subscribing).
    pub fn with_options(self, options: ExecOptions) -> Executor {
        let i = &*self.inner;
        let mut fresh = Executor::new(
            i.owner.clone(),
            i.providers.clone(),
            i.cutover.clone(),
            i.store.clone(),
            i.policy.clone(),
            &i.workloads.values().cloned().collect::<Vec<_>>(),
        );
        if let Some(inner) = Arc::get_mut(&mut fresh.inner) {
            inner.options = options;
        }
        fresh
    }

    /// Tells the running moves which providers are being left now (the loop goes on
    /// deciding while they run): a move not yet cut over to one of them gives that
    /// target up and falls through to its next candidate.
    pub fn set_departing(&self, providers: BTreeSet<String>) {
        self.inner.departing.send_if_modified(|departing| {
            let changed = *departing != providers;
            *departing = providers;
            changed
        });
    }

    /// Whether the kill switch is thrown now (no step starts; nothing new is deployed).
    pub fn is_paused(&self) -> bool {
        self.inner.options.pause.is_paused()
    }

    /// The replication methods its moves promote and fence with.
    pub fn datasets(&self) -> &crate::dataset::Datasets {
        &self.inner.options.datasets
    }

    /// The owner this executor acts for.
    pub fn owner(&self) -> &Owner {
        &self.inner.owner
    }

    /// The clock it stamps the journal and the placements with: the loop decides by
    /// the same one.
    pub fn clock(&self) -> &Clock {
        &self.inner.options.clock
    }

    /// Live progress: every journaled transition, as it is written.
    pub fn subscribe(&self) -> broadcast::Receiver<ExecEvent> {
        self.inner.events.subscribe()
    }

    /// Runs every move of `plan` to its end and reports how each went. Errors only when
    /// the store fails (the executor stops rather than act without a journal); provider
    /// and hook failures end up in the report.
    ///
    /// Call [`Executor::resume`] first after a start-up, so an interrupted evacuation is
    /// finished before a new plan moves the same workloads again.
    pub async fn execute(&self, plan: &Plan) -> anyhow::Result<Report> {
        let store = &self.inner.store;
        let mut sources = BTreeMap::new();
        for mv in &plan.moves {
            if let Some(placement) = store.placement(&mv.workload)? {
                sources.insert(mv.workload.clone(), placement);
            }
        }
        let started = self.inner.options.clock.now();
        let evacuation = Evacuation {
            // Lower case, digits and dashes only: the id names the Evacuation resource in
            // cluster mode, and Kubernetes names are RFC 1123 subdomains.
            id: format!(
                "ev-{}-{:03}-{:04x}",
                started.strftime("%Y%m%d-%H%M%S"),
                started.subsec_millisecond(),
                rand::random::<u16>()
            ),
            plan: plan.clone(),
            sources,
            shadow: self.inner.options.shadow,
            started,
            finished: None,
        };
        store
            .begin_evacuation(&evacuation)
            .context("recording the evacuation before acting")?;
        run::run_evacuation(self.inner.clone(), evacuation, BTreeMap::new()).await
    }

    /// Finishes every evacuation a crashed or killed controller left unfinished, from
    /// its journal: steps already done are skipped, the one in flight is repeated
    /// (deploy is idempotent; a cutover first checks where the name points).
    pub async fn resume(&self) -> anyhow::Result<Vec<Report>> {
        let mut reports = Vec::new();
        for evacuation in self.inner.store.unfinished_evacuations()? {
            let journal = self.inner.store.journal(&evacuation.id)?;
            let mut by_workload: BTreeMap<String, Vec<&JournalEntry>> = BTreeMap::new();
            for entry in &journal {
                by_workload
                    .entry(entry.workload.clone())
                    .or_default()
                    .push(entry);
            }
            let progress = by_workload
                .into_iter()
                .map(|(w, entries)| (w, resume::replay(entries)))
                .collect();
            tracing::info!(evacuation = %evacuation.id, "resuming an unfinished evacuation");
            reports.push(run::run_evacuation(self.inner.clone(), evacuation, progress).await?);
        }
        Ok(reports)
    }

    /// Retires copies that must never receive traffic again: this owner's copies found
    /// by `list_managed` with a generation lower than the workload's placement (or of
    /// the same generation on another provider), and recorded orphans whose provider
    /// answers again. Copies of moves still in flight are left alone. An installation
    /// (never a drill) also adopts the copies made before owners existed: those are
    /// stale unless a placement names them.
    pub async fn retire_stale(&self) -> anyhow::Result<StaleReport> {
        stale::retire_stale(&self.inner).await
    }
}

/// Journal writer of one move: every line also goes out as an [`ExecEvent`].
pub(crate) struct MoveLog {
    inner: Arc<Inner>,
    evacuation: String,
    workload: String,
    generation: Generation,
}

impl MoveLog {
    fn entry(
        &self,
        step: Step,
        attempt: u32,
        status: Status,
        target: &str,
        deployment: Option<DeploymentRef>,
        detail: Option<String>,
    ) -> JournalEntry {
        JournalEntry {
            id: 0,
            evacuation: self.evacuation.clone(),
            workload: self.workload.clone(),
            step,
            attempt,
            status,
            target: target.to_owned(),
            generation: self.generation,
            deployment,
            detail,
            at: self.inner.options.clock.now(),
        }
    }

    fn emit(&self, e: &JournalEntry, last_attempt: bool) {
        // No subscriber is fine: events are for whoever watches.
        let _ = self.inner.events.send(ExecEvent {
            evacuation: e.evacuation.clone(),
            workload: e.workload.clone(),
            step: e.step,
            status: e.status,
            attempt: e.attempt,
            target: e.target.clone(),
            detail: e.detail.clone(),
            at: Instant::now(),
            wall: e.at,
            last_attempt,
        });
    }

    /// Journals one transition (durably, see [`Store::append`]), then announces it.
    pub async fn write(
        &self,
        step: Step,
        attempt: u32,
        status: Status,
        target: &str,
        deployment: Option<DeploymentRef>,
        detail: Option<String>,
    ) -> anyhow::Result<()> {
        let entry = self.entry(step, attempt, status, target, deployment, detail);
        self.inner.store.append(&entry).await?;
        self.emit(&entry, false);
        Ok(())
    }

    /// Journals a failed attempt, then announces it, saying whether it was the step's
    /// last at this target (see [`ExecEvent::last_attempt`]).
    pub async fn write_failure(
        &self,
        step: Step,
        attempt: u32,
        target: &str,
        detail: String,
        last_attempt: bool,
    ) -> anyhow::Result<()> {
        let entry = self.entry(step, attempt, Status::Failed, target, None, Some(detail));
        self.inner.store.append(&entry).await?;
        self.emit(&entry, last_attempt);
        Ok(())
    }

    /// Journals a `done`, committing a new placement with it when there is one.
    pub async fn finish(
        &self,
        step: Step,
        attempt: u32,
        target: &str,
        deployment: Option<DeploymentRef>,
        placement: Option<Placement>,
    ) -> anyhow::Result<()> {
        let entry = self.entry(step, attempt, Status::Done, target, deployment, None);
        match placement {
            Some(p) => self.inner.store.append_cutover(&entry, &p).await?,
            None => {
                self.inner.store.append(&entry).await?;
            }
        }
        self.emit(&entry, false);
        Ok(())
    }
}
