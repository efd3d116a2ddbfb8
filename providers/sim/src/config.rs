//! `kind: sim` settings: latency, capacity, time to become healthy, scheduled faults.
//!
//! Durations are friendly strings (`250ms`, `5s`, `1m 30s`) parsed with jiff, the same
//! grammar as the rest of `lifeboat.yaml`; this crate cannot use the controller's own
//! parser because an adapter depends on the contract crate alone.

use std::time::Duration;

use lifeboat_provider::{ErrorClass, Op};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Settings of a `kind: sim` provider.
///
/// ```yaml
/// adapter:
///   kind: sim
///   latency: 20ms
///   jitter: 10ms
///   capacity: 50
///   healthy_after: 2s
///   faults:
///     - { from: 5s, until: 20s, class: account-suspended, ops: [probe, deploy] }
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SimConfig {
    /// Fixed delay of every call, as if the vendor's API were this far away.
    #[serde(with = "friendly")]
    pub latency: Duration,
    /// Extra random delay of every call, uniform in `[0, jitter]`.
    #[serde(with = "friendly")]
    pub jitter: Duration,
    /// Replicas the simulated provider really holds; `None` is unbounded. Distinct from
    /// the provider's `capacity` in lifeboat.yaml (what the planner believes), so a test
    /// can make a provider fuller than declared.
    pub capacity: Option<u64>,
    /// How long a new deployment stays pending before it reports healthy.
    #[serde(with = "friendly")]
    pub healthy_after: Duration,
    /// Faults scheduled from the moment the provider is created.
    pub faults: Vec<FaultSpec>,
    /// Seed of the jitter generator, for reproducible benchmarks; random when unset.
    pub seed: Option<u64>,
}

/// A fault active in the window `[from, until)` after the provider was created.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultSpec {
    /// Start of the window, from the provider's creation.
    #[serde(with = "friendly", default)]
    pub from: Duration,
    /// End of the window (exclusive); `None` lasts forever.
    #[serde(with = "friendly_option", default)]
    pub until: Option<Duration>,
    /// The class every affected call fails with. `timeout` makes the call hang instead
    /// of answering, like a black-holed connection, so the caller's own timeout fires.
    pub class: ErrorClass,
    /// The operations affected; empty means all of them.
    #[serde(default)]
    pub ops: Vec<Op>,
}

impl FaultSpec {
    /// Whether this fault hits `op` at `elapsed` since the provider's creation.
    pub fn hits(&self, op: Op, elapsed: Duration) -> bool {
        let in_window = elapsed >= self.from && self.until.is_none_or(|until| elapsed < until);
        in_window && (self.ops.is_empty() || self.ops.contains(&op))
    }
}

/// Parses a friendly, non-negative duration (`250ms`, `5s`, `1h 30m`).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let signed: jiff::SignedDuration = text
        .trim()
        .parse()
        .map_err(|_| format!("invalid duration {text:?} (expected e.g. \"250ms\", \"5s\")"))?;
    Duration::try_from(signed).map_err(|_| format!("duration {text:?} must not be negative"))
}

fn format_duration(duration: Duration) -> String {
    let signed = jiff::SignedDuration::try_from(duration).unwrap_or(jiff::SignedDuration::MAX);
    format!("{signed:#}")
}

mod friendly {
    use super::*;

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format_duration(*d))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        parse_duration(&String::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}

mod friendly_option {
    use super::*;

    pub fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => s.serialize_str(&format_duration(*d)),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        Option::<String>::deserialize(d)?
            .map(|text| parse_duration(&text).map_err(serde::de::Error::custom))
            .transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_documented_example() {
        let yaml = "latency: 20ms\njitter: 10ms\ncapacity: 50\nhealthy_after: 2s\n\
                    faults:\n  - { from: 5s, until: 20s, class: account-suspended, ops: [probe, deploy] }\n";
        let config: SimConfig = serde_yaml::from_str(yaml).unwrap();
        assert_eq!(config.latency, Duration::from_millis(20));
        assert_eq!(config.capacity, Some(50));
        assert_eq!(
            config.faults,
            [FaultSpec {
                from: Duration::from_secs(5),
                until: Some(Duration::from_secs(20)),
                class: ErrorClass::AccountSuspended,
                ops: vec![Op::Probe, Op::Deploy],
            }]
        );
        let again: SimConfig =
            serde_yaml::from_str(&serde_yaml::to_string(&config).unwrap()).unwrap();
        assert_eq!(again, config);
    }

    #[test]
    fn reads_inside_a_kind_tagged_adapter_enum() {
        // The shape lifeboat.yaml wraps it in: `adapter: {kind: sim, ...}`.
        #[derive(Debug, Deserialize)]
        #[serde(tag = "kind", rename_all = "kebab-case")]
        enum Adapter {
            Sim(SimConfig),
        }
        let Adapter::Sim(config) =
            serde_yaml::from_str("kind: sim\ncapacity: 2\nhealthy_after: 1s\n").unwrap();
        assert_eq!(config.capacity, Some(2));
        assert!(serde_yaml::from_str::<Adapter>("kind: sim\ncapacty: 2\n").is_err());
    }

    #[test]
    fn refuses_unknown_fields_and_bad_durations() {
        assert!(serde_yaml::from_str::<SimConfig>("latancy: 1s").is_err());
        assert!(serde_yaml::from_str::<SimConfig>("latency: soon").is_err());
        assert!(serde_yaml::from_str::<SimConfig>("latency: -1s").is_err());
        assert_eq!(
            serde_yaml::from_str::<SimConfig>("{}").unwrap(),
            SimConfig::default()
        );
    }

    #[test]
    fn a_fault_hits_inside_its_window_and_ops_only() {
        let fault = FaultSpec {
            from: Duration::from_secs(5),
            until: Some(Duration::from_secs(20)),
            class: ErrorClass::AccountSuspended,
            ops: vec![Op::Probe],
        };
        assert!(!fault.hits(Op::Probe, Duration::from_secs(4)));
        assert!(fault.hits(Op::Probe, Duration::from_secs(5)));
        assert!(!fault.hits(Op::Deploy, Duration::from_secs(5)));
        assert!(!fault.hits(Op::Probe, Duration::from_secs(20)));
        let forever = FaultSpec {
            until: None,
            ops: vec![],
            ..fault
        };
        assert!(forever.hits(Op::Retire, Duration::from_secs(3600)));
    }
}
