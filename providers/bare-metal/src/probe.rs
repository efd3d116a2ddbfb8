//! Looking at every host at once: `probe`, `list_managed`, and the survey `deploy` uses
//! to find room and earlier copies.

use std::collections::BTreeMap;

use futures_util::future::join_all;
use lifeboat_provider::{
    Capacity, DeploymentRef, Endpoint, ErrorClass, Generation, Op, Owner, Probe, ProbeReport,
    ProviderError,
};

use crate::redfish::PowerState;
use crate::runtime::{self, Listed};
use crate::{BareMetalProvider, Host, classify};

/// What one host looks like right now.
pub(crate) enum HostStatus {
    /// On (or without BMC) and SSH works: the copies it runs.
    Up(Vec<Listed>),
    /// Its BMC says it is off: a cold-standby host that can be powered on.
    Off,
    /// Not usable now.
    Down(ProviderError),
}

/// One host's survey.
pub(crate) struct Survey {
    pub status: HostStatus,
    /// Set when the BMC reports `Critical` health.
    pub critical: Option<String>,
}

/// Surveys one host: BMC first (an off host has no SSH to ask), then SSH.
pub(crate) async fn survey_host(p: &BareMetalProvider, host: &Host, op: Op) -> Survey {
    let mut critical = None;
    if let Some(bmc) = &host.bmc {
        // The service root needs no login: a failure here means the BMC itself is not
        // reachable, which a probe reports apart from a refused login.
        if op == Op::Probe
            && let Err(e) = bmc.service_root(op).await
        {
            return Survey {
                status: HostStatus::Down(e),
                critical,
            };
        }
        match bmc.system(op).await {
            Err(e) => {
                return Survey {
                    status: HostStatus::Down(e),
                    critical,
                };
            }
            Ok(sys) => {
                let status = sys.status.unwrap_or_default();
                if classify::health_is_critical(status.health.as_deref())
                    || classify::health_is_critical(status.health_rollup.as_deref())
                {
                    critical = Some(format!(
                        "host {}: BMC reports Critical health",
                        host.config.name
                    ));
                }
                match sys.power_state {
                    Some(PowerState::On) | None => {}
                    Some(PowerState::Off) => {
                        return Survey {
                            status: HostStatus::Off,
                            critical,
                        };
                    }
                    Some(other) => {
                        let e = ProviderError::new(
                            ErrorClass::Unavailable,
                            op,
                            format!("host {} is {other:?}", host.config.name),
                        )
                        .with_code("power-transition");
                        return Survey {
                            status: HostStatus::Down(e),
                            critical,
                        };
                    }
                }
            }
        }
    }
    let script = runtime::list_script(host.config.runtime, &host.state_dir);
    let status = match p.run_ok(host, op, &script, p.script_limit()).await {
        Ok(out) => HostStatus::Up(runtime::parse_list(&out)),
        Err(e) => HostStatus::Down(e),
    };
    Survey { status, critical }
}

/// Surveys every host concurrently, in config order.
pub(crate) async fn survey(p: &BareMetalProvider, op: Op) -> Vec<Survey> {
    join_all(p.hosts.iter().map(|h| survey_host(p, h, op))).await
}

/// The worst of the hosts' failures, for when none is usable.
pub(crate) fn worst(errors: impl IntoIterator<Item = ProviderError>) -> Option<ProviderError> {
    errors
        .into_iter()
        .max_by_key(|e| classify::severity(e.class))
}

pub(crate) async fn probe(p: &BareMetalProvider) -> Probe {
    let surveys = survey(p, Op::Probe).await;
    let mut problems = Vec::new();
    let mut errors = Vec::new();
    let mut usable = 0;
    let mut free = Capacity {
        replicas: Some(0),
        cpu_millis: Some(0),
        memory_mib: Some(0),
    };
    let mut lost = Vec::new();
    for (host, s) in p.hosts.iter().zip(surveys) {
        problems.extend(s.critical);
        let listing = match s.status {
            HostStatus::Down(e) => {
                problems.push(e.to_string());
                errors.push(e);
                continue;
            }
            HostStatus::Off => Vec::new(),
            HostStatus::Up(listing) => listing,
        };
        usable += 1;
        let cap = host.config.capacity;
        let used_cpu: u64 = listing.iter().map(|l| l.resources.cpu_millis).sum();
        let used_mem: u64 = listing.iter().map(|l| l.resources.memory_mib).sum();
        add_free(&mut free.replicas, cap.slots, listing.len() as u64);
        add_free(&mut free.cpu_millis, cap.cpu_millis, used_cpu);
        add_free(&mut free.memory_mib, cap.memory_mib, used_mem);
        // A copy whose process died without lifeboat retiring it is lost.
        lost.extend(
            listing
                .iter()
                .filter(|l| !l.running)
                .map(|l| reference(l, &[host])),
        );
    }
    if usable == 0 {
        return Err(worst(errors)
            .unwrap_or_else(|| ProviderError::new(ErrorClass::Internal, Op::Probe, "no hosts")));
    }
    Ok(ProbeReport {
        degraded: (!problems.is_empty()).then(|| problems.join("; ")),
        capacity: Some(free),
        lost,
    })
}

/// Adds a host's free room to the pool's; any unbounded host makes the pool unbounded.
fn add_free(total: &mut Option<u64>, limit: Option<u64>, used: u64) {
    *total = match (*total, limit) {
        (Some(t), Some(l)) => Some(t + l.saturating_sub(used)),
        _ => None,
    };
}

/// The reference to a copy group (one folder on several hosts), endpoint on its first
/// host, owner as the host says.
pub(crate) fn reference(listed: &Listed, hosts: &[&Host]) -> DeploymentRef {
    let host_names = hosts
        .iter()
        .map(|h| h.config.name.as_str())
        .collect::<Vec<_>>()
        .join(",");
    DeploymentRef {
        workload: listed.workload.clone(),
        generation: listed.generation,
        handle: format!("{}@{host_names}", listed.folder),
        endpoint: match (hosts.first(), listed.port) {
            (Some(h), Some(port)) => Some(Endpoint {
                host: h.address.clone(),
                port,
            }),
            _ => None,
        },
        owner: listed.owner.clone(),
    }
}

/// `owner`'s copies on every host that answers, one reference per copy folder (one
/// owner's (workload, generation)) naming all the hosts that hold it. Other owners'
/// copies are skipped here, not in the scripts, because capacity and power decisions
/// need to see them.
pub(crate) async fn list_managed(
    p: &BareMetalProvider,
    owner: Option<&Owner>,
) -> Result<Vec<DeploymentRef>, ProviderError> {
    let surveys = survey(p, Op::ListManaged).await;
    let mut groups: BTreeMap<(String, Generation, String), (Listed, Vec<&Host>)> = BTreeMap::new();
    let mut errors = Vec::new();
    let mut answered = 0;
    for (host, s) in p.hosts.iter().zip(surveys) {
        match s.status {
            HostStatus::Down(e) => {
                tracing::warn!(provider = %p.name, host = %host.config.name, error = %e, "host skipped while listing");
                errors.push(e);
            }
            HostStatus::Off => answered += 1,
            HostStatus::Up(listing) => {
                answered += 1;
                for l in listing
                    .into_iter()
                    .filter(|l| Owner::matches(l.owner.as_ref(), owner))
                {
                    groups
                        .entry((l.workload.clone(), l.generation, l.folder.clone()))
                        .or_insert_with(|| (l.clone(), Vec::new()))
                        .1
                        .push(host);
                }
            }
        }
    }
    if answered == 0
        && let Some(e) = worst(errors)
    {
        return Err(e);
    }
    Ok(groups
        .values()
        .map(|(l, hosts)| reference(l, hosts))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn free_room_adds_up_until_one_host_is_unbounded() {
        let mut total = Some(0);
        add_free(&mut total, Some(4), 1);
        add_free(&mut total, Some(2), 5);
        assert_eq!(total, Some(3), "an over-full host adds nothing");
        add_free(&mut total, None, 0);
        assert_eq!(total, None);
        add_free(&mut total, Some(4), 0);
        assert_eq!(total, None, "unbounded stays unbounded");
    }

    #[test]
    fn the_worst_failure_is_the_one_reported() {
        let errors = [
            ErrorClass::Timeout,
            ErrorClass::CredentialsRejected,
            ErrorClass::Unavailable,
        ]
        .map(|c| ProviderError::new(c, Op::Probe, "x"));
        assert_eq!(
            worst(errors).map(|e| e.class),
            Some(ErrorClass::CredentialsRejected)
        );
        assert!(worst(Vec::new()).is_none());
    }
}
