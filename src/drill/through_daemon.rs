//! A live drill beside a running daemon: the drill does not start a second controller
//! over production. It asks the daemon, through its API, to fence the vendor (a notice
//! without deadline, as `lifeboat evacuate` raises), watches the daemon's own
//! evacuation through the event feed while the independent prober requests the public
//! names, measures it like any drill, and fails back through the daemon too (a fence on
//! the providers the workloads moved to, lifted once they are back).
//!
//! What it exercises is the production path end to end: the daemon's decision, its
//! planning, approvals (`mode: confirm` waits for `lifeboat evacuations approve`), the
//! kill switch, its executor and its cutover. What it cannot exercise is detection of a
//! fault: the daemon's adapters are not faulted, so "detected" is the daemon's reaction
//! to the fence. Every fence the drill raised is cleared before it returns, also when it
//! fails or is interrupted; only a drill killed outright leaves one, which
//! `lifeboat notice list` shows with the drill's id.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use anyhow::bail;
use jiff::Timestamp;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::assemble::{Assembly, StepTimes, assemble};
use super::prober;
use super::report::{DrillReport, TimelineEvent, fmt_ms};
use super::run::{DrillOptions, Interrupts, Progress, longest_ttl};
use super::words;
use crate::api::client::Client;
use crate::api::routes::{EvacuationsView, EventsPage, NoticeRequest, WorkloadView};
use crate::config::{Config, DrillMode};
use crate::cutover;
use crate::execute::{ExecEvent, MoveReport, Report};
use crate::model::Stranded;
use crate::store::{JournalEntry, NoticeRecord, Outcome, Status, Store};

/// The longest the drill waits between two looks at the daemon.
const LOOK_EVERY: Duration = Duration::from_millis(250);

/// Runs a live drill of losing `options.lose` through the daemon `client` reaches
/// (`pid` names it in messages). Clears every fence it raised before it returns.
pub async fn run(
    config: &Config,
    options: DrillOptions,
    client: Client,
    pid: u32,
    progress: Progress,
    interrupts: Interrupts,
) -> anyhow::Result<DrillReport> {
    if options.mode != DrillMode::Live {
        bail!("only a live drill runs through the daemon; a shadow drill runs on its own");
    }
    let Some(scope) = config.resolve_scope(&options.lose) else {
        bail!(
            "--lose {:?} names no vendor, vendor/account or provider of {}",
            options.lose,
            config.source.display()
        );
    };
    let lost: Vec<String> = (config.providers_in(&scope).iter())
        .map(|p| p.name.clone())
        .collect();
    let drill = Drill {
        config,
        options: &options,
        client: &client,
        progress,
        lost: &lost,
        id: crate::installation::drill_id(Timestamp::now()),
        fences: std::sync::Mutex::new(Vec::new()),
    };
    (drill.progress)(format!(
        "drill {} through the daemon (pid {pid}): it fences {} and the daemon evacuates",
        drill.id, options.lose
    ));
    let outcome = tokio::select! {
        report = drill.run() => report,
        _ = interrupts.stop.cancelled() => Err(anyhow::anyhow!("drill interrupted")),
    };
    // Whatever happened, production is not left fenced by a drill.
    let lifted = drill.lift_fences().await;
    if let Err(e) = &lifted {
        (drill.progress)(format!("! {e:#}"));
    }
    let report = outcome?;
    lifted?;
    // Kept beside the other drills' reports, where deadline estimates learn from them.
    let kept = Store::open(&super::cleanup::drill_config(config).state_dir)
        .and_then(|store| store.put_drill(&report, Timestamp::now()));
    if let Err(e) = kept {
        (drill.progress)(format!("the report is not kept with the drills: {e:#}"));
    }
    Ok(report)
}

struct Drill<'a> {
    config: &'a Config,
    options: &'a DrillOptions,
    client: &'a Client,
    progress: Progress,
    lost: &'a [String],
    id: String,
    /// The notices this drill raised and has not cleared yet.
    fences: std::sync::Mutex<Vec<i64>>,
}

/// What the drill saw of one evacuation the daemon ran for it.
struct Watched {
    /// When the fence was raised, on the daemon's clock.
    raised: Timestamp,
    /// When the daemon started acting, in ms after the fence.
    started_ms: Option<u64>,
    /// The journal lines of the evacuations started after the fence.
    entries: Vec<JournalEntry>,
    /// Every workload's placement when the evacuation settled.
    placed: BTreeMap<String, String>,
    /// The daemon gave up waiting (patience ran out).
    gave_up: bool,
}

impl Watched {
    fn new(raised: Timestamp) -> Watched {
        Watched {
            raised,
            started_ms: None,
            entries: Vec::new(),
            placed: BTreeMap::new(),
            gave_up: false,
        }
    }
}

impl Drill<'_> {
    async fn run(&self) -> anyhow::Result<DrillReport> {
        let say = |line: String| (self.progress)(line);
        let started_at = Timestamp::now();
        let before = placed(&self.client.get::<Vec<WorkloadView>>("/workloads").await?);
        let affected: BTreeSet<String> = (before.iter())
            .filter(|(_, p)| self.lost.contains(p))
            .map(|(w, _)| w.clone())
            .collect();
        for (w, p) in &before {
            say(format!("  {w} runs on {p}"));
        }
        if affected.is_empty() {
            say(format!(
                "no workload runs on {}: nothing to move",
                self.options.lose
            ));
        }

        // The prober starts before the fence so it sees the service up first.
        let stop_probing = CancellationToken::new();
        let warmup = Duration::from_secs(1);
        let zero_estimate = Instant::now() + warmup;
        let probing = prober::spawn(
            prober::targets(self.config),
            cutover::build(self.config)?,
            self.options.probe_every,
            zero_estimate,
            stop_probing.clone(),
        );
        let mut after = 0;
        events(self.client, &mut after, false).await?;
        tokio::time::sleep_until(zero_estimate).await;

        let mut timeline = Vec::new();
        let zero = Instant::now();
        let mut watched = Watched::new(Timestamp::now());
        if !affected.is_empty() {
            let fence = self.fence(&self.options.lose, "live drill").await?;
            let line = format!(
                "fence raised through the daemon: {} (notice {}); its adapters are not \
                 faulted, so detection is the daemon's reaction to the fence",
                self.options.lose, fence.id
            );
            say(format!("[{:>7}] {line}", "0ms"));
            timeline.push(TimelineEvent {
                at_ms: 0,
                workload: None,
                what: line,
            });
            watched = self
                .watch(fence.raised, zero, &mut after, &mut timeline, |placed| {
                    affected
                        .iter()
                        .all(|w| placed.get(w).is_some_and(|p| !self.lost.contains(p)))
                })
                .await?;
            self.lift(fence.id).await?;
        }

        // Let the prober see the settled state, and clients' cached answers expire.
        tokio::time::sleep(Duration::from_millis(500) + longest_ttl(self.config)).await;
        stop_probing.cancel();
        let logs = probing.await.unwrap_or_default();

        let (steps, events) = step_times(&watched.entries, watched.raised, zero);
        timeline.extend(events);
        let evacuation = report_of(&affected, &before, &watched, self.lost);
        let failback = match &evacuation {
            Some(report) if report.all_moved() && !watched.gave_up => {
                Some(self.fail_back(report, &before, &mut after).await?)
            }
            _ => None,
        };
        let detected_after_ms = watched.started_ms;
        if let Some(at) = detected_after_ms {
            timeline.push(TimelineEvent {
                at_ms: at,
                workload: None,
                what: "detected".into(),
            });
        }
        let mut report = assemble(Assembly {
            config: self.config,
            lose: &self.options.lose,
            scenario: self.options.scenario,
            mode: DrillMode::Live,
            lost: self.lost,
            started_at,
            detected_after_ms,
            evacuation: evacuation.as_ref(),
            affected: &affected,
            steps: &steps,
            logs: &logs,
            failback,
            timeline,
            // A drill through the daemon does not write to the daemon's datasets.
            data: Vec::new(),
        });
        report.scenario = "fence".into();
        Ok(report)
    }

    /// Watches the daemon from the fence raised at `raised` (`zero` on this side's
    /// clock) until every evacuation it started since has finished and `settled` holds
    /// for the placements, or the drill's patience runs out.
    async fn watch(
        &self,
        raised: Timestamp,
        zero: Instant,
        after: &mut i64,
        timeline: &mut Vec<TimelineEvent>,
        settled: impl Fn(&BTreeMap<String, String>) -> bool,
    ) -> anyhow::Result<Watched> {
        let say = |line: String| (self.progress)(line);
        let ms = |at: Timestamp| ms_between(raised, at);
        let look = self.config.policy.probe_interval.min(LOOK_EVERY);
        let deadline = zero + self.options.patience;
        let mut watched = Watched::new(raised);
        let mut ours: BTreeSet<String> = BTreeSet::new();
        let mut told_waiting = false;
        loop {
            let view: EvacuationsView = self.client.get("/evacuations").await?;
            for e in view.evacuations.iter().filter(|e| e.started >= raised) {
                if ours.insert(e.id.clone()) {
                    let at = ms(e.started);
                    watched.started_ms = Some(watched.started_ms.map_or(at, |s| s.min(at)));
                    say(format!(
                        "[{:>7}] the daemon started evacuation {}",
                        fmt_ms(at),
                        e.id
                    ));
                }
            }
            let waiting = match (&view.pending, &view.paused) {
                (Some(p), _) => Some(format!(
                    "the daemon waits for approval of {}: `lifeboat evacuations approve {}`",
                    p.id, p.id
                )),
                (None, Some(pause)) => Some(format!(
                    "the daemon is paused ({}): `lifeboat resume` lets it go on",
                    pause.reason
                )),
                _ => None,
            };
            if let Some(line) = waiting.filter(|_| !told_waiting) {
                told_waiting = true;
                say(format!("[{:>7}] {line}", fmt_ms(ms(Timestamp::now()))));
            }
            for entry in events(self.client, after, true).await? {
                if !ours.contains(&entry.evacuation) {
                    continue;
                }
                if words::does_something(self.config, &entry.workload, entry.step)
                    && let Some(told) = words::tell(&event(&entry, false, zero, raised), false)
                {
                    let mark = if told.trouble { "! " } else { "" };
                    say(format!("[{:>7}] {mark}{}", fmt_ms(ms(entry.at)), told.line));
                }
                watched.entries.push(entry);
            }
            let finished = !ours.is_empty()
                && (view.evacuations.iter())
                    .filter(|e| ours.contains(&e.id))
                    .all(|e| e.finished.is_some());
            if finished {
                watched.placed = placed(&self.client.get::<Vec<WorkloadView>>("/workloads").await?);
                if settled(&watched.placed) || view.evacuations.iter().all(|e| e.finished.is_some())
                {
                    return Ok(watched);
                }
            }
            if Instant::now() > deadline {
                let line = format!(
                    "gave up: the daemon did not finish within {:?}",
                    self.options.patience
                );
                say(line.clone());
                timeline.push(TimelineEvent {
                    at_ms: ms(Timestamp::now()),
                    workload: None,
                    what: line,
                });
                watched.placed = placed(&self.client.get::<Vec<WorkloadView>>("/workloads").await?);
                watched.gave_up = true;
                return Ok(watched);
            }
            tokio::time::sleep(look).await;
        }
    }

    /// Live drills end where they started: every moved workload goes back, through the
    /// daemon, by a fence on the providers it moved to — unless such a fence would move
    /// a workload the drill did not move, which is left to the team.
    async fn fail_back(
        &self,
        evacuation: &Report,
        before: &BTreeMap<String, String>,
        after: &mut i64,
    ) -> anyhow::Result<String> {
        let moved: BTreeMap<&str, &str> = (evacuation.moves.iter())
            .filter_map(|m| match &m.outcome {
                Outcome::Moved { to, .. } => Some((m.workload.as_str(), to.as_str())),
                _ => None,
            })
            .collect();
        if moved.is_empty() {
            return Ok("nothing to move back".into());
        }
        let targets: BTreeSet<&str> = moved.values().copied().collect();
        let now = placed(&self.client.get::<Vec<WorkloadView>>("/workloads").await?);
        let bystanders: Vec<String> = (now.iter())
            .filter(|(w, p)| targets.contains(p.as_str()) && !moved.contains_key(w.as_str()))
            .map(|(w, p)| format!("{w} on {p}"))
            .collect();
        if !bystanders.is_empty() {
            return Ok(format!(
                "not done: a fence on {} would move {} too; move the drill's workloads back \
                 with `lifeboat evacuate` when the team is ready",
                targets.iter().copied().collect::<Vec<_>>().join(", "),
                bystanders.join(", ")
            ));
        }
        (self.progress)("failing back".into());
        let zero = Instant::now();
        let mut fences = Vec::new();
        for target in &targets {
            fences.push(self.fence(target, "live drill failback").await?);
        }
        let raised = fences
            .iter()
            .map(|f| f.raised)
            .min()
            .unwrap_or_else(Timestamp::now);
        let back = self
            .watch(raised, zero, after, &mut Vec::new(), |placed| {
                moved.keys().all(|w| {
                    placed
                        .get(*w)
                        .is_some_and(|p| !targets.contains(p.as_str()))
                })
            })
            .await?;
        for fence in &fences {
            self.lift(fence.id).await?;
        }
        let home = moved
            .keys()
            .filter(|w| back.placed.get(**w) == before.get(**w))
            .count();
        Ok(if back.gave_up {
            "incomplete: the daemon did not move them back in time".into()
        } else if moved.keys().all(|w| {
            back.placed
                .get(*w)
                .is_some_and(|p| !targets.contains(p.as_str()))
        }) {
            format!(
                "ok: {} workloads moved back ({home} to where they ran before)",
                moved.len()
            )
        } else {
            "incomplete: some workloads are still where the drill moved them".into()
        })
    }

    /// Raises a fence on `target` through the daemon, remembered for [`Self::lift`].
    async fn fence(&self, target: &str, why: &str) -> anyhow::Result<NoticeRecord> {
        let request = NoticeRequest {
            target: target.to_owned(),
            deadline: None,
            reason: format!("{why} {}", self.id),
        };
        let record: NoticeRecord = self.client.post("/notices", &request).await?;
        self.fences
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(record.id);
        Ok(record)
    }

    /// Clears one fence this drill raised.
    async fn lift(&self, id: i64) -> anyhow::Result<()> {
        self.client.delete(&format!("/notices/{id}")).await?;
        self.fences
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|f| *f != id);
        Ok(())
    }

    /// Clears every fence this drill raised and has not cleared yet.
    async fn lift_fences(&self) -> anyhow::Result<()> {
        let left: Vec<i64> = self
            .fences
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        for id in left {
            if let Err(e) = self.lift(id).await {
                bail!(
                    "the drill's fence (notice {id}) could not be cleared: {e:#}; clear it with \
                     `lifeboat notice clear -c {} {id}`",
                    self.config.source.display()
                );
            }
        }
        Ok(())
    }
}

/// The journal lines written after `after`, every page, and moves `after` past them;
/// with `keep` false only moves it (the drill reads what is written after it starts).
async fn events(client: &Client, after: &mut i64, keep: bool) -> anyhow::Result<Vec<JournalEntry>> {
    let mut lines = Vec::new();
    loop {
        let page: EventsPage = client
            .get(&format!("/events?after={after}&limit=1000"))
            .await?;
        *after = page.next;
        if page.events.is_empty() {
            return Ok(lines);
        }
        if keep {
            lines.extend(page.events);
        }
    }
}

/// Each placed workload's provider.
fn placed(workloads: &[WorkloadView]) -> BTreeMap<String, String> {
    (workloads.iter())
        .filter_map(|w| Some((w.name.clone(), w.placement.as_ref()?.provider.clone())))
        .collect()
}

fn ms_between(zero: Timestamp, at: Timestamp) -> u64 {
    let d = at.duration_since(zero);
    u64::try_from(d.as_millis()).unwrap_or(0)
}

/// The spans and moments of the moves the daemon journaled, measured from the fence
/// (raised at `raised` on the daemon's clock, `zero` on this side's), and the event log
/// lines in the user's words.
fn step_times(
    entries: &[JournalEntry],
    raised: Timestamp,
    zero: Instant,
) -> (StepTimes, Vec<TimelineEvent>) {
    let ms = move |at: Instant| {
        u64::try_from(at.saturating_duration_since(zero).as_millis()).unwrap_or(u64::MAX)
    };
    let mut steps = StepTimes::default();
    let mut timeline = Vec::new();
    for (i, entry) in entries.iter().enumerate() {
        // The journal does not say whether a failure was the last attempt: it was when
        // no attempt of the same step at the same target follows.
        let last_attempt = entry.status == Status::Failed
            && !entries[i + 1..].iter().any(|later| {
                later.workload == entry.workload
                    && later.step == entry.step
                    && later.target == entry.target
                    && later.status == Status::Started
            });
        steps.note(
            &event(entry, last_attempt, zero, raised),
            &ms,
            &mut timeline,
        );
    }
    (steps, timeline)
}

/// The evacuation as the drill's report needs it: each affected workload moved to where
/// the daemon placed it, or stranded where it still is, with the daemon's last word.
fn report_of(
    affected: &BTreeSet<String>,
    before: &BTreeMap<String, String>,
    watched: &Watched,
    lost: &[String],
) -> Option<Report> {
    watched.started_ms?;
    let mut moves = Vec::new();
    let mut stranded = Vec::new();
    for workload in affected {
        match watched.placed.get(workload) {
            Some(to) if !lost.contains(to) => moves.push(MoveReport {
                workload: workload.clone(),
                from: before.get(workload).cloned(),
                outcome: Outcome::Moved {
                    to: to.clone(),
                    warnings: Vec::new(),
                },
                time_to_healthy: None,
                time_to_cutover: None,
                phases: Vec::new(),
            }),
            still => {
                let last_word = (watched.entries.iter().rev())
                    .find(|e| &e.workload == workload && e.detail.is_some())
                    .and_then(|e| e.detail.clone());
                stranded.push(Stranded {
                    workload: workload.clone(),
                    from: still.cloned(),
                    reason: last_word.unwrap_or_else(|| {
                        format!("still on {}", still.map_or("nothing", String::as_str))
                    }),
                });
            }
        }
    }
    let evacuations: BTreeSet<&str> = (watched.entries.iter())
        .map(|e| e.evacuation.as_str())
        .collect();
    Some(Report {
        evacuation: evacuations.into_iter().collect::<Vec<_>>().join(", "),
        moves,
        stranded,
    })
}

/// A journal line as the executor's event, on this side's monotonic clock: `zero` is
/// the moment `raised` (the daemon's clock) happened here.
fn event(entry: &JournalEntry, last_attempt: bool, zero: Instant, raised: Timestamp) -> ExecEvent {
    let after = Duration::from_millis(ms_between(raised, entry.at));
    ExecEvent::from_journal(entry, zero + after, last_attempt)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::drill::report::SpanOutcome;
    use crate::testing::{Builder, replicas, t};
    use lifeboat_provider::Generation;

    fn line(
        step: crate::model::Step,
        status: Status,
        at: i64,
        detail: Option<&str>,
    ) -> JournalEntry {
        JournalEntry {
            id: 0,
            evacuation: "ev-1".into(),
            workload: "db".into(),
            step,
            attempt: 1,
            status,
            target: "metal".into(),
            generation: Generation(2),
            deployment: None,
            detail: detail.map(str::to_owned),
            at: t(at),
        }
    }

    #[test]
    fn the_daemons_journal_becomes_the_drills_spans_and_a_last_failed_retire_an_orphan() {
        use crate::model::Step::{Cutover, Deploy, RetireSource, WaitHealthy};
        let config = Builder::new()
            .provider("acme", "acme", None, replicas(4))
            .provider("metal", "self", None, replicas(4))
            .workload("db", &["acme", "metal"])
            .build();
        let entries = [
            line(Deploy, Status::Started, 1, None),
            line(Deploy, Status::Done, 2, None),
            line(WaitHealthy, Status::Started, 2, None),
            line(WaitHealthy, Status::Done, 4, None),
            line(Cutover, Status::Started, 4, None),
            line(Cutover, Status::Done, 5, None),
            line(RetireSource, Status::Started, 5, None),
            line(RetireSource, Status::Failed, 6, Some("unreachable")),
            line(RetireSource, Status::Started, 6, None),
            line(RetireSource, Status::Failed, 7, Some("unreachable")),
        ];
        let (steps, _) = step_times(&entries, t(0), Instant::now());
        let spans = steps.spans_of(&config, "db", 7_000);
        let outcome = |phase: &str| -> Vec<(u64, SpanOutcome)> {
            (spans.iter())
                .filter(|s| s.phase == phase)
                .map(|s| (s.start_ms, s.outcome))
                .collect()
        };
        assert_eq!(outcome("deploy"), [(1_000, SpanOutcome::Done)]);
        assert_eq!(outcome("cutover"), [(4_000, SpanOutcome::Done)]);
        assert_eq!(
            outcome("retire"),
            [(5_000, SpanOutcome::Failed), (6_000, SpanOutcome::Orphaned)]
        );

        // Placed off the lost provider: moved; still on it: stranded with the last word.
        let mut watched = Watched::new(t(0));
        watched.started_ms = Some(1_000);
        watched.entries = entries.to_vec();
        watched.placed = BTreeMap::from([("db".to_owned(), "metal".to_owned())]);
        let affected = BTreeSet::from(["db".to_owned()]);
        let before = BTreeMap::from([("db".to_owned(), "acme".to_owned())]);
        let lost = ["acme".to_owned()];
        let report = report_of(&affected, &before, &watched, &lost).unwrap();
        assert!(report.all_moved(), "{report:?}");
        watched.placed.insert("db".into(), "acme".into());
        let report = report_of(&affected, &before, &watched, &lost).unwrap();
        assert_eq!(report.stranded[0].reason, "unreachable");
        assert_eq!(report.stranded[0].from.as_deref(), Some("acme"));
    }
}
