//! The simulator's shared state and the run-time switch ([`SimHandle`]) over it.
//!
//! A std `Mutex` guards it: every critical section is a few map operations and is never
//! held across an `.await`, so an async lock would only add cost.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};

use lifeboat_provider::{DeploymentRef, ErrorClass, Op};
use tokio::time::Instant;

/// One simulated deployment.
#[derive(Debug, Clone)]
pub(crate) struct SimDeployment {
    pub dep: DeploymentRef,
    pub replicas: u64,
    pub port: u16,
    pub created: Instant,
    /// Set by [`SimHandle::fail`]: the copy crashed and will not recover.
    pub failed: Option<String>,
}

/// A fault switched on at run time, active until cleared.
#[derive(Debug, Clone)]
struct RuntimeFault {
    class: ErrorClass,
    ops: Vec<Op>,
}

/// A fault for the next few calls of one operation.
#[derive(Debug, Clone)]
struct Countdown {
    op: Op,
    class: ErrorClass,
    left: u32,
}

#[derive(Debug, Default)]
pub(crate) struct State {
    /// Live deployments by handle.
    pub deployments: BTreeMap<String, SimDeployment>,
    pub next_id: u64,
    runtime_faults: Vec<RuntimeFault>,
    countdowns: Vec<Countdown>,
    /// Deployments removed behind lifeboat's back, reported by the next probe.
    pub lost: Vec<DeploymentRef>,
    pub calls: HashMap<Op, u64>,
    pub deploys_in_flight: usize,
    pub max_deploys_in_flight: usize,
}

impl State {
    /// The run-time fault for `op`, if any; consumes one countdown call.
    pub fn runtime_fault(&mut self, op: Op) -> Option<ErrorClass> {
        if let Some(countdown) = self
            .countdowns
            .iter_mut()
            .find(|c| c.op == op && c.left > 0)
        {
            countdown.left -= 1;
            return Some(countdown.class);
        }
        self.runtime_faults
            .iter()
            .find(|f| f.ops.is_empty() || f.ops.contains(&op))
            .map(|f| f.class)
    }

    /// Replicas held by live deployments.
    pub fn used_replicas(&self) -> u64 {
        self.deployments.values().map(|d| d.replicas).sum()
    }
}

pub(crate) type Shared = Arc<Mutex<State>>;

pub(crate) fn lock(state: &Shared) -> MutexGuard<'_, State> {
    // A panic while holding the lock leaves the maps consistent (no multi-step update
    // is interrupted half-way), so a poisoned lock is still safe to use.
    state
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Counts a deploy in flight for as long as it lives, also when the caller drops the
/// call half-way (the controller's timeout), so the concurrency figure stays honest.
pub(crate) struct InFlight(pub Shared);

impl InFlight {
    pub fn enter(state: &Shared) -> InFlight {
        let mut s = lock(state);
        s.deploys_in_flight += 1;
        s.max_deploys_in_flight = s.max_deploys_in_flight.max(s.deploys_in_flight);
        InFlight(state.clone())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        lock(&self.0).deploys_in_flight -= 1;
    }
}

/// A cloneable switch over a running [`crate::SimProvider`]: inject and clear faults,
/// kill or crash deployments, and read what the provider saw. Tests and scale runs use
/// it to change the world while the controller runs.
#[derive(Debug, Clone)]
pub struct SimHandle {
    pub(crate) state: Shared,
}

impl SimHandle {
    /// Makes every call of `ops` (all operations when empty) fail with `class` until
    /// [`SimHandle::clear_faults`]. `Timeout` makes the calls hang instead.
    pub fn set_fault(&self, class: ErrorClass, ops: &[Op]) {
        lock(&self.state).runtime_faults.push(RuntimeFault {
            class,
            ops: ops.to_vec(),
        });
    }

    /// Makes the next `times` calls of `op` fail with `class`, then succeed again: a
    /// transient fault, for retry tests.
    pub fn fail_next(&self, op: Op, class: ErrorClass, times: u32) {
        lock(&self.state).countdowns.push(Countdown {
            op,
            class,
            left: times,
        });
    }

    /// Clears every run-time fault (scheduled faults from the config keep their window).
    pub fn clear_faults(&self) {
        let mut s = lock(&self.state);
        s.runtime_faults.clear();
        s.countdowns.clear();
    }

    /// Removes a deployment as the vendor would (an instance terminated behind our
    /// back): `inspect` says `Gone` and the next probe reports it lost. False when the
    /// handle is unknown.
    pub fn kill(&self, handle: &str) -> bool {
        let mut s = lock(&self.state);
        match s.deployments.remove(handle) {
            Some(d) => {
                s.lost.push(d.dep);
                true
            }
            None => false,
        }
    }

    /// Crashes a deployment: it stays listed but `inspect` reports it `Failed`.
    pub fn fail(&self, handle: &str, reason: &str) -> bool {
        match lock(&self.state).deployments.get_mut(handle) {
            Some(d) => {
                d.failed = Some(reason.to_owned());
                true
            }
            None => false,
        }
    }

    /// Every live deployment, ordered by handle.
    pub fn deployments(&self) -> Vec<DeploymentRef> {
        lock(&self.state)
            .deployments
            .values()
            .map(|d| d.dep.clone())
            .collect()
    }

    /// Live deployments of one workload.
    pub fn copies_of(&self, workload: &str) -> Vec<DeploymentRef> {
        self.deployments()
            .into_iter()
            .filter(|d| d.workload == workload)
            .collect()
    }

    /// Calls of `op` received so far, including failed ones.
    pub fn calls(&self, op: Op) -> u64 {
        lock(&self.state).calls.get(&op).copied().unwrap_or(0)
    }

    /// The most deploy calls that were in flight at once.
    pub fn max_concurrent_deploys(&self) -> usize {
        lock(&self.state).max_deploys_in_flight
    }
}
