//! Signals + policy → each provider's [`Condition`], with hysteresis.
//!
//! A provider's memory is a [`Health`], folded over its signals with [`observe`]; its
//! condition at a given instant is [`condition`] of that memory, the notices and fences
//! that cover it, and `now`. The split exists because time alone changes a condition:
//! a run of timeouts becomes `Unreachable` once it outlasts the grace period, and a
//! provider becomes `Healthy` again only once the quiet period has passed without a bad
//! signal — with no new signal in between.
//!
//! # Rules (DESIGN.md, "Policy defaults")
//!
//! * `AccountSuspended` / `CredentialsRejected` on `confirmations` consecutive probes →
//!   `Suspended`, which sticks until a clean probe comes after a quiet period without
//!   bad signals. "Consecutive" counts the probes that said anything about the account:
//!   `Throttled`, `Unavailable` and `Timeout` neither extend nor break the streak (an
//!   account that is suspended *and* behind a flaky network is still confirmed), while
//!   any other answer (a clean probe, `PermissionDenied`, which proves the credentials
//!   work, or any other class) breaks it.
//! * `Unavailable` / `Timeout` → a run of failures starts (`Failing{since}`); once it
//!   has lasted `unreachable_grace` → `Unreachable{since}`. Any answer from the vendor
//!   (anything but those two classes) ends the run.
//! * `Throttled`, `PermissionDenied`, a degraded probe, any other failure class, and an
//!   account-loss answer not yet confirmed → at most `Degraded`. Never an evacuation.
//! * `Healthy` only once `quiet_period` has passed since the last bad signal.
//! * A notice with a deadline → `Noticed{deadline}` (the earliest, if several); a fence
//!   (a notice without deadline) → `Fenced{by}`.
//!
//! # Precedence
//!
//! When several apply, the first of this list wins:
//! `Suspended` > `Fenced` > `Unreachable` > `Noticed` > `Failing` > `Degraded` >
//! `Healthy`.
//!
//! * `Suspended` first because it is the only condition that widens: `decide` leaves
//!   the whole account for it, so hiding it behind a provider-wide fence would leave the
//!   account's other providers in place.
//! * `Fenced` next: an operator's or a drill's explicit word, acted on now.
//! * `Unreachable` before `Noticed`: the workloads there are down *now*, so waiting for
//!   the notice's deadline would be wrong. (The cost: a workload that moved onto this
//!   provider within the quiet period is held, as for any flap.)
//! * `Noticed` before `Failing` and `Degraded`: a deadline is a verdict, the others
//!   observations. `Failing` before `Degraded` because "not answering" is the stronger
//!   observation (and the one `decide`'s fail safe counts).

use std::collections::BTreeMap;
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use lifeboat_provider::ErrorClass;
use serde::{Deserialize, Serialize};

use crate::config::{Config, PolicyConfig, ProviderConfig};
use crate::model::{Condition, Notice, Signal, SignalKind};

/// What lifeboat remembers about one provider's signals: just enough to derive its
/// condition at any later instant. Starts empty (no evidence of trouble: `Healthy`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Health {
    /// Account-loss answers in the current streak (see the module docs for what breaks
    /// it).
    pub consecutive_account_loss: u32,
    /// The confirmed account loss, sticky until a quiet period of clean probes.
    pub suspended: Option<Suspension>,
    /// First `Unavailable`/`Timeout` of the current run of them; `None` once the vendor
    /// answers again.
    pub failing_since: Option<Timestamp>,
    /// The latest signal that was not a clean probe, and what it said.
    pub last_bad: Option<BadSignal>,
    /// The latest clean probe.
    pub last_ok: Option<Timestamp>,
    /// The latest signal taken into account; older signals arriving late are ignored so
    /// the memory only moves forward in time.
    pub last_seen: Option<Timestamp>,
}

/// A confirmed account loss.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Suspension {
    /// The class that confirmed it.
    pub class: ErrorClass,
    /// When it was confirmed.
    pub since: Timestamp,
}

/// The latest bad signal: when, and a reason for humans.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BadSignal {
    /// When it was observed.
    pub at: Timestamp,
    /// What it said (`throttled`, `permission denied (UnauthorizedOperation)`, ...).
    pub reason: String,
}

/// Folds one signal into a provider's memory. Pure: the same memory and signal always
/// give the same result. A signal older than the latest one seen is ignored.
pub fn observe(prev: &Health, signal: &Signal, policy: &PolicyConfig) -> Health {
    let at = signal.at;
    if prev.last_seen.is_some_and(|seen| at < seen) {
        return prev.clone();
    }
    let mut next = prev.clone();
    next.last_seen = Some(at);
    // A suspension that has already healed (clean latest probe, quiet period passed)
    // ends now, so a later bad signal starts over instead of reviving it.
    if recovered(prev, at, policy) {
        next.suspended = None;
    }
    let class = match &signal.kind {
        SignalKind::ProbeOk { degraded: None } => {
            // A clean probe after a quiet period ends a suspension for good; before
            // that, the suspension stands (the vendor may be flapping its verdict).
            if quiet_since_last_bad(prev, at, policy) {
                next.suspended = None;
            }
            next.consecutive_account_loss = 0;
            next.failing_since = None;
            next.last_ok = Some(at);
            return next;
        }
        SignalKind::ProbeOk {
            degraded: Some(why),
        } => {
            next.consecutive_account_loss = 0;
            next.failing_since = None;
            next.last_bad = Some(BadSignal {
                at,
                reason: format!("degraded: {why}"),
            });
            return next;
        }
        SignalKind::ProbeFailed { class, .. } => *class,
    };
    let code = match &signal.kind {
        SignalKind::ProbeFailed { code: Some(c), .. } => format!(" ({c})"),
        _ => String::new(),
    };
    match class {
        ErrorClass::AccountSuspended | ErrorClass::CredentialsRejected => {
            next.failing_since = None;
            next.consecutive_account_loss = prev.consecutive_account_loss.saturating_add(1);
            // `confirmations: 0` would mean "suspended without evidence"; one answer is
            // the least that can confirm anything.
            if next.consecutive_account_loss >= policy.confirmations.max(1)
                && next.suspended.is_none()
            {
                next.suspended = Some(Suspension { class, since: at });
            }
        }
        ErrorClass::Unavailable | ErrorClass::Timeout => {
            next.failing_since = Some(prev.failing_since.unwrap_or(at));
        }
        ErrorClass::Throttled => {
            // The vendor answered, so it is reachable; throttling says nothing about
            // the account.
            next.failing_since = None;
        }
        ErrorClass::PermissionDenied
        | ErrorClass::CapacityExhausted
        | ErrorClass::InvalidRequest
        | ErrorClass::NotFound
        | ErrorClass::Internal => {
            next.failing_since = None;
            next.consecutive_account_loss = 0;
        }
    }
    let pending = match class {
        ErrorClass::AccountSuspended | ErrorClass::CredentialsRejected
            if next.suspended.is_none() =>
        {
            format!(
                ", unconfirmed {}/{}",
                next.consecutive_account_loss,
                policy.confirmations.max(1)
            )
        }
        _ => String::new(),
    };
    next.last_bad = Some(BadSignal {
        at,
        reason: format!("{}{code}{pending}", class_words(class)),
    });
    next
}

/// Folds a sequence of signals (for one provider, in time order) from an empty memory.
pub fn observe_all<'a>(
    signals: impl IntoIterator<Item = &'a Signal>,
    policy: &PolicyConfig,
) -> Health {
    signals
        .into_iter()
        .fold(Health::default(), |h, s| observe(&h, s, policy))
}

/// The condition of a provider at `now`, from its memory and the notices and fences
/// that cover it (see [`notices_for`]). Precedence is in the module docs.
pub fn condition(
    health: &Health,
    notices: &[Notice],
    now: Timestamp,
    policy: &PolicyConfig,
) -> Condition {
    if let Some(s) = &health.suspended
        && !recovered(health, now, policy)
    {
        return Condition::Suspended {
            reason: s.class,
            since: s.since,
        };
    }
    if let Some(fence) = notices.iter().find(|n| n.deadline.is_none()) {
        return Condition::Fenced {
            by: fence.reason.clone(),
        };
    }
    if let Some(since) = health.failing_since
        && at_least(since, now, policy.unreachable_grace)
    {
        return Condition::Unreachable { since };
    }
    if let Some(deadline) = notices.iter().filter_map(|n| n.deadline).min() {
        return Condition::Noticed { deadline };
    }
    if let Some(since) = health.failing_since {
        return Condition::Failing { since };
    }
    match &health.last_bad {
        Some(bad) if !at_least(bad.at, now, policy.quiet_period) => Condition::Degraded {
            reason: if health.suspended.is_some() {
                format!("recovering from account loss; last: {}", bad.reason)
            } else {
                bad.reason.clone()
            },
        },
        _ => Condition::Healthy,
    }
}

/// The notices and fences that cover `provider`: those naming it, its account or its
/// vendor. A notice for a vendor or an account thereby reaches every provider of it.
pub fn notices_for(config: &Config, provider: &str, notices: &[Notice]) -> Vec<Notice> {
    let mine: Vec<&ProviderConfig> = (config.providers.iter())
        .filter(|p| p.name == provider)
        .collect();
    notices
        .iter()
        .filter(|n| mine.iter().any(|p| p.is_in(&n.scope)))
        .cloned()
        .collect()
}

/// The condition of every configured provider at `now`. A provider without a memory yet
/// has shown no trouble and starts from an empty [`Health`].
pub fn conditions(
    config: &Config,
    healths: &BTreeMap<String, Health>,
    notices: &[Notice],
    now: Timestamp,
) -> BTreeMap<String, Condition> {
    let empty = Health::default();
    config
        .providers
        .iter()
        .map(|p| {
            let health = healths.get(&p.name).unwrap_or(&empty);
            let covering: Vec<Notice> = (notices.iter())
                .filter(|n| p.is_in(&n.scope))
                .cloned()
                .collect();
            let c = condition(health, &covering, now, &config.policy);
            (p.name.clone(), c)
        })
        .collect()
}

/// True once the latest signal is clean and the quiet period has passed since the last
/// bad one.
fn recovered(health: &Health, now: Timestamp, policy: &PolicyConfig) -> bool {
    let latest_clean = match (health.last_ok, &health.last_bad) {
        (Some(ok), Some(bad)) => ok >= bad.at,
        (Some(_), None) => true,
        (None, _) => false,
    };
    latest_clean && quiet_since_last_bad(health, now, policy)
}

fn quiet_since_last_bad(health: &Health, now: Timestamp, policy: &PolicyConfig) -> bool {
    health
        .last_bad
        .as_ref()
        .is_none_or(|bad| at_least(bad.at, now, policy.quiet_period))
}

/// True when at least `span` has passed from `since` to `now`.
pub(crate) fn at_least(since: Timestamp, now: Timestamp, span: Duration) -> bool {
    // A span too large for a SignedDuration is longer than any real wait.
    let span = SignedDuration::try_from(span).unwrap_or(SignedDuration::MAX);
    now.duration_since(since) >= span
}

fn class_words(class: ErrorClass) -> &'static str {
    match class {
        ErrorClass::AccountSuspended => "account suspended",
        ErrorClass::CredentialsRejected => "credentials rejected",
        ErrorClass::PermissionDenied => "permission denied",
        ErrorClass::Throttled => "throttled",
        ErrorClass::Unavailable => "unavailable",
        ErrorClass::Timeout => "timeout",
        ErrorClass::CapacityExhausted => "capacity exhausted",
        ErrorClass::InvalidRequest => "invalid request",
        ErrorClass::NotFound => "not found",
        ErrorClass::Internal => "internal error",
    }
}

#[cfg(test)]
mod tests;
