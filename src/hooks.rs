//! Running a workload's `before_cutover` / `after_cutover` hook commands.
//!
//! A hook is an argv command (no shell) run with the move's facts in its environment:
//! `LIFEBOAT_WORKLOAD`, `LIFEBOAT_GENERATION`, `LIFEBOAT_OLD_ENDPOINT` (empty on a first
//! placement) and `LIFEBOAT_NEW_ENDPOINT`. It must finish within its timeout and exit 0;
//! otherwise the step fails with the tail of its stderr in the error. The child is killed
//! when the timeout expires or the step is cancelled (`kill_on_drop`). Hooks may run
//! again after a crash or a retry, so they must be idempotent.

use std::process::Stdio;
use std::time::Duration;

use lifeboat_provider::{Endpoint, ErrorClass, Generation};

/// How much of a failing hook's stderr is kept in the error.
const STDERR_TAIL: usize = 2048;

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

/// Why a hook failed.
#[derive(Debug, thiserror::Error)]
pub enum HookError {
    /// The hook has no program.
    #[error("hook command is empty")]
    Empty,
    /// The program could not be started.
    #[error("could not start hook {program:?}: {source}")]
    Spawn {
        /// The program.
        program: String,
        /// Why.
        source: std::io::Error,
    },
    /// It ran past its timeout and was killed.
    #[error("hook {program:?} did not finish within {after:?} and was killed")]
    Timeout {
        /// The program.
        program: String,
        /// The timeout.
        after: Duration,
    },
    /// It exited unsuccessfully.
    #[error("hook {program:?} failed ({status}): {stderr}")]
    Failed {
        /// The program.
        program: String,
        /// Its exit status.
        status: std::process::ExitStatus,
        /// The end of its stderr.
        stderr: String,
    },
}

impl HookError {
    /// How the executor should treat the failure: a timeout or a failing run may be
    /// transient (retried), a hook that cannot even start will not improve.
    pub fn class(&self) -> ErrorClass {
        match self {
            HookError::Empty | HookError::Spawn { .. } => ErrorClass::InvalidRequest,
            HookError::Timeout { .. } => ErrorClass::Timeout,
            HookError::Failed { .. } => ErrorClass::Internal,
        }
    }
}

/// Runs one hook to completion within `timeout`.
pub async fn run_hook(argv: &[String], env: &HookEnv, timeout: Duration) -> Result<(), HookError> {
    let (program, args) = argv.split_first().ok_or(HookError::Empty)?;
    let mut command = tokio::process::Command::new(program);
    command
        .args(args)
        .env("LIFEBOAT_WORKLOAD", &env.workload)
        .env("LIFEBOAT_GENERATION", env.generation.to_string())
        .env(
            "LIFEBOAT_OLD_ENDPOINT",
            env.old_endpoint
                .as_ref()
                .map(ToString::to_string)
                .unwrap_or_default(),
        )
        .env("LIFEBOAT_NEW_ENDPOINT", env.new_endpoint.to_string())
        .stdin(Stdio::null())
        // stdout is not read; discarding it keeps a chatty hook from blocking on a full pipe.
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let child = command.spawn().map_err(|source| HookError::Spawn {
        program: program.clone(),
        source,
    })?;
    // Dropping the `wait_with_output` future on timeout drops the child, which kills it.
    let output = match tokio::time::timeout(timeout, child.wait_with_output()).await {
        Ok(result) => result.map_err(|source| HookError::Spawn {
            program: program.clone(),
            source,
        })?,
        Err(_) => {
            return Err(HookError::Timeout {
                program: program.clone(),
                after: timeout,
            });
        }
    };
    if output.status.success() {
        return Ok(());
    }
    Err(HookError::Failed {
        program: program.clone(),
        status: output.status,
        stderr: tail(&String::from_utf8_lossy(&output.stderr)),
    })
}

/// The last [`STDERR_TAIL`] bytes (on a char boundary), trimmed.
fn tail(text: &str) -> String {
    let text = text.trim();
    let mut start = text.len().saturating_sub(STDERR_TAIL);
    while !text.is_char_boundary(start) {
        start += 1;
    }
    text[start..].to_owned()
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
        assert!(matches!(err, HookError::Timeout { .. }), "{err}");
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
        assert!(matches!(empty, HookError::Empty));
    }

    #[test]
    fn the_stderr_tail_is_bounded_and_valid_utf8() {
        let long = "é".repeat(STDERR_TAIL);
        let cut = tail(&long);
        assert!(cut.len() <= STDERR_TAIL);
        assert!(cut.chars().all(|c| c == 'é'));
    }
}
