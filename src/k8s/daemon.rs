//! `lifeboat run --kubernetes`: the daemon inside (or against) a cluster.
//!
//! Several replicas run; a `coordination.k8s.io` Lease (through `kube-lease-manager`)
//! picks one leader. Only the leader acts: it reads `Provider`, `Workload`, `Policy` and
//! `Notice` resources, assembles a [`crate::config::Config`] from them, and runs the same
//! loop as `lifeboat run` ([`crate::daemon::reconcile`]) with its SQLite journal in the state folder
//! (an emptyDir in the Deployment). It mirrors what the journal knows into the
//! resources' status — provider conditions, workload placements, one `Evacuation` per
//! evacuation with its steps — and records Events on condition changes, moves and
//! steps. Every write checks leadership first ([`Writer`]), and losing the lease drops
//! the leader's work at once, mid-evacuation if need be (the next leader resumes from
//! the cluster's state; see the README for what lives where).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, anyhow};
use jiff::Timestamp;
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, ResourceExt};
use kube_lease_manager::LeaseManagerBuilder;
use tokio::sync::{broadcast, mpsc, watch};
use tokio_util::sync::CancellationToken;

use super::cluster::{self, Assembled};
use super::drills;
use super::intents;
use super::resources::{Drill, Notice};
use super::sync;
use super::watched::{Resources, Watched};
use super::writer::{Writer, progress};
use crate::api::Role;
use crate::config::Config;
use crate::control::Control;
use crate::controller::Round;
use crate::daemon::{Change, Host, Parts};
use crate::decide::Decision;
use crate::drill::scheduled::{DrillRequest, ScheduledResult};
use crate::execute::{ExecEvent, Report};
use crate::metrics::Metrics;
use crate::model::Plan;
use crate::notify::Notifier;
use crate::providers::BuildOptions;
use crate::store::Store;

/// How the in-cluster daemon connects and elects its leader.
#[derive(Debug, Clone)]
pub struct Options {
    /// A kubeconfig file; unset: in-cluster config, then `$KUBECONFIG`, then `~/.kube/config`.
    pub kubeconfig: Option<PathBuf>,
    /// Where lifeboat's resources live; unset: the kubeconfig's (or the pod's) namespace.
    pub namespace: Option<String>,
    /// The state folder (the journal; an emptyDir in the Deployment).
    pub state_dir: PathBuf,
    /// This replica's name in the Lease (the pod name in the Deployment).
    pub identity: String,
    /// The Lease's name.
    pub lease_name: String,
    /// How long a lease lasts without renewal: a dead leader is replaced after this.
    pub lease_duration: Duration,
    /// How long before expiry the leader renews.
    pub lease_grace: Duration,
    /// Where every replica serves `/healthz`, `/readyz` and `/metrics` (`0.0.0.0:7480`
    /// in the Deployment, for the kubelet and the scraper).
    pub api_listen: std::net::SocketAddr,
}

/// Runs until `stop` is cancelled: follows while another replica leads, leads while it
/// holds the lease. Fails when the lease task dies (this replica can no longer know
/// whether it leads, so it must not go on).
pub async fn run(options: Options, stop: CancellationToken) -> anyhow::Result<()> {
    let (client, namespace) = connect(&options).await?;
    let manager = LeaseManagerBuilder::new(client.clone(), &options.lease_name)
        .with_namespace(&namespace)
        .with_identity(&options.identity)
        .with_duration(options.lease_duration.as_secs().max(1))
        .with_grace(options.lease_grace.as_secs().max(1))
        .build()
        .await
        .with_context(|| format!("setting up the Lease {namespace}/{}", options.lease_name))?;
    let (leader, lease_task) = manager.watch().await;
    tracing::info!(identity = %options.identity, %namespace, lease = %options.lease_name, "waiting for the lease");
    // One registry and heartbeat for the process, across terms: a scrape sees one
    // series whether this replica leads now, led before, or never did.
    let watch = Watch::default();
    let probes = crate::api::Probes {
        metrics: watch.metrics.clone(),
        heartbeat: watch.heartbeat.clone(),
        store: None,
    };
    let server =
        crate::api::serve_probes(probes, options.api_listen, &options.state_dir, stop.clone())
            .await?;
    let result = elect_and_lead(&client, &namespace, &options, leader, &watch, &stop).await;
    stop.cancel();
    server.stopped().await;
    // Closing the channel (the receiver went with `elect_and_lead`) makes the lease task
    // release the Lease, so a clean stop hands over without waiting for expiry.
    match tokio::time::timeout(Duration::from_secs(5), lease_task).await {
        Ok(Ok(Ok(_))) => tracing::info!("released the lease"),
        Ok(Ok(Err(e))) => tracing::warn!(error = %e, "releasing the lease"),
        Ok(Err(e)) => tracing::warn!(error = %e, "the lease task failed"),
        Err(_) => tracing::warn!("the lease task did not end in time"),
    }
    result
}

async fn connect(options: &Options) -> anyhow::Result<(Client, String)> {
    let config = match &options.kubeconfig {
        Some(path) => {
            let file = Kubeconfig::read_from(path)
                .with_context(|| format!("reading the kubeconfig {}", path.display()))?;
            kube::Config::from_custom_kubeconfig(file, &KubeConfigOptions::default())
                .await
                .with_context(|| format!("using the kubeconfig {}", path.display()))?
        }
        None => kube::Config::infer()
            .await
            .context("finding a cluster (in-cluster, $KUBECONFIG, ~/.kube/config)")?,
    };
    let namespace = (options.namespace.clone()).unwrap_or_else(|| config.default_namespace.clone());
    let client = Client::try_from(config).context("building the Kubernetes client")?;
    Ok((client, namespace))
}

/// What the probes and metrics read, shared by every term of one process.
#[derive(Clone, Default)]
struct Watch {
    metrics: Arc<Metrics>,
    heartbeat: Arc<crate::api::Heartbeat>,
}

impl Watch {
    fn role(&self, role: Role) {
        self.heartbeat.role(role);
        self.metrics.leading(role == Role::Leading);
    }
}

async fn elect_and_lead(
    client: &Client,
    namespace: &str,
    options: &Options,
    mut leader: watch::Receiver<bool>,
    shared: &Watch,
    stop: &CancellationToken,
) -> anyhow::Result<()> {
    loop {
        shared.role(Role::Following);
        while !*leader.borrow_and_update() {
            tokio::select! {
                changed = leader.changed() => changed.map_err(|_| anyhow!("the lease task ended"))?,
                _ = stop.cancelled() => return Ok(()),
            }
        }
        tracing::info!(identity = %options.identity, "acquired the lease: leading");
        shared.role(Role::Leading);
        let writer = Writer::new(client.clone(), namespace, leader.clone(), &options.identity);
        let mut watch_loss = leader.clone();
        let lost = async move {
            loop {
                watch_loss
                    .changed()
                    .await
                    .map_err(|_| anyhow!("the lease task ended"))?;
                if !*watch_loss.borrow() {
                    return anyhow::Ok(());
                }
            }
        };
        let term = Term {
            client: client.clone(),
            namespace: namespace.to_owned(),
            state_dir: options.state_dir.clone(),
            writer,
            watch: shared.clone(),
        };
        tokio::select! {
            result = term.lead(stop) => match result {
                Ok(()) => return Ok(()),
                Err(e) => {
                    tracing::error!(error = format!("{e:#}"), "leading failed; starting over");
                    tokio::select! {
                        _ = tokio::time::sleep(Duration::from_secs(2)) => {}
                        _ = stop.cancelled() => return Ok(()),
                    }
                }
            },
            loss = lost => {
                loss?;
                // Dropping `term.lead` above stopped every step at its next await.
                tracing::warn!(identity = %options.identity, "lost the lease: stopped acting");
            }
            _ = stop.cancelled() => return Ok(()),
        }
    }
}

/// One term of leadership.
struct Term {
    client: Client,
    namespace: String,
    state_dir: PathBuf,
    writer: Writer,
    watch: Watch,
}

impl Term {
    fn assemble(&self, r: &Resources) -> anyhow::Result<Assembled> {
        cluster::assemble(&r.providers, &r.workloads, &r.policies, &self.state_dir)
    }

    /// Leads until `stop`; rebuilds the controller whenever the resources change.
    async fn lead(&self, stop: &CancellationToken) -> anyhow::Result<()> {
        let mut watched = tokio::select! {
            watched = Watched::start(&self.client, &self.namespace) => watched?,
            _ = stop.cancelled() => return Ok(()),
        };
        while !stop.is_cancelled() {
            let resources = watched.snapshot();
            let policy = cluster::chosen_policy(&resources.policies);
            let assembled = match self.assemble(&resources) {
                Ok(a) => a,
                Err(e) => {
                    let problems = format!("{e:#}");
                    tracing::warn!(%problems, "the cluster's resources make no valid configuration");
                    if let Some(p) = policy {
                        self.writer
                            .policy_accepted(p, Some(&problems), Timestamp::now())
                            .await?;
                    }
                    // Nothing to do until someone fixes the resources.
                    tokio::select! {
                        _ = watched.changed() => {}
                        _ = stop.cancelled() => {}
                    }
                    continue;
                }
            };
            if let Some(p) = policy {
                self.writer
                    .policy_accepted(p, None, Timestamp::now())
                    .await?;
            }
            std::fs::create_dir_all(&self.state_dir)
                .with_context(|| format!("creating {}", self.state_dir.display()))?;
            let copy = self.state_dir.join("cluster.yaml");
            std::fs::write(&copy, &assembled.text)
                .with_context(|| format!("writing {}", copy.display()))?;
            self.run_config(assembled, &mut watched, stop).await?;
        }
        Ok(())
    }

    /// Runs the shared loop ([`crate::daemon::reconcile`]) on one configuration until
    /// it changes (Ok) or `stop`.
    async fn run_config(
        &self,
        assembled: Assembled,
        watched: &mut Watched,
        stop: &CancellationToken,
    ) -> anyhow::Result<()> {
        let mut config = assembled.config;
        let owner =
            lifeboat_provider::Owner::installation(in_cluster_installation(&self.namespace));
        config.installation = Some(owner.installation.clone());
        let config = Arc::new(config);
        let store = Arc::new(Store::open(&config.state_dir)?);
        let providers = crate::providers::build_all(&config).await?;
        let control = Control::new(store.clone())?;
        let executor = crate::daemon::executor(
            &config,
            owner.clone(),
            &providers,
            &store,
            &control,
            crate::clock::Clock::system(),
        )?;
        let (finished, finished_rx) = mpsc::unbounded_channel();
        let reasons = Arc::new(std::sync::Mutex::new(Vec::new()));
        let mirror = Mirror {
            writer: self.writer.clone(),
            store: store.clone(),
            reasons: reasons.clone(),
        };
        // Aborted when the term ends (a lost lease drops it).
        let _mirror = tokio_util::task::AbortOnDropHandle::new(tokio::spawn(
            mirror.run(executor.subscribe(), finished_rx),
        ));
        sync::seed_placements(&store, &watched.snapshot().workloads, executor.owner())?;
        self.writer.ensure_leader()?;
        let parts = Parts {
            notifier: Notifier::from_config(&config, &owner.installation, Default::default())?,
            config: config.clone(),
            store,
            providers,
            executor,
            control,
            metrics: self.watch.metrics.clone(),
            heartbeat: self.watch.heartbeat.clone(),
        };
        let mut host = ClusterHost {
            term: self,
            watched,
            control: parts.control.clone(),
            config,
            assembled: assembled.text,
            notices_seen: Vec::new(),
            intents_seen: intents::Intents::default(),
            finished,
            reasons,
            drills_requested: None,
            drills_seen: Vec::new(),
        };
        crate::daemon::reconcile(parts, &BuildOptions::default(), &mut host, stop).await?;
        Ok(())
    }
}

/// The shared loop's edges in a cluster: Notices come in from their resources, the
/// conditions and placements go out to the resources' status, every action checks the
/// lease first, and a change of the resources reloads the configuration.
struct ClusterHost<'a> {
    term: &'a Term,
    watched: &'a mut Watched,
    control: Control,
    config: Arc<Config>,
    /// The configuration the loop runs, as assembled: another one means reload.
    assembled: String,
    /// The Notices the last round took in.
    notices_seen: Vec<(String, String)>,
    /// The Policy's annotations the last round took in.
    intents_seen: intents::Intents,
    finished: mpsc::UnboundedSender<(String, bool)>,
    reasons: Arc<std::sync::Mutex<Vec<String>>>,
    /// The drills last handed to the loop (`None` before the first round).
    drills_requested: Option<Vec<DrillRequest>>,
    /// The Drills' names and generations the last round took in.
    drills_seen: Vec<(String, Option<i64>)>,
}

impl ClusterHost<'_> {
    /// Follows the Policy's annotations: the kill switch as they say, and an approval
    /// or rejection of the evacuation they name when it is the one pending.
    fn apply(&mut self, wanted: intents::Intents) -> anyhow::Result<()> {
        match (&wanted.pause, self.control.paused()) {
            (Some(reason), None) => {
                self.control.pause(reason, Timestamp::now())?;
                tracing::warn!(%reason, "paused by the Policy's {} annotation: no step starts", intents::PAUSE);
            }
            (None, Some(_)) => {
                self.control.resume()?;
                tracing::warn!(
                    "resumed: the Policy's {} annotation is gone",
                    intents::PAUSE
                );
            }
            _ => {}
        }
        let pending = (self.control.approvals().pending()).map(|p| (p.id.clone(), p.approved));
        if let Some((id, approved)) = pending {
            if wanted.reject.as_deref() == Some(id.as_str()) {
                self.control.reject(&id)?;
                tracing::warn!(evacuation = %id, "rejected by the Policy's {} annotation", intents::REJECT);
            } else if !approved && wanted.approve.as_deref() == Some(id.as_str()) {
                self.control.approve(&id)?;
                tracing::warn!(evacuation = %id, "approved by the Policy's {} annotation", intents::APPROVE);
            }
        }
        self.intents_seen = wanted;
        Ok(())
    }
}

#[async_trait::async_trait]
impl Host for ClusterHost<'_> {
    async fn before_round(&mut self, store: &Store) -> anyhow::Result<()> {
        let resources = self.watched.snapshot();
        sync::sync_notices(store, &resources.notices, &self.config)?;
        self.notices_seen = notice_specs(&resources.notices);
        self.apply(intents::read(cluster::chosen_policy(&resources.policies)))?;
        self.term.writer.ensure_leader()
    }

    async fn after_round(&mut self, round: &Round, store: &Store) -> anyhow::Result<()> {
        let resources = self.watched.snapshot();
        let now = Timestamp::now();
        for provider in &resources.providers {
            let name = provider.name_any();
            let Some(condition) = round.conditions.get(&name) else {
                continue;
            };
            let change = round.changes.iter().find(|(p, _, _)| *p == name);
            let shown = provider.status.as_ref().and_then(|s| s.condition.clone());
            if change.is_some() || shown != Some(condition.to_string()) {
                let old = change.map(|(_, old, _)| old.as_ref());
                (self.term.writer)
                    .provider_condition(provider, condition, old, now)
                    .await?;
            }
        }
        if let Some(policy) = cluster::chosen_policy(&resources.policies) {
            let pending = (self.control.approvals().pending())
                .filter(|p| !p.approved)
                .map(|p| p.id.clone());
            let paused = self.control.paused().map(|p| p.reason);
            (self.term.writer)
                .policy_switches(policy, pending.as_deref(), paused.as_deref())
                .await?;
        }
        for (name, why) in drills::wanted(&resources.drills, &self.config).refused {
            if let Some(drill) = resources.drills.iter().find(|d| d.name_any() == name) {
                (self.term.writer)
                    .drill_status(drill, |d| drills::refused(d, &why, now))
                    .await?;
            }
        }
        let placements = store.placements()?;
        for workload in &resources.workloads {
            if let Some(placement) = placements.get(&workload.name_any()) {
                (self.term.writer)
                    .workload_placement(workload, placement, now)
                    .await?;
            }
        }
        Ok(())
    }

    async fn evacuation_starts(&mut self, _plan: &Plan, decision: &Decision) -> anyhow::Result<()> {
        *self.reasons.lock().unwrap_or_else(|p| p.into_inner()) = (decision.departures.iter())
            .map(|d| format!("{}: {}", d.provider, d.reason))
            .collect();
        self.term.writer.ensure_leader()
    }

    async fn evacuation_finished(&mut self, report: &Report) -> anyhow::Result<()> {
        let _ = self
            .finished
            .send((report.evacuation.clone(), report.all_moved()));
        Ok(())
    }

    fn drill_requests(&mut self) -> Option<Vec<DrillRequest>> {
        let resources = self.watched.snapshot();
        self.drills_seen = drill_generations(&resources.drills);
        let requests = drills::wanted(&resources.drills, &self.config).requests;
        if self.drills_requested.as_ref() == Some(&requests) {
            return None;
        }
        self.drills_requested = Some(requests.clone());
        Some(requests)
    }

    async fn drill_finished(&mut self, result: &ScheduledResult) -> anyhow::Result<()> {
        let resources = self.watched.snapshot();
        let Some(drill) = (resources.drills.iter()).find(|d| d.name_any() == result.schedule)
        else {
            // Deleted while it ran: its result stays in the store.
            return Ok(());
        };
        let now = Timestamp::now();
        (self.term.writer)
            .drill_status(drill, |d| Some(drills::after_run(d, result, now)))
            .await
    }

    async fn changed(&mut self) -> Change {
        // The daemon's own status writes wake the watches too, and change neither the
        // configuration nor a Notice.
        loop {
            self.watched.changed().await;
            let now = self.watched.snapshot();
            let text = self.term.assemble(&now).map(|a| a.text).ok();
            if text.as_ref() != Some(&self.assembled) {
                return Change::Reload;
            }
            if notice_specs(&now.notices) != self.notices_seen
                || drill_generations(&now.drills) != self.drills_seen
                || intents::read(cluster::chosen_policy(&now.policies)) != self.intents_seen
            {
                return Change::Wake;
            }
        }
    }
}

/// The Notices as they bear on decisions (name and spec), to tell a new or changed
/// Notice from a status write.
fn notice_specs(notices: &[Notice]) -> Vec<(String, String)> {
    notices
        .iter()
        .map(|n| {
            let spec = serde_json::to_string(&n.spec).unwrap_or_default();
            (n.name_any(), spec)
        })
        .collect()
}

/// The Drills as they bear on what runs (name and generation, which a spec change
/// moves and a status write does not).
fn drill_generations(drills: &[Drill]) -> Vec<(String, Option<i64>)> {
    (drills.iter())
        .map(|d| (d.name_any(), d.metadata.generation))
        .collect()
}

/// Mirrors executor progress into Evacuation resources and Events.
struct Mirror {
    writer: Writer,
    store: Arc<Store>,
    reasons: Arc<std::sync::Mutex<Vec<String>>>,
}

impl Mirror {
    async fn run(
        self,
        mut events: broadcast::Receiver<ExecEvent>,
        mut finished: mpsc::UnboundedReceiver<(String, bool)>,
    ) {
        let mut known = BTreeMap::new();
        loop {
            tokio::select! {
                biased;
                event = events.recv() => match event {
                    Ok(e) => self.step(&mut known, &e.evacuation.clone(), Some(&e), "Running").await,
                    Err(broadcast::error::RecvError::Lagged(n)) => tracing::warn!(missed = n, "evacuation progress events missed; the journal still has them"),
                    Err(broadcast::error::RecvError::Closed) => return,
                },
                done = finished.recv() => {
                    let Some((id, ok)) = done else { return };
                    // Every step of the evacuation was sent before it finished.
                    while let Ok(e) = events.try_recv() {
                        self.step(&mut known, &e.evacuation.clone(), Some(&e), "Running").await;
                    }
                    self.step(&mut known, &id, None, if ok { "Succeeded" } else { "Failed" }).await;
                }
            }
        }
    }

    async fn step(
        &self,
        known: &mut BTreeMap<String, ()>,
        id: &str,
        event: Option<&ExecEvent>,
        phase: &str,
    ) {
        if let Err(e) = self.try_step(known, id, event, phase).await {
            tracing::warn!(evacuation = %id, error = format!("{e:#}"), "mirroring evacuation progress");
        }
    }

    async fn try_step(
        &self,
        known: &mut BTreeMap<String, ()>,
        id: &str,
        event: Option<&ExecEvent>,
        phase: &str,
    ) -> anyhow::Result<()> {
        if !known.contains_key(id) {
            let evacuation = (self.store.evacuations()?.into_iter())
                .find(|e| e.id == id)
                .with_context(|| format!("evacuation {id} is not in the journal"))?;
            let reasons = self
                .reasons
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clone();
            self.writer
                .begin_evacuation(id, &evacuation, reasons)
                .await?;
            known.insert(id.to_owned(), ());
        }
        // The journal is the record; the status shows the last transition of each step.
        let mut steps = BTreeMap::new();
        for entry in self.store.journal(id)? {
            // Only the last transition of each step is shown from the journal.
            let e = ExecEvent::from_journal(&entry, tokio::time::Instant::now(), false);
            let p = progress(&e);
            steps.insert((p.workload.clone(), p.step.clone()), p);
        }
        self.writer
            .evacuation_step(id, &steps, event, phase, Timestamp::now())
            .await
    }
}

/// The installation id of the daemon that leads in `namespace`: one installation per
/// namespace (its leader election makes it one controller), named after it so the
/// owner label of a resource says where its controller runs. Namespaces are DNS
/// labels, so the id is label-safe once cut to 63 characters.
fn in_cluster_installation(namespace: &str) -> String {
    let mut id = format!("k8s-{namespace}");
    id.truncate(63);
    id.trim_end_matches('-').to_owned()
}
