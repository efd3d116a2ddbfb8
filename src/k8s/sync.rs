//! What the cluster's resources tell the store: placements mirrored by an earlier
//! leader, and Notice resources.

use jiff::Timestamp;
use kube::ResourceExt;
use lifeboat_provider::{DeploymentRef, Endpoint, Generation};

use super::resources::{Notice, Workload};
use crate::config::Config;
use crate::model::{Notice as ModelNotice, Placement};
use crate::store::Store;

/// Takes the placements a former leader mirrored into `Workload` status into this
/// replica's store, where it has none or an older one: the cluster's status is what
/// outlives a replica (its journal sits in an emptyDir), so a new leader starts from
/// where the workloads really run rather than placing them afresh.
pub fn seed_placements(
    store: &Store,
    workloads: &[Workload],
    owner: &lifeboat_provider::Owner,
) -> anyhow::Result<()> {
    let known = store.placements()?;
    for w in workloads {
        let name = w.name_any();
        let Some(shown) = w.status.as_ref().and_then(|s| s.placement.as_ref()) else {
            continue;
        };
        if known
            .get(&name)
            .is_some_and(|p| p.generation.0 >= shown.generation)
        {
            continue;
        }
        let Ok(since) = shown.since.parse() else {
            tracing::warn!(workload = %name, since = %shown.since, "a placement in status has an unreadable time; ignored");
            continue;
        };
        let generation = Generation(shown.generation);
        let endpoint = (shown.endpoint.as_deref())
            .and_then(|e| e.rsplit_once(':'))
            .and_then(|(host, port)| {
                Some(Endpoint {
                    host: host.to_owned(),
                    port: port.parse().ok()?,
                })
            });
        let deployment = shown.handle.clone().map(|handle| DeploymentRef {
            workload: name.clone(),
            generation,
            handle,
            endpoint,
            // The status is written by this namespace's installation only.
            owner: Some(owner.clone()),
        });
        store.put_placement(&Placement {
            workload: name.clone(),
            provider: shown.provider.clone(),
            generation,
            deployment,
            since,
        })?;
        tracing::info!(workload = %name, provider = %shown.provider, generation = shown.generation, "placement taken from the Workload status");
    }
    Ok(())
}

/// Folds the cluster's Notice resources into the store, where the controller reads
/// notices: a new resource raises one, a deleted one clears it.
pub fn sync_notices(store: &Store, notices: &[Notice], config: &Config) -> anyhow::Result<()> {
    let tag = |name: &str| format!("Notice/{name}");
    let active = store.notices(true)?;
    let now = Timestamp::now();
    for n in notices {
        let name = n.name_any();
        let prefix = tag(&name);
        if active.iter().any(|r| r.notice.reason.starts_with(&prefix)) {
            continue;
        }
        let Some(scope) = config.resolve_scope(&n.spec.scope) else {
            tracing::warn!(notice = %name, scope = %n.spec.scope, "a Notice names no vendor, account or provider");
            continue;
        };
        let notice = ModelNotice {
            scope,
            deadline: n.spec.deadline,
            reason: format!("{prefix}: {}", n.spec.reason),
        };
        store.add_notice(&notice, now)?;
    }
    for record in active {
        let from_cluster = record.notice.reason.starts_with("Notice/");
        let still_there = notices
            .iter()
            .any(|n| record.notice.reason.starts_with(&tag(&n.name_any())));
        if from_cluster && !still_there {
            store.clear_notice(record.id, now)?;
        }
    }
    Ok(())
}
