//! The drill's independent prober: it reaches each workload the way a client would —
//! resolve the public name through the cutover backend (honouring the TTL like a caching
//! resolver), then request the endpoint with the workload's health check (the contract's
//! [`health::check`], as the adapters run it) — every 100 ms, and records what it saw. It knows
//! nothing of the controller's state, so the downtime it reports is the user's view.

use std::sync::Arc;
use std::time::Duration;

use lifeboat_provider::{Endpoint, HealthCheck, health};
use tokio::task::JoinHandle;
use tokio::time::{Instant, MissedTickBehavior};
use tokio_util::sync::CancellationToken;

use super::report::Window;
use crate::cutover::Cutover;

/// What the prober requests for one workload.
#[derive(Debug, Clone)]
pub struct ProbeTarget {
    /// The workload.
    pub workload: String,
    /// The name clients use.
    pub public_name: String,
    /// How to tell the endpoint answers (HTTP path, or TCP connect).
    pub check: HealthCheck,
}

/// Every workload of `config` with a public name, checked the way its health check
/// says.
pub fn targets(config: &crate::config::Config) -> Vec<ProbeTarget> {
    (config.workloads.iter())
        .filter_map(|w| {
            Some(ProbeTarget {
                workload: w.name.clone(),
                public_name: w.public_name.clone()?,
                check: w.health.clone().unwrap_or(HealthCheck::Tcp),
            })
        })
        .collect()
}

/// One observation: `at` relative to the drill's zero, and whether it succeeded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sample {
    /// Milliseconds after fault injection; negative before it.
    pub at_ms: i64,
    /// The endpoint answered.
    pub ok: bool,
}

/// Everything the prober saw of one workload.
#[derive(Debug, Clone, Default)]
pub struct ProbeLog {
    /// Samples in time order.
    pub samples: Vec<Sample>,
    /// The largest TTL the name was served with (DNS), if any.
    pub ttl: Option<Duration>,
}

/// Starts probing every target every `interval` until `stop` is cancelled; the handle
/// yields one log per target, in the order given.
pub fn spawn(
    targets: Vec<ProbeTarget>,
    cutover: Arc<dyn Cutover>,
    interval: Duration,
    zero: Instant,
    stop: CancellationToken,
) -> JoinHandle<Vec<(String, ProbeLog)>> {
    tokio::spawn(async move {
        let tasks: Vec<_> = targets
            .into_iter()
            .map(|target| {
                let (cutover, stop) = (cutover.clone(), stop.clone());
                tokio::spawn(async move {
                    let log = probe_one(&target, cutover.as_ref(), interval, zero, stop).await;
                    (target.workload, log)
                })
            })
            .collect();
        let mut logs = Vec::with_capacity(tasks.len());
        for task in tasks {
            if let Ok(log) = task.await {
                logs.push(log);
            }
        }
        logs
    })
}

async fn probe_one(
    target: &ProbeTarget,
    cutover: &dyn Cutover,
    interval: Duration,
    zero: Instant,
    stop: CancellationToken,
) -> ProbeLog {
    let mut log = ProbeLog::default();
    let mut cached: Option<(Option<Endpoint>, Instant)> = None;
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(MissedTickBehavior::Skip);
    loop {
        tokio::select! {
            _ = stop.cancelled() => return log,
            _ = ticker.tick() => {}
        }
        let now = Instant::now();
        // A caching client keeps its answer until the TTL runs out; a name without a TTL
        // (endpoints file) is read afresh every time.
        let endpoint = match &cached {
            Some((endpoint, until)) if now < *until => endpoint.clone(),
            _ => match cutover.resolve(&target.public_name).await {
                Ok(resolved) => {
                    if let Some(ttl) = resolved.ttl {
                        log.ttl = log.ttl.max(Some(ttl));
                        cached = Some((resolved.endpoint.clone(), now + ttl));
                    }
                    resolved.endpoint
                }
                Err(_) => None,
            },
        };
        let ok = match endpoint {
            Some(endpoint) => health::check(&target.check, &endpoint, deadline(interval))
                .await
                .is_ok(),
            None => false,
        };
        log.samples.push(Sample {
            at_ms: millis_since(zero, now),
            ok,
        });
    }
}

/// How long one request may take before the prober counts it as down: its own
/// interval, so a slow answer shows as the outage a client would feel, but never less
/// than half a second, so a sub-second interval does not call a merely busy copy down.
/// Deliberately not the adapters' [`health::DEFAULT_TIMEOUT`]: this deadline is part of
/// what the drill measures.
fn deadline(interval: Duration) -> Duration {
    interval.max(Duration::from_millis(500))
}

fn millis_since(zero: Instant, at: Instant) -> i64 {
    if at >= zero {
        i64::try_from((at - zero).as_millis()).unwrap_or(i64::MAX)
    } else {
        -i64::try_from((zero - at).as_millis()).unwrap_or(i64::MAX)
    }
}

/// The outage windows in a sample series, from `from_ms` on: a window opens at the first
/// failed sample and closes at the next successful one (or at the last sample, if the
/// series ends down). Pure, so the arithmetic is tested without a network.
pub fn outages(samples: &[Sample], from_ms: i64) -> Vec<Window> {
    let mut windows = Vec::new();
    let mut open: Option<i64> = None;
    let clamp = |ms: i64| u64::try_from(ms.max(0)).unwrap_or(0);
    for s in samples.iter().filter(|s| s.at_ms >= from_ms) {
        match (s.ok, open) {
            (false, None) => open = Some(s.at_ms),
            (true, Some(start)) => {
                windows.push(Window {
                    start_ms: clamp(start),
                    end_ms: clamp(s.at_ms),
                });
                open = None;
            }
            _ => {}
        }
    }
    if let (Some(start), Some(last)) = (open, samples.last()) {
        windows.push(Window {
            start_ms: clamp(start),
            end_ms: clamp(last.at_ms),
        });
    }
    windows
}

/// Total time spent in `windows`, in milliseconds.
pub fn downtime_ms(windows: &[Window]) -> u64 {
    windows
        .iter()
        .map(|w| w.end_ms.saturating_sub(w.start_ms))
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn series(pattern: &str) -> Vec<Sample> {
        pattern
            .chars()
            .enumerate()
            .map(|(i, c)| Sample {
                at_ms: i as i64 * 100,
                ok: c == '+',
            })
            .collect()
    }

    #[test]
    fn one_outage_is_measured_from_first_failure_to_recovery() {
        let w = outages(&series("++---++"), 0);
        assert_eq!(
            w,
            vec![Window {
                start_ms: 200,
                end_ms: 500
            }]
        );
        assert_eq!(downtime_ms(&w), 300);
    }

    #[test]
    fn an_outage_still_open_at_the_end_runs_to_the_last_sample() {
        assert_eq!(
            outages(&series("+--"), 0),
            vec![Window {
                start_ms: 100,
                end_ms: 200
            }]
        );
    }

    #[test]
    fn samples_before_the_fault_do_not_count() {
        assert!(outages(&series("--++"), 200).is_empty());
    }

    #[test]
    fn a_clean_series_has_no_downtime() {
        assert_eq!(downtime_ms(&outages(&series("++++"), 0)), 0);
    }

    proptest! {
        #[test]
        fn downtime_never_exceeds_the_observed_span(pattern in "[+-]{0,200}") {
            let samples = series(&pattern);
            let span = samples.last().map_or(0, |s| s.at_ms as u64);
            let windows = outages(&samples, 0);
            prop_assert!(downtime_ms(&windows) <= span);
            // Windows are ordered and disjoint.
            for pair in windows.windows(2) {
                prop_assert!(pair[0].end_ms <= pair[1].start_ms);
            }
            // Every failed sample lies inside a window.
            for s in samples.iter().filter(|s| !s.ok) {
                let t = s.at_ms as u64;
                prop_assert!(windows.iter().any(|w| w.start_ms <= t && t <= w.end_ms));
            }
        }
    }
}
