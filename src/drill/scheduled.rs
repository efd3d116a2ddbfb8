//! Drills the daemon runs on a schedule (`drills:` in `lifeboat.yaml`).
//!
//! One drill at a time, in the daemon's process, each a shadow drill with its own
//! owner and state (so it never touches production copies or traffic). The daemon
//! never overlaps a drill with an evacuation: a drill is only started between rounds
//! when no evacuation runs, and a real evacuation first cancels a running drill and
//! waits for its cleanup. Every result, failures included, is kept in the daemon's
//! store, where `lifeboat status` shows it.

use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use tokio::task::JoinHandle;

use super::report::DrillReport;
use super::run::{self, DrillOptions, Interrupts};
use crate::config::{Config, DrillMode, Scenario, ScheduledDrillConfig};
use crate::providers::BuildOptions;
use crate::schedule::Schedule;
use crate::store::Store;

/// What the daemon keeps of one scheduled drill (as a drill record of its store).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScheduledResult {
    /// The scheduled drill's name.
    pub schedule: String,
    /// When it started (RFC 3339).
    pub started_at: String,
    /// `objectives met`, `objectives missed`, `cancelled: ...` or `failed: ...`.
    pub outcome: String,
    /// The drill's report, when it ran to its end.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub report: Option<DrillReport>,
}

/// A drill the daemon is asked to run, from its surroundings rather than its config
/// (a `Drill` resource in a cluster): on a cron schedule, or once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DrillRequest {
    /// Its name (the resource's), unique among the requests.
    pub name: String,
    /// The vendor, `vendor/account` or provider to lose.
    pub lose: String,
    /// The fault to inject.
    pub scenario: Scenario,
    /// When to run it; `None`: once, as soon as no evacuation runs.
    pub schedule: Option<Schedule>,
}

struct Entry {
    request: DrillRequest,
    next: Option<Timestamp>,
}

impl Entry {
    fn of(request: DrillRequest, now: Timestamp) -> Entry {
        Entry {
            next: match &request.schedule {
                Some(schedule) => schedule.next_after(now),
                None => Some(now),
            },
            request,
        }
    }
}

struct Running {
    name: String,
    started_at: Timestamp,
    interrupts: Interrupts,
    task: JoinHandle<anyhow::Result<DrillReport>>,
}

/// The daemon's drill schedule and the drill it runs, if any.
pub struct Scheduler {
    entries: Vec<Entry>,
    running: Option<Running>,
    build: BuildOptions,
}

impl Scheduler {
    /// The schedule of `config`'s drills, counting from `now`. Expressions were checked
    /// by validation; one that does not parse here is skipped with a warning.
    pub fn new(config: &Config, build: &BuildOptions, now: Timestamp) -> Scheduler {
        let entries = config
            .drills
            .iter()
            .filter_map(
                |d: &ScheduledDrillConfig| match Schedule::parse(&d.schedule) {
                    Ok(schedule) => Some(Entry::of(
                        DrillRequest {
                            name: d.name.clone(),
                            lose: d.lose.clone(),
                            scenario: d.scenario,
                            schedule: Some(schedule),
                        },
                        now,
                    )),
                    Err(why) => {
                        tracing::warn!(drill = %d.name, "scheduled drill skipped: {why}");
                        None
                    }
                },
            )
            .collect();
        Scheduler {
            entries,
            running: None,
            build: build.clone(),
        }
    }

    /// Takes `requests` as the drills to run from now on. A request that is already
    /// known keeps its place (a drill run once is not run again because it is asked
    /// for again); a running drill that is no longer requested finishes.
    pub fn request(&mut self, requests: Vec<DrillRequest>, now: Timestamp) {
        let mut known: Vec<Entry> = std::mem::take(&mut self.entries);
        self.entries = requests
            .into_iter()
            .map(|r| match known.iter().position(|e| e.request == r) {
                Some(i) => known.swap_remove(i),
                None => {
                    tracing::info!(drill = %r.name, lose = %r.lose, "drill requested");
                    Entry::of(r, now)
                }
            })
            .collect();
    }

    /// Whether a drill runs now.
    pub fn busy(&self) -> bool {
        self.running.is_some()
    }

    /// Between rounds, with no evacuation running: records a drill that ended, then
    /// starts the first drill that is due, if none runs. A drill that came due while
    /// another ran starts next; runs missed while the daemon was down are not made up.
    /// Returns the result of the drill that ended, if one did.
    pub async fn tick(
        &mut self,
        config: &Arc<Config>,
        store: &Store,
        now: Timestamp,
    ) -> Option<ScheduledResult> {
        let mut finished = None;
        if self.running.as_ref().is_some_and(|r| r.task.is_finished())
            && let Some(done) = self.running.take()
        {
            let outcome = done.task.await;
            finished = Some(record(store, &done.name, done.started_at, flatten(outcome)));
        }
        if self.running.is_some() {
            return finished;
        }
        let Some(entry) = self
            .entries
            .iter_mut()
            .filter(|e| e.next.is_some_and(|n| n <= now))
            .min_by_key(|e| e.next)
        else {
            return finished;
        };
        entry.next = (entry.request.schedule.as_ref()).and_then(|s| s.next_after(now));
        let options = DrillOptions {
            lose: entry.request.lose.clone(),
            scenario: entry.request.scenario,
            mode: DrillMode::Shadow,
            blackout: false,
            build: self.build.clone(),
            patience: run::patience(config),
            probe_every: Duration::from_millis(250),
        };
        let name = entry.request.name.clone();
        let when = (entry.request.schedule.as_ref()).map_or("once", Schedule::as_str);
        tracing::info!(drill = %name, lose = %options.lose, schedule = %when, "scheduled drill starting");
        let interrupts = Interrupts::default();
        let progress: run::Progress = {
            let name = name.clone();
            Arc::new(move |line| tracing::info!(drill = %name, "{line}"))
        };
        let task = tokio::spawn({
            let (config, interrupts) = (config.clone(), interrupts.clone());
            async move { run::run(&config, options, progress, interrupts).await }
        });
        self.running = Some(Running {
            name,
            started_at: now,
            interrupts,
            task,
        });
        finished
    }

    /// Stops a running drill and waits until it has cleaned up, so an evacuation
    /// starts with no drill copy in its way. Records it as cancelled with `why`, and
    /// returns that record when a drill was running.
    pub async fn cancel(&mut self, store: &Store, why: &str) -> Option<ScheduledResult> {
        let running = self.running.take()?;
        tracing::warn!(drill = %running.name, "cancelling the scheduled drill: {why}");
        running.interrupts.stop.cancel();
        let outcome = match running.task.await {
            Ok(Ok(report)) => Ok(report),
            _ => Err(format!("cancelled: {why}")),
        };
        Some(record(store, &running.name, running.started_at, outcome))
    }

    /// Stops a running drill (the daemon is stopping) and waits for its cleanup.
    pub async fn shut_down(&mut self, store: &Store) -> Option<ScheduledResult> {
        self.cancel(store, "the daemon is stopping").await
    }
}

fn flatten(
    outcome: Result<anyhow::Result<DrillReport>, tokio::task::JoinError>,
) -> Result<DrillReport, String> {
    match outcome {
        Ok(Ok(report)) => Ok(report),
        Ok(Err(e)) => Err(format!("failed: {e:#}")),
        Err(e) => Err(format!("failed: the drill task ended abnormally ({e})")),
    }
}

fn record(
    store: &Store,
    name: &str,
    started: Timestamp,
    outcome: Result<DrillReport, String>,
) -> ScheduledResult {
    let result = match outcome {
        Ok(report) => ScheduledResult {
            schedule: name.to_owned(),
            started_at: started.to_string(),
            outcome: if report.objectives_met {
                "objectives met".into()
            } else {
                "objectives missed".into()
            },
            report: Some(report),
        },
        Err(outcome) => ScheduledResult {
            schedule: name.to_owned(),
            started_at: started.to_string(),
            outcome,
            report: None,
        },
    };
    tracing::info!(drill = %name, outcome = %result.outcome, "scheduled drill finished");
    if let Err(e) = store.put_drill(&result, Timestamp::now()) {
        tracing::error!(drill = %name, "recording the scheduled drill's result: {e:#}");
    }
    result
}
