//! How fast the executor moves many workloads when the providers answer instantly: the
//! controller's own cost (journal writes with fsync, scheduling, bookkeeping).
//!
//! `cargo bench --bench execute [-- WORKLOADS]` prints moves per second and journal
//! lines per second for one evacuation between two simulated providers.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use async_trait::async_trait;
use lifeboat::config::{PolicyConfig, WorkloadConfig};
use lifeboat::cutover::{Cutover, CutoverRequest, Resolved};
use lifeboat::execute::Executor;
use lifeboat::model::{Move, Plan, Step};
use lifeboat::store::Store;
use lifeboat_provider::{Generation, Provider};
use lifeboat_provider_sim::{SimConfig, SimProvider};

/// Accepts every switch: the bench measures the executor, not a backend.
struct NoCutover;

#[async_trait]
impl Cutover for NoCutover {
    async fn switch(&self, _: &CutoverRequest) -> anyhow::Result<()> {
        Ok(())
    }
    async fn resolve(&self, _: &str) -> anyhow::Result<Resolved> {
        Ok(Resolved {
            endpoint: None,
            ttl: None,
        })
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let count: usize = match std::env::args().nth(1).filter(|a| !a.starts_with('-')) {
        Some(n) => n.parse().context("WORKLOADS must be a number")?,
        None => 200,
    };
    let workloads: Vec<WorkloadConfig> = (0..count)
        .map(|i| {
            serde_yaml::from_str(&format!(
                "name: w{i}\ncommand: [serve]\nport: 8080\nplacement: [a, b]\n"
            ))
        })
        .collect::<Result<_, _>>()?;
    let providers: BTreeMap<String, Arc<dyn Provider>> = ["a", "b"]
        .into_iter()
        .map(|n| {
            let p: Arc<dyn Provider> = Arc::new(SimProvider::new(n, SimConfig::default()));
            (n.to_owned(), p)
        })
        .collect();
    let dir = tempfile::tempdir()?;
    let store = Arc::new(Store::open(dir.path())?);
    let policy = PolicyConfig {
        parallelism: 32,
        per_provider_parallelism: 32,
        ..PolicyConfig::default()
    };
    let exec = Executor::new(
        providers,
        Arc::new(NoCutover),
        store.clone(),
        policy,
        &workloads,
    );
    let plan = Plan {
        moves: workloads
            .iter()
            .map(|w| Move {
                workload: w.name.clone(),
                from: None,
                targets: vec!["b".into()],
                generation: Generation(1),
                wave: 0,
                deadline: None,
                steps: vec![Step::Deploy, Step::WaitHealthy, Step::Cutover],
            })
            .collect(),
        stranded: vec![],
        held: Vec::new(),
    };
    let start = Instant::now();
    let report = exec.execute(&plan).await?;
    let took = start.elapsed();
    anyhow::ensure!(report.all_moved(), "not every workload moved: {report:?}");
    let lines = store.journal(&report.evacuation)?.len();
    let per_sec = |n: usize| n as f64 / took.max(Duration::from_micros(1)).as_secs_f64();
    println!(
        "{count} moves in {took:.2?}: {:.0} moves/s, {lines} journal lines ({:.0} lines/s)",
        per_sec(count),
        per_sec(lines)
    );
    Ok(())
}
