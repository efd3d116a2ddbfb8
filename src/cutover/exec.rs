//! The exec cutover: runs an operator's command for every switch, so any vendor's API,
//! a load balancer's runtime API or an in-house tool can move traffic.
//!
//! The command gets the switch in its environment:
//!
//! | variable | value |
//! | --- | --- |
//! | `LIFEBOAT_WORKLOAD` | the workload |
//! | `LIFEBOAT_PUBLIC_NAME` | the name clients use |
//! | `LIFEBOAT_OLD_ENDPOINT` | `host:port` it pointed at, empty on a first placement |
//! | `LIFEBOAT_NEW_ENDPOINT` | `host:port` of the new copy |
//! | `LIFEBOAT_GENERATION` | the new copy's generation |
//!
//! It must be idempotent (lifeboat repeats a switch after a crash) and should refuse
//! when the name does not point at the old endpoint. Exit 0 means done; anything else
//! fails the step with the command's stderr. It runs in its own process group, which
//! is killed whole when the timeout passes.

use std::time::Duration;

use anyhow::{Context, Result, bail};
use async_trait::async_trait;

use super::endpoints_file::parse_endpoint;
use super::{Cutover, CutoverError, CutoverRequest, Resolved};

/// The exec backend.
#[derive(Debug, Clone)]
pub struct Exec {
    command: Vec<String>,
    resolve_command: Option<Vec<String>>,
    timeout: Duration,
}

impl Exec {
    /// A backend running `command` (argv, no shell) for each switch, and
    /// `resolve_command` (if any) to look a name up; both are killed after `timeout`.
    pub fn new(
        command: Vec<String>,
        resolve_command: Option<Vec<String>>,
        timeout: Duration,
    ) -> Self {
        Exec {
            command,
            resolve_command,
            timeout,
        }
    }
}

/// Runs `argv` with `env` and returns its stdout (see [`crate::command::run`]).
async fn run(argv: &[String], env: &[(&str, String)], timeout: Duration) -> Result<String> {
    let shown = argv.join(" ");
    crate::command::run(argv, env, timeout)
        .await
        .with_context(|| format!("cutover command `{shown}`"))
}

#[async_trait]
impl Cutover for Exec {
    async fn switch(&self, req: &CutoverRequest) -> Result<(), CutoverError> {
        let env = [
            ("LIFEBOAT_WORKLOAD", req.workload.clone()),
            ("LIFEBOAT_PUBLIC_NAME", req.public_name.clone()),
            (
                "LIFEBOAT_OLD_ENDPOINT",
                req.old
                    .as_ref()
                    .map(ToString::to_string)
                    .unwrap_or_default(),
            ),
            ("LIFEBOAT_NEW_ENDPOINT", req.new.to_string()),
            ("LIFEBOAT_GENERATION", req.generation.to_string()),
        ];
        run(&self.command, &env, self.timeout)
            .await
            .with_context(|| format!("switching {} to {}", req.public_name, req.new))?;
        Ok(())
    }

    /// Runs `resolve_command`; its trimmed stdout is `host:port`, or empty when the name
    /// points nowhere. Without a `resolve_command` this is an error: the exec backend
    /// cannot know where traffic goes, so a drill's prober cannot follow it.
    async fn resolve(&self, public_name: &str) -> Result<Resolved> {
        let Some(argv) = &self.resolve_command else {
            bail!(
                "the exec cutover has no resolve_command, so lifeboat cannot resolve \
                 {public_name} the way a client would"
            );
        };
        let env = [("LIFEBOAT_PUBLIC_NAME", public_name.to_owned())];
        let out = run(argv, &env, self.timeout)
            .await
            .with_context(|| format!("resolving {public_name}"))?;
        let out = out.trim();
        let endpoint =
            if out.is_empty() {
                None
            } else {
                Some(parse_endpoint(out).with_context(|| {
                    format!("resolve_command printed {out:?} for {public_name}")
                })?)
            };
        Ok(Resolved {
            endpoint,
            ttl: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lifeboat_provider::{Endpoint, Generation};
    use std::path::Path;

    fn script(dir: &Path, name: &str, body: &str) -> String {
        use std::os::unix::fs::PermissionsExt;
        let path = dir.join(name);
        std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        path.to_string_lossy().into_owned()
    }

    fn req(old: Option<u16>, new: u16) -> CutoverRequest {
        let ep = |port| Endpoint {
            host: "127.0.0.1".into(),
            port,
        };
        CutoverRequest {
            workload: "api".into(),
            public_name: "api.example".into(),
            old: old.map(ep),
            new: ep(new),
            generation: Generation(4),
        }
    }

    #[tokio::test]
    async fn switch_passes_the_request_in_the_environment_and_resolve_reads_it_back() {
        let dir = tempfile::tempdir().unwrap();
        let store = dir.path().join("routes");
        let switch = script(
            dir.path(),
            "switch.sh",
            &format!(
                "echo \"$LIFEBOAT_WORKLOAD|$LIFEBOAT_PUBLIC_NAME|$LIFEBOAT_OLD_ENDPOINT|\
                 $LIFEBOAT_NEW_ENDPOINT|$LIFEBOAT_GENERATION\" >> '{0}.log'\n\
                 echo \"$LIFEBOAT_NEW_ENDPOINT\" > '{0}.'\"$LIFEBOAT_PUBLIC_NAME\"",
                store.display()
            ),
        );
        let resolve = script(
            dir.path(),
            "resolve.sh",
            &format!(
                "cat '{}.'\"$LIFEBOAT_PUBLIC_NAME\" 2>/dev/null || true",
                store.display()
            ),
        );
        let exec = Exec::new(vec![switch], Some(vec![resolve]), Duration::from_secs(30));
        assert_eq!(exec.resolve("api.example").await.unwrap().endpoint, None);
        exec.switch(&req(None, 7000)).await.unwrap();
        exec.switch(&req(Some(7000), 7001)).await.unwrap();
        let log = std::fs::read_to_string(format!("{}.log", store.display())).unwrap();
        assert_eq!(
            log,
            "api|api.example||127.0.0.1:7000|4\napi|api.example|127.0.0.1:7000|127.0.0.1:7001|4\n"
        );
        let resolved = exec.resolve("api.example").await.unwrap();
        assert_eq!(resolved.endpoint.unwrap().port, 7001);
    }

    #[tokio::test]
    async fn a_failing_command_is_an_error_with_its_stderr() {
        let dir = tempfile::tempdir().unwrap();
        let fail = script(
            dir.path(),
            "fail.sh",
            "echo 'lb says: no such pool' >&2; exit 4",
        );
        let exec = Exec::new(vec![fail], None, Duration::from_secs(30));
        let e = format!("{:#}", exec.switch(&req(None, 1)).await.unwrap_err());
        assert!(
            e.contains("exit status: 4") && e.contains("lb says: no such pool"),
            "{e}"
        );
        let e = format!("{:#}", exec.resolve("api.example").await.unwrap_err());
        assert!(e.contains("no resolve_command"), "{e}");
        let missing = Exec::new(
            vec!["/nonexistent/cutover".into()],
            None,
            Duration::from_secs(1),
        );
        let e = format!("{:#}", missing.switch(&req(None, 1)).await.unwrap_err());
        assert!(e.contains("could not start"), "{e}");
    }

    #[tokio::test]
    async fn a_hanging_command_is_killed_with_its_children() {
        let dir = tempfile::tempdir().unwrap();
        let pidfile = dir.path().join("pid");
        let hang = script(
            dir.path(),
            "hang.sh",
            &format!("sleep 600 & echo $! > '{}'; wait", pidfile.display()),
        );
        let exec = Exec::new(vec![hang], None, Duration::from_secs(3));
        let e = format!("{:#}", exec.switch(&req(None, 1)).await.unwrap_err());
        assert!(e.contains("did not finish within"), "{e}");
        let pid = std::fs::read_to_string(&pidfile).unwrap();
        // The killed sleep may linger as a zombie of the killed shell for a moment.
        let gone = || {
            std::fs::read_to_string(format!("/proc/{}/stat", pid.trim())).map_or(true, |s| {
                s.rsplit(')').next().unwrap().trim_start().starts_with('Z')
            })
        };
        for _ in 0..200 {
            if gone() {
                break;
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        assert!(gone(), "the command's child {pid} survived the timeout");
    }
}
