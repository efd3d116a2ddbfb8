//! The executor at scale: a whole vendor is fenced and 1,000 workloads leave it for
//! three other vendors, through the real pipeline (fence → `conditions` → `decide` →
//! `plan` → `Executor::execute`) with `sim` providers that take 20 ms per call and whose
//! copies become healthy 50 ms after deploy. Policy: 64 moves at once, 16 per provider.
//! The SQLite store and the endpoints file live in a fresh temporary folder on the
//! target directory's disk (not a tmpfs), so every journal commit pays its fsync as it
//! would in production.
//!
//! Each run is one evacuation; its set-up (building providers, the store, and the
//! first placement of every workload on the vendor about to be lost) is not timed.
//! Reported per run and in summary: wall time, journal rows written per second, and the
//! peak resident memory of the timed part (`VmHWM`, reset before it through
//! `/proc/self/clear_refs`).
//!
//! Run: `cargo bench --no-default-features --bench evacuate` (figures in README.md);
//! `LIFEBOAT_BENCH_RUNS=N` sets the number of runs (default 3). Under
//! `cargo test --benches` it runs once with 40 workloads, as a smoke test.
//!
//! Not criterion, unlike the other benchmarks: one run here takes the better part of a
//! minute (placement and evacuation), and criterion insists on at least ten samples plus
//! a warm-up, which is a quarter of an hour on a shared two-core machine. A scenario this
//! long is measured by a few runs and their spread.

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, ensure};
use jiff::Timestamp;
use lifeboat::execute::{ExecOptions, Executor};
use lifeboat::model::{Notice, Scope};
use lifeboat::store::Store;
use lifeboat::{conditions, controller, cutover, decide, plan, providers};

use common::Fleet;

/// Time between two `inspect` calls while a new copy starts. The daemon's default
/// (500 ms) would make every move wait for the poll rather than for the controller;
/// 25 ms keeps the controller's own costs (journal, cutover, scheduling) visible.
const HEALTH_POLL: Duration = Duration::from_millis(25);

/// Four vendors of four simulated providers; every workload starts at vendor `v0`.
fn fleet(workloads: usize) -> Fleet {
    let mut fleet = Fleet::new(4, 4, workloads);
    fleet.home_vendors = 1;
    fleet.headroom = None;
    fleet.adapter = "{ kind: sim, latency: 20ms, healthy_after: 50ms }".to_owned();
    fleet.tail = "\npolicy:\n  parallelism: 64\n  per_provider_parallelism: 16\n  \
                  step_timeout: 30s\n\nstate_dir: state\n"
        .to_owned();
    fleet
}

/// What one evacuation measured.
#[derive(Debug, Clone)]
struct Run {
    elapsed: Duration,
    moves: usize,
    journal_rows: usize,
    peak_rss_kib: Option<u64>,
}

impl Run {
    fn rows_per_second(&self) -> f64 {
        self.journal_rows as f64 / self.elapsed.as_secs_f64()
    }
}

/// Places every workload on `v0` (untimed), then fences `v0` and times the evacuation.
async fn evacuate_once(fleet: &Fleet) -> anyhow::Result<Run> {
    let dir = tempfile::Builder::new()
        .prefix("lifeboat-evacuate-")
        .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
        .context("creating the bench folder")?;
    let config = fleet.config(&dir.path().join("lifeboat.yaml"));
    let store = Arc::new(Store::open(&config.state_dir)?);
    let executor = Executor::new(
        lifeboat_provider::Owner::installation("bench"),
        providers::build_all(&config).await?,
        cutover::build(&config)?,
        store.clone(),
        config.policy.clone(),
        &controller::workloads(&config),
    )
    .with_options(ExecOptions {
        health_poll: HEALTH_POLL,
        ..ExecOptions::default()
    });

    let first = plan::plan(&config, &[], &[], Timestamp::now());
    let placed = executor.execute(&first).await?;
    ensure!(placed.all_moved(), "the first placement failed: {placed:?}");

    let peak_reset = common::reset_peak_rss();
    let start = Instant::now();
    let now = Timestamp::now();
    let fence = Notice {
        scope: Scope::Vendor("v0".into()),
        deadline: None,
        reason: "bench: the vendor is gone".into(),
    };
    let conditions = conditions::conditions(&config, &BTreeMap::new(), &[fence], now);
    let decision = decide::decide(&config, &conditions, now);
    let placements: Vec<_> = store.placements()?.into_values().collect();
    let plan = plan::plan(&config, &placements, &decision.departures, now);
    let report = executor.execute(&plan).await?;
    let elapsed = start.elapsed();
    let peak_rss_kib = common::peak_rss_kib().filter(|_| peak_reset);

    ensure!(
        report.all_moved() && report.moves.len() == fleet.workloads,
        "not every workload moved: {} moves, {} stranded",
        report.moves.len(),
        report.stranded.len()
    );
    Ok(Run {
        elapsed,
        moves: report.moves.len(),
        journal_rows: store.journal(&report.evacuation)?.len(),
        peak_rss_kib,
    })
}

fn describe(run: &Run) -> String {
    let rss = run.peak_rss_kib.map_or("unknown".to_owned(), |k| {
        format!("{:.1} MiB", k as f64 / 1024.0)
    });
    format!(
        "{} moves in {:.2} s, {} journal rows ({:.0} rows/s), peak RSS {rss}",
        run.moves,
        run.elapsed.as_secs_f64(),
        run.journal_rows,
        run.rows_per_second()
    )
}

fn main() {
    let test = common::test_mode();
    let workloads = if test { 40 } else { 1_000 };
    let runs = if test {
        1
    } else {
        match std::env::var("LIFEBOAT_BENCH_RUNS").map(|v| v.parse::<usize>()) {
            Ok(Ok(n)) if n > 0 => n,
            _ => 3,
        }
    };
    let fleet = fleet(workloads);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("building the tokio runtime");
    let mut done = Vec::new();
    for n in 1..=runs {
        let run = match runtime.block_on(evacuate_once(&fleet)) {
            Ok(run) => run,
            Err(error) => panic!("the evacuation failed: {error:#}"),
        };
        println!(
            "evacuate-vendor/{workloads} run {n}/{runs}: {}",
            describe(&run)
        );
        done.push(run);
    }
    done.sort_by_key(|r| r.elapsed);
    let median = &done[done.len() / 2];
    let peak = done.iter().filter_map(|r| r.peak_rss_kib).max();
    println!(
        "evacuate-vendor/{workloads}: wall time min {:.2} s, median {:.2} s, max {:.2} s; \
         journal {:.0} rows/s at the median; peak RSS {}",
        done[0].elapsed.as_secs_f64(),
        median.elapsed.as_secs_f64(),
        done[done.len() - 1].elapsed.as_secs_f64(),
        median.rows_per_second(),
        peak.map_or("unknown".to_owned(), |k| format!(
            "{:.1} MiB",
            k as f64 / 1024.0
        )),
    );
}
