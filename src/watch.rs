//! Watching the workloads themselves, not only their providers: what each look at a
//! live copy found, how long it has been unhealthy, and whether it is time to replace
//! it — within a limit, so a copy that keeps dying is reported, not restarted in a
//! storm.
//!
//! Pure: the daemon inspects the copies through their adapters and feeds the results
//! in with the time; nothing here does I/O. A provider that does not answer says
//! nothing about the copy ([`Seen::Unknown`]): whether to leave that provider is the
//! provider watch's business, so an outage is never mistaken for a dead workload.

use std::collections::BTreeMap;
use std::time::Duration;

use jiff::Timestamp;
use lifeboat_provider::{DeploymentState, Generation};
use serde::{Deserialize, Serialize};

/// What one look at a copy found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(tag = "health", rename_all = "snake_case")]
pub enum Seen {
    /// Its health check passes.
    Healthy,
    /// It runs but fails its check, has failed, or is gone.
    Unhealthy {
        /// What the adapter said.
        detail: String,
    },
    /// Its provider's probe reported it lost: the vendor stopped or removed it without
    /// lifeboat asking (an instance terminated, a process that died). It will not come
    /// back, so it is replaced without the grace period (but within the limit).
    Lost {
        /// What the provider said.
        detail: String,
    },
    /// Its provider did not answer: nothing is known about the copy.
    Unknown {
        /// The provider's error.
        detail: String,
    },
}

impl Seen {
    /// What the adapter or the provider said, unless the copy is healthy.
    pub fn detail(&self) -> Option<&str> {
        match self {
            Seen::Healthy => None,
            Seen::Unhealthy { detail } | Seen::Lost { detail } | Seen::Unknown { detail } => {
                Some(detail)
            }
        }
    }

    /// How an adapter's view of a deployment reads as a health result. A copy still
    /// starting (`Pending`, or `Running` before its first passing check) counts as
    /// unhealthy: a copy that never becomes healthy must be replaced too, and the grace
    /// period is what gives a slow start its time.
    pub fn of(state: &DeploymentState) -> Seen {
        match state {
            DeploymentState::Healthy { .. } => Seen::Healthy,
            DeploymentState::Running { .. } => Seen::Unhealthy {
                detail: "running, failing its health check".into(),
            },
            DeploymentState::Pending { detail } => Seen::Unhealthy {
                detail: format!("not running yet: {detail}"),
            },
            DeploymentState::Failed { reason } => Seen::Unhealthy {
                detail: format!("failed: {reason}"),
            },
            DeploymentState::Gone => Seen::Unhealthy {
                detail: "gone: the provider no longer runs it".into(),
            },
        }
    }
}

/// One look at a copy, and when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Check {
    /// What it found.
    #[serde(flatten)]
    pub seen: Seen,
    /// When.
    pub at: Timestamp,
}

/// How patient the watch is (`policy.replace_after`, `policy.max_replacements` per
/// `policy.replacement_window`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Patience {
    /// How long a copy may stay unhealthy before it is replaced.
    pub replace_after: Duration,
    /// Replacements of one workload allowed within `window`.
    pub limit: u32,
    /// The window the limit counts over.
    pub window: Duration,
}

/// What to do about one workload's copy now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Healthy, or nothing known against it.
    Fine,
    /// Unhealthy, within the grace period that ends at `until`.
    Waiting {
        /// When it is replaced if it stays unhealthy.
        until: Timestamp,
    },
    /// Unhealthy past the grace period: replace it.
    Replace {
        /// Since when it has been unhealthy.
        since: Timestamp,
        /// The last thing its adapter said.
        detail: String,
    },
    /// Unhealthy past the grace period, but replaced `limit` times within the window
    /// already: left as it is (and reported) until `until`.
    Limited {
        /// When the oldest replacement in the window leaves it.
        until: Timestamp,
        /// The replacements counted.
        replacements: usize,
    },
}

/// The watch over one workload's live copy, kept in the store across restarts.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct CopyWatch {
    /// The provider the watched copy runs on.
    pub provider: String,
    /// The watched copy's generation.
    pub generation: Generation,
    /// The last look at it.
    pub last: Option<Check>,
    /// Since when it has been unhealthy without a healthy look in between.
    pub unhealthy_since: Option<Timestamp>,
    /// Its provider reported it lost since then: no grace period to wait out.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub lost: bool,
    /// When lifeboat replaced one of this workload's copies, oldest first (pruned to
    /// the window).
    #[serde(default)]
    pub replacements: Vec<Timestamp>,
}

impl CopyWatch {
    /// Records a look at copy (`provider`, `generation`) at `at`. Another copy than the
    /// one watched (the workload moved, or was replaced) starts a fresh watch; the
    /// workload's replacement history stays.
    pub fn observe(&mut self, provider: &str, generation: Generation, seen: Seen, at: Timestamp) {
        if self.provider != provider || self.generation != generation {
            self.provider = provider.to_owned();
            self.generation = generation;
            self.last = None;
            self.unhealthy_since = None;
            self.lost = false;
        }
        match &seen {
            Seen::Healthy => {
                self.unhealthy_since = None;
                self.lost = false;
            }
            Seen::Unhealthy { .. } => {
                self.unhealthy_since.get_or_insert(at);
            }
            Seen::Lost { .. } => {
                self.unhealthy_since.get_or_insert(at);
                self.lost = true;
            }
            Seen::Unknown { .. } => {}
        }
        self.last = Some(Check { seen, at });
    }

    /// What to do about the copy at `now`.
    pub fn verdict(&self, patience: &Patience, now: Timestamp) -> Verdict {
        let Some(since) = self.unhealthy_since else {
            return Verdict::Fine;
        };
        let until = if self.lost {
            since
        } else {
            add(since, patience.replace_after)
        };
        if now < until {
            return Verdict::Waiting { until };
        }
        let recent: Vec<Timestamp> = (self.replacements.iter().copied())
            .filter(|&at| add(at, patience.window) > now)
            .collect();
        if recent.len() >= patience.limit as usize {
            let oldest = recent.iter().min().copied().unwrap_or(now);
            return Verdict::Limited {
                until: add(oldest, patience.window),
                replacements: recent.len(),
            };
        }
        let detail = (self.last.as_ref())
            .and_then(|last| last.seen.detail())
            .unwrap_or("unhealthy")
            .to_owned();
        Verdict::Replace { since, detail }
    }

    /// A replacement starts at `now`: counted, and history older than `window` goes.
    pub fn replaced(&mut self, window: Duration, now: Timestamp) {
        self.replacements.retain(|&at| add(at, window) > now);
        self.replacements.push(now);
    }
}

/// Workloads whose copy is to be replaced now, with since when it has been unhealthy
/// and why; and those held back by the limit, with until when and how many
/// replacements were counted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Assessment {
    /// Replace these now.
    pub replace: BTreeMap<String, (Timestamp, String)>,
    /// Unhealthy past the grace period, but replaced too often already.
    pub limited: BTreeMap<String, (Timestamp, usize)>,
}

/// The verdict over every watched workload at `now`.
pub fn assess(
    watches: &BTreeMap<String, CopyWatch>,
    patience: &Patience,
    now: Timestamp,
) -> Assessment {
    let mut out = Assessment::default();
    for (workload, watch) in watches {
        match watch.verdict(patience, now) {
            Verdict::Replace { since, detail } => {
                out.replace.insert(workload.clone(), (since, detail));
            }
            Verdict::Limited {
                until,
                replacements,
            } => {
                out.limited.insert(workload.clone(), (until, replacements));
            }
            Verdict::Fine | Verdict::Waiting { .. } => {}
        }
    }
    out
}

fn add(at: Timestamp, d: Duration) -> Timestamp {
    at.saturating_add(jiff::SignedDuration::try_from(d).unwrap_or(jiff::SignedDuration::MAX))
        .unwrap_or(Timestamp::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const PATIENCE: Patience = Patience {
        replace_after: Duration::from_secs(30),
        limit: 3,
        window: Duration::from_secs(3600),
    };

    fn t(secs: i64) -> Timestamp {
        Timestamp::from_second(1_800_000_000 + secs).unwrap()
    }

    fn dead() -> Seen {
        Seen::Unhealthy {
            detail: "gone".into(),
        }
    }

    #[test]
    fn a_copy_is_replaced_only_after_the_grace_period() {
        let mut watch = CopyWatch::default();
        watch.observe("p", Generation(1), Seen::Healthy, t(0));
        assert_eq!(watch.verdict(&PATIENCE, t(0)), Verdict::Fine);
        watch.observe("p", Generation(1), dead(), t(10));
        assert_eq!(
            watch.verdict(&PATIENCE, t(39)),
            Verdict::Waiting { until: t(40) }
        );
        // A provider that does not answer neither starts nor ends the grace period.
        let unknown = Seen::Unknown {
            detail: "timeout".into(),
        };
        watch.observe("p", Generation(1), unknown, t(20));
        assert!(matches!(
            watch.verdict(&PATIENCE, t(40)),
            Verdict::Replace { since, .. } if since == t(10)
        ));
    }

    #[test]
    fn a_healthy_look_ends_the_grace_period_and_a_new_copy_starts_afresh() {
        let mut watch = CopyWatch::default();
        watch.observe("p", Generation(1), dead(), t(0));
        watch.observe("p", Generation(1), Seen::Healthy, t(20));
        watch.observe("p", Generation(1), dead(), t(25));
        assert_eq!(
            watch.verdict(&PATIENCE, t(50)),
            Verdict::Waiting { until: t(55) }
        );
        watch.replaced(PATIENCE.window, t(60));
        watch.observe("q", Generation(2), Seen::Healthy, t(70));
        assert_eq!(watch.verdict(&PATIENCE, t(70)), Verdict::Fine);
        assert_eq!(watch.replacements, [t(60)]);
    }

    #[test]
    fn a_copy_its_provider_reports_lost_is_replaced_at_once_but_within_the_limit() {
        let lost = Seen::Lost {
            detail: "terminated by the vendor".into(),
        };
        let mut watch = CopyWatch::default();
        watch.observe("p", Generation(1), Seen::Healthy, t(0));
        watch.observe("p", Generation(1), lost.clone(), t(10));
        // A later look through `inspect` saying the same does not bring the grace back.
        watch.observe("p", Generation(1), dead(), t(11));
        assert_eq!(
            watch.verdict(&PATIENCE, t(11)),
            Verdict::Replace {
                since: t(10),
                detail: "gone".into()
            }
        );
        watch.replacements = vec![t(0), t(1), t(2)];
        assert!(matches!(
            watch.verdict(&PATIENCE, t(11)),
            Verdict::Limited {
                replacements: 3,
                ..
            }
        ));
        // The new copy is watched with the usual patience.
        watch.observe("p", Generation(2), dead(), t(20));
        watch.replacements.clear();
        assert_eq!(
            watch.verdict(&PATIENCE, t(20)),
            Verdict::Waiting { until: t(50) }
        );
    }

    #[test]
    fn a_copy_that_keeps_dying_is_limited_then_tried_again() {
        let mut watch = CopyWatch::default();
        for (i, generation) in (1..=3).enumerate() {
            let at = t(i as i64 * 100);
            watch.observe("p", Generation(generation), dead(), at);
            let now = t(i as i64 * 100 + 30);
            assert!(matches!(
                watch.verdict(&PATIENCE, now),
                Verdict::Replace { .. }
            ));
            watch.replaced(PATIENCE.window, now);
        }
        watch.observe("p", Generation(4), dead(), t(300));
        assert_eq!(
            watch.verdict(&PATIENCE, t(400)),
            Verdict::Limited {
                until: t(30 + 3600),
                replacements: 3
            }
        );
        assert!(matches!(
            watch.verdict(&PATIENCE, t(30 + 3600)),
            Verdict::Replace { .. }
        ));
    }

    proptest! {
        /// Whatever the looks, no workload is replaced more than `limit` times within
        /// any window, and never before it has been unhealthy for the grace period.
        #[test]
        fn replacements_respect_the_limit_and_the_grace_period(
            looks in proptest::collection::vec((0u8..3, 1i64..40), 1..300),
        ) {
            let mut watch = CopyWatch::default();
            let mut now = 0;
            let mut generation = 1;
            let mut done: Vec<i64> = Vec::new();
            for (kind, step) in looks {
                now += step;
                let seen = match kind {
                    0 => Seen::Healthy,
                    1 => dead(),
                    _ => Seen::Unknown { detail: "x".into() },
                };
                watch.observe("p", Generation(generation), seen, t(now));
                if let Verdict::Replace { since, .. } = watch.verdict(&PATIENCE, t(now)) {
                    prop_assert!(t(now) >= add(since, PATIENCE.replace_after));
                    watch.replaced(PATIENCE.window, t(now));
                    done.push(now);
                    generation += 1;
                }
            }
            for (i, &at) in done.iter().enumerate() {
                let within = done[i..].iter().filter(|&&b| b < at + 3600).count();
                prop_assert!(within <= PATIENCE.limit as usize, "{done:?}");
            }
        }
    }
}
