//! The DNS quickstart end to end: `lifeboat drill` on `examples/quickstart-dns.yaml`
//! against a real BIND 9 (fresh zone, fresh TSIG key), with the workloads as real
//! processes on their own loopback addresses. The prober resolves the public names at
//! BIND and caches them for the TTL, so the report's downtime and RTO are a DNS
//! client's; `dig` checks the records independently of lifeboat.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

use lifeboat_testkit::bind::{Bind, TsigKey, free_dns_port};
use lifeboat_testkit::free_port;
use serde_json::Value;

/// The binary under test: the one cargo built, unless `LIFEBOAT_TEST_BIN` names another
/// (worktrees that share one target folder overwrite each other's `target/debug/lifeboat`).
fn lifeboat_bin() -> PathBuf {
    std::env::var_os("LIFEBOAT_TEST_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_lifeboat")))
}
const ZONE: &str = "quickstart.test";
/// The TTL the test writes records with: short, so the drill stays short.
const TTL_SECS: u64 = 2;
/// Where the example expects the TSIG secret.
const SECRET_ENV: &str = "LIFEBOAT_QUICKSTART_TSIG";

/// The example, pointed at this test's BIND, free ports and a short TTL.
struct Quickstart {
    dir: tempfile::TempDir,
    /// Port of each workload.
    ports: BTreeMap<&'static str, u16>,
}

impl Quickstart {
    fn write(server: SocketAddr, hosted_by: Option<&str>) -> Quickstart {
        let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/quickstart-dns.yaml");
        let mut text = std::fs::read_to_string(&example).unwrap();
        let mut ports = BTreeMap::new();
        let chosen = three_free_ports();
        for (workload, (old, new)) in ["db", "api", "web"]
            .into_iter()
            .zip([18401, 18402, 18403].into_iter().zip(&chosen))
        {
            text = replace_once_each(&text, &format!("port: {old}\n"), &format!("port: {new}\n"));
            ports.insert(workload, *new);
        }
        let range = format!("\"{}-{}\"", chosen[0], chosen[2]);
        text = text.replace("\"18401-18403\"", &range);
        text = replace_once_each(&text, "\"127.0.0.1:5353\"", &format!("\"{server}\""));
        text = replace_once_each(&text, "ttl: 5s", &format!("ttl: {TTL_SECS}s"));
        if let Some(vendor) = hosted_by {
            text = replace_once_each(
                &text,
                "hosted_by: dns-host",
                &format!("hosted_by: {vendor}"),
            );
        }
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("quickstart-dns.yaml"), text).unwrap();
        Quickstart { dir, ports }
    }

    fn config(&self) -> PathBuf {
        self.dir.path().join("quickstart-dns.yaml")
    }

    /// `lifeboat SUBCOMMAND ...` run from the config's folder.
    fn lifeboat(&self, args: &[&str]) -> Command {
        let mut command = Command::new(lifeboat_bin());
        command
            .args(args)
            .current_dir(self.dir.path())
            .env("NO_PROXY", "*");
        command
    }

    /// `lifeboat validate CONFIG`.
    fn validate(&self) -> Output {
        self.lifeboat(&["validate"])
            .arg(self.config())
            .output()
            .unwrap()
    }
}

/// Three consecutive ports free on every address the example's providers bind (a
/// narrow range keeps the providers' capacity probes cheap).
fn three_free_ports() -> Vec<u16> {
    let free_everywhere = |port: u16| {
        (1..=4).all(|last| {
            std::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, last], port))).is_ok()
        })
    };
    loop {
        let first = free_port();
        let ports: Vec<u16> = (0..3).filter_map(|i| first.checked_add(i)).collect();
        if ports.len() == 3 && ports.iter().all(|p| free_everywhere(*p)) {
            return ports;
        }
    }
}

/// `text` with `from` replaced, which must occur exactly once (so a changed example
/// fails here, loudly, instead of silently testing something else).
fn replace_once_each(text: &str, from: &str, to: &str) -> String {
    assert_eq!(
        text.matches(from).count(),
        1,
        "{from:?} should occur once in the example"
    );
    text.replacen(from, to, 1)
}

/// A running `lifeboat drill`, stopped on drop like Ctrl-C would (it retires what it
/// started), and killed, with every copy it left, if it does not stop.
struct DrillProcess {
    child: Child,
    state: PathBuf,
}

impl DrillProcess {
    fn wait(&mut self, limit: Duration) -> ExitStatus {
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                start.elapsed() < limit,
                "the drill did not finish within {limit:?}"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

impl Drop for DrillProcess {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
            let start = Instant::now();
            while matches!(self.child.try_wait(), Ok(None))
                && start.elapsed() < Duration::from_secs(60)
            {
                std::thread::sleep(Duration::from_millis(200));
            }
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        // Copies a killed drill could not retire: each local record names its group.
        for record in records(&self.state.join("drill")) {
            let pid = std::fs::read_to_string(&record)
                .ok()
                .and_then(|text| serde_json::from_str::<Value>(&text).ok())
                .and_then(|v| v["pid"].as_i64())
                .and_then(|p| i32::try_from(p).ok());
            if let Some(pid) = pid {
                let _ = nix::sys::signal::killpg(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
        }
    }
}

/// Every `*.json` one folder below `dir` (the local providers' records).
fn records(dir: &Path) -> Vec<PathBuf> {
    let Ok(providers) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    providers
        .flatten()
        .filter_map(|p| std::fs::read_dir(p.path()).ok())
        .flat_map(|files| files.flatten().map(|f| f.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect()
}

fn start_bind() -> (Bind, TsigKey) {
    let key = TsigKey::generate("lifeboat-quickstart", "hmac-sha256")
        .expect("tsig-keygen (tests/peers/install.sh installs bind9)");
    let bind = Bind::primary(ZONE, &key, &[], free_dns_port(), &[])
        .expect("starting BIND (tests/peers/install.sh installs it)");
    (bind, key)
}

fn text(output: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn the_dns_quickstart_drill_measures_downtime_through_dns_and_fails_back() {
    let (bind, key) = start_bind();
    let quickstart = Quickstart::write(bind.addr(), None);
    let report_dir = quickstart.dir.path().join("out");
    let log = std::fs::File::create(quickstart.dir.path().join("drill.log")).unwrap();
    let child = quickstart
        .lifeboat(&["drill", "-c"])
        .arg(quickstart.config())
        .arg("--report")
        .arg(&report_dir)
        .env(SECRET_ENV, &key.secret)
        .stdout(Stdio::piped())
        .stderr(log)
        .spawn()
        .unwrap();
    let mut drill = DrillProcess {
        child,
        state: quickstart.dir.path().join(".lifeboat/quickstart-dns"),
    };
    let status = drill.wait(Duration::from_secs(300));
    let drill_log =
        std::fs::read_to_string(quickstart.dir.path().join("drill.log")).unwrap_or_default();
    let mut summary = String::new();
    if let Some(mut out) = drill.child.stdout.take() {
        std::io::Read::read_to_string(&mut out, &mut summary).unwrap();
    }
    assert!(
        status.success(),
        "drill failed ({status}):\n{summary}\n{drill_log}\nBIND:\n{}",
        bind.log()
    );
    assert!(summary.contains("rto includes the DNS TTL"), "{summary}");

    let report: Value =
        serde_json::from_str(&std::fs::read_to_string(report_dir.join("report.json")).unwrap())
            .unwrap();
    assert_eq!(report["objectives_met"], true, "{report:#}");
    let failback = report["failback"].as_str().unwrap_or_default();
    assert!(failback.starts_with("ok"), "{report:#}");
    let workloads = report["workloads"].as_array().unwrap();
    assert_eq!(workloads.len(), 3, "{report:#}");
    for w in workloads {
        let name = w["name"].as_str().unwrap();
        assert_eq!(w["to"], "metal-1", "{w:#}");
        // The prober read the TTL from BIND's answers, and the RTO carries it on top of
        // the moment the record was switched.
        assert_eq!(w["dns_ttl_ms"], TTL_SECS * 1000, "{w:#}");
        let cut_over_at = report["timeline"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| {
                e["workload"] == name
                    && e["what"]
                        .as_str()
                        .is_some_and(|t| t.starts_with(&format!("{name}: traffic moved to")))
            })
            .and_then(|e| e["at_ms"].as_u64())
            .unwrap_or_else(|| panic!("no cutover of {name} in the timeline: {report:#}"));
        assert_eq!(w["rto_ms"], cut_over_at + TTL_SECS * 1000, "{w:#}");
        // The blackout stopped the old copies, so a client that follows DNS is down
        // until the record points at the new copy: never before the switch.
        let outages = w["outages"].as_array().unwrap();
        assert!(!outages.is_empty(), "{w:#}");
        assert!(w["downtime_ms"].as_u64().unwrap() > 0, "{w:#}");
        let recovered = outages.last().unwrap()["end_ms"].as_u64().unwrap();
        assert!(recovered >= cut_over_at, "{w:#}");
    }

    // After the failback the records point at the original copies again: db and api on
    // acme-eu, web on acme-us, each at its provider's own loopback address.
    for (name, ip) in [
        ("db", "127.0.0.2"),
        ("api", "127.0.0.2"),
        ("www", "127.0.0.3"),
    ] {
        let fqdn = format!("{name}.{ZONE}");
        assert_eq!(bind.dig(&fqdn, "A").unwrap(), [ip], "{fqdn}");
    }
    // The drill retired every copy it started: the fixed ports are free again.
    for (workload, port) in &quickstart.ports {
        for ip in [[127, 0, 0, 2], [127, 0, 0, 3], [127, 0, 0, 4]] {
            assert!(
                std::net::TcpListener::bind((std::net::Ipv4Addr::from(ip), *port)).is_ok(),
                "{workload}'s port {port} still taken on {ip:?}"
            );
        }
    }
    assert!(records(&drill.state.join("drill")).is_empty());
}

#[test]
fn validate_warns_when_dns_is_hosted_at_a_vendor_that_runs_workloads() {
    // Validation reads the config only: no server needs to answer.
    let server = SocketAddr::from(([192, 0, 2, 53], 53));
    let elsewhere = Quickstart::write(server, None);
    let (out, err) = text(&elsewhere.validate());
    assert!(
        out.contains("valid (2 vendors, 3 providers, 3 workloads)"),
        "{out}{err}"
    );
    assert!(!err.contains("hosted at vendor"), "{err}");

    let trap = Quickstart::write(server, Some("acme-cloud"));
    let output = trap.validate();
    let (out, err) = text(&output);
    // A warning, not an error: the config is valid, and the exit code says so.
    assert!(output.status.success(), "{out}{err}");
    assert!(err.contains("warning:"), "{err}");
    assert!(
        err.contains("DNS for zone quickstart.test is hosted at vendor acme-cloud"),
        "{err}"
    );
    assert!(err.contains("providers acme-eu, acme-us"), "{err}");
    assert!(err.contains("cutover.hosted_by"), "{err}");
}
