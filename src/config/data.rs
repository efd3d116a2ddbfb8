//! A workload's data: the `data:` block that makes it stateful. Its primary runs as the
//! workload's copy; a warm standby is kept at another vendor by the replication method,
//! so that losing the primary's vendor loses at most `rpo` of recent writes.
//!
//! Checked when the file is read, not at failover time: a dataset needs a standby
//! candidate at another vendor, an `rpo` of zero needs synchronous replication, and the
//! method's tools must exist where lifeboat can tell (a `local` provider is this
//! machine).

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::locate::FieldPath;
use super::validate::Problems;
use super::{AdapterConfig, Config, WorkloadConfig, duration};

/// The `data:` block of a workload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataConfig {
    /// How the data is replicated.
    pub method: DataMethod,
    /// The recovery point objective: at most this much of the latest writes may be lost
    /// when the primary's vendor is. `0s` needs `synchronous: true`.
    #[serde(with = "duration")]
    pub rpo: Duration,
    /// The primary acknowledges a commit only once a standby has it: no acknowledged
    /// write is lost, at the price of a round trip to the standby per commit.
    #[serde(default)]
    pub synchronous: bool,
    /// Providers a standby may run on, in order of preference. Default: the placement's
    /// providers at another vendor than its first (where the primary runs).
    #[serde(default)]
    pub standby: Vec<String>,
    /// How lifeboat logs in to the members (`postgres-streaming` needs it); a snapshot
    /// method's hooks get the user and the password file's path, never the password.
    #[serde(default)]
    pub credentials: Option<DataCredentials>,
    /// `snapshot` only: how often a snapshot is taken at the primary.
    #[serde(default, with = "duration::option")]
    pub every: Option<Duration>,
    /// `snapshot` only: the command that takes a snapshot of the primary and ships it
    /// off the primary's vendor (see [`crate::dataset::shipping`] for its protocol).
    #[serde(default)]
    pub snapshot: Vec<String>,
    /// `snapshot` only: the command that restores a shipped snapshot into a move's new
    /// copy, before traffic is cut over to it.
    #[serde(default)]
    pub restore: Vec<String>,
}

/// A replication method.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DataMethod {
    /// PostgreSQL streaming replication (`pg_basebackup`, then WAL streaming).
    PostgresStreaming,
    /// Snapshot shipping, for data without streaming replication: a `snapshot` command
    /// run at the primary `every` so often, and a `restore` command at a move's target;
    /// the RPO is the age of the last shipped snapshot.
    Snapshot,
}

impl DataMethod {
    /// The name as the config writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            DataMethod::PostgresStreaming => "postgres-streaming",
            DataMethod::Snapshot => "snapshot",
        }
    }
}

/// The role lifeboat logs in as. The password is read from a file or an environment
/// variable when needed, never written in the config.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataCredentials {
    /// The role (a superuser, or one with the rights the method names).
    pub user: String,
    /// A file holding the password (relative to the config file).
    #[serde(default)]
    pub password_file: Option<PathBuf>,
    /// An environment variable holding the password.
    #[serde(default)]
    pub password_env: Option<String>,
}

/// Where `workload`'s standby may run, in order of preference: its `data.standby`, else
/// the providers of its placement at another vendor than the first's. Empty for a
/// workload without data.
pub fn standby_candidates<'a>(config: &'a Config, workload: &'a WorkloadConfig) -> Vec<&'a str> {
    let Some(data) = &workload.data else {
        return Vec::new();
    };
    if !data.standby.is_empty() {
        return data.standby.iter().map(String::as_str).collect();
    }
    let vendor = |name: &str| config.provider(name).map(|p| p.vendor.as_str());
    let primary = workload.placement.first().and_then(|p| vendor(p));
    (workload.placement.iter())
        .filter(|p| vendor(p).is_some_and(|v| Some(v) != primary))
        .map(String::as_str)
        .collect()
}

/// The checks of one workload's `data:` block, at `at` (the workload's path).
pub(super) fn check(config: &Config, w: &WorkloadConfig, at: &FieldPath, problems: &mut Problems) {
    let Some(data) = &w.data else {
        return;
    };
    let at = at.key("data");
    let mut problem = |path: FieldPath, message: String| problems.push((path, message));
    if data.rpo.is_zero() && !data.synchronous {
        problem(
            at.key("rpo"),
            "an rpo of 0s needs `synchronous: true`: asynchronous replication loses the \
             commits not streamed yet"
                .into(),
        );
    }
    if w.replicas != 1 {
        problem(
            at.key("method"),
            format!(
                "a workload with data runs one primary, not {} replicas",
                w.replicas
            ),
        );
    }
    let primary_vendor = (w.placement.first())
        .and_then(|p| config.provider(p))
        .map(|p| p.vendor.as_str());
    for (i, name) in data.standby.iter().enumerate() {
        match config.provider(name) {
            None => problem(
                at.key("standby").index(i),
                format!("unknown provider {name:?}"),
            ),
            Some(p) if Some(p.vendor.as_str()) == primary_vendor => problem(
                at.key("standby").index(i),
                format!(
                    "{name} is at {}, like the primary's provider {}: a vendor that drops \
                     the service takes both",
                    p.vendor,
                    w.placement.first().map_or("", String::as_str)
                ),
            ),
            Some(_) => {}
        }
    }
    let candidates = standby_candidates(config, w);
    if data.standby.is_empty() && candidates.is_empty() {
        problem(
            at.key("method"),
            format!(
                "no standby candidate at another vendor than {}: add a provider of another \
                 vendor to the placement, or name one in data.standby",
                primary_vendor.unwrap_or("the primary's")
            ),
        );
    }
    match (&data.credentials, data.method) {
        (Some(creds), _) if creds.password_file.is_some() && creds.password_env.is_some() => {
            problem(
                at.key("credentials").key("password_file"),
                "give password_file or password_env, not both".into(),
            );
        }
        (None, DataMethod::PostgresStreaming) => problem(
            at.key("method"),
            "postgres-streaming needs `credentials:` (the role lifeboat logs in as)".into(),
        ),
        _ => {}
    }
    check_method(data, &at, &mut problem);
    // A local provider is this machine: the method's tools can be looked for now.
    let local = (w.placement.iter().map(String::as_str))
        .chain(candidates.iter().copied())
        .find(|name| {
            config
                .provider(name)
                .is_some_and(|p| matches!(p.adapter, AdapterConfig::Local(_)))
        });
    if let Some(name) = local
        && let Err(why) = tools(data.method)
    {
        problem(
            at.key("method"),
            format!(
                "{} runs on the local provider {name}, but {why}",
                data.method.as_str()
            ),
        );
    }
}

/// The fields one method needs, and those it has no use for (a field that would be
/// ignored is refused: whoever wrote it expected it to do something).
fn check_method(data: &DataConfig, at: &FieldPath, problem: &mut impl FnMut(FieldPath, String)) {
    match data.method {
        DataMethod::PostgresStreaming => {
            for (field, given) in [
                ("every", data.every.is_some()),
                ("snapshot", !data.snapshot.is_empty()),
                ("restore", !data.restore.is_empty()),
            ] {
                if given {
                    problem(
                        at.key(field),
                        format!(
                            "`{field}` belongs to the snapshot method; postgres-streaming streams"
                        ),
                    );
                }
            }
        }
        DataMethod::Snapshot => {
            for (field, missing) in [
                ("snapshot", data.snapshot.is_empty()),
                ("restore", data.restore.is_empty()),
            ] {
                if missing {
                    problem(
                        at.key(field),
                        format!("the snapshot method needs a `{field}` command"),
                    );
                }
            }
            match data.every {
                None => problem(
                    at.key("every"),
                    "the snapshot method needs `every` (how often a snapshot is taken)".into(),
                ),
                Some(every) if every.is_zero() => {
                    problem(at.key("every"), "`every` must be longer than 0s".into());
                }
                Some(every) if every > data.rpo => problem(
                    at.key("rpo"),
                    format!(
                        "an rpo of {} cannot be met with a snapshot every {}: the last \
                         snapshot may be that old when the primary is lost",
                        duration::format(data.rpo),
                        duration::format(every)
                    ),
                ),
                Some(_) => {}
            }
            if data.synchronous {
                problem(
                    at.key("synchronous"),
                    "snapshots are taken from time to time: nothing waits for them".into(),
                );
            }
            if !data.standby.is_empty() {
                problem(
                    at.key("standby"),
                    "the snapshot method keeps no standby: a move's new copy is restored \
                     from the last snapshot"
                        .into(),
                );
            }
        }
    }
}

/// Whether `method`'s programs are on this machine.
fn tools(method: DataMethod) -> Result<(), String> {
    match method {
        DataMethod::PostgresStreaming => lifeboat_dataset_postgres::server_programs().map(|_| ()),
        // The hooks are the operator's programs; a missing one is found when it runs.
        DataMethod::Snapshot => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    const BASE: &str = "
vendors: [{name: acme}, {name: metal}]
providers:
  - {name: acme-1, vendor: acme, adapter: {kind: sim}}
  - {name: acme-2, vendor: acme, adapter: {kind: sim}}
  - {name: metal-1, vendor: metal, adapter: {kind: sim}}
cutover: {kind: endpoints-file, path: endpoints.json}
workloads:
  - name: db
    command: [postgres]
    port: 5432
    placement: [acme-1, acme-2, metal-1]
";

    fn parse(data: &str) -> Result<Config, String> {
        let text = format!("{BASE}    data: {data}\n");
        crate::config::parse(&text, Path::new("lifeboat.yaml")).map_err(|e| e.to_string())
    }

    const CREDS: &str = "credentials: {user: postgres, password_env: PGPASSWORD}";

    #[test]
    fn a_snapshot_dataset_needs_no_credentials() {
        let config =
            parse("{method: snapshot, rpo: 2m, every: 1m, snapshot: [s], restore: [r]}").unwrap();
        let data = config.workloads[0].data.as_ref().unwrap();
        assert_eq!(data.every, Some(Duration::from_secs(60)));
        assert_eq!(
            (data.snapshot.as_slice(), data.restore.as_slice()),
            (["s".to_owned()].as_slice(), ["r".to_owned()].as_slice())
        );
        assert!(data.credentials.is_none());
    }

    #[test]
    fn the_standby_goes_to_the_first_candidate_at_another_vendor() {
        let config = parse(&format!("{{method: postgres-streaming, rpo: 5s, {CREDS}}}")).unwrap();
        let db = &config.workloads[0];
        assert_eq!(standby_candidates(&config, db), ["metal-1"]);
        let data = db.data.as_ref().unwrap();
        assert_eq!(data.rpo, Duration::from_secs(5));
        assert!(!data.synchronous);
    }

    #[test]
    fn mistakes_that_would_surface_at_failover_are_refused_when_read() {
        let cases = [
            // Synchronous or nothing, for an rpo of zero.
            (
                format!("{{method: postgres-streaming, rpo: 0s, {CREDS}}}"),
                "workloads[0].data.rpo",
                "synchronous: true",
            ),
            // A standby at the primary's vendor goes down with it.
            (
                format!("{{method: postgres-streaming, rpo: 5s, standby: [acme-2], {CREDS}}}"),
                "workloads[0].data.standby[0]",
                "takes both",
            ),
            (
                format!("{{method: postgres-streaming, rpo: 5s, standby: [nosuch], {CREDS}}}"),
                "workloads[0].data.standby[0]",
                "unknown provider",
            ),
            (
                "{method: postgres-streaming, rpo: 5s, credentials: {user: u, password_file: f, \
                 password_env: E}}"
                    .to_owned(),
                "workloads[0].data.credentials.password_file",
                "not both",
            ),
            (
                format!("{{method: mysql-binlog, rpo: 5s, {CREDS}}}"),
                "workloads[0].data.method",
                "unknown variant",
            ),
            (
                "{method: postgres-streaming, rpo: 5s}".to_owned(),
                "workloads[0].data.method",
                "needs `credentials:`",
            ),
            (
                format!("{{method: postgres-streaming, rpo: 5s, every: 1m, {CREDS}}}"),
                "workloads[0].data.every",
                "belongs to the snapshot method",
            ),
            // A snapshot method's hooks and schedule, and an rpo its schedule can meet.
            (
                "{method: snapshot, rpo: 5m, every: 1m, restore: [r]}".to_owned(),
                "workloads[0].data.snapshot",
                "needs a `snapshot` command",
            ),
            (
                "{method: snapshot, rpo: 5m, snapshot: [s], restore: [r]}".to_owned(),
                "workloads[0].data.every",
                "needs `every`",
            ),
            (
                "{method: snapshot, rpo: 30s, every: 1m, snapshot: [s], restore: [r]}".to_owned(),
                "workloads[0].data.rpo",
                "a snapshot every 1m",
            ),
            (
                "{method: snapshot, rpo: 5m, every: 1m, snapshot: [s], restore: [r], standby: [metal-1]}"
                    .to_owned(),
                "workloads[0].data.standby",
                "keeps no standby",
            ),
        ];
        for (data, path, words) in cases {
            let err = parse(&data).unwrap_err();
            assert!(err.contains(path) && err.contains(words), "{data}\n{err}");
            assert!(
                err.contains("lifeboat.yaml:"),
                "the position is named: {err}"
            );
        }
    }

    #[test]
    fn on_a_local_provider_the_methods_tools_must_be_on_this_machine() {
        let text = BASE.replace(
            "{name: acme-1, vendor: acme, adapter: {kind: sim}}",
            "{name: acme-1, vendor: acme, adapter: {kind: local, ports: '30000-30009'}}",
        );
        let text = format!("{text}    data: {{method: postgres-streaming, rpo: 5s, {CREDS}}}\n");
        let read = crate::config::parse(&text, Path::new("lifeboat.yaml"));
        match lifeboat_dataset_postgres::server_programs() {
            Ok(_) => assert!(read.is_ok(), "{:?}", read.err().map(|e| e.to_string())),
            Err(_) => {
                let err = read.unwrap_err().to_string();
                assert!(err.contains("workloads[0].data.method"), "{err}");
                assert!(err.contains("apt-get install postgresql"), "{err}");
            }
        }
    }

    #[test]
    fn a_placement_at_one_vendor_has_no_standby_candidate() {
        let text = BASE.replace("[acme-1, acme-2, metal-1]", "[acme-1, acme-2]");
        let text = format!("{text}    data: {{method: postgres-streaming, rpo: 5s, {CREDS}}}\n");
        let err = crate::config::parse(&text, Path::new("lifeboat.yaml"))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("no standby candidate at another vendor than acme"),
            "{err}"
        );
    }
}
