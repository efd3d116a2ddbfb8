//! Reading `lifeboat.yaml` at scale: parsing and validating a 1,000-workload file
//! (100 providers at 10 vendors), as `lifeboat validate` and every start of the daemon
//! do; and the same file with ten mistakes, each reported with its line and column.
//!
//! Run: `cargo bench --no-default-features --bench config` (figures in README.md).
//! Why criterion: see `benches/core.rs`.

mod common;

use std::hint::black_box;
use std::path::Path;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};

use common::Fleet;

fn parse_and_validate(c: &mut Criterion) {
    let fleet = Fleet::new(10, 10, 1_000);
    let text = fleet.yaml();
    let source = Path::new("/bench/lifeboat.yaml");
    // Sanity: the file is valid, so the benchmark measures the success path.
    let config = fleet.config(source);
    eprintln!(
        "config: {} bytes, {} lines, {} providers, {} workloads",
        text.len(),
        text.lines().count(),
        config.providers.len(),
        config.workloads.len()
    );
    let broken = break_some(&text);
    let findings = match lifeboat::config::parse(&broken, source) {
        Ok(_) => panic!("the broken file validates"),
        Err(error) => error.to_string(),
    };
    eprintln!("config with mistakes, findings:\n{findings}");

    let mut group = c.benchmark_group("config/parse+validate");
    group
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4))
        .sample_size(20)
        .throughput(Throughput::Bytes(text.len() as u64));
    group.bench_function(BenchmarkId::new("valid", fleet.workloads), |b| {
        b.iter(|| lifeboat::config::parse(black_box(&text), source))
    });
    group.bench_function(BenchmarkId::new("10-mistakes", fleet.workloads), |b| {
        b.iter(|| lifeboat::config::parse(black_box(&broken), source))
    });
    group.finish();
}

/// Renames the dependency of every 80th workload that has one (800 have one) to a name
/// no workload has, so validation reports and locates ten findings.
fn break_some(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut seen = 0;
    for line in text.split_inclusive('\n') {
        if line.trim_start().starts_with("depends_on: [") {
            seen += 1;
            if seen % 80 == 0 {
                out.push_str(&line.replace("[w", "[missing-w"));
                continue;
            }
        }
        out.push_str(line);
    }
    out
}

criterion_group!(benches, parse_and_validate);
criterion_main!(benches);
