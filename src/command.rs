//! Running an operator's command: hooks around a cutover, the exec cutover backend. One
//! implementation of the rules they share: argv (no shell), stdin closed, a timeout after
//! which the command's whole process group is killed (helpers a script started too),
//! stdout returned, and the tail of stderr in the error when it fails.

use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;

/// How much of a failing command's stderr is kept in the error.
const STDERR_TAIL: usize = 2048;

/// Why a command failed. The message names the program, never its environment (which may
/// carry endpoints, never secrets, but stays out of errors all the same).
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    /// The argv is empty.
    #[error("the command is empty")]
    Empty,
    /// The program could not be started.
    #[error("could not start {program:?}")]
    Spawn {
        /// The program.
        program: String,
        /// Why.
        source: std::io::Error,
    },
    /// It ran past its timeout; its process group was killed.
    #[error("{program:?} did not finish within {after:?} and was killed")]
    Timeout {
        /// The program.
        program: String,
        /// The timeout.
        after: Duration,
    },
    /// It exited unsuccessfully.
    #[error("{program:?} failed ({status}): {stderr}")]
    Failed {
        /// The program.
        program: String,
        /// Its exit status.
        status: ExitStatus,
        /// The end of its stderr.
        stderr: String,
    },
    /// It printed something that is not UTF-8 on stdout.
    #[error("{program:?} printed something that is not UTF-8")]
    NotUtf8 {
        /// The program.
        program: String,
    },
}

/// A command's process group, killed when the command is given up (its timeout passed,
/// or the caller stopped waiting): `kill_on_drop` ends the command itself, this the
/// helpers it started (a script's `pg_dump`, say).
struct Group(Option<i32>);

impl Drop for Group {
    fn drop(&mut self) {
        if let Some(group) = self.0 {
            let _ = killpg(Pid::from_raw(group), Signal::SIGKILL);
        }
    }
}

/// Runs `argv` with `env` added to lifeboat's own environment, and returns its stdout
/// once it exits 0 within `timeout`.
pub async fn run(
    argv: &[String],
    env: &[(&str, String)],
    timeout: Duration,
) -> Result<String, CommandError> {
    let (program, args) = argv.split_first().ok_or(CommandError::Empty)?;
    let mut command = tokio::process::Command::new(program);
    command
        .args(args)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    let spawn_error = |source| CommandError::Spawn {
        program: program.clone(),
        source,
    };
    let child = command.spawn().map_err(spawn_error)?;
    let mut group = Group(child.id().and_then(|id| i32::try_from(id).ok()));
    let output = match tokio::time::timeout(timeout, child.wait_with_output()).await {
        Ok(output) => {
            // It exited: what it left running in the background is its own business.
            group.0 = None;
            output.map_err(spawn_error)?
        }
        Err(_) => {
            return Err(CommandError::Timeout {
                program: program.clone(),
                after: timeout,
            });
        }
    };
    if !output.status.success() {
        return Err(CommandError::Failed {
            program: program.clone(),
            status: output.status,
            stderr: tail(&String::from_utf8_lossy(&output.stderr)),
        });
    }
    String::from_utf8(output.stdout).map_err(|_| CommandError::NotUtf8 {
        program: program.clone(),
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

    fn sh(script: &str) -> Vec<String> {
        vec!["/bin/sh".into(), "-c".into(), script.into()]
    }

    #[tokio::test]
    async fn returns_stdout_and_passes_the_environment() {
        let out = run(
            &sh("echo \"$GREETING\""),
            &[("GREETING", "hello".into())],
            Duration::from_secs(10),
        )
        .await
        .unwrap();
        assert_eq!(out.trim(), "hello");
    }

    #[tokio::test]
    async fn a_timeout_kills_the_whole_process_group() {
        let dir = tempfile::tempdir().unwrap();
        let marker = dir.path().join("survivor");
        // The background helper would write the marker after 1 s if it survived.
        let script = format!("(sleep 1; touch {}) & sleep 30", marker.display());
        let err = run(&sh(&script), &[], Duration::from_millis(200))
            .await
            .unwrap_err();
        assert!(matches!(err, CommandError::Timeout { .. }), "{err}");
        tokio::time::sleep(Duration::from_millis(1500)).await;
        assert!(
            !marker.exists(),
            "a helper of the timed-out command kept running"
        );
    }

    #[test]
    fn the_stderr_tail_is_bounded_and_valid_utf8() {
        let long = "é".repeat(3000);
        let t = tail(&long);
        assert!(t.len() <= STDERR_TAIL);
        assert!(t.chars().all(|c| c == 'é'));
    }
}
