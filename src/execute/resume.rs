//! Rebuilding a move's progress from its journal lines, so that a restarted controller
//! continues where the crashed one stopped. Pure: journal in, [`Progress`] out.

use std::collections::BTreeSet;

use lifeboat_provider::DeploymentRef;

use crate::model::Step;
use crate::store::{JournalEntry, Status};

/// Where one move stands according to its journal.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Progress {
    /// Targets given up, in order.
    pub abandoned: Vec<String>,
    /// Copies left on abandoned targets, to retire again (retire is idempotent).
    pub abandoned_copies: Vec<(String, DeploymentRef)>,
    /// The target being worked on when the journal ends, if any.
    pub target: Option<String>,
    /// Steps completed at that target.
    pub done: BTreeSet<Step>,
    /// The copy at that target, as last journaled.
    pub deployment: Option<DeploymentRef>,
}

impl Progress {
    /// The steps already done at `target` (nothing when it is not the current one).
    pub fn done_at(&self, target: &str) -> BTreeSet<Step> {
        match &self.target {
            Some(t) if t == target => self.done.clone(),
            _ => BTreeSet::new(),
        }
    }

    /// The copy known at `target`.
    pub fn deployment_at(&self, target: &str) -> Option<DeploymentRef> {
        match &self.target {
            Some(t) if t == target => self.deployment.clone(),
            _ => None,
        }
    }
}

/// Replays one move's journal lines (in order of writing).
pub(crate) fn replay<'a>(entries: impl IntoIterator<Item = &'a JournalEntry>) -> Progress {
    let mut p = Progress::default();
    for e in entries {
        if p.target.as_deref() != Some(e.target.as_str()) {
            p.target = Some(e.target.clone());
            p.done.clear();
            p.deployment = None;
        }
        if e.deployment.is_some() {
            p.deployment = e.deployment.clone();
        }
        match e.status {
            Status::Started | Status::Failed => {}
            Status::Done => {
                p.done.insert(e.step);
            }
            Status::Abandoned => {
                if !p.abandoned.contains(&e.target) {
                    p.abandoned.push(e.target.clone());
                }
                if let Some(dep) = p.deployment.take() {
                    p.abandoned_copies.push((e.target.clone(), dep));
                }
                p.target = None;
                p.done.clear();
            }
        }
    }
    p
}

#[cfg(test)]
mod tests {
    use jiff::Timestamp;
    use lifeboat_provider::Generation;
    use proptest::prelude::*;

    use super::*;

    fn line(target: &str, step: Step, status: Status, dep: Option<&str>) -> JournalEntry {
        JournalEntry {
            id: 0,
            evacuation: "ev".into(),
            workload: "api".into(),
            step,
            attempt: 1,
            status,
            target: target.into(),
            generation: Generation(2),
            deployment: dep.map(|h| DeploymentRef {
                workload: "api".into(),
                generation: Generation(2),
                handle: h.into(),
                endpoint: None,
                owner: None,
            }),
            detail: None,
            at: Timestamp::UNIX_EPOCH,
        }
    }

    /// What one target went through in a simulated execution.
    #[derive(Debug, Clone)]
    struct TargetRun {
        /// Steps completed before the end of this target's run.
        completed: usize,
        /// Failed attempts before each completed step.
        failures: Vec<u8>,
        /// The target was abandoned after `completed` steps.
        abandoned: bool,
    }

    fn target_run() -> impl Strategy<Value = TargetRun> {
        (0usize..=6, prop::collection::vec(0u8..3, 7), any::<bool>()).prop_map(
            |(completed, failures, abandoned)| TargetRun {
                completed,
                failures,
                abandoned,
            },
        )
    }

    /// Writes the journal an executor would write for these runs: each target in turn,
    /// until one is not abandoned (the journal ends there: done, or crashed).
    fn journal_of(runs: &[TargetRun]) -> (Vec<JournalEntry>, Vec<String>, Progress) {
        let mut lines = Vec::new();
        let mut abandoned = Vec::new();
        let mut expect = Progress::default();
        for (i, run) in runs.iter().enumerate() {
            let target = format!("t{i}");
            let handle = format!("h{i}");
            let mut deployed = false;
            for (s, step) in Step::ALL.iter().take(run.completed).enumerate() {
                for _ in 0..run.failures[s] {
                    lines.push(line(&target, *step, Status::Started, None));
                    lines.push(line(&target, *step, Status::Failed, None));
                }
                lines.push(line(&target, *step, Status::Started, None));
                let dep = (*step == Step::Deploy).then_some(handle.as_str());
                deployed |= dep.is_some();
                lines.push(line(&target, *step, Status::Done, dep));
            }
            if run.abandoned {
                let step = Step::ALL[run.completed.min(5)];
                lines.push(line(&target, step, Status::Started, None));
                lines.push(line(&target, step, Status::Abandoned, None));
                abandoned.push(target.clone());
                if deployed {
                    expect
                        .abandoned_copies
                        .push((target.clone(), lines_dep(&lines, &handle)));
                }
                continue;
            }
            expect.target = (!lines.is_empty() && lines.last().unwrap().target == target)
                .then(|| target.clone());
            expect.done = Step::ALL.iter().take(run.completed).copied().collect();
            expect.deployment = deployed.then(|| lines_dep(&lines, &handle));
            break;
        }
        expect.abandoned = abandoned.clone();
        (lines, abandoned, expect)
    }

    fn lines_dep(lines: &[JournalEntry], handle: &str) -> DeploymentRef {
        lines
            .iter()
            .find_map(|l| l.deployment.clone().filter(|d| d.handle == handle))
            .unwrap()
    }

    #[test]
    fn a_fall_through_then_a_partial_run() {
        let lines = [
            line("a", Step::Deploy, Status::Started, None),
            line("a", Step::Deploy, Status::Done, Some("h1")),
            line("a", Step::WaitHealthy, Status::Started, None),
            line("a", Step::WaitHealthy, Status::Abandoned, None),
            line("b", Step::Deploy, Status::Started, None),
            line("b", Step::Deploy, Status::Done, Some("h2")),
            line("b", Step::WaitHealthy, Status::Started, None),
        ];
        let p = replay(&lines);
        assert_eq!(p.abandoned, ["a"]);
        assert_eq!(p.abandoned_copies[0].1.handle, "h1");
        assert_eq!(p.target.as_deref(), Some("b"));
        assert_eq!(p.done, BTreeSet::from([Step::Deploy]));
        assert_eq!(p.deployment_at("b").unwrap().handle, "h2");
        assert!(p.done_at("a").is_empty());
    }

    proptest! {
        #[test]
        fn replay_recovers_what_the_execution_did(
            runs in prop::collection::vec(target_run(), 1..5)
        ) {
            let (lines, _, expect) = journal_of(&runs);
            prop_assert_eq!(replay(&lines), expect);
        }

        #[test]
        fn any_crash_point_yields_a_prefix_of_the_steps(
            runs in prop::collection::vec(target_run(), 1..5), cut in 0usize..200
        ) {
            let (lines, abandoned, _) = journal_of(&runs);
            let cut = cut.min(lines.len());
            let p = replay(&lines[..cut]);
            // Done steps at the current target always form a prefix of the step order,
            // so a resume never skips a step that did not happen.
            let prefix: BTreeSet<Step> = Step::ALL.iter().take(p.done.len()).copied().collect();
            prop_assert_eq!(&p.done, &prefix);
            // Only targets that were really given up count as abandoned.
            prop_assert!(p.abandoned.iter().all(|t| abandoned.contains(t)));
            if let Some(t) = &p.target {
                prop_assert!(!p.abandoned.contains(t));
            }
        }
    }
}
