//! What the controller knows of one dataset after a round: where its primary and its
//! standby run, how far behind the standby is, and since when it has been unprotected.
//! Plain data, stored each round and read by `status`, the API and the metrics.

use std::time::Duration;

use jiff::Timestamp;
use lifeboat_provider::{DeploymentRef, Endpoint, Generation};
use serde::{Deserialize, Serialize};

/// One dataset (a workload with data), as the last round saw it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct DatasetState {
    /// The workload whose data it is.
    pub workload: String,
    /// The replication method (`postgres-streaming`).
    pub method: String,
    /// The recovery point objective, in milliseconds.
    pub rpo_ms: u64,
    /// Whether commits wait for the standby (configured).
    pub synchronous: bool,
    /// The primary: the workload's placed copy.
    pub primary: Option<Member>,
    /// The warm standby lifeboat keeps, once deployed.
    pub standby: Option<StandbyCopy>,
    /// The standby's lag at its last reading; `None` when it is not streaming. For a
    /// snapshot dataset, the age of its last snapshot.
    pub lag: Option<LagReading>,
    /// A snapshot dataset's last shipped snapshot.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapshot: Option<super::Snapshot>,
    /// Why the last snapshot failed, until one succeeds again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapshot_failed: Option<String>,
    /// Since when the dataset has had no streaming standby, or no snapshot (`None`:
    /// protected now).
    pub unprotected_since: Option<Timestamp>,
    /// What is wrong, for humans (no standby candidate, seeding, not streaming, ...).
    pub problem: Option<String>,
}

/// A member of a dataset: which copy, where.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Member {
    /// Its provider.
    pub provider: String,
    /// Its generation.
    pub generation: Generation,
    /// Where it listens, once known.
    pub endpoint: Option<Endpoint>,
}

/// The standby copy lifeboat deployed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct StandbyCopy {
    /// Its provider.
    pub provider: String,
    /// The copy (generation: the primary's plus one).
    pub deployment: DeploymentRef,
    /// When it was deployed.
    pub since: Timestamp,
    /// The name it streams under.
    pub stream: String,
}

/// One reading of a standby's lag.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct LagReading {
    /// Changes the standby has not replayed yet.
    pub bytes: u64,
    /// How long ago the last replayed change was committed at the primary.
    pub seconds: f64,
    /// Whether the primary waits for this standby's confirmation of each commit.
    pub synchronous: bool,
    /// When it was read.
    pub at: Timestamp,
}

impl DatasetState {
    /// A dataset not yet looked at.
    pub fn new(workload: &str, method: &str, rpo: Duration, synchronous: bool) -> DatasetState {
        DatasetState {
            workload: workload.to_owned(),
            method: method.to_owned(),
            rpo_ms: u64::try_from(rpo.as_millis()).unwrap_or(u64::MAX),
            synchronous,
            primary: None,
            standby: None,
            lag: None,
            snapshot: None,
            snapshot_failed: None,
            unprotected_since: None,
            problem: None,
        }
    }

    /// Whether a standby streams now.
    pub fn streaming(&self) -> bool {
        self.standby.is_some() && self.lag.is_some()
    }

    /// Whether losing the primary now would leave a copy of the data elsewhere: a
    /// streaming standby, or a shipped snapshot.
    pub fn protected(&self) -> bool {
        self.streaming() || self.snapshot.is_some()
    }

    /// The alert, when there is one: a standby further behind than the `rpo`, or no
    /// streaming standby at all (losing the primary's vendor now would lose the data
    /// since it stopped, or all of it).
    pub fn alert(&self) -> Option<String> {
        self.primary.as_ref()?;
        let problem = || {
            (self.problem.as_ref())
                .map(|p| format!(": {p}"))
                .unwrap_or_default()
        };
        if self.method == crate::config::DataMethod::Snapshot.as_str() {
            return match (&self.snapshot, &self.lag) {
                (Some(_), Some(lag)) if lag.seconds * 1000.0 > self.rpo_ms as f64 => Some(format!(
                    "{}'s last snapshot is {:.1} s old, over its rpo of {} ms{}",
                    self.workload,
                    lag.seconds,
                    self.rpo_ms,
                    problem()
                )),
                (Some(_), _) => None,
                (None, _) => Some(format!(
                    "{} has no snapshot yet{}",
                    self.workload,
                    problem()
                )),
            };
        }
        match &self.lag {
            Some(lag) if lag.seconds * 1000.0 > self.rpo_ms as f64 => Some(format!(
                "{}'s standby is {:.1} s behind, over its rpo of {} ms",
                self.workload, lag.seconds, self.rpo_ms
            )),
            Some(_) => None,
            None => Some(format!(
                "{} has no streaming standby{}",
                self.workload,
                problem()
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(lag_seconds: Option<f64>) -> DatasetState {
        let mut s = DatasetState::new("db", "postgres-streaming", Duration::from_secs(5), false);
        s.primary = Some(Member {
            provider: "a".into(),
            generation: Generation(1),
            endpoint: None,
        });
        s.lag = lag_seconds.map(|seconds| LagReading {
            bytes: 10,
            seconds,
            synchronous: false,
            at: Timestamp::UNIX_EPOCH,
        });
        s
    }

    #[test]
    fn a_standby_behind_its_rpo_raises_the_alert_and_one_within_does_not() {
        assert_eq!(state(Some(4.9)).alert(), None);
        let alert = state(Some(7.5)).alert().unwrap();
        assert!(
            alert.contains("7.5 s behind, over its rpo of 5000 ms"),
            "{alert}"
        );
        let alert = state(None).alert().unwrap();
        assert!(alert.contains("no streaming standby"), "{alert}");
    }
}
