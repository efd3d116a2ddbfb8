//! Snapshot shipping, for data without streaming replication: the data-hook protocol.
//!
//! A dataset with `method: snapshot` names two commands (argv, no shell), run by the
//! controller like the cutover hooks (see [`crate::command`]: a timeout after which the
//! whole process group is killed, the tail of stderr in the error):
//!
//! * **`snapshot`**, run `every` so often while the primary runs: it takes a consistent
//!   snapshot of the primary at `LIFEBOAT_PRIMARY` (`host:port`) and ships it off the
//!   primary's vendor. Its **last line of output** is a JSON object: `{"id": "...",
//!   "time": "2026-12-04T18:00:00Z", "size": 1234}` — `id` (required) names the
//!   snapshot to the `restore` command, `time` is the moment the data was captured (by
//!   default, when the command started: a snapshot holds at least what was committed
//!   then), `size` its bytes (shown, not checked).
//! * **`restore`**, run in a move's `BeforeCutover` step: it restores the snapshot
//!   `LIFEBOAT_SNAPSHOT` into the new copy at `LIFEBOAT_NEW_ENDPOINT`. It may run again
//!   after a crash or a retry, so it must be idempotent (replace what is there).
//!
//! Both also get `LIFEBOAT_WORKLOAD`, `LIFEBOAT_GENERATION`, and — when the dataset has
//! `credentials:` — `LIFEBOAT_DATA_USER` and `LIFEBOAT_DATA_PASSWORD_FILE` (the file's
//! absolute path; the password itself is never in an environment lifeboat sets).
//!
//! The recovery point is the age of the last shipped snapshot: it is the dataset's lag,
//! with an alert when it passes the `rpo`. A move whose old primary still answers takes
//! one last snapshot first, so a planned move (a notice, a failback) loses nothing
//! committed before it.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use jiff::Timestamp;
use lifeboat_provider::{Endpoint, Generation};
use serde::{Deserialize, Serialize};
use tokio::task::JoinHandle;

use crate::command::{self, CommandError};
use crate::config::{Config, DataConfig};

/// The longest snapshot id accepted: it is passed on in an environment variable and
/// shown in `status`.
const MAX_ID: usize = 200;

/// One shipped snapshot, as its command described it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Snapshot {
    /// What the `restore` command is given to find it.
    pub id: String,
    /// When the data in it was captured.
    pub taken_at: Timestamp,
    /// Its size in bytes, when the command said.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
}

impl Snapshot {
    /// How old it is at `now` (zero for a snapshot stamped in the future).
    pub fn age(&self, now: Timestamp) -> Duration {
        Duration::try_from(now.duration_since(self.taken_at)).unwrap_or(Duration::ZERO)
    }
}

/// Reads a snapshot command's output: its last non-blank line is the JSON description.
/// `started` is when the command started, the capture time when it gives none.
pub fn parse(stdout: &str, started: Timestamp) -> Result<Snapshot, String> {
    #[derive(Deserialize)]
    struct Line {
        id: serde_json::Value,
        #[serde(default)]
        time: Option<String>,
        #[serde(default)]
        size: Option<u64>,
    }
    let last = (stdout.lines().rev())
        .map(str::trim)
        .find(|l| !l.is_empty())
        .ok_or("it printed nothing: its last line must describe the snapshot, as JSON")?;
    let line: Line = serde_json::from_str(last).map_err(|e| {
        format!(
            "its last line is not a snapshot's description ({e}): expected \
             {{\"id\": \"...\", \"time\": \"RFC 3339\", \"size\": bytes}}"
        )
    })?;
    let id = match line.id {
        serde_json::Value::String(id) => id,
        serde_json::Value::Number(n) => n.to_string(),
        other => return Err(format!("its snapshot id must be a string, not {other}")),
    };
    if id.is_empty() || id.len() > MAX_ID || id.chars().any(char::is_control) {
        return Err(format!(
            "its snapshot id must be 1 to {MAX_ID} printable characters"
        ));
    }
    let taken_at = match line.time {
        None => started,
        Some(time) => time
            .parse::<Timestamp>()
            .map_err(|e| format!("its snapshot time {time:?} is not an RFC 3339 time: {e}"))?,
    };
    Ok(Snapshot {
        id,
        taken_at,
        size: line.size,
    })
}

/// A dataset's hooks, ready to run, and its snapshot in progress.
#[derive(Debug)]
pub struct Shipping {
    snapshot: Vec<String>,
    restore: Vec<String>,
    every: Duration,
    user: Option<String>,
    password_file: Option<PathBuf>,
    running: Mutex<Option<Running>>,
}

/// A snapshot command running beside the rounds (a large dump takes longer than one).
#[derive(Debug)]
struct Running {
    primary: Endpoint,
    task: JoinHandle<Result<Snapshot, String>>,
}

/// What a snapshot round did.
#[derive(Debug, PartialEq, Eq)]
pub enum Progress {
    /// A snapshot finished and was shipped.
    Shipped(Snapshot),
    /// The last one failed.
    Failed(String),
    /// One is running.
    Running,
    /// None is due, or none may start now.
    Idle,
}

impl Shipping {
    /// The hooks of a `snapshot` dataset (`None` for another method).
    pub fn new(config: &Config, data: &DataConfig) -> Option<Arc<Shipping>> {
        let every = data.every?;
        let creds = data.credentials.as_ref();
        Some(Arc::new(Shipping {
            snapshot: data.snapshot.clone(),
            restore: data.restore.clone(),
            every,
            user: creds.map(|c| c.user.clone()),
            password_file: (creds.and_then(|c| c.password_file.as_deref()))
                .map(|f| config.resolve_path(f)),
            running: Mutex::new(None),
        }))
    }

    /// How often a snapshot is taken.
    pub fn every(&self) -> Duration {
        self.every
    }

    /// One round: collects a finished snapshot, and starts one at `primary` when `due`
    /// and none runs. A snapshot running against another primary (the workload moved)
    /// is abandoned: it would describe the old one.
    pub async fn round(
        self: &Arc<Self>,
        workload: &str,
        primary: &Endpoint,
        generation: Generation,
        due: bool,
        timeout: Duration,
    ) -> Progress {
        let finished = {
            let mut running = self.running.lock().unwrap_or_else(|p| p.into_inner());
            match running.take() {
                Some(r) if r.primary != *primary => {
                    r.task.abort();
                    None
                }
                Some(r) if !r.task.is_finished() => {
                    *running = Some(r);
                    return Progress::Running;
                }
                Some(r) => Some(r.task),
                None => None,
            }
        };
        if let Some(task) = finished {
            // Finished: the join returns at once.
            return match task.await {
                Ok(Ok(s)) => Progress::Shipped(s),
                Ok(Err(why)) => Progress::Failed(why),
                Err(e) => Progress::Failed(format!("the snapshot task ended: {e}")),
            };
        }
        if !due {
            return Progress::Idle;
        }
        let (me, env) = (self.clone(), self.env(workload, generation, primary));
        let task = tokio::spawn(async move { me.take(&env, timeout).await });
        let mut running = self.running.lock().unwrap_or_else(|p| p.into_inner());
        *running = Some(Running {
            primary: primary.clone(),
            task,
        });
        Progress::Running
    }

    /// Takes a snapshot of the primary at `primary` now, within `timeout`.
    pub async fn take_now(
        &self,
        workload: &str,
        primary: &Endpoint,
        generation: Generation,
        timeout: Duration,
    ) -> Result<Snapshot, String> {
        self.take(&self.env(workload, generation, primary), timeout)
            .await
    }

    /// Restores `snapshot` into the new copy at `target`, within `timeout`.
    pub async fn restore(
        &self,
        workload: &str,
        snapshot: &Snapshot,
        target: &Endpoint,
        generation: Generation,
        timeout: Duration,
    ) -> Result<(), CommandError> {
        let mut env = self.base_env(workload, generation);
        env.push(("LIFEBOAT_SNAPSHOT", snapshot.id.clone()));
        env.push(("LIFEBOAT_NEW_ENDPOINT", target.to_string()));
        command::run(&self.restore, &env, timeout).await.map(drop)
    }

    async fn take(
        &self,
        env: &[(&'static str, String)],
        timeout: Duration,
    ) -> Result<Snapshot, String> {
        let started = Timestamp::now();
        let out = command::run(&self.snapshot, env, timeout)
            .await
            .map_err(|e| format!("{:#}", anyhow::Error::new(e)))?;
        parse(&out, started).map_err(|why| format!("the snapshot command ran, but {why}"))
    }

    fn env(
        &self,
        workload: &str,
        generation: Generation,
        primary: &Endpoint,
    ) -> Vec<(&'static str, String)> {
        let mut env = self.base_env(workload, generation);
        env.push(("LIFEBOAT_PRIMARY", primary.to_string()));
        env
    }

    fn base_env(&self, workload: &str, generation: Generation) -> Vec<(&'static str, String)> {
        let mut env = vec![
            ("LIFEBOAT_WORKLOAD", workload.to_owned()),
            ("LIFEBOAT_GENERATION", generation.to_string()),
        ];
        if let Some(user) = &self.user {
            env.push(("LIFEBOAT_DATA_USER", user.clone()));
        }
        if let Some(file) = &self.password_file {
            env.push((
                "LIFEBOAT_DATA_PASSWORD_FILE",
                file.to_string_lossy().into_owned(),
            ));
        }
        env
    }
}

impl Drop for Shipping {
    fn drop(&mut self) {
        let running = self.running.get_mut().unwrap_or_else(|p| p.into_inner());
        if let Some(r) = running.take() {
            r.task.abort();
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn at(text: &str) -> Timestamp {
        text.parse().unwrap()
    }

    #[test]
    fn the_last_line_describes_the_snapshot() {
        let out = "dumping...\n{\"id\": \"db-17\", \"time\": \"2026-12-04T18:00:00Z\", \"size\": 4096}\n\n";
        let s = parse(out, at("2026-12-04T18:00:05Z")).unwrap();
        assert_eq!(s.id, "db-17");
        assert_eq!(s.taken_at, at("2026-12-04T18:00:00Z"));
        assert_eq!(s.size, Some(4096));
        assert_eq!(s.age(at("2026-12-04T18:00:30Z")), Duration::from_secs(30));
        assert_eq!(s.age(at("2026-12-04T17:00:00Z")), Duration::ZERO);
    }

    #[test]
    fn without_a_time_the_snapshot_is_as_old_as_its_command() {
        let started = at("2026-12-04T18:00:05Z");
        let s = parse("{\"id\": 42}", started).unwrap();
        assert_eq!((s.id.as_str(), s.taken_at, s.size), ("42", started, None));
    }

    #[test]
    fn a_bad_description_says_what_was_expected() {
        let now = Timestamp::UNIX_EPOCH;
        for (out, words) in [
            ("", "printed nothing"),
            ("done\n", "not a snapshot's description"),
            ("{\"size\": 3}", "missing field `id`"),
            ("{\"id\": \"\"}", "printable characters"),
            ("{\"id\": \"a\\nb\"}", "printable characters"),
            ("{\"id\": [1]}", "must be a string"),
            ("{\"id\": \"x\", \"time\": \"yesterday\"}", "RFC 3339"),
        ] {
            let err = parse(out, now).unwrap_err();
            assert!(err.contains(words), "{out:?}: {err}");
        }
    }

    proptest! {
        #[test]
        fn any_output_is_a_snapshot_or_a_reason(out in ".{0,300}") {
            let _ = parse(&out, Timestamp::UNIX_EPOCH);
        }

        #[test]
        fn a_printed_description_reads_back(id in "[a-zA-Z0-9._:/-]{1,60}", size in any::<u64>(), secs in 0i64..4_000_000_000) {
            let taken_at = Timestamp::from_second(secs).unwrap();
            let line = serde_json::json!({"id": id, "time": taken_at.to_string(), "size": size});
            let s = parse(&format!("log line\n{line}\n"), Timestamp::UNIX_EPOCH).unwrap();
            prop_assert_eq!(s, Snapshot { id, taken_at, size: Some(size) });
        }
    }
}
