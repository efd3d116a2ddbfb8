//! Running a workload's `before_cutover` / `after_cutover` hook commands.
//!
//! A hook is an argv command (no shell) run with the move's facts in its environment:
//! `LIFEBOAT_WORKLOAD`, `LIFEBOAT_GENERATION`, `LIFEBOAT_OLD_ENDPOINT` (empty on a first
//! placement) and `LIFEBOAT_NEW_ENDPOINT`. It must finish within its timeout and exit 0;
//! otherwise the step fails with the tail of its stderr in the error. The child is killed
//! when the timeout expires or the step is cancelled (`kill_on_drop`). Hooks may run
//! again after a crash or a retry, so they must be idempotent.

use std::time::Duration;

use lifeboat_provider::{Endpoint, ErrorClass, Generation};

use crate::command::{self, CommandError};

/// The facts a hook receives in its environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HookEnv {
    /// The workload being moved.
    pub workload: String,
    /// The generation of the new copy.
    pub generation: Generation,
    /// Where traffic went before (`None` on a first placement).
    pub old_endpoint: Option<Endpoint>,
    /// The new copy.
    pub new_endpoint: Endpoint,
}

impl CommandError {
    /// How the executor should treat a failed hook: a timeout or a failing run may be
    /// transient (retried), a hook that cannot even start will not improve.
    pub fn class(&self) -> ErrorClass {
        match self {
            CommandError::Empty | CommandError::Spawn { .. } => ErrorClass::InvalidRequest,
            CommandError::Timeout { .. } => ErrorClass::Timeout,
            CommandError::Failed { .. } | CommandError::NotUtf8 { .. } => ErrorClass::Internal,
        }
    }
}

/// Runs one hook to completion within `timeout`.
pub async fn run_hook(
    argv: &[String],
    env: &HookEnv,
    timeout: Duration,
) -> Result<(), CommandError> {
    let env = [
        ("LIFEBOAT_WORKLOAD", env.workload.clone()),
        ("LIFEBOAT_GENERATION", env.generation.to_string()),
        (
            "LIFEBOAT_OLD_ENDPOINT",
            env.old_endpoint
                .as_ref()
                .map(ToString::to_string)
                .unwrap_or_default(),
        ),
        ("LIFEBOAT_NEW_ENDPOINT", env.new_endpoint.to_string()),
    ];
    command::run(argv, &env, timeout).await.map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env() -> HookEnv {
        HookEnv {
            workload: "api".into(),
            generation: Generation(7),
            old_endpoint: None,
            new_endpoint: Endpoint {
                host: "127.0.0.1".into(),
                port: 8080,
            },
        }
    }

    fn sh(script: &str) -> Vec<String> {
        vec!["/bin/sh".into(), "-c".into(), script.into()]
    }

    #[tokio::test]
    async fn the_hook_sees_the_moves_facts() {
        let script = r#"test "$LIFEBOAT_WORKLOAD" = api && test "$LIFEBOAT_GENERATION" = 7 \
            && test "$LIFEBOAT_NEW_ENDPOINT" = 127.0.0.1:8080 && test -z "$LIFEBOAT_OLD_ENDPOINT""#;
        run_hook(&sh(script), &env(), Duration::from_secs(30))
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn a_failing_hook_reports_its_stderr() {
        let err = run_hook(
            &sh("echo 'replica not caught up' >&2; exit 3"),
            &env(),
            Duration::from_secs(30),
        )
        .await
        .unwrap_err();
        assert_eq!(err.class(), ErrorClass::Internal);
        let text = err.to_string();
        assert!(text.contains("replica not caught up"), "{text}");
        assert!(text.contains('3'), "{text}");
    }

    #[tokio::test]
    async fn a_hook_past_its_timeout_is_killed() {
        let err = run_hook(
            &["sleep".into(), "30".into()],
            &env(),
            Duration::from_millis(200),
        )
        .await
        .unwrap_err();
        assert!(matches!(err, CommandError::Timeout { .. }), "{err}");
        assert_eq!(err.class(), ErrorClass::Timeout);
    }

    #[tokio::test]
    async fn a_missing_program_or_empty_hook_is_invalid() {
        let missing = run_hook(
            &["/nonexistent/hook".into()],
            &env(),
            Duration::from_secs(5),
        )
        .await
        .unwrap_err();
        assert_eq!(missing.class(), ErrorClass::InvalidRequest);
        let empty = run_hook(&[], &env(), Duration::from_secs(5))
            .await
            .unwrap_err();
        assert!(matches!(empty, CommandError::Empty));
    }
}
