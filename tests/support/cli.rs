//! Shared set-up for the tests that drive the real `lifeboat` binary: a lab folder with
//! a generated config, port ranges no other test uses, the local providers' records of
//! the processes they started, and guards that stop every process a test started (the
//! `lifeboat` commands and the workloads they launched) on every path, panics included.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill, killpg};
use nix::unistd::Pid;
use serde_json::Value as Json;
use serde_yaml::Value as Yaml;

/// The binary under test: the one cargo built for these tests, unless
/// `LIFEBOAT_TEST_BIN` names another (a target folder shared by several checkouts may
/// hold another checkout's build at `target/debug/lifeboat` by the time tests run).
pub static BIN: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    std::env::var("LIFEBOAT_TEST_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_lifeboat").to_owned())
});

/// Longest any single `lifeboat` command may run before the test calls it hung. Generous:
/// the machine is shared, and a hang is what this catches, not slowness.
pub const COMMAND_LIMIT: Duration = Duration::from_secs(180);

/// How a finished command went.
#[derive(Debug)]
pub struct Finished {
    /// Its exit code (`None` when a signal ended it).
    pub code: Option<i32>,
    /// What it printed on stdout.
    pub stdout: String,
    /// What it printed on stderr.
    pub stderr: String,
}

impl Finished {
    /// Both outputs, for assertion messages.
    pub fn output(&self) -> String {
        format!("--- stdout\n{}\n--- stderr\n{}", self.stdout, self.stderr)
    }
}

/// A `lifeboat` command line in `dir`, with its output captured into files (a pipe that
/// nobody reads could block a long-running command).
pub struct Lifeboat {
    child: Option<Child>,
    out: PathBuf,
    err: PathBuf,
}

impl Lifeboat {
    /// Starts `lifeboat ARGS...` in `dir`; `name` tells its output files apart.
    pub fn start(dir: &Path, name: &str, args: &[&str]) -> Lifeboat {
        let out = dir.join(format!("{name}.stdout"));
        let err = dir.join(format!("{name}.stderr"));
        let child = Command::new(&*BIN)
            .args(args)
            .current_dir(dir)
            .env_remove("LIFEBOAT_LOG")
            // Daemons of tests running side by side must not compete for one port.
            .env("LIFEBOAT_API_LISTEN", "127.0.0.1:0")
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&out).expect("creating the stdout file"))
            .stderr(std::fs::File::create(&err).expect("creating the stderr file"))
            .spawn()
            .expect("starting the lifeboat binary");
        Lifeboat {
            child: Some(child),
            out,
            err,
        }
    }

    /// The process id.
    pub fn pid(&self) -> Pid {
        let child = self.child.as_ref().expect("the command is running");
        Pid::from_raw(i32::try_from(child.id()).expect("a pid fits in i32"))
    }

    /// Sends `signal` to the command.
    pub fn signal(&self, signal: Signal) {
        kill(self.pid(), signal).expect("signalling lifeboat");
    }

    /// Whether it has exited (without collecting its output).
    pub fn exited(&mut self) -> Option<ExitStatus> {
        self.child.as_mut()?.try_wait().ok().flatten()
    }

    /// What it has printed on stderr so far.
    pub fn stderr_so_far(&self) -> String {
        std::fs::read_to_string(&self.err).unwrap_or_default()
    }

    /// Waits (up to [`COMMAND_LIMIT`]) for it to exit; kills it and fails the test if it
    /// does not.
    pub fn wait(mut self) -> Finished {
        let mut child = self.child.take().expect("the command is running");
        let started = Instant::now();
        let status = loop {
            if let Some(status) = child.try_wait().expect("waiting for lifeboat") {
                break status;
            }
            if started.elapsed() > COMMAND_LIMIT {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "lifeboat did not exit within {COMMAND_LIMIT:?}\n{}",
                    read_outputs(&self.out, &self.err).output()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        let mut finished = read_outputs(&self.out, &self.err);
        finished.code = status.code();
        finished
    }
}

impl Drop for Lifeboat {
    fn drop(&mut self) {
        if let Some(child) = &mut self.child {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn read_outputs(out: &Path, err: &Path) -> Finished {
    Finished {
        code: None,
        stdout: std::fs::read_to_string(out).unwrap_or_default(),
        stderr: std::fs::read_to_string(err).unwrap_or_default(),
    }
}

/// Runs `lifeboat ARGS...` in `dir` to its end.
pub fn lifeboat(dir: &Path, args: &[&str]) -> Finished {
    Lifeboat::start(dir, "cmd", args).wait()
}

/// `count` consecutive ports starting at one the OS just handed out, so concurrent
/// tests (each in its own process under nextest) do not share a range.
pub fn port_range(count: u16) -> (u16, u16) {
    loop {
        let first = lifeboat_testkit::free_port();
        if let Some(last) = first.checked_add(count - 1) {
            return (first, last);
        }
    }
}

/// Ports per local provider.
const RANGE: u16 = 20;

/// A test's own folder with a generated `lifeboat.yaml`, its state folder and the port
/// range of each local provider. Dropping it kills every workload process the local
/// providers recorded under it, so no test leaves processes behind.
pub struct Lab {
    /// The folder (removed on drop).
    pub dir: tempfile::TempDir,
    /// The config file.
    pub config: PathBuf,
    /// The config's `state_dir`.
    pub state: PathBuf,
    /// Each local provider's ports, by provider name.
    pub ranges: BTreeMap<String, (u16, u16)>,
}

impl Lab {
    /// A lab whose config is `yaml` with every local provider given its own fresh port
    /// range, `state_dir` and the endpoints file inside the lab, and `policy` merged
    /// over the config's own policy.
    pub fn new(mut yaml: Yaml, policy: &str) -> Lab {
        let dir = tempfile::tempdir().expect("creating a temp dir");
        let state = dir.path().join("state");
        let mut ranges = BTreeMap::new();
        let providers = yaml["providers"]
            .as_sequence_mut()
            .expect("the config has providers");
        // One block for the whole lab, cut into a slice per local provider: ranges in
        // one config must not overlap.
        let (mut next, _) = port_range(RANGE * u16::try_from(providers.len()).unwrap_or(1));
        for provider in providers {
            let name = provider["name"].as_str().expect("a name").to_owned();
            let adapter = provider["adapter"]
                .as_mapping_mut()
                .expect("an adapter section");
            if adapter.get("kind").and_then(Yaml::as_str) == Some("local") {
                let (first, last) = (next, next + RANGE - 1);
                next += RANGE;
                adapter.insert("ports".into(), format!("{first}-{last}").into());
                ranges.insert(name, (first, last));
            }
        }
        let map = yaml.as_mapping_mut().expect("the config is a mapping");
        map.insert("state_dir".into(), path_value(&state));
        if let Some(cutover) = map.get_mut("cutover").and_then(Yaml::as_mapping_mut)
            && cutover.get("kind").and_then(Yaml::as_str) == Some("endpoints-file")
        {
            cutover.insert(
                "path".into(),
                path_value(&dir.path().join("endpoints.json")),
            );
        }
        let overrides: Yaml = serde_yaml::from_str(policy).expect("the policy override parses");
        let policy = map
            .entry("policy".into())
            .or_insert_with(|| Yaml::Mapping(Default::default()));
        if let (Some(policy), Some(overrides)) = (policy.as_mapping_mut(), overrides.as_mapping()) {
            for (k, v) in overrides {
                policy.insert(k.clone(), v.clone());
            }
        }
        let config = dir.path().join("lifeboat.yaml");
        std::fs::write(&config, serde_yaml::to_string(&yaml).expect("YAML out"))
            .expect("writing the config");
        Lab {
            dir,
            config,
            state,
            ranges,
        }
    }

    /// A lab around the repository's quickstart, with a short policy so a drill takes
    /// seconds.
    pub fn quickstart() -> Lab {
        Lab::new(quickstart_yaml(), SHORT_POLICY)
    }

    /// The lab folder.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// The config's path as an argument.
    pub fn config_arg(&self) -> &str {
        self.config.to_str().expect("a UTF-8 temp path")
    }

    /// The state folder as an argument.
    pub fn state_arg(&self) -> &str {
        self.state.to_str().expect("a UTF-8 temp path")
    }

    /// Runs `lifeboat ARGS...` in the lab to its end.
    pub fn run(&self, args: &[&str]) -> Finished {
        lifeboat(self.path(), args)
    }

    /// Starts `lifeboat ARGS...` in the lab.
    pub fn start(&self, name: &str, args: &[&str]) -> Lifeboat {
        Lifeboat::start(self.path(), name, args)
    }

    /// Which provider's range holds `port`.
    pub fn provider_of_port(&self, port: u16) -> Option<&str> {
        self.ranges
            .iter()
            .find(|(_, (first, last))| (*first..=*last).contains(&port))
            .map(|(name, _)| name.as_str())
    }

    /// Every copy the local providers recorded anywhere under the state folder (the
    /// daemon's and a drill's), alive or not.
    pub fn records(&self) -> Vec<Copy> {
        let mut out = Vec::new();
        collect_records(&self.state, &mut out);
        let drills = self.state.join("drill");
        for copy in &mut out {
            copy.drill = copy.record.starts_with(&drills);
        }
        out
    }

    /// The recorded copies whose process still runs.
    pub fn live_copies(&self) -> Vec<Copy> {
        self.records().into_iter().filter(Copy::alive).collect()
    }

    /// Ports of any provider range that something listens on.
    pub fn open_ports(&self) -> Vec<u16> {
        self.ranges
            .values()
            .flat_map(|(first, last)| *first..=*last)
            .filter(|port| listening(*port))
            .collect()
    }

    /// `lifeboat status --state STATE --json`, parsed.
    pub fn status(&self) -> Json {
        let status = self.run(&["status", "--state", self.state_arg(), "--json"]);
        assert_eq!(status.code, Some(0), "status failed\n{}", status.output());
        serde_json::from_str(&status.stdout)
            .unwrap_or_else(|e| panic!("status --json is not JSON: {e}\n{}", status.output()))
    }

    /// The status, or `None` while there is none to read (a daemon just started may
    /// not have created its state yet). For polling; [`Lab::status`] insists.
    pub fn status_when_ready(&self) -> Option<Json> {
        let status = self.run(&["status", "--state", self.state_arg(), "--json"]);
        if status.code != Some(0) {
            return None;
        }
        serde_json::from_str(&status.stdout).ok()
    }

    /// The endpoints file as a map from public name to `host:port`.
    pub fn endpoints(&self) -> BTreeMap<String, String> {
        let path = self.path().join("endpoints.json");
        let text = std::fs::read_to_string(&path).unwrap_or_else(|_| "{}".into());
        serde_json::from_str(&text).expect("the endpoints file is JSON")
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        for copy in self.live_copies() {
            copy.kill();
        }
    }
}

/// One copy a local provider recorded: its file and what the record says.
#[derive(Debug, Clone)]
pub struct Copy {
    /// The local provider (the record's folder name).
    pub provider: String,
    /// The workload.
    pub workload: String,
    /// The generation it was started with.
    pub generation: u64,
    /// Its process id (and process group).
    pub pid: i32,
    /// The kernel start time of that process, to tell a reused pid apart.
    pub proc_start: u64,
    /// The port it serves on.
    pub port: u16,
    /// Whether a drill made it (its record lies in the drill's state folder).
    pub drill: bool,
    /// The record file.
    pub record: PathBuf,
}

impl Copy {
    /// Whether the recorded process runs (the same process, not a reused pid).
    pub fn alive(&self) -> bool {
        proc_start_time(self.pid).is_some_and(|start| start == self.proc_start)
    }

    /// Kills the copy's whole process group.
    pub fn kill(&self) {
        if self.alive() {
            let _ = killpg(Pid::from_raw(self.pid), Signal::SIGKILL);
        }
    }
}

fn collect_records(dir: &Path, out: &mut Vec<Copy>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            collect_records(&path, out);
            continue;
        }
        // Records live in STATE/.../local/PROVIDER/KEY.json.
        let in_local = path
            .parent()
            .and_then(Path::parent)
            .and_then(Path::file_name)
            .is_some_and(|n| n == "local");
        if !in_local || path.extension().is_none_or(|e| e != "json") {
            continue;
        }
        let Ok(text) = std::fs::read_to_string(&path) else {
            continue;
        };
        let Ok(record) = serde_json::from_str::<Json>(&text) else {
            continue;
        };
        let provider = path
            .parent()
            .and_then(Path::file_name)
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        out.push(Copy {
            provider,
            workload: record["workload"].as_str().unwrap_or_default().to_owned(),
            generation: record["generation"].as_u64().unwrap_or_default(),
            pid: record["pid"]
                .as_i64()
                .and_then(|p| i32::try_from(p).ok())
                .unwrap_or_default(),
            proc_start: record["proc_start"].as_u64().unwrap_or_default(),
            port: record["port"]
                .as_u64()
                .and_then(|p| u16::try_from(p).ok())
                .unwrap_or_default(),
            drill: false,
            record: path.clone(),
        });
    }
}

/// The kernel start time of process `pid` (field 22 of `/proc/PID/stat`), or `None`
/// when it does not run (zombies included: they hold no port and do no work).
pub fn proc_start_time(pid: i32) -> Option<u64> {
    if pid <= 0 {
        return None;
    }
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces and parentheses; the fields after it do not.
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    if fields.first() == Some(&"Z") {
        return None;
    }
    fields.get(19)?.parse().ok()
}

/// Whether something accepts connections on 127.0.0.1:`port`.
pub fn listening(port: u16) -> bool {
    TcpStream::connect_timeout(
        &SocketAddr::from(([127, 0, 0, 1], port)),
        Duration::from_millis(200),
    )
    .is_ok()
}

/// The body of `GET /` at `endpoint` (`host:port`), or `None` when nothing answers.
pub fn http_get(endpoint: &str) -> Option<String> {
    use std::io::{Read, Write};
    let addr: SocketAddr = endpoint.parse().ok()?;
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    stream
        .write_all(b"GET / HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
        .ok()?;
    let mut text = String::new();
    stream.read_to_string(&mut text).ok()?;
    text.split_once("\r\n\r\n").map(|(_, body)| body.to_owned())
}

/// Polls `ready` every 100 ms until it returns `Some`, failing the test with `what`
/// after `limit` (a hang, not slowness: keep limits generous).
pub fn wait_for<T>(limit: Duration, what: &str, mut ready: impl FnMut() -> Option<T>) -> T {
    let started = Instant::now();
    loop {
        if let Some(value) = ready() {
            return value;
        }
        assert!(
            started.elapsed() < limit,
            "gave up after {limit:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The repository's quickstart config.
pub fn quickstart_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/quickstart.yaml")
}

/// The quickstart config, parsed.
pub fn quickstart_yaml() -> Yaml {
    let text = std::fs::read_to_string(quickstart_path()).expect("reading the quickstart");
    serde_yaml::from_str(&text).expect("the quickstart parses")
}

/// A policy that detects and moves within a second or two.
pub const SHORT_POLICY: &str = "{probe_interval: 250ms, probe_timeout: 250ms, \
    confirmations: 2, step_timeout: 20s, step_attempts: 3}";

fn path_value(path: &Path) -> Yaml {
    Yaml::String(path.to_string_lossy().into_owned())
}

/// The placements of a `status --json`, by workload: (provider, generation).
pub fn placements(status: &Json) -> BTreeMap<String, (String, u64)> {
    status["placements"]
        .as_array()
        .expect("placements")
        .iter()
        .map(|p| {
            (
                p["workload"].as_str().unwrap().to_owned(),
                (
                    p["provider"].as_str().unwrap().to_owned(),
                    p["generation"].as_u64().unwrap(),
                ),
            )
        })
        .collect()
}
