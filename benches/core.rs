//! The pure core at scale: `plan()` for a vendor-wide departure over 1,000 and 10,000
//! workloads (100 providers at 10 vendors, with capacities), and `conditions()` +
//! `decide()` for 1,000 providers.
//!
//! Run: `cargo bench --no-default-features --bench core` (figures in README.md).
//!
//! The harness is criterion (0.8): the most used Rust benchmark harness, kept by the
//! criterion-rs organisation, with statistics over samples, change detection between
//! runs, per-element throughput, and a `cargo test --benches` mode that runs each
//! benchmark once, so the benchmarks cannot rot unnoticed. divan (0.1) has a lighter
//! API but is still pre-1.0 with one maintainer, and compares no runs. (The executor
//! benchmark, `benches/evacuate.rs`, is a minute-long scenario and says why it does
//! without a harness.)

mod common;

use std::collections::BTreeMap;
use std::hint::black_box;
use std::path::Path;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use jiff::{SignedDuration, Timestamp};
use lifeboat::conditions::{self, Health};
use lifeboat::config::Config;
use lifeboat::decide;
use lifeboat::model::{Account, Notice, Placement, Scope, Signal, SignalKind};
use lifeboat::plan;
use lifeboat_provider::{DeploymentRef, ErrorClass, Generation};

use common::Fleet;

/// The fleet of the `plan` benchmark: 10 vendors × 10 providers, capacity 10 % above
/// the average load, every workload placed at home.
fn plan_input(workloads: usize) -> (Config, Vec<Placement>, Timestamp) {
    let mut fleet = Fleet::new(10, 10, workloads);
    fleet.headroom = Some(1.1);
    let config = fleet.config(Path::new("/bench/lifeboat.yaml"));
    let now = Timestamp::now();
    let since = now - SignedDuration::from_hours(24);
    let placements = (0..workloads)
        .map(|i| {
            let workload = common::workload_name(i);
            Placement {
                deployment: Some(DeploymentRef {
                    handle: format!("{workload}-g1"),
                    workload: workload.clone(),
                    generation: Generation(1),
                    endpoint: None,
                    owner: None,
                }),
                workload,
                provider: fleet.home(i),
                generation: Generation(1),
                since,
            }
        })
        .collect();
    (config, placements, now)
}

fn plan_vendor_departure(c: &mut Criterion) {
    let mut group = c.benchmark_group("plan/vendor-departure");
    group
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4))
        .sample_size(20);
    for workloads in [1_000, 10_000] {
        let (config, placements, now) = plan_input(workloads);
        // The departures come from the real pipeline: a fence on vendor v0.
        let fence = Notice {
            scope: Scope::Vendor("v0".into()),
            deadline: None,
            reason: "bench".into(),
        };
        let conds = conditions::conditions(&config, &BTreeMap::new(), &[fence], now);
        let decision = decide::decide(&config, &conds, now);
        let sample = plan::plan(&config, &placements, &decision.departures, now);
        eprintln!(
            "plan {workloads} workloads, {} departures: {} moves ({} waves), {} stranded",
            decision.departures.len(),
            sample.moves.len(),
            sample.moves.iter().map(|m| m.wave + 1).max().unwrap_or(0),
            sample.stranded.len(),
        );
        group.throughput(Throughput::Elements(workloads as u64));
        group.bench_function(BenchmarkId::from_parameter(workloads), |b| {
            b.iter(|| {
                plan::plan(
                    black_box(&config),
                    black_box(&placements),
                    black_box(&decision.departures),
                    now,
                )
            })
        });
    }
    group.finish();
}

/// 1,000 providers (50 vendors × 20) with a realistic mix of memories: most clean, some
/// throttled, some failing past the grace period, some with a confirmed account loss;
/// plus a notice on one vendor and a fence on one account.
fn conditions_input() -> (Config, BTreeMap<String, Health>, Vec<Notice>, Timestamp) {
    let fleet = Fleet::new(50, 20, 1_000);
    let config = fleet.config(Path::new("/bench/lifeboat.yaml"));
    let now = Timestamp::now();
    let minutes_ago = |m: i64| now - SignedDuration::from_mins(m);
    let mut healths = BTreeMap::new();
    for (n, p) in config.providers.iter().enumerate() {
        let failure = |class| SignalKind::ProbeFailed { class, code: None };
        let kinds: Vec<(i64, SignalKind)> = match n % 20 {
            // A confirmed account loss (two probes) on one provider of some accounts.
            0 if n % 100 == 0 => vec![
                (2, failure(ErrorClass::AccountSuspended)),
                (1, failure(ErrorClass::AccountSuspended)),
            ],
            1 => vec![(1, failure(ErrorClass::Throttled))],
            2 => vec![
                (10, failure(ErrorClass::Timeout)),
                (1, failure(ErrorClass::Timeout)),
            ],
            _ => vec![(1, SignalKind::ProbeOk { degraded: None })],
        };
        let signals: Vec<Signal> = kinds
            .into_iter()
            .map(|(m, kind)| Signal {
                provider: p.name.clone(),
                at: minutes_ago(m),
                kind,
            })
            .collect();
        healths.insert(
            p.name.clone(),
            conditions::observe_all(&signals, &config.policy),
        );
    }
    let notices = vec![
        Notice {
            scope: Scope::Vendor("v7".into()),
            deadline: Some(now + SignedDuration::from_hours(20)),
            reason: "terms of service review".into(),
        },
        Notice {
            scope: Scope::Account(Account::new("v9", Some("spare"))),
            deadline: None,
            reason: "operator".into(),
        },
    ];
    (config, healths, notices, now)
}

fn conditions_and_decide(c: &mut Criterion) {
    let (config, healths, notices, now) = conditions_input();
    let conds = conditions::conditions(&config, &healths, &notices, now);
    let decision = decide::decide(&config, &conds, now);
    eprintln!(
        "conditions+decide, {} providers: {} departures, {} alerts",
        config.providers.len(),
        decision.departures.len(),
        decision.alerts.len()
    );
    let mut group = c.benchmark_group("conditions+decide");
    group
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4))
        .sample_size(20)
        .throughput(Throughput::Elements(config.providers.len() as u64));
    group.bench_function(BenchmarkId::from_parameter(config.providers.len()), |b| {
        b.iter(|| {
            let conds = conditions::conditions(
                black_box(&config),
                black_box(&healths),
                black_box(&notices),
                now,
            );
            decide::decide(&config, &conds, now)
        })
    });
    group.finish();
}

criterion_group!(benches, plan_vendor_departure, conditions_and_decide);
criterion_main!(benches);
