//! `--log-format`, driven through the real binary with stderr on a pipe, the way a log
//! shipper or a pod's log reads it: `lifeboat run` over simulated vendors (one of which
//! suspends the account a second after start, so the daemon has something to say)
//! writes no colour codes in `text`, and nothing but JSON events in `json`, its own
//! messages ("stopping (signal received)") included.

#[path = "support/cli.rs"]
mod cli;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cli::{BIN, Lab, SHORT_POLICY, wait_for};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use serde_json::Value as Json;

/// Waits are for hangs, not speed: the machine is shared.
const PATIENCE: Duration = Duration::from_secs(120);

/// Two simulated vendors; the first one's account is suspended after a second, so the
/// daemon places, detects, decides and evacuates, logging each.
fn sim_lab() -> Lab {
    let yaml = serde_yaml::from_str(
        "
vendors:
  - name: cloud
    accounts: [prod]
  - name: metal
providers:
  - name: cloud-1
    vendor: cloud
    account: prod
    adapter:
      kind: sim
      faults:
        - { from: 1s, class: account-suspended }
  - name: metal-1
    vendor: metal
    adapter: { kind: sim }
workloads:
  - name: db
    command: [db]
    placement: [cloud-1, metal-1]
    public_name: db.logs.test
  - name: api
    command: [api]
    depends_on: [db]
    placement: [cloud-1, metal-1]
    public_name: api.logs.test
cutover: { kind: endpoints-file, path: endpoints.json }
",
    )
    .unwrap();
    Lab::new(yaml, SHORT_POLICY)
}

/// A running `lifeboat` whose stderr is a pipe, read line by line as it comes; killed
/// when dropped, so a failing test leaves nothing running.
struct Piped {
    child: Child,
    lines: Arc<Mutex<Vec<String>>>,
    reader: Option<std::thread::JoinHandle<()>>,
}

impl Piped {
    fn start(lab: &Lab, args: &[&str], env: &[(&str, &str)]) -> Piped {
        let mut command = Command::new(&*BIN);
        command
            .args(args)
            .env("LIFEBOAT_API_LISTEN", "127.0.0.1:0")
            .current_dir(lab.path())
            .env_remove("LIFEBOAT_LOG")
            .env_remove("LIFEBOAT_LOG_FORMAT")
            .env_remove("NO_COLOR")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        for (key, value) in env {
            command.env(key, value);
        }
        let mut child = command.spawn().expect("starting the lifeboat binary");
        let stderr = child.stderr.take().expect("stderr is piped");
        let lines = Arc::new(Mutex::new(Vec::new()));
        let sink = lines.clone();
        let reader = std::thread::spawn(move || {
            // Raw bytes, then text: an escape byte must reach the assertions as it is.
            for line in BufReader::new(stderr).split(b'\n').map_while(Result::ok) {
                let line = String::from_utf8_lossy(&line).into_owned();
                sink.lock().unwrap().push(line);
            }
        });
        Piped {
            child,
            lines,
            reader: Some(reader),
        }
    }

    fn so_far(&self) -> Vec<String> {
        self.lines.lock().unwrap().clone()
    }

    /// Waits until a line satisfies `wanted`.
    fn wait_for_line(&self, what: &str, wanted: impl Fn(&str) -> bool) {
        wait_for(PATIENCE, what, || {
            self.so_far().iter().any(|l| wanted(l)).then_some(())
        });
    }

    /// SIGTERM, then its exit code and every line it wrote until it exited.
    fn stop(self) -> (Option<i32>, Vec<String>) {
        let pid = Pid::from_raw(i32::try_from(self.child.id()).unwrap());
        kill(pid, Signal::SIGTERM).expect("signalling lifeboat");
        self.stop_when_exited()
    }

    /// For a command that ends by itself: its exit code and every line it wrote.
    fn stop_when_exited(mut self) -> (Option<i32>, Vec<String>) {
        let status = wait_for(PATIENCE, "lifeboat to exit", || {
            self.child.try_wait().ok().flatten()
        });
        // The pipe closes with the process, so the reader has every line after this.
        if let Some(reader) = self.reader.take() {
            reader.join().expect("the stderr reader");
        }
        (status.code(), self.so_far())
    }
}

impl Drop for Piped {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A line of `lifeboat run --log-format json` as a log shipper reads it.
fn event(line: &str) -> Json {
    let event: Json = serde_json::from_str(line)
        .unwrap_or_else(|e| panic!("a stderr line is not JSON ({e}): {line:?}"));
    assert!(event["level"].is_string(), "no level: {line}");
    assert!(event["timestamp"].is_string(), "no timestamp: {line}");
    assert!(
        event["fields"]["message"].is_string(),
        "no fields.message: {line}"
    );
    event
}

fn message(event: &Json) -> &str {
    event["fields"]["message"].as_str().unwrap_or_default()
}

#[test]
fn text_logs_on_a_pipe_carry_no_colour_codes() {
    let lab = sim_lab();
    let run = Piped::start(&lab, &["run", "-c", lab.config_arg()], &[]);
    run.wait_for_line("the suspension to be logged", |l| {
        l.contains("provider condition changed") && l.contains("suspended")
    });
    run.wait_for_line("the evacuation to finish", |l| {
        l.contains("evacuation: move finished") && l.contains("api")
    });
    let (code, lines) = run.stop();
    let text = lines.join("\n");
    assert_eq!(code, Some(0), "{text}");
    assert!(
        !text.contains('\u{1b}'),
        "colour codes on a pipe:\n{text:?}"
    );
    assert!(
        lines.iter().any(|l| l.contains(" INFO ")),
        "levels in words: {text}"
    );
    assert!(
        lines.iter().any(|l| l == "stopping (signal received)"),
        "{text}"
    );
}

#[test]
fn json_logs_are_one_event_a_line_from_start_to_stop() {
    let lab = sim_lab();
    let run = Piped::start(
        &lab,
        &["run", "-c", lab.config_arg(), "--log-format", "json"],
        &[],
    );
    // Every line parses, also the ones read while waiting.
    let suspended = |l: &str| {
        serde_json::from_str::<Json>(l).is_ok_and(|e| {
            message(&e) == "provider condition changed"
                && e["fields"]["condition"]
                    .as_str()
                    .is_some_and(|c| c.starts_with("suspended"))
        })
    };
    run.wait_for_line("the suspension as a JSON event", suspended);
    run.wait_for_line("the evacuation's last move as a JSON event", |l| {
        serde_json::from_str::<Json>(l).is_ok_and(|e| {
            message(&e) == "evacuation: move finished" && e["fields"]["workload"] == "api"
        })
    });
    let (code, lines) = run.stop();
    assert_eq!(code, Some(0), "{}", lines.join("\n"));
    assert!(!lines.is_empty());
    let events: Vec<Json> = lines.iter().map(|l| event(l)).collect();
    assert!(
        lines.iter().all(|l| !l.contains('\u{1b}')),
        "colour codes in JSON"
    );

    let started = events
        .iter()
        .find(|e| message(e) == "lifeboat started")
        .expect("the start is logged");
    assert_eq!(started["level"], "INFO");
    assert_eq!(started["fields"]["providers"], 2, "{started}");
    // The daemon's own message on SIGTERM is an event like the others.
    let stopping = events
        .iter()
        .find(|e| message(e) == "stopping (signal received)")
        .expect("the signal is reported");
    assert_eq!(stopping["level"], "INFO");
    assert_eq!(message(events.last().unwrap()), "lifeboat stopped");
}

#[test]
fn the_format_comes_from_the_environment_too_and_covers_config_errors() {
    let lab = sim_lab();
    std::fs::write(
        lab.path().join("bad.yaml"),
        "vendors: [{name: x}]\nprovidrs: []\n",
    )
    .unwrap();
    let run = Piped::start(
        &lab,
        &["validate", "bad.yaml"],
        &[("LIFEBOAT_LOG_FORMAT", "json")],
    );
    let (code, lines) = run.stop_when_exited();
    assert_eq!(code, Some(2), "{lines:?}");
    assert!(!lines.is_empty());
    for line in &lines {
        let event = event(line);
        assert_eq!(event["level"], "ERROR", "{line}");
        assert!(message(&event).starts_with("bad.yaml:"), "{line}");
    }
}
