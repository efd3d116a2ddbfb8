//! `Drill` resources: which of them the in-cluster daemon runs, and what their status
//! says after a run. Pure: resources, the config and `now` in; requests and statuses
//! out.
//!
//! The daemon runs shadow drills only (a live one would move the very traffic it
//! guards). A drill without a schedule runs once per spec: once its `Complete`
//! condition observed the resource's generation it is not run again, and editing the
//! spec (a new generation) runs it anew.

use jiff::Timestamp;
use kube::ResourceExt;

use super::conditions;
use super::resources::{Drill, DrillStatus, DrillSummary};
use crate::config::{Config, DrillMode};
use crate::drill::report::DrillReport;
use crate::drill::scheduled::{DrillRequest, ScheduledResult};
use crate::schedule::Schedule;

/// The `Complete` reason of a drill the daemon does not run.
pub const REFUSED: &str = "Refused";

/// What the daemon makes of the cluster's Drill resources.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Wanted {
    /// The drills to run.
    pub requests: Vec<DrillRequest>,
    /// The drills it does not run, with why (for their status).
    pub refused: Vec<(String, String)>,
}

/// Which of `drills` the daemon runs under `config`.
pub fn wanted(drills: &[Drill], config: &Config) -> Wanted {
    let mut wanted = Wanted::default();
    for drill in drills {
        let name = drill.name_any();
        let spec = &drill.spec;
        let refuse = |why: String| (name.clone(), why);
        if spec.mode == Some(DrillMode::Live) {
            wanted.refused.push(refuse(
                "the daemon runs shadow drills only: a live drill would move the traffic it \
                 guards; run `lifeboat drill` beside it"
                    .into(),
            ));
            continue;
        }
        if config.resolve_scope(&spec.lose).is_none() {
            wanted.refused.push(refuse(format!(
                "lose: {:?} names no vendor, vendor/account or provider",
                spec.lose
            )));
            continue;
        }
        let schedule = match spec.schedule.as_deref().map(Schedule::parse).transpose() {
            Ok(schedule) => schedule,
            Err(why) => {
                wanted.refused.push(refuse(format!("schedule: {why}")));
                continue;
            }
        };
        if schedule.is_none() && ran_this_spec(drill) {
            continue;
        }
        wanted.requests.push(DrillRequest {
            name,
            lose: spec.lose.clone(),
            scenario: spec.scenario.unwrap_or_default(),
            schedule,
        });
    }
    wanted
}

/// The drill's `Complete` condition observed its current spec.
fn ran_this_spec(drill: &Drill) -> bool {
    let generation = drill.metadata.generation;
    (drill.status.iter().flat_map(|s| &s.conditions))
        .any(|c| c.type_ == "Complete" && c.status == "True" && c.observed_generation == generation)
}

/// The status of `drill` after the run `result` tells of.
pub fn after_run(drill: &Drill, result: &ScheduledResult, now: Timestamp) -> DrillStatus {
    let mut status = drill.status.clone().unwrap_or_default();
    let (reason, met) = match &result.report {
        Some(r) if r.objectives_met => ("ObjectivesMet", true),
        Some(_) => ("ObjectivesMissed", false),
        None if result.outcome.starts_with("cancelled") => ("Cancelled", false),
        None => ("Failed", false),
    };
    let generation = drill.metadata.generation;
    conditions::set(
        &mut status.conditions,
        "Complete",
        true,
        reason,
        &result.outcome,
        generation,
        now,
    );
    conditions::set(
        &mut status.conditions,
        "ObjectivesMet",
        met,
        reason,
        &result.outcome,
        generation,
        now,
    );
    status.outcome = Some(result.outcome.clone());
    status.last_run = Some(result.started_at.clone());
    if let Some(report) = &result.report {
        status.summary = Some(summary(report));
    }
    status
}

/// The status of a drill the daemon does not run, `None` when it already says so.
pub fn refused(drill: &Drill, why: &str, now: Timestamp) -> Option<DrillStatus> {
    let mut status = drill.status.clone().unwrap_or_default();
    let shown = (status.conditions.iter())
        .any(|c| c.type_ == "Complete" && c.reason == REFUSED && c.message == why);
    if shown && status.outcome.as_deref() == Some(why) {
        return None;
    }
    conditions::set(
        &mut status.conditions,
        "Complete",
        true,
        REFUSED,
        why,
        drill.metadata.generation,
        now,
    );
    status.outcome = Some(why.to_owned());
    Some(status)
}

/// The figures of `report` that fit in a status.
pub fn summary(report: &DrillReport) -> DrillSummary {
    let seconds = |ms: u64| ms as f64 / 1000.0;
    let count = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
    DrillSummary {
        detect_seconds: report.detected_after_ms.map(seconds),
        // A shadow drill moves no traffic: its copies' health is its end.
        rto_seconds: (report.workloads.iter())
            .filter_map(|w| w.rto_ms.or(w.healthy_after_ms))
            .max()
            .map(seconds),
        downtime_seconds: (report.workloads.iter())
            .filter_map(|w| w.downtime_ms)
            .max()
            .map(seconds),
        moved: count(report.workloads.iter().filter(|w| w.to.is_some()).count()),
        stranded: count(report.stranded.len()),
        objectives_met: report.objectives_met,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::k8s::resources::DrillSpec;
    use crate::testing::{Builder, replicas, t};

    fn drill(name: &str, lose: &str, schedule: Option<&str>) -> Drill {
        let mut drill = Drill::new(
            name,
            DrillSpec {
                lose: lose.into(),
                scenario: None,
                mode: None,
                schedule: schedule.map(str::to_owned),
            },
        );
        drill.metadata.generation = Some(1);
        drill
    }

    fn config() -> Config {
        Builder::new()
            .provider("cloud-1", "cloud", None, replicas(4))
            .provider("metal-1", "metal", None, replicas(4))
            .workload("api", &["cloud-1", "metal-1"])
            .build()
    }

    fn result(report: Option<&str>) -> ScheduledResult {
        ScheduledResult {
            schedule: "weekly".into(),
            started_at: "2026-12-03T10:00:00Z".into(),
            outcome: report.map_or("failed: no room".into(), str::to_owned),
            report: report.map(|_| {
                serde_json::from_value(serde_json::json!({
                    "scenario": "account-suspended", "mode": "shadow", "lost": "cloud",
                    "started_at": "2026-12-03T10:00:00Z", "detected_after_ms": 1500,
                    "objectives_met": true,
                    "workloads": [{"name": "api", "from": "cloud-1", "to": "metal-1",
                        "healthy": true, "healthy_after_ms": 2500, "rto_ms": null,
                        "downtime_ms": null, "rto_objective_ms": null, "met": true}],
                }))
                .unwrap()
            }),
        }
    }

    #[test]
    fn a_one_off_drill_runs_once_per_spec_and_bad_ones_are_refused_with_why() {
        let config = config();
        let mut once = drill("once", "cloud", None);
        let typo = drill("typo", "cloud/none", Some("0 3 * * MON"));
        let mut live = drill("live", "cloud", None);
        live.spec.mode = Some(DrillMode::Live);
        let bad = drill("bad", "metal", Some("every monday"));
        let nowhere = drill("nowhere", "nosuch", None);
        let all = [once.clone(), typo, live, bad, nowhere];
        let w = wanted(&all, &config);
        let names: Vec<&str> = w.requests.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names, ["once"], "{w:?}");
        let refused: Vec<&str> = w.refused.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(refused, ["typo", "live", "bad", "nowhere"], "{w:?}");
        assert!(w.refused[2].1.contains("schedule"), "{w:?}");

        // Run: not again for this spec; a new spec runs anew.
        once.status = Some(after_run(&once, &result(Some("objectives met")), t(0)));
        assert!(
            wanted(std::slice::from_ref(&once), &config)
                .requests
                .is_empty()
        );
        once.metadata.generation = Some(2);
        assert_eq!(wanted(&[once], &config).requests.len(), 1);
    }

    #[test]
    fn the_status_says_how_the_last_run_went_and_a_refusal_is_written_once() {
        let d = drill("weekly", "cloud", Some("0 3 * * MON"));
        let status = after_run(&d, &result(Some("objectives met")), t(0));
        assert_eq!(status.outcome.as_deref(), Some("objectives met"));
        let summary = status.summary.clone().unwrap();
        assert_eq!(summary.detect_seconds, Some(1.5));
        assert_eq!(
            summary.rto_seconds,
            Some(2.5),
            "a shadow drill's end is health"
        );
        assert_eq!((summary.moved, summary.objectives_met), (1, true));
        let failed = after_run(
            &Drill {
                status: Some(status),
                ..d.clone()
            },
            &result(None),
            t(10),
        );
        let met = failed
            .conditions
            .iter()
            .find(|c| c.type_ == "ObjectivesMet");
        assert_eq!(met.map(|c| c.status.as_str()), Some("False"));
        assert!(
            failed.summary.is_some(),
            "the last finished run's figures stay"
        );

        let refusal = refused(&d, "no", t(0)).unwrap();
        let shown = Drill {
            status: Some(refusal),
            ..d
        };
        assert_eq!(refused(&shown, "no", t(1)), None);
        assert!(refused(&shown, "another reason", t(1)).is_some());
    }
}
