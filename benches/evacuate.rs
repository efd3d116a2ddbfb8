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
//! Reported per run and in summary: wall time, journal rows written per second, the
//! peak resident memory of the timed part (`VmHWM`, reset before it through
//! `/proc/self/clear_refs`), and the wall time as a ratio to the evacuation's
//! critical path computed from the same parameters: `ceil(moves / usable parallelism)`
//! rounds of one move's unavoidable vendor time
//! (deploy call, time to healthy, the inspect call that sees it, the old copy's retire
//! call); see [`critical_path`]. Usable parallelism is the global bound, or the target
//! providers' bounds together when smaller. Health polling, the journal and the
//! cutover are the controller's own costs, so they count against it.
//!
//! Run: `cargo bench --no-default-features --bench evacuate` (figures in README.md);
//! `LIFEBOAT_BENCH_RUNS=N` sets the number of runs per size (default 3) and
//! `LIFEBOAT_BENCH_SIZES=100,1000,10000` the fleet sizes (the default). Under
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

/// Every simulated vendor call's latency.
const CALL: Duration = Duration::from_millis(20);
/// How long a new copy takes to become healthy after its deploy.
const TO_HEALTHY: Duration = Duration::from_millis(50);
/// Moves at once, in all and per provider.
const PARALLELISM: usize = 64;
const PER_PROVIDER: usize = 16;

/// Four vendors of four simulated providers; every workload starts at vendor `v0`.
fn fleet(workloads: usize) -> Fleet {
    let mut fleet = Fleet::new(4, 4, workloads);
    fleet.home_vendors = 1;
    fleet.headroom = None;
    fleet.adapter = format!(
        "{{ kind: sim, latency: {}ms, healthy_after: {}ms }}",
        CALL.as_millis(),
        TO_HEALTHY.as_millis()
    );
    fleet.tail = format!(
        "\npolicy:\n  parallelism: {PARALLELISM}\n  per_provider_parallelism: {PER_PROVIDER}\n  \
         step_timeout: 30s\n\nstate_dir: state\n"
    );
    fleet
}

/// The evacuation's critical path: no controller, however fast, finishes `plan` sooner
/// with these vendors and bounds. Every move needs one move's vendor time while holding
/// a permit, so `ceil(moves / usable parallelism)` rounds of it; and a later wave's
/// cutover comes after the earlier wave's, so each wave after the first adds at least
/// its old copies' retire call. (No more than that: a later wave's moves deploy and
/// become healthy while the earlier waves cut over, holding no permit while they wait.)
fn critical_path(plan: &lifeboat::model::Plan) -> Duration {
    let targets: std::collections::BTreeSet<&str> = (plan.moves.iter())
        .filter_map(|m| m.targets.first().map(String::as_str))
        .collect();
    let usable = PARALLELISM.min(targets.len().max(1) * PER_PROVIDER);
    let waves: std::collections::BTreeSet<u32> = plan.moves.iter().map(|m| m.wave).collect();
    // deploy, time to healthy, the inspect that sees it, the old copy's retire.
    let per_move = CALL + TO_HEALTHY + CALL + CALL;
    let rounds = u32::try_from(plan.moves.len().div_ceil(usable)).unwrap_or(u32::MAX);
    let later_waves = u32::try_from(waves.len().saturating_sub(1)).unwrap_or(u32::MAX);
    (per_move * rounds).max(per_move + CALL * later_waves)
}

/// What one evacuation measured.
#[derive(Debug, Clone)]
struct Run {
    elapsed: Duration,
    bound: Duration,
    moves: usize,
    journal_rows: usize,
    peak_rss_kib: Option<u64>,
}

impl Run {
    fn rows_per_second(&self) -> f64 {
        self.journal_rows as f64 / self.elapsed.as_secs_f64()
    }

    fn ratio(&self) -> f64 {
        self.elapsed.as_secs_f64() / self.bound.as_secs_f64()
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
    let bound = critical_path(&plan);
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
        bound,
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
        "{} moves in {:.2} s ({:.2} x its critical path of {:.2} s), {} journal rows \
         ({:.0} rows/s), peak RSS {rss}",
        run.moves,
        run.elapsed.as_secs_f64(),
        run.ratio(),
        run.bound.as_secs_f64(),
        run.journal_rows,
        run.rows_per_second()
    )
}

fn main() {
    let test = common::test_mode();
    let sizes: Vec<usize> = if test {
        vec![40]
    } else {
        match std::env::var("LIFEBOAT_BENCH_SIZES") {
            Ok(v) => (v.split(','))
                .map(|n| {
                    n.trim()
                        .parse()
                        .expect("LIFEBOAT_BENCH_SIZES: numbers, by commas")
                })
                .collect(),
            Err(_) => vec![100, 1_000, 10_000],
        }
    };
    let runs = if test {
        1
    } else {
        common::env_count("LIFEBOAT_BENCH_RUNS", 3)
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("building the tokio runtime");
    let mut table = Vec::new();
    for workloads in sizes {
        let fleet = fleet(workloads);
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
        let median = done[done.len() / 2].clone();
        let peak = done.iter().filter_map(|r| r.peak_rss_kib).max();
        table.push((
            workloads,
            done[0].clone(),
            median,
            done[done.len() - 1].clone(),
            peak,
        ));
    }
    println!();
    println!(
        "| workloads | critical path | wall time min / median / max | wall / bound (median) | target | journal rows/s | peak RSS |"
    );
    println!("| ---: | ---: | --- | ---: | ---: | ---: | ---: |");
    for (workloads, min, median, max, peak) in &table {
        println!(
            "| {workloads} | {:.2} s | {:.2} s / {:.2} s / {:.2} s | {:.2} | <= 1.10{} | {:.0} | {} |",
            median.bound.as_secs_f64(),
            min.elapsed.as_secs_f64(),
            median.elapsed.as_secs_f64(),
            max.elapsed.as_secs_f64(),
            median.ratio(),
            if median.ratio() <= 1.1 {
                ""
            } else {
                " (missed)"
            },
            median.rows_per_second(),
            peak.map_or("unknown".to_owned(), |k| format!(
                "{:.1} MiB",
                k as f64 / 1024.0
            )),
        );
    }
}
