//! Turning a drill's measurements (executor events, prober logs, the evacuation's
//! report) into a [`DrillReport`], judged against each workload's objective. Pure: no
//! clock, no I/O, so the judgement is testable on its own.

use std::collections::{BTreeMap, BTreeSet};

use jiff::Timestamp;
use tokio::time::Instant;

use super::prober;
use super::report::{DrillReport, Phase, StrandedOutcome, TimelineEvent, WorkloadOutcome, fmt_ms};
use super::run::DrillOptions;
use crate::config::{Config, DrillMode};
use crate::execute::{ExecEvent, Report};
use crate::model::Step;
use crate::store::{Outcome, Status};

/// When each workload's copy became healthy and was cut over, from the executor's events.
#[derive(Debug, Default)]
pub(super) struct StepTimes {
    healthy: BTreeMap<String, u64>,
    cut_over: BTreeMap<String, u64>,
}

impl StepTimes {
    /// Records a step transition that matters to the report.
    pub(super) fn note(
        &mut self,
        e: &ExecEvent,
        ms: &impl Fn(Instant) -> u64,
        timeline: &mut Vec<TimelineEvent>,
    ) {
        if e.status != Status::Done {
            return;
        }
        let at = ms(e.at);
        let slot = match e.step {
            Step::WaitHealthy => &mut self.healthy,
            Step::Cutover => &mut self.cut_over,
            _ => return,
        };
        slot.entry(e.workload.clone()).or_insert(at);
        timeline.push(TimelineEvent {
            at_ms: at,
            workload: Some(e.workload.clone()),
            what: format!("{:?} done on {}", e.step, e.target),
        });
    }
}

pub(super) struct Assembly<'a> {
    pub(super) config: &'a Config,
    pub(super) options: &'a DrillOptions,
    pub(super) lost: &'a [String],
    pub(super) started_at: Timestamp,
    pub(super) detected_after_ms: Option<u64>,
    pub(super) evacuation: Option<&'a Report>,
    pub(super) affected: &'a BTreeSet<String>,
    pub(super) steps: &'a StepTimes,
    pub(super) logs: &'a [(String, prober::ProbeLog)],
    pub(super) failback: Option<String>,
    pub(super) timeline: Vec<TimelineEvent>,
}

/// Puts the measurements together and judges them against each workload's objective.
pub(super) fn assemble(a: Assembly<'_>) -> DrillReport {
    let shadow = a.options.mode == DrillMode::Shadow;
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
            met: problem.is_none(),
            problem,
        });
    }
    let objectives_met = a.detected_after_ms.is_some() || a.affected.is_empty();
    let objectives_met = objectives_met
        && stranded.is_empty()
        && workloads.iter().all(|w| w.met)
        && a.failback
            .as_deref()
            .is_none_or(|f| f.starts_with("ok") || f.starts_with("nothing"));
    let mut timeline = a.timeline;
    timeline.sort_by_key(|e| e.at_ms);
    DrillReport {
        scenario: a.options.scenario.as_str().to_owned(),
        mode: match a.options.mode {
            DrillMode::Live => "live",
            DrillMode::Shadow => "shadow",
        }
        .to_owned(),
        lost: a.options.lose.clone(),
        lost_providers: a.lost.to_vec(),
        started_at: a.started_at.to_string(),
        detected_after_ms: a.detected_after_ms,
        objectives_met,
        workloads,
        stranded,
        failback: a.failback,
        timeline,
    }
}
