//! What drills measured that the daemon plans by: each drill's moves, from the first
//! deploy to the cutover, become samples of [`crate::deadline`]'s estimates. A team
//! that drills weekly then gets deadlines scheduled by how long its moves really take
//! on its vendors, before the first real evacuation.
//!
//! Drill reports live in two stores: a drill run from the command line keeps its own
//! (`STATE_DIR/drill`, so it never touches the daemon's records) and a scheduled drill's
//! result is kept in the daemon's. Both are read here; the reports are the stored JSON,
//! so one an older lifeboat wrote (without step spans) adds nothing, and never fails.

use std::time::Duration;

use serde::Deserialize;

use super::report::{SpanOutcome, WorkloadOutcome, step_phase};
use crate::deadline::Sample;
use crate::model::Step;
use crate::store::DrillRecord;

impl WorkloadOutcome {
    /// How long the move took from its first deploy (on any target) until traffic
    /// pointed at the new copy, or, in a shadow drill that moves no traffic, until the
    /// new copy passed its health check. `None` when the move never got there, or the
    /// report has no step spans.
    pub fn move_duration(&self) -> Option<Duration> {
        let to = self.to.as_deref().filter(|_| self.healthy)?;
        let start = (self.steps.iter())
            .filter(|s| s.phase == step_phase(Step::Deploy))
            .map(|s| s.start_ms)
            .min()?;
        let done = |step: Step| {
            (self.steps.iter())
                .filter(|s| {
                    s.phase == step_phase(step) && s.target == to && s.outcome == SpanOutcome::Done
                })
                .map(|s| s.end_ms)
                .max()
        };
        let end = done(Step::Cutover).or_else(|| done(Step::WaitHealthy))?;
        Some(Duration::from_millis(end.checked_sub(start)?))
    }
}

/// The moves the drills of `records` measured, stamped with the time each record was
/// kept. Records that are no drill report (or a scheduled drill that failed before its
/// end) add nothing.
pub fn samples(records: &[DrillRecord]) -> Vec<Sample> {
    /// Only the workloads are read: a report's timeline can be long.
    #[derive(Deserialize)]
    struct Moves {
        workloads: Vec<WorkloadOutcome>,
    }
    /// A drill report as `lifeboat drill` keeps it, or a scheduled drill's result.
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Stored {
        Report(Moves),
        Scheduled { report: Option<Moves> },
    }

    let mut samples = Vec::new();
    for record in records {
        let moves = match Stored::deserialize(&record.record) {
            Ok(
                Stored::Report(moves)
                | Stored::Scheduled {
                    report: Some(moves),
                },
            ) => moves,
            Ok(Stored::Scheduled { report: None }) | Err(_) => continue,
        };
        for w in &moves.workloads {
            if let (Some(target), Some(took)) = (&w.to, w.move_duration()) {
                samples.push(Sample {
                    workload: w.name.clone(),
                    target: target.clone(),
                    at: record.at,
                    took,
                });
            }
        }
    }
    samples
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::drill::report::StepSpan;
    use jiff::Timestamp;

    fn span(phase: Step, target: &str, start_ms: u64, end_ms: u64, ok: bool) -> StepSpan {
        StepSpan {
            phase: step_phase(phase).to_owned(),
            target: target.into(),
            start_ms,
            end_ms,
            outcome: if ok {
                SpanOutcome::Done
            } else {
                SpanOutcome::Failed
            },
        }
    }

    fn outcome(steps: Vec<StepSpan>) -> WorkloadOutcome {
        serde_json::from_value(serde_json::json!({
            "name": "db", "from": "cloud-1", "to": "metal-1", "healthy": true,
            "healthy_after_ms": null, "rto_ms": null, "downtime_ms": null,
            "rto_objective_ms": null, "met": true,
        }))
        .map(|w: WorkloadOutcome| WorkloadOutcome { steps, ..w })
        .unwrap()
    }

    #[test]
    fn a_move_counts_from_its_first_deploy_to_its_cutover_failed_targets_included() {
        let live = outcome(vec![
            span(Step::Deploy, "other-1", 1_000, 4_000, false),
            span(Step::Deploy, "metal-1", 4_000, 6_000, true),
            span(Step::WaitHealthy, "metal-1", 6_000, 9_000, true),
            span(Step::Cutover, "metal-1", 9_000, 9_500, true),
            span(Step::RetireSource, "cloud-1", 9_500, 20_000, true),
        ]);
        assert_eq!(live.move_duration(), Some(Duration::from_millis(8_500)));

        // A shadow drill moves no traffic: its copy's health check is the end.
        let shadow = outcome(live.steps[..3].to_vec());
        assert_eq!(shadow.move_duration(), Some(Duration::from_millis(8_000)));

        let never_healthy = WorkloadOutcome {
            healthy: false,
            ..shadow.clone()
        };
        assert_eq!(never_healthy.move_duration(), None);
        assert_eq!(outcome(Vec::new()).move_duration(), None);
    }

    #[test]
    fn both_kinds_of_record_count_and_anything_else_is_skipped() {
        let moved = outcome(vec![
            span(Step::Deploy, "metal-1", 0, 2_000, true),
            span(Step::WaitHealthy, "metal-1", 2_000, 5_000, true),
        ]);
        let report = serde_json::json!({ "scenario": "account-suspended", "workloads": [moved] });
        let record = |id: i64, record: serde_json::Value| DrillRecord {
            id,
            at: Timestamp::from_second(id).unwrap(),
            record,
        };
        let records = [
            record(1, report.clone()),
            record(
                2,
                serde_json::json!({ "schedule": "weekly", "report": report }),
            ),
            record(
                3,
                serde_json::json!({ "schedule": "weekly", "outcome": "failed: x" }),
            ),
            record(4, serde_json::json!({ "something": "else" })),
        ];
        let samples = samples(&records);
        assert_eq!(samples.len(), 2, "{samples:?}");
        assert!(samples.iter().all(|s| s.workload == "db"
            && s.target == "metal-1"
            && s.took == Duration::from_secs(5)));
        assert_eq!(samples[1].at, Timestamp::from_second(2).unwrap());
    }
}
