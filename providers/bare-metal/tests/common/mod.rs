//! Real peers for the bare-metal adapter's tests (from `lifeboat_testkit::sshd` and
//! `lifeboat_testkit::sushy`: OpenSSH's sshd as a "host" and sushy-tools' Redfish
//! emulator as its BMC), plus the adapter settings that point at them.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use lifeboat_provider::{
    DeployRequest, DeploymentState, Generation, HealthCheck, Owner, Provider, Resources, Run,
    WorkloadSpec,
};
use lifeboat_provider_bare_metal::{
    BareMetalConfig, BmcConfig, BmcCredentials, HostCapacity, HostConfig, HostKeyPolicy, Runtime,
    Standby, Timeouts,
};
#[allow(unused_imports)]
pub use lifeboat_testkit::sshd::{PATIENCE, SshHost, alive, current_user, keygen};
pub use lifeboat_testkit::sushy::{Emulator, PoweredHost};

/// The installation the tests deploy as, unless a test is about owners.
pub const INSTALLATION: &str = "test";

/// The adapter's view of a test host.
pub trait HostConfigExt {
    /// A host entry for this sshd, `process` runtime, no BMC.
    fn host_config(&self, name: &str) -> HostConfig;
}

impl HostConfigExt for SshHost {
    fn host_config(&self, name: &str) -> HostConfig {
        host_entry(
            name,
            self.port,
            &self.client_key,
            &self.known_hosts,
            &self.state_dir,
        )
    }
}

impl HostConfigExt for PoweredHost {
    fn host_config(&self, name: &str) -> HostConfig {
        host_entry(
            name,
            self.port,
            &self.client_key,
            &self.known_hosts,
            &self.state_dir,
        )
    }
}

/// A host entry for an sshd on 127.0.0.1:`port` that trusts `client_key`: `process`
/// runtime, four slots, no BMC.
fn host_entry(
    name: &str,
    port: u16,
    client_key: &std::path::Path,
    known_hosts: &std::path::Path,
    state_dir: &std::path::Path,
) -> HostConfig {
    HostConfig {
        name: name.into(),
        ssh: format!("127.0.0.1:{port}"),
        user: current_user(),
        key_file: Some(client_key.to_owned()),
        host_key: HostKeyPolicy {
            known_hosts: known_hosts.to_owned(),
            trust_on_first_use: false,
        },
        capacity: HostCapacity {
            slots: Some(4),
            cpu_millis: None,
            memory_mib: None,
        },
        labels: BTreeMap::from([("site".into(), "test".into())]),
        runtime: Runtime::Process,
        address: None,
        state_dir: Some(state_dir.display().to_string()),
        bmc: None,
    }
}

/// The adapter's view of a test BMC.
pub trait BmcConfigExt {
    /// BMC settings for this emulator (credentials from its files, its CA).
    fn bmc_config(&self) -> BmcConfig;
}

impl BmcConfigExt for Emulator {
    fn bmc_config(&self) -> BmcConfig {
        BmcConfig {
            url: self.url.clone(),
            system_id: self.system_id.clone(),
            credentials: BmcCredentials {
                username_env: None,
                username_file: Some(self.username_file.clone()),
                password_env: None,
                password_file: Some(self.password_file.clone()),
            },
            ca_file: Some(self.ca_file.clone()),
            insecure: false,
        }
    }
}

/// A provider config over `hosts` with short timeouts suited to loopback peers.
pub fn config(hosts: Vec<HostConfig>, standby: Standby) -> BareMetalConfig {
    BareMetalConfig {
        hosts,
        standby,
        timeouts: Timeouts {
            power_on: PATIENCE,
            ssh_ready: PATIENCE,
            connect: Duration::from_secs(10),
            power_off: PATIENCE,
        },
    }
}

/// A real HTTP server as the workload: Python's http.server on `$PORT`, deployed by the
/// [`INSTALLATION`]'s production owner.
pub fn http_workload(name: &str, port: u16, replicas: u32) -> DeployRequest {
    DeployRequest {
        workload: WorkloadSpec {
            name: name.into(),
            run: Run::Command {
                command: vec![
                    "sh".into(),
                    "-c".into(),
                    "exec python3 -m http.server \"$PORT\" --bind 127.0.0.1".into(),
                ],
            },
            env: BTreeMap::from([("APP_MODE".into(), "test".into())]),
            port: Some(port),
            resources: Resources {
                cpu_millis: 100,
                memory_mib: 32,
            },
            replicas,
            health: Some(HealthCheck::Http { path: "/".into() }),
            extra: BTreeMap::new(),
        },
        generation: Generation(1),
        owner: Owner::installation(INSTALLATION),
    }
}

/// Polls `inspect` until the deployment is healthy (or fails, or patience runs out).
pub async fn wait_healthy(
    p: &dyn Provider,
    dep: &lifeboat_provider::DeploymentRef,
) -> Result<DeploymentState> {
    let start = Instant::now();
    loop {
        let state = p.inspect(dep).await?;
        match &state {
            DeploymentState::Healthy { .. } => return Ok(state),
            DeploymentState::Failed { reason } => bail!("deployment failed: {reason}"),
            _ if start.elapsed() > PATIENCE => bail!("not healthy in time: {state:?}"),
            _ => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
}
