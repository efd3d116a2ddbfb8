//! Status conditions in the usual Kubernetes shape (`type`, `status`, `reason`,
//! `message`, `lastTransitionTime`, `observedGeneration`), and how lifeboat's provider
//! conditions map onto them. Pure: `now` is a parameter.

use jiff::Timestamp;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};

use crate::model::Condition as ProviderCondition;

/// Sets the condition of `type_` in `conditions`, keeping its `lastTransitionTime` when
/// the status did not change (Kubernetes' convention: the time marks the last flip, not
/// the last write).
pub fn set(
    conditions: &mut Vec<Condition>,
    type_: &str,
    status: bool,
    reason: &str,
    message: &str,
    observed_generation: Option<i64>,
    now: Timestamp,
) {
    let status = if status { "True" } else { "False" }.to_owned();
    let transition = match conditions.iter().find(|c| c.type_ == type_) {
        Some(old) if old.status == status => old.last_transition_time.clone(),
        _ => Time(now),
    };
    let condition = Condition {
        type_: type_.to_owned(),
        status,
        reason: reason.to_owned(),
        message: message.to_owned(),
        last_transition_time: transition,
        observed_generation,
    };
    match conditions.iter_mut().find(|c| c.type_ == type_) {
        Some(slot) => *slot = condition,
        None => conditions.push(condition),
    }
}

/// A provider's `Ready` condition: whether it can take workloads, with lifeboat's
/// condition as the reason (`Healthy`, `Suspended`, ...).
pub fn ready(condition: &ProviderCondition) -> (bool, &'static str) {
    match condition {
        ProviderCondition::Healthy => (true, "Healthy"),
        // Degraded (say, a permission missing) still runs what it runs.
        ProviderCondition::Degraded { .. } => (true, "Degraded"),
        ProviderCondition::Failing { .. } => (false, "Failing"),
        ProviderCondition::Unreachable { .. } => (false, "Unreachable"),
        ProviderCondition::Suspended { .. } => (false, "Suspended"),
        ProviderCondition::Noticed { .. } => (false, "Noticed"),
        ProviderCondition::Fenced { .. } => (false, "Fenced"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_transition_time_marks_the_last_flip() {
        let t1: Timestamp = "2026-11-28T10:00:00Z".parse().unwrap();
        let t2: Timestamp = "2026-11-28T10:05:00Z".parse().unwrap();
        let t3: Timestamp = "2026-11-28T10:09:00Z".parse().unwrap();
        let mut conditions = Vec::new();
        set(&mut conditions, "Ready", true, "Healthy", "", Some(1), t1);
        set(
            &mut conditions,
            "Ready",
            true,
            "Healthy",
            "still",
            Some(2),
            t2,
        );
        assert_eq!(conditions.len(), 1);
        assert_eq!(conditions[0].last_transition_time, Time(t1));
        assert_eq!(conditions[0].message, "still");
        set(
            &mut conditions,
            "Ready",
            false,
            "Suspended",
            "gone",
            Some(2),
            t3,
        );
        assert_eq!(conditions[0].last_transition_time, Time(t3));
        assert_eq!(conditions[0].status, "False");
        set(&mut conditions, "Accepted", true, "Valid", "", None, t3);
        assert_eq!(conditions.len(), 2);
    }

    #[test]
    fn lost_providers_are_not_ready() {
        let since: Timestamp = "2026-11-28T10:00:00Z".parse().unwrap();
        assert_eq!(ready(&ProviderCondition::Healthy), (true, "Healthy"));
        let suspended = ProviderCondition::Suspended {
            reason: lifeboat_provider::ErrorClass::CredentialsRejected,
            since,
        };
        assert_eq!(ready(&suspended), (false, "Suspended"));
        assert!(!ready(&ProviderCondition::Unreachable { since }).0);
    }
}
