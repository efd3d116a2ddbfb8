//! The daemon's Prometheus metrics, served at `/metrics` in the text exposition format
//! (through `prometheus-client`, the Prometheus project's own Rust client).
//!
//! The loop records what it sees; nothing here does I/O. Every family is listed in the
//! README with its labels; alert rules rely on their names, so renaming one is a
//! breaking change.

use std::sync::Mutex;
use std::sync::atomic::AtomicU64;

use jiff::Timestamp;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::{Metric, Registry};

use crate::execute::{ExecEvent, Report};
use crate::model::{Condition, Step};
use crate::probe::ProbeResult;
use crate::store::{NoticeRecord, Status};

/// A provider's condition, one series per possible condition.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ConditionLabels {
    provider: String,
    condition: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ProviderLabels {
    provider: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ProbeErrorLabels {
    provider: String,
    class: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StepLabels {
    step: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct WorkloadLabels {
    workload: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct NoticeLabels {
    notice: String,
    scope: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct NotificationLabels {
    webhook: String,
    outcome: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DeadlineLabels {
    deadline: String,
}

type FloatGauge = Gauge<f64, AtomicU64>;

/// Every metric of one daemon. Shared behind an `Arc`; all methods take `&self`.
pub struct Metrics {
    registry: Registry,
    condition: Family<ConditionLabels, Gauge>,
    probe_duration: Family<ProviderLabels, Histogram>,
    probe_errors: Family<ProbeErrorLabels, Counter>,
    evacuations_started: Counter,
    evacuations_finished: Counter,
    stranded: Family<WorkloadLabels, Counter>,
    step_duration: Family<StepLabels, Histogram>,
    rto: Family<WorkloadLabels, FloatGauge>,
    notices: Gauge,
    notice_seconds_left: Family<NoticeLabels, FloatGauge>,
    pending: Gauge,
    paused: Gauge,
    last_drill_success: Gauge,
    heartbeat: FloatGauge,
    deadline_at_risk: Family<DeadlineLabels, Gauge>,
    scheduled_start: Family<DeadlineLabels, FloatGauge>,
    estimated_finish: Family<DeadlineLabels, FloatGauge>,
    notifications: Family<NotificationLabels, Counter>,
    leader: Gauge,
    dataset_lag_seconds: Family<WorkloadLabels, FloatGauge>,
    dataset_lag_bytes: Family<WorkloadLabels, Gauge>,
    dataset_streaming: Family<WorkloadLabels, Gauge>,
    dataset_rpo_exceeded: Family<WorkloadLabels, Gauge>,
    /// When each move's current step started, to time it when it ends.
    started_steps: Mutex<std::collections::HashMap<(String, String, Step), tokio::time::Instant>>,
}

/// A family of histograms of seconds.
fn seconds_family<L: Clone + std::hash::Hash + Eq>() -> Family<L, Histogram> {
    Family::new_with_constructor(seconds_histogram as fn() -> Histogram)
}

fn seconds_histogram() -> Histogram {
    // 10 ms to ~5.5 min: probes are milliseconds, a cold-standby power-on minutes.
    Histogram::new(exponential_buckets(0.01, 2.0, 16))
}

/// Registers `metric` under `name` and hands it back, to be kept for recording.
fn add<M: Metric + Clone>(registry: &mut Registry, name: &str, help: &str, metric: M) -> M {
    registry.register(name, help, metric.clone());
    metric
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    /// A registry with every family, all at zero.
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("lifeboat");
        let r = &mut registry;
        let metrics = Metrics {
            condition: add(
                r,
                "provider_condition",
                "1 for the provider's current condition, 0 for the others",
                Family::default(),
            ),
            probe_duration: add(
                r,
                "probe_duration_seconds",
                "Time a provider's probe took, failed or not",
                seconds_family(),
            ),
            probe_errors: add(
                r,
                "probe_errors",
                "Failed probes by the adapter's error class",
                Family::default(),
            ),
            evacuations_started: add(
                r,
                "evacuations_started",
                "Evacuations started",
                Counter::default(),
            ),
            evacuations_finished: add(
                r,
                "evacuations_finished",
                "Evacuations that ran to their end",
                Counter::default(),
            ),
            stranded: add(
                r,
                "workloads_stranded",
                "Times a workload that had to move had nowhere to go",
                Family::default(),
            ),
            step_duration: add(
                r,
                "step_duration_seconds",
                "Time one attempt of an evacuation step took",
                seconds_family(),
            ),
            rto: add(
                r,
                "rto_seconds",
                "The last move's time from its start to traffic cut over, per workload",
                Family::default(),
            ),
            notices: add(
                r,
                "notices",
                "Notices and fences in force",
                Gauge::default(),
            ),
            notice_seconds_left: add(
                r,
                "notice_seconds_left",
                "Seconds until a notice's deadline (negative once passed)",
                Family::default(),
            ),
            pending: add(
                r,
                "evacuations_pending",
                "Evacuations waiting for an operator's approval (mode: confirm)",
                Gauge::default(),
            ),
            paused: add(
                r,
                "paused",
                "1 while the kill switch is thrown: no step starts",
                Gauge::default(),
            ),
            last_drill_success: add(
                r,
                "last_drill_success",
                "1 when the last scheduled drill met its objectives, 0 when not",
                Gauge::default(),
            ),
            heartbeat: add(
                r,
                "heartbeat_timestamp_seconds",
                "Unix time of the last completed round: alert when it stops moving",
                FloatGauge::default(),
            ),
            deadline_at_risk: add(
                r,
                "deadline_at_risk",
                "1 when the evacuation before this deadline is expected to finish after it",
                Family::default(),
            ),
            scheduled_start: add(
                r,
                "deadline_scheduled_start_timestamp_seconds",
                "When the evacuation before this deadline starts (Unix time)",
                Family::default(),
            ),
            estimated_finish: add(
                r,
                "deadline_estimated_finish_timestamp_seconds",
                "When the evacuation before this deadline is expected to be done (Unix time)",
                Family::default(),
            ),
            notifications: add(
                r,
                "notifications",
                "Webhook events by outcome: delivered, failed (refused or out of retries), \
                 dropped (the webhook's queue was full)",
                Family::default(),
            ),
            leader: add(
                r,
                "leader",
                "1 while this process runs the loop (a standalone daemon, or the replica \
                 holding the lease), 0 while another replica leads",
                Gauge::default(),
            ),
            dataset_lag_seconds: add(
                r,
                "dataset_lag_seconds",
                "How far the dataset's standby is behind its primary, by its last replayed \
                 commit (absent while no standby streams)",
                Family::default(),
            ),
            dataset_lag_bytes: add(
                r,
                "dataset_lag_bytes",
                "Changes the dataset's standby has not replayed yet",
                Family::default(),
            ),
            dataset_streaming: add(
                r,
                "dataset_standby_streaming",
                "1 while the dataset has a standby streaming from its primary",
                Family::default(),
            ),
            dataset_rpo_exceeded: add(
                r,
                "dataset_rpo_alert",
                "1 while losing the primary now could lose more than the dataset's rpo \
                 (its standby is behind it, or none streams)",
                Family::default(),
            ),
            started_steps: Mutex::default(),
            registry: Registry::default(),
        };
        Metrics {
            registry,
            ..metrics
        }
    }

    /// Records one round: probe latencies and errors, every provider's condition, the
    /// notices' time left, and the heartbeat.
    pub fn round<'a>(
        &self,
        probes: &[ProbeResult],
        conditions: impl IntoIterator<Item = (&'a String, &'a Condition)>,
        notices: &[NoticeRecord],
        now: Timestamp,
    ) {
        for probe in probes {
            let provider = probe.signal.provider.clone();
            self.probe_duration
                .get_or_create(&ProviderLabels {
                    provider: provider.clone(),
                })
                .observe(probe.latency.as_secs_f64());
            if let crate::model::SignalKind::ProbeFailed { class, .. } = &probe.signal.kind {
                self.probe_errors
                    .get_or_create(&ProbeErrorLabels {
                        provider,
                        class: class.to_string(),
                    })
                    .inc();
            }
        }
        for (provider, condition) in conditions {
            for kind in Condition::KINDS {
                self.condition
                    .get_or_create(&ConditionLabels {
                        provider: provider.clone(),
                        condition: kind.to_owned(),
                    })
                    .set(i64::from(kind == condition.kind()));
            }
        }
        self.notices.set(notices.len() as i64);
        self.notice_seconds_left.clear();
        for record in notices {
            if let Some(deadline) = record.notice.deadline {
                let left = deadline.duration_since(now).as_secs_f64();
                self.notice_seconds_left
                    .get_or_create(&NoticeLabels {
                        notice: record.id.to_string(),
                        scope: record.notice.scope.to_string(),
                    })
                    .set(left);
            }
        }
        self.heartbeat.set(now.as_millisecond() as f64 / 1000.0);
    }

    /// Records the schedules of the evacuations with a deadline, as they stand.
    pub fn schedules(&self, schedules: &[crate::deadline::Schedule]) {
        self.deadline_at_risk.clear();
        self.scheduled_start.clear();
        self.estimated_finish.clear();
        let unix = |t: Timestamp| t.as_millisecond() as f64 / 1000.0;
        for s in schedules {
            let labels = DeadlineLabels {
                deadline: s.by.to_string(),
            };
            self.deadline_at_risk
                .get_or_create(&labels)
                .set(i64::from(s.at_risk));
            self.scheduled_start
                .get_or_create(&labels)
                .set(unix(s.start_at));
            self.estimated_finish
                .get_or_create(&labels)
                .set(unix(s.estimated_finish));
        }
    }

    /// Records every dataset as the round left it.
    pub fn datasets(
        &self,
        datasets: &std::collections::BTreeMap<String, crate::dataset::DatasetState>,
    ) {
        self.dataset_lag_seconds.clear();
        self.dataset_lag_bytes.clear();
        for (workload, d) in datasets {
            let labels = WorkloadLabels {
                workload: workload.clone(),
            };
            if let Some(lag) = &d.lag {
                self.dataset_lag_seconds
                    .get_or_create(&labels)
                    .set(lag.seconds);
                self.dataset_lag_bytes
                    .get_or_create(&labels)
                    .set(i64::try_from(lag.bytes).unwrap_or(i64::MAX));
            }
            self.dataset_streaming
                .get_or_create(&labels)
                .set(i64::from(d.streaming()));
            self.dataset_rpo_exceeded
                .get_or_create(&labels)
                .set(i64::from(d.alert().is_some()));
        }
    }

    /// Records the operator's switches as they stand.
    pub fn control(&self, paused: bool, pending: usize) {
        self.paused.set(i64::from(paused));
        self.pending.set(pending as i64);
    }

    /// Records that an evacuation starts.
    pub fn evacuation_started(&self) {
        self.evacuations_started.inc();
    }

    /// Records a finished evacuation: its stranded workloads and each move's RTO.
    pub fn evacuation_finished(&self, report: &Report) {
        self.evacuations_finished.inc();
        for stranded in &report.stranded {
            self.stranded
                .get_or_create(&WorkloadLabels {
                    workload: stranded.workload.clone(),
                })
                .inc();
        }
        for m in &report.moves {
            if let Some(rto) = m.time_to_cutover {
                self.rto
                    .get_or_create(&WorkloadLabels {
                        workload: m.workload.clone(),
                    })
                    .set(rto.as_secs_f64());
            }
        }
    }

    /// Records a step transition: a step's attempt is timed from `Started` to whatever
    /// ends it.
    pub fn step(&self, event: &ExecEvent) {
        let key = (event.evacuation.clone(), event.workload.clone(), event.step);
        let mut started = self.started_steps.lock().unwrap_or_else(|p| p.into_inner());
        match event.status {
            Status::Started => {
                started.insert(key, event.at);
            }
            Status::Done | Status::Failed | Status::Abandoned => {
                if let Some(at) = started.remove(&key) {
                    self.step_duration
                        .get_or_create(&StepLabels {
                            step: event.step.to_string(),
                        })
                        .observe(event.at.saturating_duration_since(at).as_secs_f64());
                }
            }
        }
    }

    /// Records a scheduled drill's verdict.
    pub fn drill(&self, objectives_met: bool) {
        self.last_drill_success.set(i64::from(objectives_met));
    }

    /// Records whether this process runs the loop.
    pub fn leading(&self, leading: bool) {
        self.leader.set(i64::from(leading));
    }

    /// Records how one event ended at one webhook.
    pub fn notification(&self, webhook: &str, outcome: crate::notify::Delivery) {
        self.notifications
            .get_or_create(&NotificationLabels {
                webhook: webhook.to_owned(),
                outcome: outcome.as_str().to_owned(),
            })
            .inc();
    }

    /// The metrics in the Prometheus text format.
    pub fn encode(&self) -> String {
        let mut text = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut text, &self.registry);
        text
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::time::Duration;

    use jiff::Timestamp;
    use lifeboat_provider::Generation;

    use super::*;
    use crate::dataset::{DatasetState, LagReading, Member};

    #[test]
    fn a_dataset_behind_its_rpo_shows_its_lag_and_the_alert() {
        let mut db = DatasetState::new("db", "postgres-streaming", Duration::from_secs(1), false);
        db.primary = Some(Member {
            provider: "acme-eu".into(),
            generation: Generation(1),
            endpoint: None,
        });
        db.lag = Some(LagReading {
            bytes: 4096,
            seconds: 2.5,
            synchronous: false,
            at: Timestamp::UNIX_EPOCH,
        });
        let metrics = Metrics::new();
        metrics.datasets(&BTreeMap::from([("db".to_owned(), db.clone())]));
        let text = metrics.encode();
        for line in [
            "lifeboat_dataset_lag_seconds{workload=\"db\"} 2.5",
            "lifeboat_dataset_lag_bytes{workload=\"db\"} 4096",
            "lifeboat_dataset_standby_streaming{workload=\"db\"} 0",
            "lifeboat_dataset_rpo_alert{workload=\"db\"} 1",
        ] {
            assert!(text.contains(line), "{line} missing from\n{text}");
        }
        // Caught up, and no longer streaming: the lag goes, the alert stays.
        db.lag = None;
        metrics.datasets(&BTreeMap::from([("db".to_owned(), db)]));
        let text = metrics.encode();
        assert!(!text.contains("lifeboat_dataset_lag_seconds{"), "{text}");
        assert!(
            text.contains("lifeboat_dataset_rpo_alert{workload=\"db\"} 1"),
            "{text}"
        );
    }
}
