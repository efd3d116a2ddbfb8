//! The `local` provider: workloads as real processes on this host. The embedded default,
//! so a drill runs on one machine with nothing else installed.
//!
//! A tour:
//! * [`config`]: `kind: local` settings (a port range, the bind address, a folder).
//! * `spawn`: picks a free port and starts a copy detached, in its own process group,
//!   with its output in a log file; `lifeboat` as the program means this binary.
//! * `state`: one JSON record per copy (pid, process start time, port, health check),
//!   which is how a restarted controller finds its copies again.
//! * `process`: `/proc` checks (alive, and still the same process) and group signals.
//! * health checks (TCP connect or HTTP GET) are the contract's own
//!   [`lifeboat_provider::health`], as in every adapter.
//! * `classify`: what an OS error means to the controller.
//!
//! One controller drives a provider's folder at a time (the controller's store lock
//! guarantees it); within one process, deploys and retires are serialised.

mod classify;
pub mod config;
mod process;
mod spawn;
mod state;

use std::collections::{BTreeSet, HashMap};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use lifeboat_provider::{
    Capacity, DeployRequest, DeploymentRef, DeploymentState, ErrorClass, Op, Owner, Probe,
    ProbeReport, Provider, ProviderError, health,
};
use nix::sys::signal::Signal;

pub use config::{LocalConfig, PortRange, PortRangeError};
pub use spawn::SELF_PROGRAM;
use state::{Record, StateDir};

/// How long a copy may take to stop after SIGTERM before its group gets SIGKILL.
pub const DEFAULT_STOP_GRACE: Duration = Duration::from_secs(5);

/// How much of a dead copy's log goes into its `Failed` reason.
const LOG_TAIL_BYTES: usize = 2048;

/// Runs workloads as processes on this host (see the crate docs).
pub struct LocalProvider {
    name: String,
    config: LocalConfig,
    state: StateDir,
    self_exe: PathBuf,
    stop_grace: Duration,
    /// Children started by this very process, kept so they are reaped (no zombies) and
    /// so a dead one's exit status can be told. Copies found from records of an earlier
    /// controller are not here; their exit status is unknown.
    children: Mutex<HashMap<String, tokio::process::Child>>,
    /// Serialises deploy and retire: choosing a port and writing a record must not
    /// interleave with another deploy.
    ops: tokio::sync::Mutex<()>,
    /// Where the next port search starts (see `spawn::pick_port`).
    cursor: Mutex<u16>,
}

fn err(class: ErrorClass, op: Op, message: impl Into<String>) -> ProviderError {
    ProviderError::new(class, op, message)
}

fn io_err(op: Op, what: impl std::fmt::Display) -> impl FnOnce(std::io::Error) -> ProviderError {
    move |e| {
        ProviderError::new(classify::classify_io(&e), op, format!("{what}: {e}")).with_source(e)
    }
}

impl LocalProvider {
    /// A provider called `name` keeping its records and logs in `config.dir`, or else
    /// in `state_dir/NAME/` (created if missing). Copies recorded there by an earlier
    /// controller are picked up as they are.
    ///
    /// Fails with `InvalidRequest` for a name unfit for a folder, and with the class of
    /// the OS error when the folder cannot be created; `Op::Probe` stands for "setting
    /// up", since a probe would find the same problem.
    pub fn new(name: &str, config: LocalConfig, state_dir: &Path) -> Result<Self, ProviderError> {
        if !state::check_name(name) {
            return Err(err(
                ErrorClass::InvalidRequest,
                Op::Probe,
                format!("local provider name {name:?} must be 1-128 characters of [A-Za-z0-9._-]"),
            ));
        }
        let dir = config.dir.clone().unwrap_or_else(|| state_dir.join(name));
        let state = StateDir::open(dir.clone())
            .map_err(io_err(Op::Probe, format!("creating {}", dir.display())))?;
        let self_exe = std::env::current_exe().unwrap_or_else(|_| PathBuf::from("lifeboat"));
        let cursor = Mutex::new(config.ports.first());
        Ok(LocalProvider {
            name: name.to_owned(),
            config,
            state,
            self_exe,
            stop_grace: DEFAULT_STOP_GRACE,
            children: Mutex::new(HashMap::new()),
            ops: tokio::sync::Mutex::new(()),
            cursor,
        })
    }

    /// Uses `path` where a workload's program is `lifeboat` (by default the running
    /// executable; tests of the controller point it at the built binary).
    pub fn with_self_exe(mut self, path: PathBuf) -> Self {
        self.self_exe = path;
        self
    }

    /// How long retire waits after SIGTERM before SIGKILL (default
    /// [`DEFAULT_STOP_GRACE`]).
    pub fn with_stop_grace(mut self, grace: Duration) -> Self {
        self.stop_grace = grace;
        self
    }

    /// The provider's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The folder with this provider's records and logs.
    pub fn dir(&self) -> &Path {
        self.state.path()
    }

    fn deployment_ref(key: &str, record: &Record) -> DeploymentRef {
        DeploymentRef {
            workload: record.workload.clone(),
            generation: record.generation,
            handle: key.to_owned(),
            endpoint: Some(record.endpoint()),
            owner: record.owner.clone(),
        }
    }

    /// The record behind `dep`'s handle, if it exists and still carries `dep`'s owner:
    /// a handle of another owner's copy reads as no record at all.
    fn owned_record(&self, dep: &DeploymentRef, op: Op) -> Result<Option<Record>, ProviderError> {
        let record = self
            .state
            .read(&dep.handle)
            .map_err(io_err(op, format!("reading the record of {}", dep.handle)))?;
        Ok(record.filter(|r| r.owner == dep.owner))
    }

    fn records(&self, op: Op) -> Result<Vec<(String, Record)>, ProviderError> {
        self.state
            .list()
            .map_err(io_err(op, format!("reading {}", self.dir().display())))
    }

    /// The next free port of the range for `key`, moving the cursor past it.
    fn next_port(&self, used: &BTreeSet<u16>, key: &str) -> Result<u16, ProviderError> {
        let cursor = *self.cursor.lock().unwrap_or_else(|p| p.into_inner());
        let port = spawn::pick_port(self.config.ports, cursor, used, self.config.bind).ok_or_else(
            || {
                err(
                    ErrorClass::CapacityExhausted,
                    Op::Deploy,
                    format!(
                        "no free port in {} on {} for {key}",
                        self.config.ports, self.config.bind
                    ),
                )
            },
        )?;
        *self.cursor.lock().unwrap_or_else(|p| p.into_inner()) = port.wrapping_add(1);
        Ok(port)
    }

    /// The workload's own port, checked to be in the range and free on the bind address.
    fn fixed_port(&self, port: u16, used: &BTreeSet<u16>, key: &str) -> Result<u16, ProviderError> {
        if !self.config.ports.contains(port) {
            return Err(err(
                ErrorClass::InvalidRequest,
                Op::Deploy,
                format!(
                    "{key} must serve on port {port}, outside this provider's range {}",
                    self.config.ports
                ),
            ));
        }
        if used.contains(&port) || !spawn::port_is_free(self.config.bind, port) {
            return Err(err(
                ErrorClass::CapacityExhausted,
                Op::Deploy,
                format!(
                    "{key} must serve on port {port}, which is taken on {}",
                    self.config.bind
                ),
            ));
        }
        Ok(port)
    }

    fn ports_in_use(records: &[(String, Record)]) -> BTreeSet<u16> {
        records
            .iter()
            .filter(|(_, r)| {
                // The cheap check first; the /proc scan only for dead leaders that may
                // have left helpers holding the port.
                process::leader_alive(r).unwrap_or(true)
                    || process::live_members(r).is_ok_and(|m| !m.is_empty())
            })
            .map(|(_, r)| r.port)
            .collect()
    }

    /// Why a recorded copy is not running, with the tail of its log.
    fn exit_reason(&self, key: &str, record: &Record) -> String {
        let status = {
            let mut children = self.children.lock().unwrap_or_else(|p| p.into_inner());
            children.get_mut(key).map(|c| c.try_wait())
        };
        let why = match status {
            Some(Ok(Some(s))) => match (s.code(), s.signal()) {
                (Some(code), _) => format!("exited with status {code}"),
                (_, Some(sig)) => format!("killed by signal {sig}"),
                _ => format!("ended ({s})"),
            },
            _ => format!(
                "process {} is gone (started by an earlier controller, so its exit status \
                 is unknown)",
                record.pid
            ),
        };
        let tail = self.state.log_tail(key, LOG_TAIL_BYTES);
        if tail.is_empty() {
            format!("{} {why}; its log is empty", record.workload)
        } else {
            format!("{} {why}; last log lines:\n{tail}", record.workload)
        }
    }

    /// Stops whatever lives in the copy's group: SIGTERM, then SIGKILL after the grace
    /// period. Polls with tokio's clock.
    async fn stop(&self, key: &str, record: &Record) -> Result<(), ProviderError> {
        let what = format!("stopping {key} (process group {})", record.pid);
        for (signal, wait) in [
            (Signal::SIGTERM, self.stop_grace),
            (Signal::SIGKILL, Duration::from_secs(5)),
        ] {
            process::signal_group(record, signal).map_err(io_err(Op::Retire, &what))?;
            let deadline = tokio::time::Instant::now() + wait;
            loop {
                self.reap(key);
                let members = process::live_members(record).map_err(io_err(Op::Retire, &what))?;
                if members.is_empty() {
                    return Ok(());
                }
                if tokio::time::Instant::now() >= deadline {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        Err(err(
            ErrorClass::Internal,
            Op::Retire,
            format!("{what}: still running after SIGKILL"),
        ))
    }

    /// Collects the exit status of our own child, if it has exited, so it does not stay
    /// a zombie.
    fn reap(&self, key: &str) {
        let mut children = self.children.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(child) = children.get_mut(key) {
            let _ = child.try_wait();
        }
    }

    /// Runs the copy's health check once, with the contract's default deadline.
    async fn health(record: &Record) -> Result<(), health::Failure> {
        match &record.health {
            Some(check) => health::check(check, &record.endpoint(), health::DEFAULT_TIMEOUT)
                .await
                .map(|_| ()),
            // Nothing to check: a live process is all that can be asked of it.
            None => Ok(()),
        }
    }
}

#[async_trait]
impl Provider for LocalProvider {
    fn kind(&self) -> &'static str {
        "local"
    }

    /// Checks that this provider can still record what it starts (its folder is
    /// writable) and that its port range has a free port. There is no vendor and no
    /// account on this host, so DESIGN's "at least one authenticated call" does not
    /// apply: a local provider is never suspended, only unusable.
    ///
    /// An unwritable folder is an error (`Unavailable`, or the class of the OS error);
    /// a full port range is `degraded` with zero capacity, not an error. Copies that
    /// died without being retired are reported in `lost`.
    async fn probe(&self) -> Probe {
        self.state
            .check_writable()
            .map_err(io_err(
                Op::Probe,
                format!("writing in {}", self.dir().display()),
            ))
            .map_err(|mut e| {
                if e.class == ErrorClass::Internal || e.class == ErrorClass::InvalidRequest {
                    e.class = ErrorClass::Unavailable;
                }
                e
            })?;
        let records = self.records(Op::Probe)?;
        let used = Self::ports_in_use(&records);
        let free = self
            .config
            .ports
            .iter()
            .filter(|p| !used.contains(p) && spawn::port_is_free(self.config.bind, *p))
            .count();
        let lost = records
            .iter()
            .filter(|(_, r)| matches!(process::leader_alive(r), Ok(false)))
            .map(|(k, r)| Self::deployment_ref(k, r))
            .collect();
        Ok(ProbeReport {
            degraded: (free == 0).then(|| {
                format!(
                    "no free port in {} on {}",
                    self.config.ports, self.config.bind
                )
            }),
            capacity: Some(Capacity {
                replicas: Some(free as u64),
                ..Capacity::default()
            }),
            lost,
        })
    }

    /// Starts the workload's command (see the crate docs); `InvalidRequest` for image
    /// workloads, more than one replica or an unusable program, `CapacityExhausted`
    /// when no port of the range is free. Idempotent: a copy of (workload, generation)
    /// that is alive is returned as it is; one that died is started again, so a
    /// repeated deploy repairs it. The workload must listen on `$PORT`: the `port` of
    /// its spec when it has one (it must lie in the range, else `InvalidRequest`; taken
    /// means `CapacityExhausted`), since clients that find it through DNS, which carries
    /// no port, connect there; else the next free port of the range. Copies of one
    /// fixed-port workload at two local providers need two `bind` addresses.
    async fn deploy(&self, req: &DeployRequest) -> Result<DeploymentRef, ProviderError> {
        let name = &req.workload.name;
        if !state::check_name(name) {
            return Err(err(
                ErrorClass::InvalidRequest,
                Op::Deploy,
                format!("workload name {name:?} must be 1-128 characters of [A-Za-z0-9._-]"),
            ));
        }
        if req.workload.replicas != 1 {
            return Err(err(
                ErrorClass::InvalidRequest,
                Op::Deploy,
                format!(
                    "workload {name} asks for {} replicas; the local provider runs exactly one \
                     process per deployment",
                    req.workload.replicas
                ),
            ));
        }
        spawn::argv(req)?;
        let _guard = self.ops.lock().await;
        let key = state::key(name, req.generation, &req.owner);
        let existing = self
            .state
            .read(&key)
            .map_err(io_err(Op::Deploy, format!("reading the record of {key}")))?;
        if let Some(record) = &existing
            && record.owner.as_ref() != Some(&req.owner)
        {
            // Two owners whose discriminators collide: never take over the other's copy.
            return Err(err(
                ErrorClass::InvalidRequest,
                Op::Deploy,
                format!(
                    "{key} is already recorded for {:?}, not {}",
                    record.owner, req.owner
                ),
            ));
        }
        if let Some(record) = existing {
            let alive = process::leader_alive(&record)
                .map_err(io_err(Op::Deploy, format!("checking {key}")))?;
            if alive {
                return Ok(Self::deployment_ref(&key, &record));
            }
            // A dead copy may have left helpers behind in its group; clear them so the
            // port is free again before starting over.
            self.stop(&key, &record).await.map_err(|mut e| {
                e.op = Op::Deploy;
                e
            })?;
        }
        let records = self.records(Op::Deploy)?;
        let used = Self::ports_in_use(&records);
        let port = match req.workload.port {
            Some(fixed) => self.fixed_port(fixed, &used, &key)?,
            None => self.next_port(&used, &key)?,
        };
        let launch = spawn::Launch {
            key: &key,
            port,
            bind: self.config.bind,
            log: self.state.log_path(&key),
            dir: self.state.copy_dir(&key),
            self_exe: &self.self_exe,
        };
        let (child, record) = spawn::start(req, &launch)?;
        if let Err(e) = self.state.write(&key, &record) {
            // Unrecorded, the copy could never be found again: stop it now.
            let _ = process::signal_group(&record, Signal::SIGKILL);
            return Err(io_err(Op::Deploy, format!("recording {key}"))(e));
        }
        self.children
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(key.clone(), child);
        tracing::info!(provider = %self.name, deployment = %key, pid = record.pid, port, "started");
        Ok(Self::deployment_ref(&key, &record))
    }

    /// `Healthy` when the process is alive (and the same process that was started) and
    /// its health check passes, `Running` while the check fails, `Failed` with the exit
    /// status (when this controller started it) and the tail of its log once it died,
    /// `Gone` when there is no record (retired). `NotFound` for a malformed handle.
    async fn inspect(&self, dep: &DeploymentRef) -> Result<DeploymentState, ProviderError> {
        let key = &dep.handle;
        if !state::check_name(key) {
            return Err(err(
                ErrorClass::NotFound,
                Op::Inspect,
                format!("{key:?} is not a local deployment handle"),
            ));
        }
        let Some(record) = self.owned_record(dep, Op::Inspect)? else {
            return Ok(DeploymentState::Gone);
        };
        self.reap(key);
        let alive = process::leader_alive(&record)
            .map_err(io_err(Op::Inspect, format!("checking {key}")))?;
        if !alive {
            return Ok(DeploymentState::Failed {
                reason: self.exit_reason(key, &record),
            });
        }
        let endpoint = record.endpoint();
        Ok(match Self::health(&record).await {
            Ok(()) => DeploymentState::Healthy { endpoint },
            Err(why) => {
                tracing::debug!(deployment = %key, %why, "not healthy yet");
                DeploymentState::Running {
                    endpoint: Some(endpoint),
                }
            }
        })
    }

    /// Stops the copy's whole process group (SIGTERM, SIGKILL after the grace period)
    /// and removes its record and log. Waits until the processes are gone, so the port
    /// is free when it returns. Idempotent: an unknown handle is already retired, and so
    /// is the handle of another owner's copy (which stays as it is).
    async fn retire(&self, dep: &DeploymentRef) -> Result<(), ProviderError> {
        let key = &dep.handle;
        if !state::check_name(key) {
            return Err(err(
                ErrorClass::InvalidRequest,
                Op::Retire,
                format!("{key:?} is not a local deployment handle"),
            ));
        }
        let _guard = self.ops.lock().await;
        let Some(record) = self.owned_record(dep, Op::Retire)? else {
            return Ok(());
        };
        self.stop(key, &record).await?;
        self.state
            .remove(key)
            .map_err(io_err(Op::Retire, format!("removing the files of {key}")))?;
        self.reap(key);
        self.children
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(key);
        tracing::info!(provider = %self.name, deployment = %key, "retired");
        Ok(())
    }

    /// Every recorded copy of `owner`, alive or dead. Dead ones stay listed until
    /// retired, so the controller sees (and fences) everything this provider ever
    /// started for it and did not clean up; `inspect` tells it which are `Failed`.
    async fn list_managed(
        &self,
        owner: Option<&Owner>,
    ) -> Result<Vec<DeploymentRef>, ProviderError> {
        Ok(self
            .records(Op::ListManaged)?
            .iter()
            .filter(|(_, r)| Owner::matches(r.owner.as_ref(), owner))
            .map(|(k, r)| Self::deployment_ref(k, r))
            .collect())
    }
}
