//! Probing: the thin async edge that turns providers' answers into [`Signal`]s for the
//! pure core. Every provider is probed concurrently, each under the policy's timeout,
//! each in its own task so a misbehaving adapter (a hang, even a panic) costs only its
//! own signal.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use lifeboat_provider::{ErrorClass, ProbeReport, Provider};

use crate::model::{Signal, SignalKind};

/// The result of probing one provider: the signal for the core, and the adapter's report
/// when the probe succeeded (capacity, lost deployments).
#[derive(Debug, Clone)]
pub struct ProbeResult {
    /// What the core folds into the provider's health.
    pub signal: Signal,
    /// The adapter's report, when the probe succeeded.
    pub report: Option<ProbeReport>,
    /// The adapter's message when it failed (free of secrets by the contract), for logs.
    pub error: Option<String>,
    /// How long the probe took (up to the timeout).
    pub latency: Duration,
}

/// Probes every provider once and returns one result per provider, in name order.
/// `now` stamps the signals: the caller owns the clock.
pub async fn probe_all(
    providers: &BTreeMap<String, Arc<dyn Provider>>,
    timeout: Duration,
    now: impl Fn() -> Timestamp,
) -> Vec<ProbeResult> {
    let tasks: Vec<_> = providers
        .iter()
        .map(|(name, provider)| {
            let provider = provider.clone();
            (
                name.clone(),
                tokio::spawn(async move {
                    let start = tokio::time::Instant::now();
                    let answer = tokio::time::timeout(timeout, provider.probe()).await;
                    (answer, start.elapsed())
                }),
            )
        })
        .collect();
    let mut results = Vec::with_capacity(tasks.len());
    for (name, task) in tasks {
        let (answer, latency) = match task.await {
            Ok((answer, latency)) => (Ok(answer), latency),
            Err(join) => (Err(join), timeout),
        };
        let (kind, report, error) = match answer {
            Ok(Ok(Ok(report))) => (
                SignalKind::ProbeOk {
                    degraded: report.degraded.clone(),
                },
                Some(report),
                None,
            ),
            Ok(Ok(Err(e))) => (
                SignalKind::ProbeFailed {
                    class: e.class,
                    code: e.code.clone(),
                },
                None,
                Some(e.to_string()),
            ),
            Ok(Err(_elapsed)) => (
                SignalKind::ProbeFailed {
                    class: ErrorClass::Timeout,
                    code: None,
                },
                None,
                Some(format!("probe did not answer within {timeout:?}")),
            ),
            // A panicking adapter is a bug in the adapter, not news about the vendor.
            Err(join) => (
                SignalKind::ProbeFailed {
                    class: ErrorClass::Internal,
                    code: None,
                },
                None,
                Some(format!("probe task failed: {join}")),
            ),
        };
        results.push(ProbeResult {
            signal: Signal {
                provider: name,
                at: now(),
                kind,
            },
            report,
            error,
            latency,
        });
    }
    results
}
