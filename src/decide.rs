//! Conditions → which providers to leave, and by when.
//!
//! # Rules
//!
//! * `Suspended` acts on the whole account: every provider with the same
//!   [`Config::account_of`] is left, now, even those that look healthy.
//! * `Fenced` → that provider, now. `Noticed{deadline}` → that provider, by
//!   `deadline − notice_margin`. (A notice for a vendor or an account already reached
//!   each of its providers' conditions: see [`crate::conditions::notices_for`].)
//! * `Unreachable` → only that provider, now.
//! * `Degraded` and `Healthy` → stay; a degraded provider raises an alert.
//! * When a provider has several causes, the most urgent wins: the earliest deadline
//!   (`None`, meaning now, first), and a verdict over a flap at equal urgency.
//!
//! # Fail safe
//!
//! When no configured provider answers — every one is `Unreachable`, or `Failing` on its
//! way there — the likeliest explanation is our own network, not every vendor failing
//! together, and there is nowhere to go anyway. Then no provider is left *for being
//! unreachable*; they are listed in [`Decision::held_back`] with an alert. Verdicts
//! (account loss, notices, fences) are still acted on. Counting `Failing` matters:
//! probes are jittered, so when our network goes, the providers cross the grace period
//! one after the other, and the first ones must not be evacuated onto the last.

use std::collections::BTreeMap;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::config::Config;
use crate::model::{Cause, Condition, Departure};

/// What to do about the providers' conditions. Serialisable so it can be journaled and
/// shown by `lifeboat plan --json`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Decision {
    /// Providers to leave, one entry each, sorted by provider name.
    pub departures: Vec<Departure>,
    /// Providers that are `Unreachable` but deliberately not left (fail safe: no
    /// provider answers), sorted by name.
    pub held_back: Vec<String>,
    /// Things a human should know: why something was held back, which providers are
    /// degraded.
    pub alerts: Vec<String>,
}

impl Decision {
    /// The providers being left, comma-separated, for humans.
    pub fn leaving(&self) -> String {
        let names: Vec<&str> = self
            .departures
            .iter()
            .map(|d| d.provider.as_str())
            .collect();
        names.join(", ")
    }
}

/// Decides which providers to leave, given every provider's condition at `now`. A
/// provider missing from `conditions` counts as `Healthy`; a name in `conditions` that
/// the config does not know is still acted on, for itself alone.
pub fn decide(
    config: &Config,
    conditions: &BTreeMap<String, Condition>,
    now: Timestamp,
) -> Decision {
    let mut decision = Decision::default();
    let none_answers = !config.providers.is_empty()
        && config.providers.iter().all(|p| {
            matches!(
                conditions.get(&p.name),
                Some(Condition::Unreachable { .. } | Condition::Failing { .. })
            )
        });
    let mut chosen: BTreeMap<String, Departure> = BTreeMap::new();
    for (name, cond) in conditions {
        match cond {
            Condition::Healthy | Condition::Failing { .. } => {}
            Condition::Degraded { reason } => {
                decision
                    .alerts
                    .push(format!("provider {name} is degraded: {reason}"));
            }
            Condition::Suspended { reason, since: _ } => {
                let account = config.provider(name).map(|p| config.account_of(p));
                let reason_text = match &account {
                    Some(a) => format!("account {a} lost: {reason:?} on {name}"),
                    None => format!("account lost: {reason:?} on {name}"),
                };
                let members: Vec<String> = match &account {
                    Some(a) => config
                        .providers
                        .iter()
                        .filter(|p| p.is_on(a))
                        .map(|p| p.name.clone())
                        .collect(),
                    None => vec![name.clone()],
                };
                let cause = Cause::AccountLost {
                    account,
                    seen_on: name.clone(),
                    class: *reason,
                };
                for member in members {
                    offer(
                        &mut chosen,
                        member,
                        reason_text.clone(),
                        cause.clone(),
                        None,
                    );
                }
            }
            Condition::Fenced { by } => {
                let cause = Cause::Fenced { by: by.clone() };
                offer(
                    &mut chosen,
                    name.clone(),
                    format!("fenced by {by}"),
                    cause,
                    None,
                );
            }
            Condition::Noticed { deadline } => {
                // Finish before the vendor's deadline, with the configured margin.
                let by = deadline
                    .saturating_sub(config.policy.notice_margin)
                    .unwrap_or(Timestamp::MIN);
                let cause = Cause::Noticed {
                    deadline: *deadline,
                };
                let text = format!("notice: gone by {deadline}");
                offer(&mut chosen, name.clone(), text, cause, Some(by));
            }
            Condition::Unreachable { since } => {
                if none_answers {
                    decision.held_back.push(name.clone());
                    continue;
                }
                let cause = Cause::Unreachable { since: *since };
                let text = format!("unreachable since {since}");
                offer(&mut chosen, name.clone(), text, cause, None);
            }
        }
    }
    if !decision.held_back.is_empty() {
        decision.alerts.push(format!(
            "no provider answers at {now} (unreachable: {}): most likely our own network; \
             leaving none of them until some provider answers",
            decision.held_back.join(", ")
        ));
    }
    decision.departures = chosen.into_values().collect();
    decision
}

/// Records a departure for `provider` unless a more urgent one is already there.
fn offer(
    chosen: &mut BTreeMap<String, Departure>,
    provider: String,
    reason: String,
    cause: Cause,
    deadline: Option<Timestamp>,
) {
    let candidate = Departure {
        provider: provider.clone(),
        reason,
        cause,
        deadline,
    };
    match chosen.get(&provider) {
        Some(existing) if urgency(existing) <= urgency(&candidate) => {}
        _ => {
            chosen.insert(provider, candidate);
        }
    }
}

/// Smaller is more urgent: earliest deadline (`None` = now), then verdict before flap.
fn urgency(d: &Departure) -> (Option<Timestamp>, bool) {
    (d.deadline, d.cause.is_transient())
}

#[cfg(test)]
mod tests;
