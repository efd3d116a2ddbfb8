//! When to start an evacuation that has a deadline: a vendor's notice gives a day, and
//! the team wants every workload moved calmly before it, not in the first minute nor
//! in the last.
//!
//! # Rules
//!
//! * A move's duration is estimated from earlier moves of the same workload to the
//!   same target, evacuations and drills alike (the slowest of the last few, from its
//!   first deploy to its cutover; a shadow drill, which moves no traffic, to the new
//!   copy's health check), else from the workload's `rto`, else from the policy's
//!   `step_timeout` (one attempt of each of the two long steps, deploy and
//!   wait-healthy). What was measured beats what was hoped for.
//! * An evacuation runs its waves one after the other; within a wave, `parallelism`
//!   moves run at once, so a wave takes at least its slowest move and at least its
//!   total divided by `parallelism`.
//! * The moves that share a deadline (`deadline − notice_margin`, as the decision set
//!   it) start at `deadline − SAFETY × estimate`: twice the estimate is left, so a slow
//!   vendor or a failed first target still fits. When that moment has come (or passed)
//!   they start now.
//! * When even starting now the estimate passes the deadline, the deadline is at risk:
//!   they start now and an alert is raised.
//!
//! Pure: `now` and the history are parameters.

use std::collections::BTreeMap;
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};

use crate::config::{Config, PolicyConfig, WorkloadConfig};
use crate::model::{Move, Plan};

/// How much of the time before a deadline the estimate may use: started at
/// `deadline − SAFETY × estimate`.
pub const SAFETY: u32 = 2;

/// How many of a workload's latest moves the estimate looks at.
pub const HISTORY: usize = 5;

/// One move observed to its end, by an evacuation or a drill: what the estimates learn
/// from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sample {
    /// The workload that moved.
    pub workload: String,
    /// The provider it moved to.
    pub target: String,
    /// When it ended, to order samples of several sources.
    pub at: Timestamp,
    /// How long it took, from its first deploy.
    pub took: Duration,
}

/// The observed durations of each (workload, target)'s moves, oldest first.
pub type History = BTreeMap<(String, String), Vec<Duration>>;

/// Gathers samples from every source into one [`History`], each list in the order the
/// moves ended, so "the latest few" means the same whichever source measured them.
pub fn history(samples: impl IntoIterator<Item = Sample>) -> History {
    let mut samples: Vec<Sample> = samples.into_iter().collect();
    samples.sort_by_key(|s| s.at);
    let mut history = History::new();
    for s in samples {
        history
            .entry((s.workload, s.target))
            .or_default()
            .push(s.took);
    }
    history
}

/// The moves that share one deadline, and when they start.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Schedule {
    /// The time by which every one of them must be cut over (the notice's deadline
    /// less the policy's margin).
    pub by: Timestamp,
    /// The workloads, in plan order.
    pub workloads: Vec<String>,
    /// How long the evacuation is expected to take.
    #[serde(with = "crate::config::duration")]
    #[schemars(with = "String")]
    pub estimate: Duration,
    /// When they start (now, when that time has passed).
    pub start_at: Timestamp,
    /// When they are expected to be done if started at `start_at`.
    pub estimated_finish: Timestamp,
    /// The estimate passes `by` even when started now.
    pub at_risk: bool,
}

/// The expected duration of one move of `workload`: the slowest of its latest observed
/// moves, else its `rto`, else two step timeouts.
pub fn move_estimate(
    workload: Option<&WorkloadConfig>,
    history: &[Duration],
    policy: &PolicyConfig,
) -> Duration {
    let recent = &history[history.len().saturating_sub(HISTORY)..];
    if let Some(slowest) = recent.iter().max() {
        return *slowest;
    }
    workload
        .and_then(|w| w.rto)
        .unwrap_or(policy.step_timeout * 2)
}

/// The expected duration of running `moves` as one evacuation, wave after wave, with
/// `parallelism` moves at once.
pub fn evacuation_estimate(
    moves: &[&Move],
    estimate: impl Fn(&Move) -> Duration,
    parallelism: usize,
) -> Duration {
    let mut waves: BTreeMap<u32, Vec<Duration>> = BTreeMap::new();
    for m in moves {
        waves.entry(m.wave).or_default().push(estimate(m));
    }
    let parallelism = u32::try_from(parallelism.max(1)).unwrap_or(u32::MAX);
    waves
        .values()
        .map(|durations| {
            let slowest = durations.iter().max().copied().unwrap_or_default();
            let total: Duration = durations.iter().sum();
            slowest.max(total / parallelism)
        })
        .sum()
}

/// Splits `plan` into what starts now and the schedules of what waits for its time.
/// Moves without a deadline (an account lost, a fence, a first placement) always start
/// now; so do those whose schedule has come. `history` holds the observed durations of
/// each (workload, target)'s moves, oldest first.
pub fn split(
    config: &Config,
    mut plan: Plan,
    history: &History,
    now: Timestamp,
) -> (Plan, Vec<Schedule>) {
    let mut groups: BTreeMap<Timestamp, Vec<&Move>> = BTreeMap::new();
    for m in &plan.moves {
        if let Some(by) = m.deadline {
            groups.entry(by).or_default().push(m);
        }
    }
    let policy = &config.policy;
    let schedules: Vec<Schedule> = groups
        .into_iter()
        .map(|(by, moves)| {
            let estimate = evacuation_estimate(
                &moves,
                |m| {
                    let key = (
                        m.workload.clone(),
                        m.targets.first().cloned().unwrap_or_default(),
                    );
                    let past = history.get(&key).map_or(&[][..], Vec::as_slice);
                    move_estimate(config.workload(&m.workload), past, policy)
                },
                policy.parallelism,
            );
            let latest_start = by
                .checked_sub(signed(estimate * SAFETY))
                .unwrap_or(Timestamp::MIN);
            let start_at = latest_start.max(now);
            let estimated_finish = start_at
                .checked_add(signed(estimate))
                .unwrap_or(Timestamp::MAX);
            Schedule {
                by,
                workloads: moves.iter().map(|m| m.workload.clone()).collect(),
                estimate,
                start_at,
                estimated_finish,
                at_risk: now.checked_add(signed(estimate)).unwrap_or(Timestamp::MAX) > by,
            }
        })
        .collect();
    let waiting: Vec<&Schedule> = schedules.iter().filter(|s| s.start_at > now).collect();
    plan.moves.retain(|m| {
        !waiting
            .iter()
            .any(|s| Some(s.by) == m.deadline && s.workloads.contains(&m.workload))
    });
    (plan, schedules)
}

fn signed(d: Duration) -> SignedDuration {
    SignedDuration::try_from(d).unwrap_or(SignedDuration::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Step;
    use crate::testing::{Builder, replicas, t};
    use lifeboat_provider::Generation;
    use proptest::prelude::*;

    fn mv(workload: &str, wave: u32, deadline: Option<Timestamp>) -> Move {
        Move {
            workload: workload.into(),
            from: Some("acme-eu".into()),
            targets: vec!["metal".into()],
            generation: Generation(2),
            wave,
            deadline,
            priority: 0,
            steps: Step::ALL.to_vec(),
        }
    }

    fn config(rto_secs: u64) -> Config {
        let mut config = Builder::new()
            .provider("acme-eu", "acme", None, replicas(10))
            .provider("metal", "self", None, replicas(10))
            .workload("db", &["acme-eu", "metal"])
            .workload("api", &["acme-eu", "metal"])
            .build();
        for w in &mut config.workloads {
            w.rto = Some(Duration::from_secs(rto_secs));
        }
        config.policy.parallelism = 1;
        config
    }

    #[test]
    fn history_beats_rto_which_beats_the_step_timeout() {
        let config = config(30);
        let w = config.workload("db");
        let policy = &config.policy;
        assert_eq!(move_estimate(w, &[], policy), Duration::from_secs(30));
        let past = [5, 9, 1, 2, 3, 4].map(Duration::from_secs);
        // Only the latest five count: the 5 s move is too old.
        assert_eq!(move_estimate(w, &past, policy), Duration::from_secs(9));
        assert_eq!(move_estimate(None, &[], policy), policy.step_timeout * 2);
    }

    #[test]
    fn the_latest_moves_count_whichever_source_measured_them() {
        let sample = |target: &str, at: i64, secs: u64| Sample {
            workload: "db".into(),
            target: target.into(),
            at: t(at),
            took: Duration::from_secs(secs),
        };
        let history = history([
            sample("metal", 30, 3),
            sample("metal", 10, 1),
            sample("cloud", 5, 7),
            sample("metal", 20, 2),
        ]);
        let key = |target: &str| ("db".to_owned(), target.to_owned());
        assert_eq!(history[&key("metal")], [1, 2, 3].map(Duration::from_secs));
        assert_eq!(history[&key("cloud")], [Duration::from_secs(7)]);
    }

    #[test]
    fn waves_add_up_and_parallel_moves_share_a_wave() {
        let (a, b, c) = (mv("a", 0, None), mv("b", 0, None), mv("c", 1, None));
        let moves = [&a, &b, &c];
        let ten = |_: &Move| Duration::from_secs(10);
        assert_eq!(evacuation_estimate(&moves, ten, 1), Duration::from_secs(30));
        assert_eq!(evacuation_estimate(&moves, ten, 8), Duration::from_secs(20));
    }

    #[test]
    fn a_far_deadline_waits_a_near_one_starts_now_and_a_missed_one_is_at_risk() {
        let config = config(60);
        let history = History::new();
        let now = t(0);
        // Two moves of 60 s one at a time: 120 s, started 240 s before the deadline.
        let far = t(3600);
        let plan = Plan {
            moves: vec![mv("db", 0, Some(far)), mv("api", 1, Some(far))],
            ..Plan::default()
        };
        let (run, schedules) = split(&config, plan.clone(), &history, now);
        assert!(run.moves.is_empty());
        assert_eq!(schedules[0].start_at, t(3600 - 240));
        assert!(!schedules[0].at_risk);
        // At that moment they start.
        let (run, _) = split(&config, plan, &history, t(3600 - 240));
        assert_eq!(run.moves.len(), 2);

        let near = Plan {
            moves: vec![mv("db", 0, Some(t(100))), mv("api", 0, None)],
            ..Plan::default()
        };
        let (run, schedules) = split(&config, near, &history, now);
        assert_eq!(
            run.moves.len(),
            2,
            "no slack: now, beside the one without deadline"
        );
        assert!(!schedules[0].at_risk);

        let missed = Plan {
            moves: vec![mv("db", 0, Some(t(30)))],
            ..Plan::default()
        };
        let (run, schedules) = split(&config, missed, &history, now);
        assert_eq!(run.moves.len(), 1);
        assert!(schedules[0].at_risk);
        assert_eq!(schedules[0].estimated_finish, t(60));
    }

    proptest! {
        /// Nothing is lost or invented, and whatever waits would, started on time,
        /// finish before its deadline.
        #[test]
        fn split_keeps_every_move_once_and_waits_only_when_it_fits(
            deadlines in proptest::collection::vec(proptest::option::of(0i64..10_000), 1..6),
            now in 0i64..5_000,
        ) {
            let config = config(60);
            let moves: Vec<Move> = deadlines.iter().enumerate()
                .map(|(i, d)| mv(&format!("w{i}"), 0, d.map(t)))
                .collect();
            let plan = Plan { moves: moves.clone(), ..Plan::default() };
            let (run, schedules) = split(&config, plan, &History::new(), t(now));
            let waiting: usize = schedules.iter().filter(|s| s.start_at > t(now))
                .map(|s| s.workloads.len()).sum();
            prop_assert_eq!(run.moves.len() + waiting, moves.len());
            for s in schedules.iter().filter(|s| s.start_at > t(now)) {
                prop_assert!(!s.at_risk);
                prop_assert!(s.estimated_finish <= s.by);
            }
        }
    }
}
