//! The daemon at rest: the real `lifeboat run` binary watching 100 `sim` providers (10
//! vendors × 10) and 100 workloads, probing every 10 s, for a minute after it placed
//! the workloads. Measured from `/proc`: the process's resident memory (sampled every
//! second, the largest sample, and `VmHWM` at the end) and the CPU time it used over
//! the minute, as a share of one core. What a team pays for lifeboat on a quiet day.
//!
//! Run: `cargo bench --no-default-features --bench idle` (figures in README.md);
//! `LIFEBOAT_BENCH_IDLE_SECS=N` sets the measured time (default 60). Under
//! `cargo test --benches` it watches for 3 s, as a smoke test.
//!
//! No harness: one sample is a minute of a separate process.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::Fleet;

/// Targets (issue: an idle daemon a team would not notice).
const RSS_TARGET_MIB: f64 = 40.0;
const CPU_TARGET: f64 = 0.01;

fn proc_status_kib(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// User plus system CPU time of `pid`, in clock ticks.
fn cpu_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces: the fields start after its closing paren.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    Some(fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?)
}

/// `/proc`'s CPU times are in USER_HZ, which Linux fixes at 100 for user space.
const TICKS_PER_SECOND: f64 = 100.0;

fn main() {
    let test = common::test_mode();
    let seconds = if test {
        3
    } else {
        common::env_count("LIFEBOAT_BENCH_IDLE_SECS", 60) as u64
    };
    let dir = tempfile::Builder::new()
        .prefix("lifeboat-idle-")
        .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
        .expect("creating the bench folder");
    let mut fleet = Fleet::new(10, 10, 100);
    fleet.headroom = None;
    fleet.tail = "\npolicy:\n  probe_interval: 10s\n\napi: { listen: '127.0.0.1:0' }\n\n\
                  state_dir: state\n"
        .to_owned();
    let config = dir.path().join("lifeboat.yaml");
    std::fs::write(&config, fleet.yaml()).expect("writing the config");
    let mut daemon = Command::new(env!("CARGO_BIN_EXE_lifeboat"))
        .args(["run", "-c"])
        .arg(&config)
        .current_dir(dir.path())
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.path().join("daemon.log")).expect("the daemon's log"))
        .spawn()
        .expect("starting lifeboat run");
    let pid = daemon.id();
    // The first rounds place every workload; the idle time starts once they are.
    let settled = wait_placed(
        &config,
        dir.path(),
        Duration::from_secs(if test { 20 } else { 120 }),
    );
    let start_ticks = cpu_ticks(pid).expect("reading the daemon's CPU time");
    let start = Instant::now();
    let mut largest_kib = 0;
    while start.elapsed() < Duration::from_secs(seconds) {
        std::thread::sleep(Duration::from_secs(1));
        largest_kib = largest_kib.max(proc_status_kib(pid, "VmRSS:").unwrap_or(0));
        if let Ok(Some(status)) = daemon.try_wait() {
            panic!("the daemon ended early: {status}");
        }
    }
    let used = (cpu_ticks(pid).unwrap_or(start_ticks) - start_ticks) as f64 / TICKS_PER_SECOND;
    let elapsed = start.elapsed().as_secs_f64();
    let hwm_kib = proc_status_kib(pid, "VmHWM:").unwrap_or(0);
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid as i32),
        nix::sys::signal::Signal::SIGTERM,
    );
    let _ = daemon.wait();

    let rss = largest_kib as f64 / 1024.0;
    let cpu = used / elapsed;
    println!(
        "idle-daemon/100 providers, probe every 10 s: placed {settled}; over {elapsed:.0} s: \
         resident memory up to {rss:.1} MiB (peak since start {:.1} MiB), CPU {used:.2} s = {:.2} % of one core",
        hwm_kib as f64 / 1024.0,
        cpu * 100.0
    );
    println!(
        "| idle daemon | 100 sim providers, 100 workloads, probe every 10 s, {elapsed:.0} s | \
         {rss:.1} MiB RSS (target < {RSS_TARGET_MIB:.0}{}), {:.2} % of a core (target < {:.0} %{}) |",
        if rss < RSS_TARGET_MIB { "" } else { ", missed" },
        cpu * 100.0,
        CPU_TARGET * 100.0,
        if cpu < CPU_TARGET { "" } else { ", missed" },
    );
}

/// Waits until `status` shows every workload placed; says how long it took.
fn wait_placed(config: &Path, dir: &Path, limit: Duration) -> String {
    let start = Instant::now();
    loop {
        let out = Command::new(env!("CARGO_BIN_EXE_lifeboat"))
            .args(["status", "--json", "-c"])
            .arg(config)
            .current_dir(dir)
            .output()
            .expect("running lifeboat status");
        if out.status.success()
            && let Ok(status) = serde_json::from_slice::<serde_json::Value>(&out.stdout)
            && status["placements"]
                .as_array()
                .is_some_and(|p| p.len() == 100)
        {
            return format!("100 workloads in {:.1} s", start.elapsed().as_secs_f64());
        }
        assert!(
            start.elapsed() < limit,
            "the daemon did not place the workloads in {limit:?}; status said:\n{}\n{}\nits log:\n{}",
            serde_json::from_slice::<serde_json::Value>(&out.stdout)
                .map(|s| format!(
                    "{} placements, in flight: {}",
                    s["placements"].as_array().map_or(0, Vec::len),
                    s["in_flight"]
                ))
                .unwrap_or_default(),
            String::from_utf8_lossy(&out.stderr),
            std::fs::read_to_string(dir.join("daemon.log")).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}
