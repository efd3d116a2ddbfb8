//! The executor's step transitions in the words of the person watching a drill:
//! `db: deployed on metal-1`, `db: traffic moved to metal-1`, rather than the journal's
//! `Deploy on metal-1 Done`. One place, so the terminal progress and the report's event
//! log say the same thing.
//!
//! An expected failure reads as what it is: a source that cannot be retired because its
//! vendor is gone is the plan working (it is recorded as an orphan and retired when it
//! answers again), not a failed move.

use crate::config::Config;
use crate::execute::ExecEvent;
use crate::model::Step;
use crate::store::Status;

/// Whether `step` does anything for `workload`: the hook steps of a workload without
/// hooks run (and are journaled) but do nothing, and telling the user "hooks ran" for
/// them would suggest hooks they never configured.
pub(crate) fn does_something(config: &Config, workload: &str, step: Step) -> bool {
    let Some(w) = config.workload(workload) else {
        return true;
    };
    match step {
        Step::BeforeCutover => !w.hooks.before_cutover.is_empty(),
        Step::AfterCutover => !w.hooks.after_cutover.is_empty(),
        _ => true,
    }
}

/// How one transition should be told, and whether it is worth telling at all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Told {
    /// The line, with the workload first (`db: healthy on metal-1`).
    pub line: String,
    /// A failure the drill did not expect (a step that must be retried or a target given
    /// up), as opposed to progress or an expected fallback.
    pub trouble: bool,
}

/// The line for `e`, or `None` for a transition that adds nothing (the first attempt
/// of a step starting: its `done` follows). `shadow` tells that the retire step
/// removes the verified copy rather than the old one.
pub(crate) fn tell(e: &ExecEvent, shadow: bool) -> Option<Told> {
    let (w, t) = (&e.workload, &e.target);
    let detail = e.detail.as_deref().unwrap_or("no reason given");
    let retire_what = if shadow {
        format!("the shadow copy on {t}")
    } else {
        "the source".to_owned()
    };
    let (line, trouble) = match e.status {
        Status::Started if e.attempt <= 1 => return None,
        Status::Started => {
            let doing = match e.step {
                Step::Deploy => format!("deploying on {t}"),
                Step::WaitHealthy => format!("waiting for health on {t}"),
                Step::BeforeCutover => format!("running before-cutover hooks on {t}"),
                Step::Cutover => format!("moving traffic to {t}"),
                Step::AfterCutover => format!("running after-cutover hooks on {t}"),
                Step::RetireSource => format!("retiring {retire_what}"),
            };
            (format!("{w}: {doing}, attempt {}", e.attempt), false)
        }
        Status::Done => {
            let done = match e.step {
                Step::Deploy => format!("deployed on {t}"),
                Step::WaitHealthy => format!("healthy on {t}"),
                Step::BeforeCutover => format!("before-cutover hooks ran on {t}"),
                Step::Cutover => format!("traffic moved to {t}"),
                Step::AfterCutover => format!("after-cutover hooks ran on {t}"),
                Step::RetireSource if shadow => format!("shadow copy on {t} removed"),
                Step::RetireSource => "source retired".to_owned(),
            };
            (format!("{w}: {done}"), false)
        }
        // Make before break: traffic is already on the new copy, and the executor
        // records the old one as an orphan to retire when its provider answers.
        Status::Failed if e.step == Step::RetireSource && e.last_attempt => {
            let line = if shadow {
                format!(
                    "{w}: shadow copy on {t} unreachable: recorded as orphaned, retired when it returns"
                )
            } else {
                format!("{w}: source unreachable: recorded as orphaned, retired when it returns")
            };
            (line, false)
        }
        Status::Failed if e.step == Step::RetireSource => (
            format!(
                "{w}: {retire_what} did not answer (attempt {}: {detail}), trying again",
                e.attempt
            ),
            false,
        ),
        Status::Failed => {
            let what = match e.step {
                Step::Deploy => format!("deploy on {t}"),
                Step::WaitHealthy => format!("health check on {t}"),
                Step::BeforeCutover => format!("before-cutover hook on {t}"),
                Step::Cutover => format!("moving traffic to {t}"),
                Step::AfterCutover => format!("after-cutover hook on {t}"),
                Step::RetireSource => format!("retiring {retire_what}"),
            };
            let next = match (e.step, e.last_attempt) {
                (_, false) => ", trying again".to_owned(),
                // The cutover happened: a failed after-hook is a warning, not a move back.
                (Step::AfterCutover, true) => format!("; traffic stays on {t}"),
                (_, true) => String::new(),
            };
            (
                format!("{w}: {what} failed (attempt {}: {detail}){next}", e.attempt),
                true,
            )
        }
        Status::Abandoned => (format!("{w}: giving up on {t}: {detail}"), true),
    };
    Some(Told { line, trouble })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(step: Step, status: Status, attempt: u32, last_attempt: bool) -> ExecEvent {
        ExecEvent {
            evacuation: "ev-1".into(),
            workload: "db".into(),
            step,
            status,
            attempt,
            target: "metal-1".into(),
            detail: Some("account suspended (account suspended)".into()),
            at: tokio::time::Instant::now(),
            wall: jiff::Timestamp::UNIX_EPOCH,
            last_attempt,
        }
    }

    fn line(e: &ExecEvent, shadow: bool) -> String {
        tell(e, shadow).map(|t| t.line).unwrap_or_default()
    }

    #[test]
    fn progress_is_told_in_the_users_words() {
        let cases = [
            (Step::Deploy, "db: deployed on metal-1"),
            (Step::WaitHealthy, "db: healthy on metal-1"),
            (Step::Cutover, "db: traffic moved to metal-1"),
            (Step::RetireSource, "db: source retired"),
        ];
        for (step, want) in cases {
            assert_eq!(line(&event(step, Status::Done, 1, false), false), want);
        }
        let shadow = event(Step::RetireSource, Status::Done, 1, false);
        assert_eq!(line(&shadow, true), "db: shadow copy on metal-1 removed");
    }

    #[test]
    fn a_first_attempt_starting_is_not_news_but_a_retry_is() {
        assert_eq!(
            tell(&event(Step::Deploy, Status::Started, 1, false), false),
            None
        );
        let retry = line(&event(Step::Deploy, Status::Started, 2, false), false);
        assert_eq!(retry, "db: deploying on metal-1, attempt 2");
    }

    #[test]
    fn an_unreachable_source_is_an_expected_fallback_not_a_failure() {
        let told = tell(&event(Step::RetireSource, Status::Failed, 1, true), false).unwrap();
        assert_eq!(
            told.line,
            "db: source unreachable: recorded as orphaned, retired when it returns"
        );
        assert!(!told.trouble);
        assert!(!told.line.contains("Failed") && !told.line.contains("failed"));
        let retry = tell(&event(Step::RetireSource, Status::Failed, 1, false), false).unwrap();
        assert!(retry.line.ends_with("trying again"), "{}", retry.line);
        assert!(!retry.trouble);
    }

    #[test]
    fn real_failures_say_what_failed_and_what_happens_next() {
        let again = tell(&event(Step::Deploy, Status::Failed, 1, false), false).unwrap();
        assert!(again.trouble);
        assert_eq!(
            again.line,
            "db: deploy on metal-1 failed (attempt 1: account suspended (account suspended)), trying again"
        );
        let after = line(&event(Step::AfterCutover, Status::Failed, 3, true), false);
        assert!(after.ends_with("traffic stays on metal-1"), "{after}");
        let given_up = line(
            &event(Step::WaitHealthy, Status::Abandoned, 0, false),
            false,
        );
        assert!(
            given_up.starts_with("db: giving up on metal-1: "),
            "{given_up}"
        );
    }
}
