//! Turning a drill's measurements (executor events, prober logs, the evacuation's
//! report) into a [`DrillReport`], judged against each workload's objective. Pure: no
//! clock, no I/O, so the judgement is testable on its own.

use std::collections::{BTreeMap, BTreeSet};

use jiff::Timestamp;
use tokio::time::Instant;

use super::prober;
use super::report::{
    DataOutcome, DrillReport, Phase, SpanOutcome, StepSpan, StrandedOutcome, TimelineEvent,
    WorkloadOutcome, conditions_from_timeline, fmt_ms, step_phase,
};
use super::words;
use crate::config::{Config, DrillMode, Scenario};
use crate::execute::{ExecEvent, Report};
use crate::model::Step;
use crate::store::{Outcome, Status};

/// When each workload's copy became healthy and was cut over, and the span of every
/// step attempt, from the executor's events.
#[derive(Debug, Default)]
pub(super) struct StepTimes {
    healthy: BTreeMap<String, u64>,
    cut_over: BTreeMap<String, u64>,
    spans: BTreeMap<String, Vec<StepSpan>>,
    /// Attempts started and not yet ended: (workload, step, target) → start.
    open: BTreeMap<(String, Step, String), u64>,
}

impl StepTimes {
    /// Records a step transition: its span, the moments the report measures, and a
    /// line for the event log in the user's words.
    pub(super) fn note(
        &mut self,
        e: &ExecEvent,
        ms: &impl Fn(Instant) -> u64,
        timeline: &mut Vec<TimelineEvent>,
    ) {
        let at = ms(e.at);
        let key = (e.workload.clone(), e.step, e.target.clone());
        let outcome = match e.status {
            Status::Started => {
                self.open.insert(key.clone(), at);
                None
            }
            Status::Done => Some(SpanOutcome::Done),
            Status::Failed if e.step == Step::RetireSource && e.last_attempt => {
                Some(SpanOutcome::Orphaned)
            }
            Status::Failed => Some(SpanOutcome::Failed),
            Status::Abandoned => None,
        };
        if let Some(outcome) = outcome {
            // A `done` without its `started` (a cutover found to have taken effect) is
            // a moment, not a span.
            let start = self.open.remove(&key).unwrap_or(at);
            self.spans
                .entry(e.workload.clone())
                .or_default()
                .push(StepSpan {
                    phase: step_phase(e.step).to_owned(),
                    target: e.target.clone(),
                    start_ms: start,
                    end_ms: at.max(start),
                    outcome,
                });
        }
        if e.status == Status::Done {
            let slot = match e.step {
                Step::WaitHealthy => Some(&mut self.healthy),
                Step::Cutover => Some(&mut self.cut_over),
                _ => None,
            };
            if let Some(slot) = slot {
                slot.entry(e.workload.clone()).or_insert(at);
            }
        }
        // A move retires its source only after its cutover; a retire without one is a
        // shadow drill removing its verified copy, which the log words differently.
        let shadow = !self.cut_over.contains_key(&e.workload);
        if let Some(told) = words::tell(e, shadow) {
            timeline.push(TimelineEvent {
                at_ms: at,
                workload: Some(e.workload.clone()),
                what: told.line,
            });
        }
    }

    /// The spans of `workload`, attempts still open ending at `end_ms` as unfinished,
    /// without the hook steps of a workload that has no hooks (they do nothing).
    pub(super) fn spans_of(&self, config: &Config, workload: &str, end_ms: u64) -> Vec<StepSpan> {
        let mut spans: Vec<StepSpan> = self.spans.get(workload).cloned().unwrap_or_default();
        spans.extend(self.open.iter().filter(|((w, _, _), _)| w == workload).map(
            |((_, step, target), &start)| StepSpan {
                phase: step_phase(*step).to_owned(),
                target: target.clone(),
                start_ms: start,
                end_ms: end_ms.max(start),
                outcome: SpanOutcome::Unfinished,
            },
        ));
        spans.retain(|s| {
            let step = Step::ALL.into_iter().find(|st| step_phase(*st) == s.phase);
            step.is_none_or(|st| words::does_something(config, workload, st))
        });
        spans.sort_by_key(|s| (s.start_ms, s.end_ms));
        spans
    }
}

/// Everything a drill measured, for [`assemble`]. It names what was drilled itself
/// rather than holding the runner's options, so this module needs nothing of the one
/// that runs drills.
pub(super) struct Assembly<'a> {
    pub(super) config: &'a Config,
    /// The vendor, `vendor/account` or provider lost, as the drill was asked.
    pub(super) lose: &'a str,
    pub(super) scenario: Scenario,
    pub(super) mode: DrillMode,
    pub(super) lost: &'a [String],
    pub(super) started_at: Timestamp,
    pub(super) detected_after_ms: Option<u64>,
    pub(super) evacuation: Option<&'a Report>,
    pub(super) affected: &'a BTreeSet<String>,
    pub(super) steps: &'a StepTimes,
    pub(super) logs: &'a [(String, prober::ProbeLog)],
    pub(super) failback: Option<String>,
    pub(super) timeline: Vec<TimelineEvent>,
    /// What the datasets' moves kept, as the drill's writer measured it.
    pub(super) data: Vec<DataOutcome>,
}

/// Puts the measurements together and judges them against each workload's objective.
pub(super) fn assemble(a: Assembly<'_>) -> DrillReport {
    let shadow = a.mode == DrillMode::Shadow;
    // Unfinished attempts are drawn up to the drill's last recorded moment.
    let last_ms = a.timeline.iter().map(|e| e.at_ms).max().unwrap_or(0);
    let mut workloads = Vec::new();
    let mut stranded = Vec::new();
    for name in a.affected {
        let Some(w) = a.config.workload(name) else {
            continue;
        };
        let moved = a
            .evacuation
            .and_then(|r| r.moves.iter().find(|m| &m.workload == name));
        if let Some(s) = a
            .evacuation
            .and_then(|r| r.stranded.iter().find(|s| &s.workload == name))
        {
            stranded.push(StrandedOutcome {
                name: name.clone(),
                reason: s.reason.clone(),
            });
            continue;
        }
        let log = a.logs.iter().find(|(n, _)| n == name).map(|(_, l)| l);
        let outages = log
            .map(|l| prober::outages(&l.samples, 0))
            .unwrap_or_default();
        let ttl_ms = log
            .and_then(|l| l.ttl)
            .map(|t| u64::try_from(t.as_millis()).unwrap_or(u64::MAX));
        let healthy_after_ms = a.steps.healthy.get(name).copied();
        let rto_ms = if shadow {
            None
        } else {
            a.steps
                .cut_over
                .get(name)
                .map(|at| at + ttl_ms.unwrap_or(0))
        };
        let to = moved.and_then(|m| match &m.outcome {
            Outcome::Moved { to, .. } => Some(to.clone()),
            Outcome::Verified { on } => Some(on.clone()),
            _ => None,
        });
        let objective = w
            .rto
            .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        let measured = if shadow { healthy_after_ms } else { rto_ms };
        let problem = match (&to, measured, objective) {
            (None, _, _) => Some(match moved.map(|m| &m.outcome) {
                Some(Outcome::Stranded { reason }) => format!("not moved: {reason}"),
                Some(other) => format!("not moved: {other:?}"),
                None => "not moved: the evacuation did not reach it".into(),
            }),
            (Some(_), None, _) => Some(
                if shadow {
                    "never healthy"
                } else {
                    "never cut over"
                }
                .into(),
            ),
            (Some(_), Some(m), Some(o)) if m > o => {
                Some(format!("took {} > objective {}", fmt_ms(m), fmt_ms(o)))
            }
            _ => None,
        };
        workloads.push(WorkloadOutcome {
            name: name.clone(),
            from: moved.and_then(|m| m.from.clone()),
            to,
            healthy: healthy_after_ms.is_some(),
            healthy_after_ms,
            rto_ms,
            downtime_ms: log.map(|_| prober::downtime_ms(&outages)),
            outages,
            rto_objective_ms: objective,
            dns_ttl_ms: ttl_ms,
            phases: moved
                .map(|m| m.phases.iter().map(Phase::from).collect())
                .unwrap_or_default(),
            steps: a.steps.spans_of(a.config, name, last_ms),
            rpo_ms: (a.data.iter())
                .find(|d| d.workload == *name)
                .map(|d| d.rpo_ms),
            met: problem.is_none(),
            problem,
        });
    }
    let objectives_met = a.detected_after_ms.is_some() || a.affected.is_empty();
    let objectives_met = objectives_met
        && stranded.is_empty()
        && workloads.iter().all(|w| w.met)
        && a.data.iter().all(|d| d.met)
        && a.failback
            .as_deref()
            .is_none_or(|f| f.starts_with("ok") || f.starts_with("nothing"));
    let mut timeline = a.timeline;
    timeline.sort_by_key(|e| e.at_ms);
    let conditions = conditions_from_timeline(&timeline);
    DrillReport {
        scenario: a.scenario.as_str().to_owned(),
        mode: match a.mode {
            DrillMode::Live => "live",
            DrillMode::Shadow => "shadow",
        }
        .to_owned(),
        lost: a.lose.to_owned(),
        lost_providers: a.lost.to_vec(),
        started_at: a.started_at.to_string(),
        detected_after_ms: a.detected_after_ms,
        objectives_met,
        workloads,
        stranded,
        failback: a.failback,
        timeline,
        conditions,
        data: a.data,
    }
}
