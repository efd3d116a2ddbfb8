//! The cluster's lifeboat resources as the leader sees them: one kube-runtime reflector
//! per kind, fed by a watch (list once, then events, relisting on its own when the
//! server says the watch expired), instead of listing every kind every probe interval.
//! A change wakes the leader at once, so a new Notice or Provider counts from the
//! moment it is written, not from the next round.

use std::fmt::Debug;
use std::hash::Hash;

use anyhow::Context;
use futures_util::StreamExt;
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client, Resource, ResourceExt};
use serde::de::DeserializeOwned;
use tokio::sync::watch;

use super::resources::{Drill, Notice, Policy, Provider, Workload};

/// The cluster's lifeboat resources at one moment, each kind sorted by name.
pub struct Resources {
    /// Provider resources.
    pub providers: Vec<Provider>,
    /// Workload resources.
    pub workloads: Vec<Workload>,
    /// Policy resources.
    pub policies: Vec<Policy>,
    /// Notice resources.
    pub notices: Vec<Notice>,
    /// Drill resources.
    pub drills: Vec<Drill>,
}

/// Watches of every kind lifeboat reads, stopped when dropped.
pub struct Watched {
    providers: Store<Provider>,
    workloads: Store<Workload>,
    policies: Store<Policy>,
    notices: Store<Notice>,
    drills: Store<Drill>,
    changes: watch::Receiver<u64>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Watched {
    /// Starts watching the lifeboat resources of `namespace`, and waits until each
    /// kind has been listed once.
    pub async fn start(client: &Client, namespace: &str) -> anyhow::Result<Watched> {
        let (changed, changes) = watch::channel(0u64);
        let mut tasks = Vec::new();
        let providers = reflect::<Provider>(client, namespace, &changed, &mut tasks);
        let workloads = reflect::<Workload>(client, namespace, &changed, &mut tasks);
        let policies = reflect::<Policy>(client, namespace, &changed, &mut tasks);
        let notices = reflect::<Notice>(client, namespace, &changed, &mut tasks);
        let drills = reflect::<Drill>(client, namespace, &changed, &mut tasks);
        let watched = Watched {
            providers,
            workloads,
            policies,
            notices,
            drills,
            changes,
            tasks,
        };
        // Errors while listing are logged by each watch, which retries with backoff; a
        // kind that cannot be read at all (the CRD missing, no RBAC) keeps the leader
        // waiting here and says so in the log.
        watched
            .providers
            .wait_until_ready()
            .await
            .context("watching Providers")?;
        watched
            .workloads
            .wait_until_ready()
            .await
            .context("watching Workloads")?;
        watched
            .policies
            .wait_until_ready()
            .await
            .context("watching Policies")?;
        watched
            .notices
            .wait_until_ready()
            .await
            .context("watching Notices")?;
        watched
            .drills
            .wait_until_ready()
            .await
            .context("watching Drills")?;
        Ok(watched)
    }

    /// What the watches hold now.
    pub fn snapshot(&self) -> Resources {
        Resources {
            providers: sorted(&self.providers),
            workloads: sorted(&self.workloads),
            policies: sorted(&self.policies),
            notices: sorted(&self.notices),
            drills: sorted(&self.drills),
        }
    }

    /// Resolves when any watched resource changed since the last call (at once if one
    /// did meanwhile).
    pub async fn changed(&mut self) {
        if self.changes.changed().await.is_err() {
            // Every watch task ended (only on shutdown): nothing will change again.
            std::future::pending::<()>().await;
        }
    }
}

impl Drop for Watched {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// Starts a reflector for `K` in `namespace`, bumping `changed` on every event.
fn reflect<K>(
    client: &Client,
    namespace: &str,
    changed: &watch::Sender<u64>,
    tasks: &mut Vec<tokio::task::JoinHandle<()>>,
) -> Store<K>
where
    K: Resource<Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + Debug
        + DeserializeOwned
        + Send
        + Sync
        + 'static,
    K::DynamicType: Default + Eq + Hash + Clone + Send + Sync,
{
    let kind = K::kind(&Default::default()).to_string();
    let api: Api<K> = Api::namespaced(client.clone(), namespace);
    let (reader, writer) = reflector::store();
    let stream = reflector::reflector(writer, watcher(api, watcher::Config::default()))
        .default_backoff()
        .boxed();
    let changed = changed.clone();
    tasks.push(tokio::spawn(async move {
        let mut stream = stream;
        while let Some(event) = stream.next().await {
            match event {
                Ok(_) => {
                    changed.send_modify(|n| *n = n.wrapping_add(1));
                }
                // The watcher relists and retries on its own (with backoff); a lasting
                // failure (RBAC, a missing CRD) shows here in the log.
                Err(e) => tracing::warn!(%kind, error = %e, "watching failed; retrying"),
            }
        }
    }));
    reader
}

fn sorted<K>(store: &Store<K>) -> Vec<K>
where
    K: Resource + Clone + 'static,
    K::DynamicType: Eq + Hash + Clone,
{
    let mut items: Vec<K> = store.state().iter().map(|o| (**o).clone()).collect();
    items.sort_by_key(|o| o.name_any());
    items
}
