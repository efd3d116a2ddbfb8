//! `deploy`: find earlier copies and room, wake cold-standby hosts, start the copies.

use std::time::Duration;

use lifeboat_provider::{
    DeployRequest, DeploymentRef, ErrorClass, Op, ProviderError, Resources, labels,
};
use tokio::time::Instant;

use crate::placement::{self, HostView};
use crate::probe::{self, HostStatus};
use crate::redfish::{PowerState, ResetType};
use crate::runtime::{self, Listed};
use crate::{BareMetalProvider, Host, PowerOnWait, Reservation};

pub(crate) async fn deploy(
    p: &BareMetalProvider,
    req: &DeployRequest,
) -> Result<DeploymentRef, ProviderError> {
    let spec = &req.workload;
    let invalid = |m: String| ProviderError::new(ErrorClass::InvalidRequest, Op::Deploy, m);
    if !runtime::valid_workload_name(&spec.name) {
        return Err(invalid(format!(
            "workload name {:?} must be a DNS label (a-z, 0-9, '-')",
            spec.name
        )));
    }
    runtime::check_owner(&req.owner).map_err(&invalid)?;
    if spec.replicas == 0 {
        return Err(invalid(format!(
            "workload {} asks for 0 replicas",
            spec.name
        )));
    }
    // One placement decision at a time (see `BareMetalProvider::placing`); the lock is
    // released once the chosen hosts are reserved.
    let placing = p.placing.lock().await;
    // The reservations are read before the survey, not after it: an earlier deploy may
    // start its copy and drop its reservation while the survey runs, and a host whose
    // listing was taken before that copy's `meta` was written would then show the slot
    // free twice over. Any reservation gone by now belongs to a deploy that ended before
    // the survey began, so the copies it started are there to be listed (short of a
    // start still running on a host after its deploy was dropped); none can be added
    // until `placing` is released.
    let reserved = reservations(p);
    let surveys = probe::survey(p, Op::Deploy).await;

    // Hosts that already hold this owner's copy keep it: that is what makes deploy
    // idempotent. Another owner's copy of the same (workload, generation) is not this
    // one's; it only takes room, like any other copy on the host.
    let mut existing = Vec::new();
    let mut views = Vec::new();
    let mut errors = Vec::new();
    for (i, s) in surveys.into_iter().enumerate() {
        match s.status {
            HostStatus::Up(listing)
                if listing.iter().any(|l| {
                    l.workload == spec.name
                        && l.generation == req.generation
                        && l.owner.as_ref() == Some(&req.owner)
                }) =>
            {
                existing.push(i)
            }
            HostStatus::Up(listing) => views.push((i, view(p, i, false, &listing, &reserved))),
            HostStatus::Off => views.push((i, view(p, i, true, &[], &reserved))),
            HostStatus::Down(e) => errors.push(e),
        }
    }
    let missing = (spec.replicas as usize).saturating_sub(existing.len());
    let only_views: Vec<HostView> = views.iter().map(|(_, v)| *v).collect();
    let Some(picked) = placement::choose(&only_views, spec.resources, missing) else {
        // No room: if hosts were unreachable, that is the better explanation.
        return Err(probe::worst(errors).unwrap_or_else(|| {
            ProviderError::new(
                ErrorClass::CapacityExhausted,
                Op::Deploy,
                format!(
                    "provider {}: fewer than {missing} hosts have room for another copy of {}",
                    p.name, spec.name
                ),
            )
        }));
    };
    let mut chosen: Vec<(usize, bool)> = existing.iter().map(|&i| (i, false)).collect();
    chosen.extend(picked.iter().map(|&k| (views[k].0, views[k].1.powered_off)));
    chosen.sort_unstable();
    let folder = runtime::dir_name(&spec.name, req.generation, Some(&req.owner));
    let _reserved = Reserved::take(
        p,
        picked.iter().map(|&k| views[k].0),
        &folder,
        spec.resources,
    );
    drop(placing);

    let mut env = spec.env.clone();
    env.insert(labels::GENERATION_ENV.into(), req.generation.to_string());
    if let Some(port) = spec.port {
        env.insert("PORT".into(), port.to_string());
    }
    // Every script is written before any host is powered on: a request the runtime
    // cannot run must not wake (and leave on) a cold-standby server.
    let mut scripts = Vec::with_capacity(chosen.len());
    for &(i, _) in &chosen {
        let host = &p.hosts[i];
        let start = runtime::Start {
            workload: &spec.name,
            generation: req.generation,
            run: &spec.run,
            env: env.clone(),
            resources: spec.resources,
            port: spec.port,
            health: spec.health.as_ref(),
            owner: &req.owner,
        };
        scripts.push(
            runtime::start_script(host.config.runtime, &host.state_dir, &start)
                .map_err(|m| invalid(format!("host {}: {m}", host.config.name)))?,
        );
    }
    for (&(i, off), script) in chosen.iter().zip(&scripts) {
        let host = &p.hosts[i];
        if off {
            power_on(p, host, req).await?;
        }
        let out = p.run_ok(host, Op::Deploy, script, p.script_limit()).await?;
        tracing::info!(provider = %p.name, host = %host.config.name, workload = %spec.name,
            generation = %req.generation, outcome = out.trim(), "deployed a copy");
    }
    let hosts: Vec<&Host> = chosen.iter().map(|&(i, _)| &p.hosts[i]).collect();
    let listed = Listed {
        folder,
        workload: spec.name.clone(),
        generation: req.generation,
        resources: spec.resources,
        port: spec.port,
        health: spec.health.clone(),
        owner: Some(req.owner.clone()),
        running: true,
    };
    Ok(probe::reference(&listed, &hosts))
}

/// The reservations held now.
fn reservations(p: &BareMetalProvider) -> Vec<Reservation> {
    p.reserved
        .lock()
        .map(|r| r.held.values().cloned().collect())
        .unwrap_or_default()
}

/// What host `i` holds: the copies listed on it plus those other deploys reserved on it
/// and whose copies the listing does not show yet.
fn view(
    p: &BareMetalProvider,
    i: usize,
    powered_off: bool,
    listing: &[Listed],
    reserved: &[Reservation],
) -> HostView {
    let reserved: Vec<Resources> = reserved
        .iter()
        .filter(|r| r.host == i && !listing.iter().any(|l| l.folder == r.folder))
        .map(|r| r.need)
        .collect();
    let all = listing
        .iter()
        .map(|l| l.resources)
        .chain(reserved.iter().copied());
    HostView {
        powered_off,
        capacity: p.hosts[i].config.capacity,
        copies: (listing.len() + reserved.len()) as u64,
        used: all.fold(Resources::default(), |sum, r| Resources {
            cpu_millis: sum.cpu_millis + r.cpu_millis,
            memory_mib: sum.memory_mib + r.memory_mib,
        }),
    }
}

/// Room reserved on chosen hosts until this deploy's copies are started (or the deploy
/// ends otherwise, including the caller dropping it). A survey that already lists the
/// copy counts it there instead.
struct Reserved<'a> {
    p: &'a BareMetalProvider,
    ids: Vec<u64>,
}

impl<'a> Reserved<'a> {
    fn take(
        p: &'a BareMetalProvider,
        hosts: impl Iterator<Item = usize>,
        folder: &str,
        need: Resources,
    ) -> Reserved<'a> {
        let mut ids = Vec::new();
        if let Ok(mut r) = p.reserved.lock() {
            for host in hosts {
                r.next += 1;
                let id = r.next;
                let folder = folder.to_owned();
                r.held.insert(id, Reservation { host, folder, need });
                ids.push(id);
            }
        }
        Reserved { p, ids }
    }
}

impl Drop for Reserved<'_> {
    fn drop(&mut self) {
        if let Ok(mut r) = self.p.reserved.lock() {
            for id in &self.ids {
                r.held.remove(id);
            }
        }
    }
}

/// Removes a host from the "powering on" book however the power-on ends (including the
/// caller dropping the future).
struct Powering<'a> {
    p: &'a BareMetalProvider,
    host: &'a str,
}

impl Drop for Powering<'_> {
    fn drop(&mut self) {
        if let Ok(mut book) = self.p.power.lock() {
            book.powering.remove(self.host);
        }
    }
}

/// Powers a cold-standby host on, waits for `PowerState: On` and then for SSH, and
/// leaves the power-on marker on the host (so `standby: power-off` knows it may power
/// it off again).
async fn power_on(
    p: &BareMetalProvider,
    host: &Host,
    req: &DeployRequest,
) -> Result<(), ProviderError> {
    let Some(bmc) = &host.bmc else {
        return Err(ProviderError::new(
            ErrorClass::Internal,
            Op::Deploy,
            format!("host {} is off and has no BMC", host.config.name),
        ));
    };
    let started = Instant::now();
    if let Ok(mut book) = p.power.lock() {
        book.powering.insert(host.config.name.clone(), started);
    }
    let _book = Powering {
        p,
        host: &host.config.name,
    };
    tracing::info!(provider = %p.name, host = %host.config.name, "powering on a standby host through Redfish");
    let _only_one = host.power_lock.lock().await;
    // Another deploy may have powered it on while this one waited for the lock; some
    // BMCs refuse `On` for a system that is on already.
    if bmc.system(Op::Deploy).await?.power_state != Some(PowerState::On) {
        bmc.reset(Op::Deploy, ResetType::On).await?;
    }
    bmc.wait_for(Op::Deploy, PowerState::On, p.timeouts.power_on)
        .await?;
    let powered = started.elapsed();

    // The OS boots after the power comes on: SSH refuses or times out until it is up.
    let deadline = Instant::now() + p.timeouts.ssh_ready;
    let mut pause = Duration::from_millis(200);
    let script = runtime::mark_powered_on_script(&host.state_dir);
    loop {
        match p.run_ok(host, Op::Deploy, &script, p.script_limit()).await {
            Ok(_) => break,
            Err(e) if e.class.is_unreachable() && Instant::now() + pause < deadline => {
                tracing::debug!(host = %host.config.name, error = %e, "waiting for SSH after power-on");
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(5));
            }
            Err(e) => return Err(e),
        }
    }
    let wait = PowerOnWait {
        host: host.config.name.clone(),
        workload: req.workload.name.clone(),
        generation: req.generation,
        owner: req.owner.clone(),
        power_state: powered,
        ssh_ready: started.elapsed() - powered,
    };
    tracing::info!(provider = %p.name, host = %host.config.name, power_state = ?wait.power_state,
        ssh_ready = ?wait.ssh_ready, "standby host is up");
    if let Ok(mut book) = p.power.lock() {
        book.waits.push(wait);
    }
    Ok(())
}
