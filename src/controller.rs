//! The controller: one probe round → conditions → decision → plan → execution, the loop
//! that `lifeboat run` repeats and `lifeboat drill` drives. It owns the provider memory
//! (health) between rounds; everything it decides comes from the pure core, everything it
//! does goes through the executor, and every condition change is stored.

use std::collections::BTreeMap;
use std::sync::Arc;

use anyhow::Context;
use lifeboat_provider::{Capacity, Provider};

use crate::clock::Clock;
use crate::conditions::{self, Health};
use crate::config::Config;
use crate::decide::{self, Decision};
use crate::execute::{Executor, Report};
use crate::model::{Condition, Notice, Plan};
use crate::plan;
use crate::probe::{self, ProbeResult};
use crate::store::Store;

/// What one round saw and concluded.
#[derive(Debug, Clone)]
pub struct Round {
    /// Every provider's condition after the round.
    pub conditions: BTreeMap<String, Condition>,
    /// Conditions that changed in this round (provider, old, new).
    pub changes: Vec<(String, Option<Condition>, Condition)>,
    /// What to do about them.
    pub decision: Decision,
    /// The raw probe results, for logs and reports.
    pub probes: Vec<ProbeResult>,
}

/// The state shared by the daemon and the drill.
pub struct Controller {
    config: Arc<Config>,
    providers: BTreeMap<String, Arc<dyn Provider>>,
    store: Arc<Store>,
    executor: Executor,
    healths: BTreeMap<String, Health>,
    conditions: BTreeMap<String, Condition>,
    /// The free room each provider's last successful probe reported: the planner's
    /// second bound beside the configured capacity.
    free: BTreeMap<String, Capacity>,
    /// Whether the probe memory is stored every round (the daemons) or kept in memory
    /// only (a drill, whose memory must start empty each time).
    remember: bool,
}

impl Controller {
    /// A controller over already-built providers and executor. Starts from the conditions
    /// stored by an earlier run, so a restart does not announce every provider anew.
    pub fn new(
        config: Arc<Config>,
        providers: BTreeMap<String, Arc<dyn Provider>>,
        store: Arc<Store>,
        executor: Executor,
    ) -> anyhow::Result<Controller> {
        let conditions = store
            .conditions()?
            .into_iter()
            .map(|(name, record)| (name, record.condition))
            .collect();
        Ok(Controller {
            config,
            providers,
            store,
            executor,
            healths: BTreeMap::new(),
            conditions,
            free: BTreeMap::new(),
            remember: false,
        })
    }

    /// The same controller, starting from the probe memory an earlier run stored and
    /// storing its own every round: a daemon restarted between two confirming probes of
    /// a suspension needs only the missing ones, and a grace period goes on running.
    pub fn remembering(mut self) -> anyhow::Result<Controller> {
        self.healths = self
            .store
            .probe_memory()
            .context("reading the stored probe memory")?;
        // Memory of providers no longer in the config is dropped with them.
        self.healths
            .retain(|name, _| self.providers.contains_key(name));
        self.remember = true;
        Ok(self)
    }

    /// The executor (for subscribing to progress, resuming, fencing stale copies).
    pub fn executor(&self) -> &Executor {
        &self.executor
    }

    /// The clock it decides by (its executor's).
    pub fn clock(&self) -> &Clock {
        self.executor.clock()
    }

    /// The provider called `name`, as the controller calls it.
    pub fn provider(&self, name: &str) -> Option<&Arc<dyn Provider>> {
        self.providers.get(name)
    }

    /// The store.
    pub fn store(&self) -> &Arc<Store> {
        &self.store
    }

    /// Probes every provider once, folds the signals into each provider's memory,
    /// derives conditions (with the stored notices and fences) and decides. Changed
    /// conditions are stored and logged.
    pub async fn round(&mut self) -> anyhow::Result<Round> {
        let policy = &self.config.policy;
        let probes =
            probe::probe_all(&self.providers, policy.probe_timeout, || self.clock().now()).await;
        for result in &probes {
            let health = self
                .healths
                .entry(result.signal.provider.clone())
                .or_default();
            *health = conditions::observe(health, &result.signal, policy);
            if let Some(report) = &result.report {
                match report.capacity {
                    Some(free) => self.free.insert(result.signal.provider.clone(), free),
                    None => self.free.remove(&result.signal.provider),
                };
            }
            if let Some(error) = &result.error {
                tracing::debug!(provider = %result.signal.provider, %error, "probe failed");
            }
        }
        let now = self.clock().now();
        if self.remember {
            self.store
                .put_probe_memory(&self.healths, now)
                .context("storing the probe memory")?;
        }
        let notices = self.notices()?;
        let conditions = conditions::conditions(&self.config, &self.healths, &notices, now);
        let mut changes = Vec::new();
        for (provider, condition) in &conditions {
            let old = self.conditions.get(provider);
            if old != Some(condition) {
                tracing::info!(%provider, %condition, "provider condition changed");
                self.store
                    .put_condition(provider, condition, now)
                    .with_context(|| format!("storing the condition of {provider}"))?;
                changes.push((provider.clone(), old.cloned(), condition.clone()));
            }
        }
        self.conditions = conditions.clone();
        let decision = decide::decide(&self.config, &conditions, now);
        for alert in &decision.alerts {
            tracing::warn!("{alert}");
        }
        Ok(Round {
            conditions,
            changes,
            decision,
            probes,
        })
    }

    /// The plan for a decision: moves off the providers being left, plus the first
    /// placement of every workload that has none.
    pub fn plan(&self, decision: &Decision) -> anyhow::Result<Plan> {
        self.plan_replacing(decision, &std::collections::BTreeSet::new())
    }

    /// [`Controller::plan`], plus a replacement of each workload of `replace`, whose
    /// live copy is dead; both bounded by the room the last probes reported free (see
    /// [`plan::plan_observed`]).
    pub fn plan_replacing(
        &self,
        decision: &Decision,
        replace: &std::collections::BTreeSet<String>,
    ) -> anyhow::Result<Plan> {
        let placements: Vec<_> = self.store.placements()?.into_values().collect();
        // A move of a workload with data goes where its standby streams.
        let standbys = (self.store.datasets()?.into_values())
            .filter(|d| d.streaming())
            .filter_map(|d| Some((d.workload, d.standby?.provider)))
            .collect();
        let observed = plan::Observed {
            replace: replace.clone(),
            free: self.free.clone(),
            standbys,
        };
        Ok(plan::plan_observed(
            &self.config,
            &placements,
            &decision.departures,
            &observed,
            self.clock().now(),
        ))
    }

    /// Plans for `decision` and executes the plan; `None` when there is nothing to do.
    pub async fn act(&self, decision: &Decision) -> anyhow::Result<Option<Report>> {
        let plan = self.plan(decision)?;
        if plan.moves.is_empty() {
            for stranded in &plan.stranded {
                tracing::error!(workload = %stranded.workload, reason = %stranded.reason, "workload stranded");
            }
            return Ok(None);
        }
        tracing::info!(
            moves = plan.moves.len(),
            stranded = plan.stranded.len(),
            "executing a plan"
        );
        self.executor.execute(&plan).await.map(Some)
    }

    /// Keeps every dataset's warm standby (see [`crate::dataset::keeper`]), with the
    /// providers of `leaving` excluded; the states are stored for `status`.
    pub async fn keep_datasets(
        &self,
        leaving: &std::collections::BTreeSet<String>,
    ) -> anyhow::Result<BTreeMap<String, crate::dataset::DatasetState>> {
        self.dataset_keeper().keep(leaving).await
    }

    /// What keeps the datasets, apart from the controller: the daemon runs it beside its
    /// rounds, so a standby's slow deploy never holds the probing up.
    pub fn dataset_keeper(&self) -> DatasetKeeper {
        DatasetKeeper {
            config: self.config.clone(),
            providers: self.providers.clone(),
            store: self.store.clone(),
            executor: self.executor.clone(),
        }
    }

    fn notices(&self) -> anyhow::Result<Vec<Notice>> {
        Ok(self
            .store
            .notices(true)?
            .into_iter()
            .map(|r| r.notice)
            .collect())
    }
}

/// The workloads as the executor should run them: each gets the environment a client
/// of the cutover backend needs (for the endpoints file, where it is), so a workload
/// finds its dependencies the way any client does.
pub fn workloads(config: &Config) -> Vec<crate::config::WorkloadConfig> {
    let client_env = crate::cutover::client_env(config);
    config
        .workloads
        .iter()
        .map(|w| {
            let mut w = w.clone();
            for (key, value) in &client_env {
                w.env.entry(key.clone()).or_insert_with(|| value.clone());
            }
            w
        })
        .collect()
}

/// Keeps the datasets' standbys and snapshots (see [`Controller::dataset_keeper`]):
/// shares the controller's providers, store and executor, so its rounds and the
/// controller's see one state.
#[derive(Clone)]
pub struct DatasetKeeper {
    config: Arc<Config>,
    providers: BTreeMap<String, Arc<dyn Provider>>,
    store: Arc<Store>,
    executor: Executor,
}

impl DatasetKeeper {
    /// One round of keeping, with the providers of `leaving` excluded; the states are
    /// stored for `status` and returned.
    pub async fn keep(
        &self,
        leaving: &std::collections::BTreeSet<String>,
    ) -> anyhow::Result<BTreeMap<String, crate::dataset::DatasetState>> {
        let datasets = self.executor.datasets();
        if datasets.is_empty() {
            return Ok(BTreeMap::new());
        }
        crate::dataset::keeper::keep(&crate::dataset::keeper::Keeping {
            config: &self.config,
            providers: &self.providers,
            owner: self.executor.owner(),
            store: &self.store,
            datasets,
            leaving,
            may_deploy: !self.executor.is_paused(),
            timeout: self.config.policy.step_timeout,
            // A login to a member (SCRAM) alone can take a good part of a short probe
            // timeout on a busy machine: a slow read is not a lost standby.
            read_timeout: self
                .config
                .policy
                .probe_timeout
                .max(std::time::Duration::from_secs(2)),
            now: self.executor.clock().now(),
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::PolicyConfig;
    use crate::testing::{Builder, replicas};
    use lifeboat_provider::{ErrorClass, Op, Owner};
    use lifeboat_provider_sim::{FaultSpec, SimConfig, SimProvider};

    /// A controller over one sim provider `acme-eu` whose account answers suspended to
    /// every probe, with `confirmations: 2`, on the store in `dir`.
    fn suspended_controller(dir: &std::path::Path) -> Controller {
        let config = Arc::new(
            Builder::new()
                .provider("acme-eu", "acme", Some("prod"), replicas(4))
                .policy(PolicyConfig {
                    confirmations: 2,
                    ..PolicyConfig::default()
                })
                .build(),
        );
        let sim = SimProvider::new(
            "acme-eu",
            SimConfig {
                faults: vec![FaultSpec {
                    from: std::time::Duration::ZERO,
                    until: None,
                    class: ErrorClass::AccountSuspended,
                    ops: vec![Op::Probe],
                }],
                ..SimConfig::default()
            },
        );
        let providers: BTreeMap<String, Arc<dyn Provider>> =
            [("acme-eu".to_owned(), Arc::new(sim) as Arc<dyn Provider>)].into();
        let store = Arc::new(Store::open(dir).unwrap());
        let executor = Executor::new(
            Owner::installation("test"),
            providers.clone(),
            Arc::new(crate::cutover::Skipped),
            store.clone(),
            config.policy.clone(),
            &[],
        );
        Controller::new(config, providers, store, executor).unwrap()
    }

    fn suspended(round: &Round) -> bool {
        matches!(round.conditions["acme-eu"], Condition::Suspended { .. })
    }

    #[tokio::test]
    async fn a_restart_between_two_confirming_probes_needs_only_the_missing_one() {
        let dir = tempfile::tempdir().unwrap();
        {
            let mut first = suspended_controller(dir.path()).remembering().unwrap();
            assert!(
                !suspended(&first.round().await.unwrap()),
                "one answer is not proof"
            );
        }
        let mut restarted = suspended_controller(dir.path()).remembering().unwrap();
        assert!(suspended(&restarted.round().await.unwrap()));

        // Without the stored memory (what a drill does) the count starts over.
        let other = tempfile::tempdir().unwrap();
        let mut first = suspended_controller(other.path());
        assert!(!suspended(&first.round().await.unwrap()));
        drop(first);
        let mut forgetful = suspended_controller(other.path());
        assert!(!suspended(&forgetful.round().await.unwrap()));
    }
}
