//! `inspect` (runtime state + health check) and `retire` (stop, remove, power standby
//! hosts back off).

use lifeboat_provider::{
    DeploymentRef, DeploymentState, Endpoint, ErrorClass, HealthCheck, Op, ProviderError, health,
};
use tokio::time::Instant;

use crate::config::Standby;
use crate::redfish::{PowerState, ResetType};
use crate::runtime;
use crate::{BareMetalProvider, Host};

/// The state of one host's copy.
enum Copy {
    Pending(String),
    Gone,
    Failed(String),
    Running(Option<Endpoint>),
    Healthy(Endpoint),
}

pub(crate) async fn inspect(
    p: &BareMetalProvider,
    dep: &DeploymentRef,
) -> Result<DeploymentState, ProviderError> {
    let (folder, hosts) = p.locate(Op::Inspect, dep)?;
    let mut copies = Vec::with_capacity(hosts.len());
    for host in hosts {
        copies.push(inspect_copy(p, host, &folder, dep).await?);
    }
    // The deployment is as good as its worst copy; it is gone only when all are.
    if copies.iter().all(|c| matches!(c, Copy::Gone)) {
        return Ok(DeploymentState::Gone);
    }
    if let Some(reason) = copies.iter().find_map(|c| match c {
        Copy::Failed(r) => Some(r.clone()),
        Copy::Gone => Some("a copy has disappeared".to_owned()),
        _ => None,
    }) {
        return Ok(DeploymentState::Failed { reason });
    }
    if let Some(detail) = copies.iter().find_map(|c| match c {
        Copy::Pending(d) => Some(d.clone()),
        _ => None,
    }) {
        return Ok(DeploymentState::Pending { detail });
    }
    let healthy: Vec<&Endpoint> = copies
        .iter()
        .filter_map(|c| {
            if let Copy::Healthy(e) = c {
                Some(e)
            } else {
                None
            }
        })
        .collect();
    if healthy.len() == copies.len()
        && let Some(first) = healthy.first()
    {
        return Ok(DeploymentState::Healthy {
            endpoint: (*first).clone(),
        });
    }
    let endpoint = copies.iter().find_map(|c| match c {
        Copy::Running(e) => e.clone(),
        Copy::Healthy(e) => Some(e.clone()),
        _ => None,
    });
    Ok(DeploymentState::Running { endpoint })
}

async fn inspect_copy(
    p: &BareMetalProvider,
    host: &Host,
    folder: &str,
    dep: &DeploymentRef,
) -> Result<Copy, ProviderError> {
    let powering = p
        .power
        .lock()
        .ok()
        .and_then(|b| b.powering.get(&host.config.name).copied());
    if let Some(since) = powering {
        return Ok(Copy::Pending(format!(
            "powering on host {} through Redfish ({:.1}s so far)",
            host.config.name,
            since.elapsed().as_secs_f64()
        )));
    }
    let script = runtime::list_script(host.config.runtime, &host.state_dir);
    let out = match p.run_ok(host, Op::Inspect, &script, p.script_limit()).await {
        Ok(out) => out,
        // A standby host that retire powered off runs nothing: its copy is gone, not
        // unreachable.
        Err(e) if e.class.is_unreachable() && is_off(host, Op::Inspect).await => {
            return Ok(Copy::Gone);
        }
        Err(e) => return Err(e),
    };
    // The folder the handle names, while its metadata still carries `dep.owner`: a
    // folder of another owner (a forged or mixed-up reference) is nothing of this one's.
    let Some(copy) = runtime::parse_list(&out).into_iter().find(|l| {
        l.folder == folder
            && l.workload == dep.workload
            && l.generation == dep.generation
            && l.owner == dep.owner
    }) else {
        return Ok(Copy::Gone);
    };
    if !copy.running {
        return Ok(Copy::Failed(format!(
            "the copy on host {} is not running ({} runtime; see its log under {}/{})",
            host.config.name,
            host.config.runtime.as_str(),
            host.state_dir,
            folder
        )));
    }
    // A workload that serves no port is reported at port 0, as the other adapters do.
    let endpoint = Endpoint {
        host: host.address.clone(),
        port: copy.port.unwrap_or(0),
    };
    Ok(match (&copy.health, copy.port) {
        (Some(check), Some(_)) if healthy(p, &endpoint, check).await => Copy::Healthy(endpoint),
        (Some(_), Some(_)) => Copy::Running(Some(endpoint)),
        (Some(_), None) => Copy::Running(None),
        // Without a check of its own, a live copy is all that can be asked of it (the
        // local and EC2 adapters judge the same way); otherwise such a workload could
        // never pass the controller's wait for health here.
        (None, _) => Copy::Healthy(endpoint),
    })
}

/// Runs the workload's health check once, with the contract's default deadline. Any
/// failure just means "not healthy yet".
async fn healthy(p: &BareMetalProvider, endpoint: &Endpoint, check: &HealthCheck) -> bool {
    match health::check(check, endpoint, health::DEFAULT_TIMEOUT).await {
        Ok(_) => true,
        Err(why) => {
            tracing::debug!(provider = %p.name, %why, "not healthy yet");
            false
        }
    }
}

pub(crate) async fn retire(
    p: &BareMetalProvider,
    dep: &DeploymentRef,
) -> Result<(), ProviderError> {
    let (folder, hosts) = p.locate(Op::Retire, dep)?;
    let release = p.standby == Standby::PowerOff;
    for host in hosts {
        let script = runtime::stop_script(
            host.config.runtime,
            &host.state_dir,
            &folder,
            dep.owner.as_ref(),
            release && host.bmc.is_some(),
        );
        let out = match p.run_ok(host, Op::Retire, &script, p.script_limit()).await {
            Ok(out) => out,
            Err(e) if e.class.is_unreachable() && is_off(host, Op::Retire).await => {
                // A host that is off runs nothing: the copy is gone already.
                continue;
            }
            Err(e) => return Err(e),
        };
        if out.lines().any(|l| l.trim() == "foreign") {
            tracing::warn!(provider = %p.name, host = %host.config.name, workload = %dep.workload,
                generation = %dep.generation, owner = ?dep.owner,
                "left a copy alone on retire: its folder belongs to another owner");
        }
        if out.lines().any(|l| l.trim() == "release") {
            power_off(p, host).await?;
        }
    }
    Ok(())
}

/// Whether the host's BMC says it is off (a host without one never is, as far as
/// lifeboat can tell).
async fn is_off(host: &Host, op: Op) -> bool {
    match &host.bmc {
        Some(bmc) => {
            matches!(bmc.system(op).await, Ok(s) if s.power_state == Some(PowerState::Off))
        }
        None => false,
    }
}

/// Powers an emptied standby host off: a graceful shutdown first, `ForceOff` when the
/// OS does not finish within `timeouts.power_off`.
async fn power_off(p: &BareMetalProvider, host: &Host) -> Result<(), ProviderError> {
    let Some(bmc) = &host.bmc else { return Ok(()) };
    let started = Instant::now();
    tracing::info!(provider = %p.name, host = %host.config.name, "powering off an emptied standby host");
    bmc.reset(Op::Retire, ResetType::GracefulShutdown).await?;
    match bmc
        .wait_for(Op::Retire, PowerState::Off, p.timeouts.power_off)
        .await
    {
        Ok(()) => {}
        Err(e) if e.class == ErrorClass::Timeout => {
            tracing::warn!(host = %host.config.name, "graceful shutdown did not finish; forcing power off");
            bmc.reset(Op::Retire, ResetType::ForceOff).await?;
            bmc.wait_for(Op::Retire, PowerState::Off, p.timeouts.power_off)
                .await?;
        }
        Err(e) => return Err(e),
    }
    tracing::info!(host = %host.config.name, took = ?started.elapsed(), "standby host is off");
    Ok(())
}
