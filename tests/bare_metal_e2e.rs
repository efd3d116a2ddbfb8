//! The headline scenario end to end, with the built `lifeboat` binary and real peers
//! only: workloads run on EC2 (moto), the account is lost, and every workload comes up
//! on our own hardware — two sshd "hosts", one always on and one cold standby that is
//! powered on through a Redfish BMC (sushy-tools' emulator) on the way.
//!
//! The config is a generated copy of `examples/ec2-to-bare-metal.yaml`: the example's
//! structure as written, with its addresses, files and commands pointed at the peers.

use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use lifeboat_testkit::moto::{AMI, Moto, Proxy, REGION};
use lifeboat_testkit::sshd::{SshHost, current_user};
use lifeboat_testkit::sushy::{Emulator, PoweredHost};
use lifeboat_testkit::{free_port, repo_root};
use serde_yaml::Value;

/// Upper bound for anything to happen on a busy machine; waits end as soon as it does.
const PATIENCE: Duration = Duration::from_secs(240);

/// The hardware of the example: metal-1 always on, metal-2 off behind its BMC.
struct Rack {
    metal1: SshHost,
    metal2: PoweredHost,
    bmc: Emulator,
}

impl Rack {
    fn start() -> Result<Rack> {
        let bmc = Emulator::start("Off")?;
        let metal2 = PoweredHost::start(&bmc, SshHost::prepare()?)?;
        Ok(Rack {
            metal1: SshHost::start()?,
            metal2,
            bmc,
        })
    }

    fn copies(&self) -> (usize, usize) {
        (
            self.metal1.leftover_pids().len(),
            self.metal2.leftover_pids().len(),
        )
    }
}

/// Writes the generated copy of the example into `dir` and returns its path.
fn config(dir: &Path, ec2_endpoint: &str, rack: &Rack) -> Result<PathBuf> {
    let example = repo_root().join("examples/ec2-to-bare-metal.yaml");
    let text = std::fs::read_to_string(&example)?;
    let mut c: Value = serde_yaml::from_str(&text).context("parsing the example")?;
    let y = |s: &str| -> Value { serde_yaml::from_str(s).expect("a literal YAML value") };

    c["state_dir"] = Value::from(dir.join("state").display().to_string());
    c["cutover"]["path"] = Value::from(dir.join("endpoints.json").display().to_string());
    // Loopback peers answer in milliseconds: probe often, confirm quickly.
    c["policy"] = y("{probe_interval: 2s, probe_timeout: 2s, confirmations: 2, \
         unreachable_grace: 30s, step_timeout: 90s, step_attempts: 3}");

    let providers = c["providers"].as_sequence_mut().context("providers")?;
    for p in providers.iter_mut() {
        let a = &mut p["adapter"];
        match a["kind"].as_str() {
            Some("aws-ec2") => {
                a["region"] = Value::from(REGION);
                a["endpoint_url"] = Value::from(ec2_endpoint);
                a["image_id"] = Value::from(AMI);
            }
            Some("bare-metal") => {
                a["timeouts"] = y("{power_on: 60s, ssh_ready: 60s, connect: 10s, power_off: 60s}");
                let hosts = a["hosts"].as_sequence_mut().context("hosts")?;
                for h in hosts.iter_mut() {
                    let (port, key, known, state) = match h["name"].as_str() {
                        Some("metal-1") => (
                            rack.metal1.port,
                            &rack.metal1.client_key,
                            &rack.metal1.known_hosts,
                            &rack.metal1.state_dir,
                        ),
                        Some("metal-2") => (
                            rack.metal2.port,
                            &rack.metal2.client_key,
                            &rack.metal2.known_hosts,
                            &rack.metal2.state_dir,
                        ),
                        other => bail!("the example has a host {other:?} this test does not"),
                    };
                    h["ssh"] = Value::from(format!("127.0.0.1:{port}"));
                    h["user"] = Value::from(current_user());
                    h["key_file"] = Value::from(key.display().to_string());
                    h["host_key"]["known_hosts"] = Value::from(known.display().to_string());
                    h["state_dir"] = Value::from(state.display().to_string());
                    if !h["bmc"].is_null() {
                        let b = &mut h["bmc"];
                        b["url"] = Value::from(rack.bmc.url.clone());
                        b["system_id"] = Value::from(rack.bmc.system_id.clone());
                        b["ca_file"] = Value::from(rack.bmc.ca_file.display().to_string());
                        b["credentials"]["username_file"] =
                            Value::from(rack.bmc.username_file.display().to_string());
                        b["credentials"]["password_file"] =
                            Value::from(rack.bmc.password_file.display().to_string());
                    }
                }
            }
            other => bail!("the example has an adapter {other:?} this test does not"),
        }
    }
    let workloads = c["workloads"].as_sequence_mut().context("workloads")?;
    for w in workloads.iter_mut() {
        // A real HTTP server on its own port. No health check of its own: moto's
        // instances run nothing, so EC2's status checks are the health signal there.
        w["command"] = y(r#"[sh, -c, 'exec python3 -m http.server "$PORT" --bind 127.0.0.1']"#);
        w["port"] = Value::from(free_port());
        if let Some(m) = w.as_mapping_mut() {
            m.remove("health");
            // A drill's prober requests every public name, and while a workload runs on
            // EC2 its name points at a moto instance address, which is not on this
            // machine. Test traffic stays on loopback, so these tests measure the moves,
            // not the downtime.
            m.remove("public_name");
        }
    }
    let path = dir.join("ec2-to-bare-metal.yaml");
    std::fs::write(&path, serde_yaml::to_string(&c)?)?;
    Ok(path)
}

/// A `lifeboat` process, stopped (SIGTERM, then SIGKILL) when dropped.
struct Lifeboat {
    child: Child,
    log: PathBuf,
}

impl Lifeboat {
    fn spawn(bin: &Path, args: &[&str], config: &Path, log: PathBuf) -> Result<Lifeboat> {
        let out = std::fs::File::create(&log)?;
        let child = lifeboat(bin)
            .args(args)
            .arg("-c")
            .arg(config)
            .stdout(out.try_clone()?)
            .stderr(out)
            .spawn()
            .context("starting lifeboat")?;
        Ok(Lifeboat { child, log })
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits for the process to end on its own.
    fn wait(&mut self, limit: Duration) -> Result<std::process::ExitStatus> {
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait()? {
                return Ok(status);
            }
            if start.elapsed() > limit {
                bail!(
                    "lifeboat still running after {limit:?}:\n{}",
                    self.log_text()
                );
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// SIGTERM, and the wait for a clean exit.
    fn stop(&mut self) -> Result<std::process::ExitStatus> {
        let pid = nix::unistd::Pid::from_raw(i32::try_from(self.child.id())?);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        self.wait(Duration::from_secs(60))
    }
}

impl Drop for Lifeboat {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.stop();
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// This build's `lifeboat`, hard-linked into `dir`, so that every process of one test
/// runs the same build even when the shared target folder is rebuilt meanwhile.
fn own_binary(dir: &Path) -> PathBuf {
    let built = PathBuf::from(env!("CARGO_BIN_EXE_lifeboat"));
    let linked = dir.join("lifeboat");
    match std::fs::hard_link(&built, &linked) {
        Ok(()) => linked,
        Err(_) => built,
    }
}

fn lifeboat(bin: &Path) -> Command {
    let mut cmd = Command::new(bin);
    cmd.env("LIFEBOAT_API_LISTEN", "127.0.0.1:0");
    // moto takes any key; the standard chain must find one and must not ask IMDS.
    cmd.env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("LIFEBOAT_LOG", "info")
        .stdin(Stdio::null());
    cmd
}

/// `lifeboat status --json` for `config`.
fn status(bin: &Path, config: &Path) -> Result<serde_json::Value> {
    let out = lifeboat(bin)
        .args(["status", "--json", "-c"])
        .arg(config)
        .output()?;
    ensure!(
        out.status.success(),
        "status failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(serde_json::from_slice(&out.stdout)?)
}

/// The provider of each placed workload, by workload name.
fn placed_on(status: &serde_json::Value) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = status["placements"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|p| {
            (
                p["workload"].as_str().unwrap_or_default().to_owned(),
                p["provider"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    out.sort();
    out
}

/// Polls `status` until every workload is placed on `provider`.
fn wait_all_on(
    bin: &Path,
    config: &Path,
    provider: &str,
    daemon: &Lifeboat,
) -> Result<serde_json::Value> {
    let start = Instant::now();
    loop {
        // Until the daemon has created its state, status has nothing to show.
        let s = status(bin, config);
        let placed = s.as_ref().map(placed_on).unwrap_or_default();
        if let Ok(s) = s
            && placed.len() == 3
            && placed.iter().all(|(_, p)| p == provider)
        {
            return Ok(s);
        }
        if start.elapsed() > PATIENCE {
            bail!(
                "not all on {provider} in time: {placed:?}\n{}",
                daemon.log_text()
            );
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// A blocking HTTP GET on an endpoint; the status code.
fn get(endpoint: &str) -> Result<u16> {
    let mut stream = std::net::TcpStream::connect(endpoint)?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    std::io::Write::write_all(&mut stream, b"GET / HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")?;
    let mut head = [0u8; 12];
    stream.read_exact(&mut head)?;
    Ok(std::str::from_utf8(&head[9..12])?.parse()?)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_blocked_ec2_account_moves_every_workload_to_the_rack_waking_the_standby() -> Result<()> {
    let moto = Moto::start()?;
    let proxy = Proxy::start(moto.port)?;
    let rack = Rack::start()?;
    let dir = tempfile::tempdir()?;
    let config = config(dir.path(), &proxy.url(), &rack)?;
    let bin = own_binary(dir.path());

    let daemon = Lifeboat::spawn(&bin, &["run"], &config, dir.path().join("run.log"))?;
    wait_all_on(&bin, &config, "ec2-eu", &daemon)?;
    assert_eq!(rack.copies(), (0, 0), "nothing on the rack yet");
    assert_eq!(rack.bmc.power_state().await?, "Off");
    assert!(!rack.metal2.is_up());

    // AWS suspends the account: every EC2 call answers `Blocked`.
    proxy
        .set(
            serde_json::json!({"mode": "ec2-error", "code": "Blocked", "status": 403,
            "message": "This account is currently blocked"}),
        )
        .await?;
    let s = wait_all_on(&bin, &config, "rack-fra", &daemon)?;

    // metal-1 has two slots, so the third workload woke metal-2 through Redfish.
    assert_eq!(rack.copies(), (2, 1), "{}", daemon.log_text());
    assert_eq!(rack.bmc.power_state().await?, "On");
    assert!(rack.metal2.is_up());
    // Every workload answers at the endpoint the status shows.
    for p in s["placements"].as_array().context("placements")? {
        let e = &p["deployment"]["endpoint"];
        let endpoint = format!("{}:{}", e["host"].as_str().unwrap_or_default(), e["port"]);
        assert_eq!(get(&endpoint)?, 200, "{p}");
    }
    let conditions = s["providers"].to_string();
    assert!(conditions.contains("suspended"), "{conditions}");
    // The daemon's account of the evacuation names the power-on wait apart.
    let log = daemon.log_text();
    assert!(
        log.lines()
            .any(|l| l.contains("move finished") && l.contains("power-on")),
        "{log}"
    );

    let mut daemon = daemon;
    let exit = daemon.stop()?;
    assert!(exit.success(), "{exit:?}\n{}", daemon.log_text());
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_drill_of_the_example_reports_the_power_on_and_leaves_the_rack_as_it_was() -> Result<()> {
    let moto = Moto::start()?;
    let rack = Rack::start()?;
    let dir = tempfile::tempdir()?;
    let config = config(dir.path(), &moto.url(), &rack)?;
    let out = dir.path().join("report");
    let bin = own_binary(dir.path());

    let mut drill = Lifeboat::spawn(
        &bin,
        &[
            "drill",
            "--move-production-traffic",
            "--report",
            &out.display().to_string(),
        ],
        &config,
        dir.path().join("drill.log"),
    )?;
    let exit = drill.wait(PATIENCE * 2)?;
    let log = drill.log_text();
    assert!(exit.success(), "{exit:?}\n{log}");

    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("report.json"))?)?;
    assert_eq!(report["lost"], "aws", "{report:#}");
    assert_eq!(report["objectives_met"], true, "{report:#}");
    let workloads = report["workloads"].as_array().context("workloads")?;
    assert_eq!(workloads.len(), 3, "{report:#}");
    for w in workloads {
        assert_eq!(w["from"], "ec2-eu", "{w}");
        assert_eq!(w["to"], "rack-fra", "{w}");
    }
    // Exactly one workload landed on the cold standby, and its power-on wait is
    // reported apart, within its time to healthy.
    let waited: Vec<&serde_json::Value> = workloads
        .iter()
        .filter(|w| w["phases"].as_array().is_some_and(|p| !p.is_empty()))
        .collect();
    assert_eq!(waited.len(), 1, "{report:#}");
    let phase = &waited[0]["phases"][0];
    assert_eq!(phase["name"], "power-on");
    let power_on = phase["ms"].as_u64().context("ms")?;
    let healthy = waited[0]["healthy_after_ms"].as_u64().context("healthy")?;
    assert!(power_on > 0 && power_on <= healthy, "{report:#}");
    // The summary's "of which" column names the power-on in the woken workload's row.
    let woken = waited[0]["name"].as_str().context("name")?;
    assert!(
        log.lines().any(|l| l.trim_start().starts_with(woken)
            && l.contains(" ok")
            && l.contains("power-on ")),
        "{log}"
    );
    let html = std::fs::read_to_string(out.join("report.html"))?;
    assert!(html.contains("power-on"));
    assert!(
        report["failback"]
            .as_str()
            .is_some_and(|f| f.starts_with("ok"))
    );

    // Cleanup: the standby is off again and no workload runs on either host.
    assert_eq!(rack.bmc.power_state().await?, "Off", "{log}");
    assert_eq!(rack.copies(), (0, 0), "{log}");
    Ok(())
}

#[test]
fn the_example_is_valid_as_shipped() -> Result<()> {
    let out = lifeboat(Path::new(env!("CARGO_BIN_EXE_lifeboat")))
        .arg("validate")
        .arg(repo_root().join("examples/ec2-to-bare-metal.yaml"))
        .output()?;
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("2 providers, 3 workloads"), "{text}");
    Ok(())
}

/// One bare-metal provider per vendor, each one sshd host: `rack` (colo), where the
/// daemon's copies run, and `spare` (spare), where a drill of losing colo goes. The
/// workloads serve no port, so copies of two owners share a host without colliding.
fn rack_config(dir: &Path, rack: &SshHost, spare: &SshHost) -> Result<PathBuf> {
    let host = |name: &str, h: &SshHost| {
        serde_json::json!({
            "name": name, "ssh": format!("127.0.0.1:{}", h.port), "user": current_user(),
            "key_file": h.client_key, "host_key": {"known_hosts": h.known_hosts},
            "state_dir": h.state_dir, "capacity": {"slots": 6},
        })
    };
    let provider = |name: &str, vendor: &str, h: &SshHost| {
        serde_json::json!({"name": name, "vendor": vendor,
            "adapter": {"kind": "bare-metal", "hosts": [host(&format!("{name}-1"), h)]}})
    };
    let workloads: Vec<serde_json::Value> = ["db", "api", "web"]
        .iter()
        .map(|w| {
            serde_json::json!({"name": w, "command": ["sleep", "600"],
            "placement": ["rack", "spare"]})
        })
        .collect();
    let config = serde_json::json!({
        "vendors": [{"name": "colo"}, {"name": "spare"}],
        "providers": [provider("rack", "colo", rack), provider("spare", "spare", spare)],
        "workloads": workloads,
        "policy": {"probe_interval": "1s", "probe_timeout": "1s", "confirmations": 2,
            "step_timeout": "60s", "step_attempts": 3},
        "cutover": {"kind": "endpoints-file", "path": dir.join("endpoints.json")},
        "state_dir": dir.join("state"),
    });
    let path = dir.join("rack.yaml");
    std::fs::write(&path, serde_yaml::to_string(&config)?)?;
    Ok(path)
}

fn sorted(mut pids: Vec<i32>) -> Vec<i32> {
    pids.sort_unstable();
    pids
}

/// With the daemon's copies running on a host, drills of the same config place their
/// own copies on that very host: a shadow drill removes exactly those, and the debris
/// of a drill killed halfway is removed by `lifeboat drill --cleanup` — and nothing of
/// production's, whose processes and placements stay as they were.
#[test]
fn drills_beside_the_daemon_leave_the_hosts_production_copies_alone() -> Result<()> {
    let (rack, spare) = (SshHost::start()?, SshHost::start()?);
    let dir = tempfile::tempdir()?;
    let config = rack_config(dir.path(), &rack, &spare)?;
    let bin = own_binary(dir.path());
    let mut daemon = Lifeboat::spawn(&bin, &["run"], &config, dir.path().join("run.log"))?;
    let placed = wait_all_on(&bin, &config, "rack", &daemon)?["placements"].clone();
    let production = sorted(rack.leftover_pids());
    assert_eq!(production.len(), 3, "{}", daemon.log_text());

    let mut shadow = Lifeboat::spawn(
        &bin,
        &["drill", "--mode", "shadow", "--lose", "colo"],
        &config,
        dir.path().join("shadow.log"),
    )?;
    let exit = shadow.wait(PATIENCE)?;
    assert!(exit.success(), "{exit:?}\n{}", shadow.log_text());
    assert_eq!(
        sorted(rack.leftover_pids()),
        production,
        "{}",
        shadow.log_text()
    );
    assert_eq!(
        spare.leftover_pids(),
        Vec::<i32>::new(),
        "{}",
        shadow.log_text()
    );
    assert_eq!(status(&bin, &config)?["placements"], placed);

    let mut killed = Lifeboat::spawn(
        &bin,
        &["drill", "--mode", "shadow", "--lose", "colo"],
        &config,
        dir.path().join("killed.log"),
    )?;
    let start = Instant::now();
    while rack.leftover_pids().len() < 6 {
        ensure!(
            start.elapsed() < PATIENCE,
            "the drill's own copies never ran beside production:\n{}",
            killed.log_text()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    killed.child.kill()?;
    killed.child.wait()?;
    let debris = rack.leftover_pids().len() + spare.leftover_pids().len() - 3;
    assert!(debris >= 3, "the killed drill left its copies");

    let cleanup = lifeboat(&bin)
        .args(["drill", "--cleanup", "-c"])
        .arg(&config)
        .output()?;
    let said = String::from_utf8_lossy(&cleanup.stdout);
    assert!(
        cleanup.status.success(),
        "{said}{}",
        String::from_utf8_lossy(&cleanup.stderr)
    );
    assert!(said.contains("retired"), "{said}");
    assert_eq!(sorted(rack.leftover_pids()), production, "{said}");
    assert_eq!(spare.leftover_pids(), Vec::<i32>::new(), "{said}");
    assert_eq!(status(&bin, &config)?["placements"], placed);

    let exit = daemon.stop()?;
    assert!(exit.success(), "{exit:?}\n{}", daemon.log_text());
    Ok(())
}
