//! The executor at scale: a whole vendor is fenced and 1,000 workloads leave it for
//! three other vendors, through the real pipeline (fence → `conditions` → `decide` →
//! `plan` → `Executor::execute`) with `sim` providers that take 20 ms per call and whose
//! copies become healthy 50 ms after deploy. Policy: 64 moves at once, 16 per provider.
//! The SQLite store and the endpoints file live in a fresh temporary folder on the
//! target directory's disk (not a tmpfs), so every journal commit pays its fsync as it
//! would in production.
//!
//! Each sample is one evacuation; its set-up (building providers, the store, and the
//! first placement of every workload on the vendor about to be lost) is not timed.
//! Reported: wall time per evacuation, journal rows written per second (criterion's
//! throughput), and the peak resident memory of the timed part (`VmHWM`, reset before
//! it through `/proc/self/clear_refs`).
//!
//! Run: `cargo bench --no-default-features --bench evacuate` (figures in README.md).
//! Under `cargo test --benches` it runs once with 40 workloads, as a smoke test.
//! Why criterion: see `benches/core.rs`.

mod common;

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, ensure};
use criterion::{
    BenchmarkId, Criterion, SamplingMode, Throughput, criterion_group, criterion_main,
};
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

fn evacuate_vendor(c: &mut Criterion) {
    let workloads = if common::test_mode() { 40 } else { 1_000 };
    let fleet = fleet(workloads);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("building the tokio runtime");
    // One run first: its journal size is the throughput unit (the same every run, as
    // nothing fails), and a failure shows here with its reason.
    let probe = match runtime.block_on(evacuate_once(&fleet)) {
        Ok(run) => run,
        Err(error) => panic!("the evacuation failed: {error:#}"),
    };
    eprintln!("evacuate (first run): {}", describe(&probe));

    let runs = RefCell::new(Vec::new());
    let mut group = c.benchmark_group("executor/evacuate-vendor");
    group
        .sampling_mode(SamplingMode::Flat)
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(40))
        .throughput(Throughput::Elements(probe.journal_rows as u64));
    group.bench_function(BenchmarkId::from_parameter(workloads), |b| {
        b.iter_custom(|iters| {
            let mut timed = Duration::ZERO;
            for _ in 0..iters {
                let run = match runtime.block_on(evacuate_once(&fleet)) {
                    Ok(run) => run,
                    Err(error) => panic!("the evacuation failed: {error:#}"),
                };
                timed += run.elapsed;
                runs.borrow_mut().push(run);
            }
            timed
        })
    });
    group.finish();

    let runs = runs.into_inner();
    let mut secs: Vec<f64> = runs.iter().map(|r| r.elapsed.as_secs_f64()).collect();
    secs.sort_by(f64::total_cmp);
    let peak = runs.iter().filter_map(|r| r.peak_rss_kib).max();
    if let (Some(min), Some(max)) = (secs.first(), secs.last()) {
        let median = secs[secs.len() / 2];
        eprintln!(
            "evacuate: {} runs of {workloads} moves: wall time min {min:.2} s, median \
             {median:.2} s, max {max:.2} s; journal {:.0} rows/s at the median; \
             peak RSS of the timed part {}",
            runs.len(),
            probe.journal_rows as f64 / median,
            peak.map_or("unknown".to_owned(), |k| format!(
                "{:.1} MiB",
                k as f64 / 1024.0
            )),
        );
    }
}

criterion_group!(benches, evacuate_vendor);
criterion_main!(benches);
