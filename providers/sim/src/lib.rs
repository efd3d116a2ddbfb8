//! The `sim` provider: in memory, with configurable latency, capacity and faults.
//!
//! It honours the adapter contract exactly (idempotent deploy on (workload, generation,
//! owner), owners that never see each other's copies, `Gone` after retire, idempotent
//! retire, `list_managed`, `CapacityExhausted` when full)
//! so the controller can be exercised at scale and benchmarked without real vendors. It
//! is never the only test of a real adapter.
//!
//! * [`config`]: [`SimConfig`], read from `lifeboat.yaml` (`kind: sim`), with faults
//!   scheduled from the provider's creation.
//! * [`SimHandle`]: a run-time switch to inject faults, kill copies and read counters.
//!
//! All timing uses tokio's clock, so tests can run it under a paused clock.

pub mod config;
mod state;

use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use lifeboat_provider::{
    Capacity, DeployRequest, DeploymentRef, DeploymentState, Endpoint, ErrorClass, Op, Owner,
    Probe, ProbeReport, Provider, ProviderError,
};
use rand::rngs::SmallRng;
use rand::{RngExt, SeedableRng};
use tokio::time::Instant;

pub use config::{FaultSpec, SimConfig};
pub use state::SimHandle;
use state::{InFlight, Shared, SimDeployment, lock};

/// An in-memory provider. Cheap to share behind an `Arc`; every clone of its
/// [`SimHandle`] sees the same state.
#[derive(Debug)]
pub struct SimProvider {
    name: String,
    config: SimConfig,
    created: Instant,
    state: Shared,
    rng: Mutex<SmallRng>,
}

impl SimProvider {
    /// A provider called `name` (used in handles and endpoints, so copies on two
    /// simulated providers never look alike). Scheduled faults count from now.
    pub fn new(name: impl Into<String>, config: SimConfig) -> SimProvider {
        let rng = match config.seed {
            Some(seed) => SmallRng::seed_from_u64(seed),
            None => SmallRng::seed_from_u64(rand::random()),
        };
        SimProvider {
            name: name.into(),
            config,
            created: Instant::now(),
            state: Shared::default(),
            rng: Mutex::new(rng),
        }
    }

    /// The run-time switch over this provider.
    pub fn handle(&self) -> SimHandle {
        SimHandle {
            state: self.state.clone(),
        }
    }

    /// Counts the call, waits out the simulated latency, then applies any fault.
    async fn call(&self, op: Op) -> Result<(), ProviderError> {
        *lock(&self.state).calls.entry(op).or_default() += 1;
        let delay = self.config.latency + self.jitter();
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        let elapsed = Instant::now().saturating_duration_since(self.created);
        let scheduled = self
            .config
            .faults
            .iter()
            .find(|f| f.hits(op, elapsed))
            .map(|f| f.class);
        let fault = lock(&self.state).runtime_fault(op).or(scheduled);
        match fault {
            None => Ok(()),
            // A black-holed connection: no answer at all; the caller's timeout decides.
            Some(ErrorClass::Timeout) => std::future::pending().await,
            Some(class) => {
                Err(
                    ProviderError::new(class, op, format!("simulated {class} on {}", self.name))
                        .with_code(format!("Sim.{class}")),
                )
            }
        }
    }

    fn jitter(&self) -> Duration {
        if self.config.jitter.is_zero() {
            return Duration::ZERO;
        }
        let max = u64::try_from(self.config.jitter.as_nanos()).unwrap_or(u64::MAX);
        let mut rng = self.rng.lock().unwrap_or_else(|p| p.into_inner());
        Duration::from_nanos(rng.random_range(0..=max))
    }

    fn endpoint(&self, d: &SimDeployment) -> Endpoint {
        Endpoint {
            host: format!("{}.{}.sim.invalid", d.dep.handle, self.name),
            port: d.port,
        }
    }
}

#[async_trait]
impl Provider for SimProvider {
    fn kind(&self) -> &'static str {
        "sim"
    }

    async fn probe(&self) -> Probe {
        self.call(Op::Probe).await?;
        let mut s = lock(&self.state);
        let free = self
            .config
            .capacity
            .map(|cap| cap.saturating_sub(s.used_replicas()));
        Ok(ProbeReport {
            degraded: None,
            capacity: free.map(|replicas| Capacity {
                replicas: Some(replicas),
                ..Capacity::default()
            }),
            lost: std::mem::take(&mut s.lost),
        })
    }

    async fn deploy(&self, req: &DeployRequest) -> Result<DeploymentRef, ProviderError> {
        let _in_flight = InFlight::enter(&self.state);
        self.call(Op::Deploy).await?;
        let mut s = lock(&self.state);
        let existing = s.deployments.values().find(|d| {
            d.dep.workload == req.workload.name
                && d.dep.generation == req.generation
                && d.dep.owner.as_ref() == Some(&req.owner)
        });
        if let Some(d) = existing {
            return Ok(d.dep.clone());
        }
        let replicas = u64::from(req.workload.replicas);
        if let Some(cap) = self.config.capacity
            && s.used_replicas() + replicas > cap
        {
            return Err(ProviderError::new(
                ErrorClass::CapacityExhausted,
                Op::Deploy,
                format!(
                    "{} holds {} of {cap} replicas; {} more do not fit",
                    self.name,
                    s.used_replicas(),
                    replicas
                ),
            ));
        }
        s.next_id += 1;
        let dep = DeploymentRef {
            workload: req.workload.name.clone(),
            generation: req.generation,
            handle: format!("{}-g{}-{}", req.workload.name, req.generation, s.next_id),
            endpoint: None,
            owner: Some(req.owner.clone()),
        };
        s.deployments.insert(
            dep.handle.clone(),
            SimDeployment {
                dep: dep.clone(),
                replicas,
                port: req.workload.port.unwrap_or(80),
                created: Instant::now(),
                failed: None,
            },
        );
        Ok(dep)
    }

    async fn inspect(&self, dep: &DeploymentRef) -> Result<DeploymentState, ProviderError> {
        self.call(Op::Inspect).await?;
        let s = lock(&self.state);
        let Some(d) = s
            .deployments
            .get(&dep.handle)
            .filter(|d| d.dep.owner == dep.owner)
        else {
            return Ok(DeploymentState::Gone);
        };
        if let Some(reason) = &d.failed {
            return Ok(DeploymentState::Failed {
                reason: reason.clone(),
            });
        }
        if Instant::now().saturating_duration_since(d.created) < self.config.healthy_after {
            return Ok(DeploymentState::Pending {
                detail: "simulated start-up".into(),
            });
        }
        Ok(DeploymentState::Healthy {
            endpoint: self.endpoint(d),
        })
    }

    async fn retire(&self, dep: &DeploymentRef) -> Result<(), ProviderError> {
        self.call(Op::Retire).await?;
        let mut s = lock(&self.state);
        if s.deployments
            .get(&dep.handle)
            .is_some_and(|d| d.dep.owner == dep.owner)
        {
            s.deployments.remove(&dep.handle);
        }
        Ok(())
    }

    async fn list_managed(
        &self,
        owner: Option<&Owner>,
    ) -> Result<Vec<DeploymentRef>, ProviderError> {
        self.call(Op::ListManaged).await?;
        let s = lock(&self.state);
        Ok(s.deployments
            .values()
            .filter(|d| Owner::matches(d.dep.owner.as_ref(), owner))
            .map(|d| DeploymentRef {
                endpoint: Some(self.endpoint(d)),
                ..d.dep.clone()
            })
            .collect())
    }
}

#[cfg(test)]
mod tests;
