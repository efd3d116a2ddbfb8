//! The adapter contract between lifeboat's controller and the places that run workloads.
//!
//! Every provider adapter (local processes, AWS EC2, Kubernetes, bare metal, the
//! simulator) implements [`Provider`]. The controller only ever sees this trait, the plain
//! request/response types of [`types`] and the classified [`ProviderError`]: it never
//! parses an error message, and an adapter never reaches into the controller.
//!
//! The contract is deliberately small and free of heavy dependencies (no SDK, no
//! kube, no tokio I/O) so that an adapter crate can depend on it alone. The one piece of
//! I/O adapters share, running a workload's [`HealthCheck`] against a copy, is the
//! `health` module behind the cargo feature of that name, so it exists once and only
//! the crates that check copies themselves pull tokio's networking in.
#![deny(missing_docs)]

#[cfg(feature = "conformance")]
pub mod conformance;
mod error;
#[cfg(feature = "health")]
pub mod health;
pub mod labels;
mod owner;
mod types;

pub use error::{ErrorClass, Op, ProviderError};
pub use owner::Owner;
pub use types::{
    Capacity, DeployRequest, DeploymentRef, DeploymentState, Endpoint, Generation, HealthCheck,
    ParseError, ProbeReport, Resources, Run, Timing, WorkloadSpec,
};

use async_trait::async_trait;

/// What [`Provider::probe`] returns: the provider's standing, or a classified failure.
pub type Probe = Result<ProbeReport, ProviderError>;

/// One place that runs workloads (an EC2 region, a cluster, a pool of hosts, this machine).
///
/// All methods are cancel-safe from the controller's point of view: the controller wraps
/// every call in its own timeout and may drop the future; an adapter must leave no state
/// behind that a later, repeated call could not reconcile.
///
/// Error classes mean the same thing for every method (see [`ErrorClass`]); the
/// controller decides on retries, fall-through and evacuation from the class alone.
///
/// **Ownership.** Every resource an adapter creates carries the request's [`Owner`]
/// (the labels of [`labels`]). An adapter promises that `deploy` finds an earlier copy
/// only among its owner's resources, that `list_managed` returns one owner's resources
/// and nothing else, and that `inspect` and `retire` act on a handle only while the
/// resource behind it still carries the owner of the [`DeploymentRef`]; so two owners
/// (an installation and its drills, two installations on one account) never see or
/// touch each other's copies. The `conformance` feature of this crate checks all of it
/// against a real peer.
#[async_trait]
pub trait Provider: Send + Sync + 'static {
    /// The adapter kind, as written in the config (`local`, `aws-ec2`, ...). Used in
    /// logs and reports only.
    fn kind(&self) -> &'static str;

    /// Reachability **and account standing**.
    ///
    /// Must make at least one authenticated call to the vendor, so that a suspended
    /// account or revoked credentials show up here first. Never panics; every failure
    /// comes back as a classified [`ProviderError`]. Has no side effects on workloads.
    async fn probe(&self) -> Probe;

    /// Starts `req.workload` at `req.generation` and returns as soon as the provider has
    /// accepted the work (it does **not** wait for the workload to become healthy; the
    /// controller polls [`Provider::inspect`] for that).
    ///
    /// Idempotent on (workload, generation, owner): calling it twice, or again after a
    /// crash, yields one deployment and returns the same [`DeploymentRef`]; a copy of
    /// the same (workload, generation) that another owner made is never returned, nor
    /// changed. The adapter passes the generation to the workload as the
    /// `LIFEBOAT_GENERATION` environment variable and tags every resource it creates
    /// with the labels of [`labels`], the owner's included. The returned reference
    /// carries `Some(req.owner)`.
    ///
    /// `CapacityExhausted` tells the controller to try the next candidate provider;
    /// `InvalidRequest` means the workload cannot run here as specified.
    async fn deploy(&self, req: &DeployRequest) -> Result<DeploymentRef, ProviderError>;

    /// The current state of a deployment. Read-only.
    ///
    /// A deployment that no longer exists is `Ok(DeploymentState::Gone)`, not an error:
    /// `NotFound` is reserved for "the provider does not know this handle at all" when
    /// the adapter cannot tell gone from never-existed.
    async fn inspect(&self, dep: &DeploymentRef) -> Result<DeploymentState, ProviderError>;

    /// Stops a deployment and removes what lifeboat created for it.
    ///
    /// Idempotent: retiring something that is already gone is `Ok(())`. Returns once the
    /// provider has accepted the removal; it need not wait for it to finish. A resource
    /// behind the handle that carries another owner than `dep.owner` is left alone (and
    /// `Ok(())`: for this owner, it is gone).
    async fn retire(&self, dep: &DeploymentRef) -> Result<(), ProviderError>;

    /// Everything this provider runs that `owner` created, found by the labels of
    /// [`labels`] rather than by the controller's records, so that copies left behind by
    /// a crash or by an earlier controller can be found and fenced.
    ///
    /// Exactly one owner's copies: `Some(owner)` lists the resources labelled with that
    /// owner (a drill's are not its installation's, nor the other way round); `None`
    /// lists the managed resources with no owner label, made before owners existed,
    /// which an installation adopts and a drill never asks for. Every returned
    /// reference carries the owner it was listed for.
    async fn list_managed(
        &self,
        owner: Option<&Owner>,
    ) -> Result<Vec<DeploymentRef>, ProviderError>;

    /// The phases of deploying `dep` that this adapter timed itself (e.g. `power-on`
    /// for a cold-standby server), for reports that separate waiting for hardware from
    /// the workload's own start-up.
    ///
    /// Read-only and cheap: answered from what the adapter measured in its own
    /// [`Provider::deploy`] calls (no I/O), so it is only complete once that deploy has
    /// returned. Empty by default, and for a deployment this adapter instance did not
    /// make (another process, or before a restart).
    fn timings(&self, dep: &DeploymentRef) -> Vec<Timing> {
        let _ = dep;
        Vec::new()
    }
}
