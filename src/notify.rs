//! Webhook notifications (`notify:` in `lifeboat.yaml`): the daemon tells a team's chat
//! or paging system what it sees and does — a provider's condition changing, a notice
//! raised or lifted, an evacuation starting and finishing, a workload stranded, a
//! deadline at risk, a scheduled drill's result.
//!
//! Delivery never holds up the loop. Each webhook has its own bounded queue and worker:
//! [`Notifier::send`] only enqueues (an event that finds a queue full is dropped and
//! counted), and a receiver that hangs delays only its own queue, never the loop or
//! another webhook. A delivery is retried on connection errors, timeouts, 429 and 5xx
//! answers, with exponential backoff and jitter (a `Retry-After` in seconds is
//! honoured), up to [`Retry::attempts`]; any other answer outside 2xx is final, since
//! sending the same body again would get the same answer. Logs and errors name the
//! webhook, never its URL, which often carries a token.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use anyhow::Context;
use jiff::Timestamp;
use rand::RngExt;
use reqwest::{StatusCode, Url};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio::sync::{Notify, mpsc};

use crate::config::{Config, WebhookConfig, WebhookFormat};
use crate::drill::scheduled::ScheduledResult;
use crate::execute::Report;
use crate::model::{Condition, Plan};
use crate::store::Outcome as MoveOutcome;

/// What kind of event a webhook can subscribe to (`events:` of a webhook).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    /// A provider's condition changed.
    ConditionChanged,
    /// A notice was raised.
    NoticeRaised,
    /// A notice was lifted.
    NoticeCleared,
    /// An evacuation started.
    EvacuationStarted,
    /// An evacuation finished, whatever its outcome.
    EvacuationFinished,
    /// A workload has nowhere to go.
    Stranded,
    /// An evacuation is expected to finish after its deadline.
    DeadlineAtRisk,
    /// A scheduled drill ended.
    DrillFinished,
    /// A workload's unhealthy copy is being replaced.
    CopyReplaced,
    /// A workload's copy is unhealthy but was replaced too often to be replaced again.
    ReplacementsLimited,
}

/// One move of an evacuation that starts, as a webhook sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PlannedMove {
    /// The workload.
    pub workload: String,
    /// Where it runs now, if it runs anywhere.
    pub from: Option<String>,
    /// Where it goes, in the order tried.
    pub to: Vec<String>,
}

/// Something a team wants to hear about. Serialised with its kind in `event`, the way
/// the `json` format sends it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// A provider's condition changed (`from` is unset for the first condition seen).
    ConditionChanged {
        /// The provider.
        provider: String,
        /// What it was.
        from: Option<Condition>,
        /// What it is.
        to: Condition,
    },
    /// A notice was raised (by the CLI, the API, or a Notice resource).
    NoticeRaised {
        /// Its id, for `lifeboat notices clear`.
        id: i64,
        /// The vendor, account or provider it concerns.
        scope: String,
        /// Everything there must be gone before this; unset for a fence (now).
        deadline: Option<Timestamp>,
        /// Who raised it and why.
        reason: String,
    },
    /// A notice was lifted.
    NoticeCleared {
        /// Its id.
        id: i64,
        /// The vendor, account or provider it concerned.
        scope: String,
    },
    /// An evacuation started.
    EvacuationStarted {
        /// What it moves.
        moves: Vec<PlannedMove>,
    },
    /// An evacuation finished.
    EvacuationFinished {
        /// Its id in the store.
        evacuation: String,
        /// Workloads moved (or verified, in shadow mode).
        moved: Vec<String>,
        /// Workloads with nowhere to go: no target fitted, or every target failed.
        stranded: Vec<String>,
        /// Workloads a newer placement overtook while they moved (fenced, not cut over).
        superseded: Vec<String>,
    },
    /// A workload has nowhere to go.
    Stranded {
        /// The workload.
        workload: String,
        /// Why no target fits.
        reason: String,
    },
    /// An evacuation is expected to finish after its deadline; it starts at once.
    DeadlineAtRisk {
        /// The deadline.
        by: Timestamp,
        /// When the evacuation is expected to finish.
        estimated_finish: Timestamp,
        /// What it moves.
        workloads: Vec<String>,
    },
    /// A scheduled drill ended.
    DrillFinished {
        /// The scheduled drill's name.
        drill: String,
        /// `objectives met`, `objectives missed`, `cancelled: ...` or `failed: ...`.
        outcome: String,
        /// Whether it met its objectives, when it ran to its end.
        objectives_met: Option<bool>,
    },
    /// A workload's copy stayed unhealthy past `policy.replace_after`: a new copy
    /// starts, on the same provider first.
    CopyReplaced {
        /// The workload.
        workload: String,
        /// Where the unhealthy copy runs.
        provider: String,
        /// What its adapter said.
        detail: String,
    },
    /// A workload's copy is unhealthy, but it was replaced `policy.max_replacements`
    /// times within the window already: a human must look.
    ReplacementsLimited {
        /// The workload.
        workload: String,
        /// Replacements counted within the window.
        replacements: usize,
        /// When it may be replaced again.
        until: Timestamp,
    },
}

impl Event {
    /// Its kind, what `events:` filters on.
    pub fn kind(&self) -> EventKind {
        match self {
            Event::ConditionChanged { .. } => EventKind::ConditionChanged,
            Event::NoticeRaised { .. } => EventKind::NoticeRaised,
            Event::NoticeCleared { .. } => EventKind::NoticeCleared,
            Event::EvacuationStarted { .. } => EventKind::EvacuationStarted,
            Event::EvacuationFinished { .. } => EventKind::EvacuationFinished,
            Event::Stranded { .. } => EventKind::Stranded,
            Event::DeadlineAtRisk { .. } => EventKind::DeadlineAtRisk,
            Event::DrillFinished { .. } => EventKind::DrillFinished,
            Event::CopyReplaced { .. } => EventKind::CopyReplaced,
            Event::ReplacementsLimited { .. } => EventKind::ReplacementsLimited,
        }
    }

    /// An evacuation that starts with `plan`'s moves.
    pub fn evacuation_started(plan: &Plan) -> Event {
        Event::EvacuationStarted {
            moves: (plan.moves.iter())
                .map(|m| PlannedMove {
                    workload: m.workload.clone(),
                    from: m.from.clone(),
                    to: m.targets.clone(),
                })
                .collect(),
        }
    }

    /// The end of the evacuation `report` tells of.
    pub fn evacuation_finished(report: &Report) -> Event {
        let (mut moved, mut stranded, mut superseded) = (Vec::new(), Vec::new(), Vec::new());
        for m in &report.moves {
            let list = match m.outcome {
                MoveOutcome::Moved { .. } | MoveOutcome::Verified { .. } => &mut moved,
                MoveOutcome::Stranded { .. } => &mut stranded,
                MoveOutcome::Superseded { .. } => &mut superseded,
            };
            list.push(m.workload.clone());
        }
        stranded.extend(report.stranded.iter().map(|s| s.workload.clone()));
        Event::EvacuationFinished {
            evacuation: report.evacuation.clone(),
            moved,
            stranded,
            superseded,
        }
    }

    /// The end of a scheduled drill.
    pub fn drill_finished(result: &ScheduledResult) -> Event {
        Event::DrillFinished {
            drill: result.schedule.clone(),
            outcome: result.outcome.clone(),
            objectives_met: result.report.as_ref().map(|r| r.objectives_met),
        }
    }

    /// One line for humans: what a chat message says.
    pub fn summary(&self) -> String {
        match self {
            Event::ConditionChanged { provider, from, to } => match from {
                Some(from) => format!("provider {provider}: {from} → {to}"),
                None => format!("provider {provider}: {to}"),
            },
            Event::NoticeRaised {
                id,
                scope,
                deadline,
                reason,
            } => match deadline {
                Some(by) => format!(
                    "notice {id} for {scope}: everything there moves before {by} ({reason})"
                ),
                None => format!("notice {id} for {scope}: everything there moves now ({reason})"),
            },
            Event::NoticeCleared { id, scope } => format!("notice {id} for {scope} lifted"),
            Event::EvacuationStarted { moves } => {
                let shown: Vec<String> = (moves.iter().take(5))
                    .map(|m| {
                        let from = m.from.as_deref().unwrap_or("nowhere");
                        let to = m.to.first().map_or("?", String::as_str);
                        format!("{} {from} → {to}", m.workload)
                    })
                    .collect();
                let more = match moves.len().saturating_sub(shown.len()) {
                    0 => String::new(),
                    n => format!(" and {n} more"),
                };
                format!(
                    "evacuation started: {} to move ({}{more})",
                    moves.len(),
                    shown.join(", ")
                )
            }
            Event::EvacuationFinished {
                evacuation,
                moved,
                stranded,
                superseded,
            } => {
                let mut text = format!(
                    "evacuation {evacuation} finished: {} moved, {} stranded",
                    moved.len(),
                    stranded.len()
                );
                if !stranded.is_empty() {
                    text.push_str(&format!(" ({})", stranded.join(", ")));
                }
                if !superseded.is_empty() {
                    text.push_str(&format!(", {} superseded", superseded.len()));
                }
                text
            }
            Event::Stranded { workload, reason } => {
                format!("workload {workload} is stranded: {reason}")
            }
            Event::DeadlineAtRisk {
                by,
                estimated_finish,
                workloads,
            } => format!(
                "deadline {by} at risk: moving {} is expected to finish at {estimated_finish}; \
                 it starts now",
                workloads.join(", ")
            ),
            Event::DrillFinished { drill, outcome, .. } => {
                format!("scheduled drill {drill}: {outcome}")
            }
            Event::CopyReplaced {
                workload,
                provider,
                detail,
            } => format!("workload {workload}: replacing its copy on {provider} ({detail})"),
            Event::ReplacementsLimited {
                workload,
                replacements,
                until,
            } => format!(
                "workload {workload} is unhealthy and was replaced {replacements} times \
                 recently: left alone until {until}; look at it"
            ),
        }
    }
}

/// The body `format` sends for `event`, seen by installation `installation` at `at`.
pub fn body(format: WebhookFormat, installation: &str, at: Timestamp, event: &Event) -> Value {
    match format {
        WebhookFormat::Json => {
            let mut body = serde_json::to_value(event).unwrap_or_else(|_| json!({}));
            if let Value::Object(fields) = &mut body {
                fields.insert("installation".into(), json!(installation));
                fields.insert("at".into(), json!(at.to_string()));
                fields.insert("summary".into(), json!(event.summary()));
            }
            body
        }
        WebhookFormat::Slack => json!({
            "text": format!("lifeboat [{installation}] {}", event.summary()),
        }),
    }
}

/// Whether `url` can be posted to: absolute, http or https, with a host. The reason
/// never repeats the URL, which may carry a token.
pub fn check_url(url: &str) -> Result<(), String> {
    let parsed = Url::parse(url.trim()).map_err(|e| format!("not a valid URL ({e})"))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(format!(
            "the URL's scheme is {:?}; webhooks are http or https",
            parsed.scheme()
        ));
    }
    if parsed.host().is_none() {
        return Err("the URL has no host".into());
    }
    Ok(())
}

/// How a delivery is retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retry {
    /// Attempts in all, the first included.
    pub attempts: u32,
    /// The wait after the first failed attempt; it doubles after each further one.
    pub first_backoff: Duration,
    /// The longest wait, `Retry-After` included.
    pub max_backoff: Duration,
}

impl Default for Retry {
    fn default() -> Self {
        Retry {
            attempts: 5,
            first_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(60),
        }
    }
}

impl Retry {
    /// The wait after failed attempt `attempt` (1-based): the doubled backoff, capped,
    /// with "equal jitter" (between half and all of it) so many daemons that lost
    /// the same receiver do not retry in step.
    fn backoff(&self, attempt: u32) -> Duration {
        let doubled = (self.first_backoff)
            .saturating_mul(2u32.saturating_pow(attempt.saturating_sub(1)))
            .min(self.max_backoff);
        doubled.mul_f64(rand::rng().random_range(0.5..=1.0))
    }
}

/// How one event ended at one webhook.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// The receiver answered 2xx.
    Delivered,
    /// Refused for good, or every attempt failed.
    Failed,
    /// The webhook's queue was full; the event was never sent.
    Dropped,
}

impl Delivery {
    /// Its name in metrics (`outcome` label).
    pub fn as_str(self) -> &'static str {
        match self {
            Delivery::Delivered => "delivered",
            Delivery::Failed => "failed",
            Delivery::Dropped => "dropped",
        }
    }
}

/// Called with the webhook's name and each outcome, to count them in metrics.
pub type Observer = Arc<dyn Fn(&str, Delivery) + Send + Sync>;

/// How the notifier delivers.
#[derive(Clone)]
pub struct Options {
    /// Retries.
    pub retry: Retry,
    /// Events each webhook may have waiting; more are dropped.
    pub queue: usize,
    /// Told every outcome.
    pub observe: Option<Observer>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            retry: Retry::default(),
            queue: 256,
            observe: None,
        }
    }
}

/// A webhook's counts so far.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookStats {
    /// The webhook's name.
    pub name: String,
    /// Events delivered.
    pub delivered: u64,
    /// Events that failed (refused, or out of attempts).
    pub failed: u64,
    /// Events dropped on a full queue.
    pub dropped: u64,
}

#[derive(Default)]
struct Counts {
    delivered: AtomicU64,
    failed: AtomicU64,
    dropped: AtomicU64,
}

struct Sink {
    name: String,
    format: WebhookFormat,
    events: Vec<EventKind>,
    queue: mpsc::Sender<Value>,
    counts: Arc<Counts>,
}

/// Events not yet delivered or given up, over every webhook, and a wake-up for
/// [`Notifier::flush`] when that reaches zero.
#[derive(Default)]
struct InFlight {
    count: AtomicUsize,
    idle: Notify,
}

impl InFlight {
    fn done(&self) {
        if self.count.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.idle.notify_waiters();
        }
    }
}

/// Sends events to every webhook that wants them. Cheap to clone; the workers stop
/// when the last clone is dropped, once their queues are empty.
#[derive(Clone)]
pub struct Notifier {
    installation: String,
    sinks: Arc<Vec<Sink>>,
    in_flight: Arc<InFlight>,
    observe: Option<Observer>,
}

impl Notifier {
    /// A notifier with no webhook: every event goes nowhere.
    pub fn none() -> Notifier {
        Notifier {
            installation: String::new(),
            sinks: Arc::new(Vec::new()),
            in_flight: Arc::default(),
            observe: None,
        }
    }

    /// The webhooks of `config`, their URLs read from the config, its folder's files
    /// or the process environment. Must be called inside a Tokio runtime.
    pub fn from_config(
        config: &Config,
        installation: &str,
        options: Options,
    ) -> anyhow::Result<Notifier> {
        let folder = config.source.parent().unwrap_or(Path::new("."));
        Notifier::new(&config.notify, folder, installation, options, |var| {
            std::env::var(var).ok()
        })
    }

    /// Starts one worker per webhook. `env` reads environment variables (a parameter
    /// so tests need not touch the process environment); relative `url_file`s are read
    /// from `base_dir`.
    pub fn new(
        webhooks: &[WebhookConfig],
        base_dir: &Path,
        installation: &str,
        options: Options,
        env: impl Fn(&str) -> Option<String>,
    ) -> anyhow::Result<Notifier> {
        let http = reqwest::Client::builder()
            .user_agent(concat!("lifeboat/", env!("CARGO_PKG_VERSION")))
            // A redirect could take the body (and the token in the URL's path) to
            // another host; a receiver that moved is a config change.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .context("building the webhook HTTP client")?;
        let in_flight = Arc::new(InFlight::default());
        let mut sinks = Vec::new();
        for webhook in webhooks {
            let url = resolve_url(webhook, base_dir, &env)?;
            let (queue, receiver) = mpsc::channel(options.queue.max(1));
            let counts = Arc::new(Counts::default());
            tokio::spawn(deliver_all(Worker {
                name: webhook.name.clone(),
                url,
                timeout: webhook.timeout,
                http: http.clone(),
                retry: options.retry,
                counts: counts.clone(),
                in_flight: in_flight.clone(),
                observe: options.observe.clone(),
                receiver,
            }));
            sinks.push(Sink {
                name: webhook.name.clone(),
                format: webhook.format,
                events: webhook.events.clone(),
                queue,
                counts,
            });
        }
        Ok(Notifier {
            installation: installation.to_owned(),
            sinks: Arc::new(sinks),
            in_flight,
            observe: options.observe,
        })
    }

    /// Queues `event` for every webhook that wants it, and returns at once.
    pub fn send(&self, event: &Event) {
        let at = Timestamp::now();
        for sink in self.sinks.iter() {
            if !sink.events.is_empty() && !sink.events.contains(&event.kind()) {
                continue;
            }
            self.in_flight.count.fetch_add(1, Ordering::AcqRel);
            let body = body(sink.format, &self.installation, at, event);
            if sink.queue.try_send(body).is_err() {
                self.in_flight.done();
                sink.counts.dropped.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(webhook = %sink.name, event = ?event.kind(),
                    "the webhook's queue is full (its receiver is slow or down): event dropped");
                if let Some(observe) = &self.observe {
                    observe(&sink.name, Delivery::Dropped);
                }
            }
        }
    }

    /// Waits until every queued event is delivered or given up, for at most `within`;
    /// whether they all were. The daemon calls it as it stops, so the last events
    /// (its evacuation's end) are not lost with the process.
    pub async fn flush(&self, within: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let idle = self.in_flight.idle.notified();
            tokio::pin!(idle);
            // Registered before the count is read, so a wake-up in between is kept.
            idle.as_mut().enable();
            if self.in_flight.count.load(Ordering::Acquire) == 0 {
                return true;
            }
            if tokio::time::timeout_at(deadline, idle).await.is_err() {
                return self.in_flight.count.load(Ordering::Acquire) == 0;
            }
        }
    }

    /// Every webhook's counts so far, in config order.
    pub fn stats(&self) -> Vec<WebhookStats> {
        (self.sinks.iter())
            .map(|s| WebhookStats {
                name: s.name.clone(),
                delivered: s.counts.delivered.load(Ordering::Relaxed),
                failed: s.counts.failed.load(Ordering::Relaxed),
                dropped: s.counts.dropped.load(Ordering::Relaxed),
            })
            .collect()
    }
}

/// The webhook's URL from wherever the config points. Errors name the webhook and the
/// file or variable, never the URL.
fn resolve_url(
    webhook: &WebhookConfig,
    base_dir: &Path,
    env: &impl Fn(&str) -> Option<String>,
) -> anyhow::Result<Url> {
    let name = &webhook.name;
    let text = match (&webhook.url, &webhook.url_file, &webhook.url_env) {
        (Some(url), None, None) => url.clone(),
        (None, Some(file), None) => {
            let path = base_dir.join(file);
            std::fs::read_to_string(&path).with_context(|| {
                format!("webhook {name}: reading its URL from {}", path.display())
            })?
        }
        (None, None, Some(var)) => env(var).with_context(|| {
            format!("webhook {name}: its URL variable {var} is not set in the environment")
        })?,
        _ => anyhow::bail!("webhook {name}: give exactly one of url, url_file and url_env"),
    };
    check_url(&text).map_err(|why| anyhow::anyhow!("webhook {name}: {why}"))?;
    Url::parse(text.trim()).with_context(|| format!("webhook {name}: the URL does not parse"))
}

/// One webhook's delivery loop and what it needs.
struct Worker {
    name: String,
    url: Url,
    timeout: Duration,
    http: reqwest::Client,
    retry: Retry,
    counts: Arc<Counts>,
    in_flight: Arc<InFlight>,
    observe: Option<Observer>,
    receiver: mpsc::Receiver<Value>,
}

async fn deliver_all(mut worker: Worker) {
    while let Some(body) = worker.receiver.recv().await {
        let outcome = worker.deliver(&body).await;
        let counter = match outcome {
            Delivery::Delivered => &worker.counts.delivered,
            _ => &worker.counts.failed,
        };
        counter.fetch_add(1, Ordering::Relaxed);
        if let Some(observe) = &worker.observe {
            observe(&worker.name, outcome);
        }
        worker.in_flight.done();
    }
}

impl Worker {
    async fn deliver(&self, body: &Value) -> Delivery {
        let name = &self.name;
        for attempt in 1..=self.retry.attempts.max(1) {
            let sent = (self.http.post(self.url.clone()))
                .timeout(self.timeout)
                .json(body)
                .send()
                .await;
            let asked_wait = match sent {
                Ok(answer) if answer.status().is_success() => return Delivery::Delivered,
                Ok(answer) if retryable(answer.status()) => {
                    tracing::warn!(webhook = %name, status = %answer.status(), attempt,
                        "the webhook's receiver failed; retrying");
                    retry_after(answer.headers())
                }
                Ok(answer) => {
                    tracing::error!(webhook = %name, status = %answer.status(),
                        "the webhook's receiver refused the event; not retried");
                    return Delivery::Failed;
                }
                Err(error) => {
                    let error = anyhow::Error::from(error.without_url());
                    tracing::warn!(webhook = %name, attempt, "the webhook could not be reached: {error:#}");
                    None
                }
            };
            if attempt < self.retry.attempts {
                let wait = match asked_wait {
                    Some(wait) => wait.min(self.retry.max_backoff),
                    None => self.retry.backoff(attempt),
                };
                tokio::time::sleep(wait).await;
            }
        }
        tracing::error!(webhook = %name, attempts = self.retry.attempts, "giving up on an event for the webhook");
        Delivery::Failed
    }
}

/// Answers worth trying again: the receiver is overloaded or failing, not refusing.
fn retryable(status: StatusCode) -> bool {
    status == StatusCode::TOO_MANY_REQUESTS
        || status == StatusCode::REQUEST_TIMEOUT
        || status.is_server_error()
}

/// A `Retry-After` given in seconds (the form receivers use for 429 and 503).
fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    let value = headers.get(reqwest::header::RETRY_AFTER)?.to_str().ok()?;
    value.trim().parse::<u64>().ok().map(Duration::from_secs)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at() -> Timestamp {
        "2026-12-03T10:00:00Z".parse().unwrap()
    }

    #[test]
    fn the_json_body_carries_the_event_and_who_saw_it() {
        let event = Event::NoticeRaised {
            id: 3,
            scope: "aws".into(),
            deadline: Some("2026-12-04T10:00:00Z".parse().unwrap()),
            reason: "abuse team: 24 hours".into(),
        };
        let body = body(WebhookFormat::Json, "prod-eu", at(), &event);
        assert_eq!(body["event"], "notice_raised");
        assert_eq!(body["installation"], "prod-eu");
        assert_eq!(body["at"], "2026-12-03T10:00:00Z");
        assert_eq!(body["scope"], "aws");
        assert_eq!(body["deadline"], "2026-12-04T10:00:00Z");
        assert_eq!(
            body["summary"],
            "notice 3 for aws: everything there moves before 2026-12-04T10:00:00Z (abuse team: 24 hours)"
        );
    }

    #[test]
    fn the_slack_body_is_one_line_of_text() {
        let event = Event::ConditionChanged {
            provider: "aws-eu".into(),
            from: Some(Condition::Healthy),
            to: Condition::Suspended {
                reason: lifeboat_provider::ErrorClass::AccountSuspended,
                since: at(),
            },
        };
        let body = body(WebhookFormat::Slack, "prod", at(), &event);
        let text = body["text"].as_str().unwrap();
        assert!(
            text.starts_with("lifeboat [prod] provider aws-eu: healthy → "),
            "{text}"
        );
        assert!(text.contains("suspended"), "{text}");
        assert_eq!(body.as_object().unwrap().len(), 1);
    }

    #[test]
    fn a_long_evacuation_is_summarised_not_listed() {
        let moves = (0..8)
            .map(|i| PlannedMove {
                workload: format!("w{i}"),
                from: Some("a".into()),
                to: vec!["b".into()],
            })
            .collect();
        let summary = Event::EvacuationStarted { moves }.summary();
        assert_eq!(
            summary,
            "evacuation started: 8 to move (w0 a → b, w1 a → b, w2 a → b, w3 a → b, w4 a → b and 3 more)"
        );
    }

    #[test]
    fn every_event_serialises_with_its_own_kind() {
        let events = [
            Event::NoticeCleared {
                id: 1,
                scope: "x".into(),
            },
            Event::Stranded {
                workload: "w".into(),
                reason: "r".into(),
            },
            Event::DrillFinished {
                drill: "d".into(),
                outcome: "objectives met".into(),
                objectives_met: Some(true),
            },
        ];
        for event in events {
            let body = body(WebhookFormat::Json, "i", at(), &event);
            let kind = serde_json::to_value(event.kind()).unwrap();
            assert_eq!(body["event"], kind);
        }
    }

    #[test]
    fn urls_are_checked_without_being_repeated() {
        assert!(check_url("https://hooks.example.com/services/T0/B0/secret").is_ok());
        for bad in [
            "ftp://h/secret",
            "not a url secret",
            "data:text/plain,secret",
        ] {
            let why = check_url(bad).unwrap_err();
            assert!(!why.contains("secret"), "{why}");
        }
    }

    #[test]
    fn backoff_doubles_is_capped_and_jittered() {
        let retry = Retry {
            attempts: 10,
            first_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(8),
        };
        for _ in 0..100 {
            let first = retry.backoff(1);
            assert!(first >= Duration::from_millis(500) && first <= Duration::from_secs(1));
            let third = retry.backoff(3);
            assert!(third >= Duration::from_secs(2) && third <= Duration::from_secs(4));
            assert!(retry.backoff(40) <= Duration::from_secs(8));
        }
    }

    #[test]
    fn the_config_debug_never_shows_the_url() {
        let config: WebhookConfig =
            serde_yaml::from_str("{name: chat, url: 'https://h.example/T/B/tok3n'}").unwrap();
        let shown = format!("{config:?}");
        assert!(
            shown.contains("chat") && !shown.contains("tok3n"),
            "{shown}"
        );
        assert_eq!(config.timeout, Duration::from_secs(5));
        assert_eq!(config.format, WebhookFormat::Json);
    }
}
