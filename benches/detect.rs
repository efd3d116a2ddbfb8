//! Detection against its limit: the daemon's own loop (`daemon::reconcile`, in this
//! process) watches a `sim` provider whose account is suspended at a random moment of
//! the probe cycle; the time from the fault to the decision (the provider's condition
//! stored as `suspended`, which leaves it in the same round) is divided by the fastest
//! any controller probing at that pace could be sure: probe interval × confirmations.
//! Many trials, each a fresh daemon; reported: mean, median and largest ratio.
//!
//! Run: `cargo bench --no-default-features --bench detect` (figures in README.md);
//! `LIFEBOAT_BENCH_TRIALS=N` (default 40). Under `cargo test --benches` it runs 2
//! trials, as a smoke test.
//!
//! No harness: a trial is a daemon's life of about a second, and the figure is a
//! distribution over the probe phase, not a mean over samples of one thing.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use jiff::Timestamp;
use lifeboat::api::Heartbeat;
use lifeboat::control::Control;
use lifeboat::daemon::{self, Parts, Standalone};
use lifeboat::execute::Executor;
use lifeboat::metrics::Metrics;
use lifeboat::model::Condition;
use lifeboat::notify::Notifier;
use lifeboat::providers::BuildOptions;
use lifeboat::store::Store;
use lifeboat::{controller, cutover, plan};
use lifeboat_provider::{ErrorClass, Op, Provider};
use lifeboat_provider_sim::{SimConfig, SimProvider};
use rand::RngExt;
use tokio_util::sync::CancellationToken;

const INTERVAL: Duration = Duration::from_millis(200);
const CONFIRMATIONS: u32 = 2;
/// How often the bench looks at the store: small next to the limit (400 ms).
const LOOK_EVERY: Duration = Duration::from_millis(2);

fn config_text() -> String {
    format!(
        "
vendors: [{{name: cloud, accounts: [prod]}}, {{name: metal}}]
providers:
  - {{ name: cloud-1, vendor: cloud, account: prod, adapter: {{ kind: sim }} }}
  - {{ name: metal-1, vendor: metal, adapter: {{ kind: sim }} }}
workloads:
  - {{ name: api, command: [api], placement: [cloud-1, metal-1] }}
cutover: {{ kind: endpoints-file, path: endpoints.json }}
policy:
  probe_interval: {}ms
  probe_timeout: 100ms
  confirmations: {CONFIRMATIONS}
api: {{ listen: '127.0.0.1:0' }}
state_dir: state
",
        INTERVAL.as_millis()
    )
}

/// One trial: the time from the fault to the decision.
async fn trial() -> anyhow::Result<Duration> {
    let dir = tempfile::Builder::new()
        .prefix("lifeboat-detect-")
        .tempdir_in(env!("CARGO_TARGET_TMPDIR"))?;
    let config = lifeboat::config::parse(&config_text(), &dir.path().join("lifeboat.yaml"))
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let config = Arc::new(config);
    let cloud = Arc::new(SimProvider::new("cloud-1", SimConfig::default()));
    let metal = Arc::new(SimProvider::new("metal-1", SimConfig::default()));
    let suspend = cloud.handle();
    let providers: std::collections::BTreeMap<String, Arc<dyn Provider>> = [
        ("cloud-1".to_owned(), cloud as Arc<dyn Provider>),
        ("metal-1".to_owned(), metal as Arc<dyn Provider>),
    ]
    .into();
    let store = Arc::new(Store::open(&config.state_dir)?);
    let control = Control::new(store.clone())?;
    let executor = Executor::new(
        lifeboat_provider::Owner::installation("bench"),
        providers.clone(),
        cutover::build(&config)?,
        store.clone(),
        config.policy.clone(),
        &controller::workloads(&config),
    );
    let first = plan::plan(&config, &[], &[], Timestamp::now());
    anyhow::ensure!(
        executor.execute(&first).await?.all_moved(),
        "the first placement failed"
    );
    let parts = Parts {
        config,
        store: store.clone(),
        providers,
        executor,
        control,
        metrics: Arc::new(Metrics::new()),
        heartbeat: Arc::new(Heartbeat::default()),
        notifier: Notifier::none(),
    };
    let stop = CancellationToken::new();
    let task = tokio::spawn({
        let stop = stop.clone();
        async move { daemon::reconcile(parts, &BuildOptions::default(), &mut Standalone, &stop).await }
    });
    let condition = |store: &Store| -> anyhow::Result<Option<Condition>> {
        Ok(store.conditions()?.remove("cloud-1").map(|r| r.condition))
    };
    // The first round has run; the fault comes at a random moment of the cycle after it.
    while !matches!(condition(&store)?, Some(Condition::Healthy)) {
        tokio::time::sleep(LOOK_EVERY).await;
    }
    let phase = INTERVAL.mul_f64(rand::rng().random_range(0.0..1.0));
    tokio::time::sleep(phase).await;
    let fault = Instant::now();
    suspend.set_fault(ErrorClass::AccountSuspended, &[Op::Probe]);
    let limit = fault + Duration::from_secs(30);
    let detected = loop {
        if matches!(condition(&store)?, Some(Condition::Suspended { .. })) {
            break fault.elapsed();
        }
        anyhow::ensure!(Instant::now() < limit, "no decision within 30 s");
        tokio::time::sleep(LOOK_EVERY).await;
    };
    stop.cancel();
    task.await.context("the daemon task")??;
    Ok(detected)
}

fn main() {
    let trials = if common::test_mode() {
        2
    } else {
        common::env_count("LIFEBOAT_BENCH_TRIALS", 40)
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("building the tokio runtime");
    let bound = INTERVAL * CONFIRMATIONS;
    let mut ratios: Vec<f64> = (0..trials)
        .map(|_| match runtime.block_on(trial()) {
            Ok(d) => d.as_secs_f64() / bound.as_secs_f64(),
            Err(e) => panic!("a detection trial failed: {e:#}"),
        })
        .collect();
    ratios.sort_by(f64::total_cmp);
    let mean = ratios.iter().sum::<f64>() / ratios.len() as f64;
    let (median, max) = (ratios[ratios.len() / 2], ratios[ratios.len() - 1]);
    println!(
        "detect/suspension: {trials} trials, probe every {} ms x {CONFIRMATIONS} confirmations \
         (limit {} ms): time to the decision / limit: mean {mean:.2}, median {median:.2}, \
         min {:.2}, max {max:.2}",
        INTERVAL.as_millis(),
        bound.as_millis(),
        ratios[0],
    );
    println!(
        "| detection | suspension at a random moment of the cycle, {trials} trials | mean {mean:.2} \
         (target <= 1.10{}), max {max:.2} (target <= 1.50{}) |",
        if mean <= 1.1 { "" } else { ", missed" },
        if max <= 1.5 { "" } else { ", missed" },
    );
}
