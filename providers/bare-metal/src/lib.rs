//! The `bare-metal` provider: workloads on your own servers over SSH (agentless), with
//! cold-standby servers powered on and off through their BMC's Redfish API.
//!
//! # Tour
//! - [`config`]: the `kind: bare-metal` settings (hosts, host-key policy, BMCs, standby).
//! - `ssh.rs`: one shell script per SSH connection, through [russh]. russh is pure Rust
//!   and async: no `ssh` binary is needed where lifeboat runs (a slim container image
//!   works), and login and host-key outcomes come back as typed values, so a rejected
//!   key or an unknown host key is classified from a value, not by parsing the text an
//!   `ssh` client prints. (The `openssh` crate, which drives the system OpenSSH client
//!   over a multiplexed master connection, was the alternative: it would bring
//!   `~/.ssh/config` for free, but needs the binary and reports failures as text.)
//!   Host keys are checked against an OpenSSH `known_hosts` file;
//!   an unknown key is refused unless `trust_on_first_use` is set for that host.
//! - `redfish.rs`: typed `ServiceRoot`/`ComputerSystem` reads and the
//!   `ComputerSystem.Reset` action over reqwest (rustls), basic auth from an environment
//!   variable or a file, a CA file or an explicit `insecure: true`.
//! - `runtime.rs`: the scripts that start, stop and list copies for each runtime
//!   (`process`, `systemd`, `podman`, `docker`); copies are named after workload and
//!   generation and described by a metadata file on the host, so the hosts themselves
//!   are the inventory.
//! - `placement.rs`: which hosts get the copies (room, spread, running hosts first).
//! - `classify.rs`: SSH outcomes and Redfish statuses to error classes.
//! - `deploy.rs`, `inspect.rs` (inspect, retire), `probe.rs` (probe, list_managed).
//!
//! A [`DeploymentRef`] handle is `<folder>@<host>,<host>...`: the copy's folder name
//! (from workload, generation and owner, see `runtime.rs`) and the hosts that run it, so
//! a drill's copy and production's on the same hosts have different handles. Whose copy
//! it is, though, is what the metadata on the host says, checked against the
//! reference's owner on every inspect and retire. Handles of adapters from before
//! owners existed are the host list alone; their folder follows from the reference.

#![deny(missing_docs)]

pub mod config;

mod classify;
mod deploy;
mod inspect;
mod placement;
mod probe;
mod redfish;
mod runtime;
mod ssh;

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use lifeboat_provider::{
    DeployRequest, DeploymentRef, DeploymentState, ErrorClass, Generation, Op, Owner, Probe,
    Provider, ProviderError, Timing,
};
use tokio::time::Instant;

pub use classify::SshFailure;
pub use config::{
    BareMetalConfig, BmcConfig, BmcCredentials, HostCapacity, HostConfig, HostKeyPolicy, Runtime,
    Standby, Timeouts,
};
pub use redfish::{ComputerSystem, PowerState, ResetType, ServiceRoot, Status};

/// How long one cold-standby host took to come up for a deployment: a figure drill
/// reports show apart from the workload's own start time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PowerOnWait {
    /// The host that was powered on.
    pub host: String,
    /// The workload whose deployment needed it.
    pub workload: String,
    /// That deployment's generation.
    pub generation: Generation,
    /// That deployment's owner: a drill's copy of the same (workload, generation) is
    /// another deployment, whose report must not claim this wait.
    pub owner: Owner,
    /// From the Redfish `On` request until `PowerState` read `On`.
    pub power_state: Duration,
    /// From then until SSH accepted our login.
    pub ssh_ready: Duration,
}

impl PowerOnWait {
    /// The whole wait.
    pub fn total(&self) -> Duration {
        self.power_state + self.ssh_ready
    }
}

/// One configured host with its clients.
struct Host {
    config: HostConfig,
    ssh: ssh::SshTarget,
    bmc: Option<redfish::Bmc>,
    /// Where its workloads are reached.
    address: String,
    /// The remote state folder, `~/`-relative or absolute.
    state_dir: String,
    /// Held while powering this host on, so concurrent deploys that both chose this
    /// standby host send one `On` between them.
    power_lock: tokio::sync::Mutex<()>,
}

/// Room taken by deploys that chose their hosts but whose copies may not be listed on
/// them yet. Concurrent deploys count it, so they cannot all pick the same last slot.
#[derive(Default)]
struct Reservations {
    next: u64,
    /// Id → the copy it stands for.
    held: HashMap<u64, Reservation>,
}

/// One copy a deploy is about to start on a host.
#[derive(Debug, Clone)]
struct Reservation {
    /// Index into the provider's hosts.
    host: usize,
    /// The copy's folder: once a survey lists it on `host`, the listing counts it and
    /// the reservation must not count it again.
    folder: String,
    need: lifeboat_provider::Resources,
}

/// Power-on bookkeeping shared by concurrent calls.
#[derive(Default)]
struct PowerBook {
    /// Hosts being powered on now, since when.
    powering: HashMap<String, Instant>,
    /// Finished power-ons, oldest first.
    waits: Vec<PowerOnWait>,
}

/// A pool of hosts reached over SSH, some possibly powered through Redfish. Built once
/// from the config; cheap to share behind an `Arc`.
pub struct BareMetalProvider {
    name: String,
    hosts: Vec<Host>,
    standby: Standby,
    timeouts: Timeouts,
    power: Mutex<PowerBook>,
    /// Held from a deploy's survey until its hosts are reserved: placement decisions
    /// are made one at a time, the slow work after them (power-on, start) concurrently.
    placing: tokio::sync::Mutex<()>,
    reserved: Mutex<Reservations>,
}

impl BareMetalProvider {
    /// Checks `config` and builds the SSH targets and BMC clients. Does no network I/O;
    /// reads only the BMC CA files. A bad config is `InvalidRequest` with a message
    /// naming the host and field.
    pub fn new(name: &str, config: BareMetalConfig) -> Result<BareMetalProvider, ProviderError> {
        let invalid = |m: String| {
            ProviderError::new(
                ErrorClass::InvalidRequest,
                Op::Probe,
                format!("provider {name}: {m}"),
            )
        };
        config::validate(&config).map_err(invalid)?;
        let mut hosts = Vec::with_capacity(config.hosts.len());
        for h in &config.hosts {
            let bmc = match &h.bmc {
                Some(b) => Some(
                    redfish::Bmc::new(b, config.timeouts.connect)
                        .map_err(|m| invalid(format!("host {}: {m}", h.name)))?,
                ),
                None => None,
            };
            let ssh = ssh::SshTarget::of(h, config.timeouts.connect);
            hosts.push(Host {
                address: h.address.clone().unwrap_or_else(|| ssh.host.clone()),
                state_dir: h.state_dir.clone().unwrap_or_else(|| "~/.lifeboat".into()),
                power_lock: tokio::sync::Mutex::new(()),
                ssh,
                bmc,
                config: h.clone(),
            });
        }
        Ok(BareMetalProvider {
            name: name.to_owned(),
            hosts,
            standby: config.standby,
            timeouts: config.timeouts,
            power: Mutex::new(PowerBook::default()),
            placing: tokio::sync::Mutex::new(()),
            reserved: Mutex::new(Reservations::default()),
        })
    }

    /// The provider's name, as in the config.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Every power-on this provider did for a deployment since it was built, oldest
    /// first, so the controller can report time spent waiting for hardware apart from
    /// the workload's own start-up.
    pub fn power_on_waits(&self) -> Vec<PowerOnWait> {
        self.power
            .lock()
            .map(|b| b.waits.clone())
            .unwrap_or_default()
    }

    /// The power-on time spent for one deployment (the sum over its hosts, which are
    /// powered on one after another), or `None` when none of them had to be.
    pub fn power_on_wait(&self, dep: &DeploymentRef) -> Option<Duration> {
        self.power_on_waits()
            .iter()
            .filter(|w| {
                w.workload == dep.workload
                    && w.generation == dep.generation
                    && Some(&w.owner) == dep.owner.as_ref()
            })
            .map(PowerOnWait::total)
            .reduce(|a, b| a + b)
    }

    fn host(&self, name: &str) -> Option<&Host> {
        self.hosts.iter().find(|h| h.config.name == name)
    }

    /// The folder and hosts a handle names, or `NotFound` for a handle this provider did
    /// not make (an unknown host, a folder that is not a copy of the reference's
    /// workload and generation).
    fn locate(&self, op: Op, dep: &DeploymentRef) -> Result<(String, Vec<&Host>), ProviderError> {
        let (folder, hosts) = match dep.handle.split_once('@') {
            Some((folder, hosts)) => (folder.to_owned(), hosts),
            None => (
                runtime::dir_name(&dep.workload, dep.generation, dep.owner.as_ref()),
                dep.handle.as_str(),
            ),
        };
        if !runtime::valid_folder(&dep.workload, dep.generation, &folder) {
            return Err(ProviderError::new(
                ErrorClass::NotFound,
                op,
                format!(
                    "provider {}: handle {:?} names no copy of {} generation {}",
                    self.name, dep.handle, dep.workload, dep.generation
                ),
            ));
        }
        let hosts = hosts
            .split(',')
            .filter(|s| !s.is_empty())
            .map(|n| {
                self.host(n).ok_or_else(|| {
                    ProviderError::new(
                        ErrorClass::NotFound,
                        op,
                        format!(
                            "provider {} has no host {n:?} (handle {:?})",
                            self.name, dep.handle
                        ),
                    )
                })
            })
            .collect::<Result<_, _>>()?;
        Ok((folder, hosts))
    }

    /// Runs a script on a host; SSH failures come back classified.
    async fn run(
        &self,
        host: &Host,
        op: Op,
        script: &str,
        limit: Duration,
    ) -> Result<ssh::Output, ProviderError> {
        ssh::run(&host.ssh, script, limit).await.map_err(|e| {
            let failure = e.failure;
            ProviderError::new(
                classify::ssh(failure),
                op,
                format!("host {}: {}", host.config.name, e.message),
            )
            .with_code(failure.code())
            .with_source(e)
        })
    }

    /// Like [`Self::run`], but a non-zero exit is an error carrying the script's stderr.
    async fn run_ok(
        &self,
        host: &Host,
        op: Op,
        script: &str,
        limit: Duration,
    ) -> Result<String, ProviderError> {
        let out = self.run(host, op, script, limit).await?;
        if out.status == Some(0) {
            return Ok(out.stdout);
        }
        let tail: String = out
            .stderr
            .trim()
            .chars()
            .rev()
            .take(400)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect();
        Err(ProviderError::new(
            ErrorClass::Internal,
            op,
            format!(
                "host {}: script exited with {:?}: {tail}",
                host.config.name, out.status
            ),
        )
        .with_code("script-failed"))
    }

    /// How long a script may run: a container pull can take minutes, a listing seconds.
    fn script_limit(&self) -> Duration {
        self.timeouts.connect * 30
    }
}

#[async_trait]
impl Provider for BareMetalProvider {
    fn kind(&self) -> &'static str {
        "bare-metal"
    }

    /// Counts the hosts that answer SSH and reads each BMC's `PowerState` and health
    /// (authenticated). Fails with the worst host's class only when no host is usable;
    /// otherwise unusable hosts and `Critical` BMC health make the report `degraded`.
    async fn probe(&self) -> Probe {
        probe::probe(self).await
    }

    /// Places the copies (powering cold-standby hosts on first, which this call waits
    /// for, bounded by `timeouts.power_on` + `timeouts.ssh_ready`), starts them and
    /// returns without waiting for health. Idempotent: the owner's copies already
    /// present for the (workload, generation) are kept (restarted if they died) and
    /// counted; another owner's copies of it only take room. Owner ids that are not
    /// label-safe are `InvalidRequest`.
    async fn deploy(&self, req: &DeployRequest) -> Result<DeploymentRef, ProviderError> {
        deploy::deploy(self, req).await
    }

    /// The copies' runtime state plus the workload's health check against host:port.
    /// `Pending` while one of its hosts is being powered on. Only copies whose metadata
    /// names `dep.owner` count: another owner's copy is `Gone` for this reference.
    async fn inspect(&self, dep: &DeploymentRef) -> Result<DeploymentState, ProviderError> {
        inspect::inspect(self, dep).await
    }

    /// Stops and removes the copies, leaving alone any whose metadata names another
    /// owner than `dep.owner`; with `standby: power-off`, powers off hosts that
    /// lifeboat powered on and that run nothing any more, of any owner (waiting for
    /// `PowerState: Off`).
    async fn retire(&self, dep: &DeploymentRef) -> Result<(), ProviderError> {
        inspect::retire(self, dep).await
    }

    /// `owner`'s copies (for `None`, those without owner labels, made before owners
    /// existed) found on the hosts that are on and answer SSH, grouped by (workload,
    /// generation), each with the owner read from its host.
    async fn list_managed(
        &self,
        owner: Option<&Owner>,
    ) -> Result<Vec<DeploymentRef>, ProviderError> {
        probe::list_managed(self, owner).await
    }

    /// `power-on`: the time the deployment waited for cold-standby hosts (Redfish `On`
    /// until SSH answered), when it had to; see [`BareMetalProvider::power_on_wait`].
    fn timings(&self, dep: &DeploymentRef) -> Vec<Timing> {
        self.power_on_wait(dep)
            .map(|duration| Timing {
                phase: POWER_ON.to_owned(),
                duration,
            })
            .into_iter()
            .collect()
    }
}

/// The name of the [`Timing`] phase spent powering cold-standby hosts on.
pub const POWER_ON: &str = "power-on";
