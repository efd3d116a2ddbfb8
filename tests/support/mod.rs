//! Shared set-up for the executor tests: simulated providers, a recording cutover,
//! workloads placed on a source provider, and plans.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use jiff::Timestamp;
use lifeboat::config::{PolicyConfig, WorkloadConfig};
use lifeboat::cutover::{Cutover, CutoverError, CutoverRequest, Resolved};
use lifeboat::execute::{ExecOptions, Executor};
use lifeboat::model::{Move, Placement, Plan, Step};
use lifeboat::store::Store;
use lifeboat::workload;
use lifeboat_provider::{DeployRequest, DeploymentState, Endpoint, Generation, Provider};
use lifeboat_provider_sim::{SimConfig, SimHandle, SimProvider};

/// A check run inside a switch.
pub type SwitchCheck = Box<dyn Fn(&CutoverRequest) + Send>;

/// A cutover backend in memory that keeps every switch, and checks the promise of the
/// trait: a switch whose `old` does not match where the name points is refused.
#[derive(Default)]
pub struct RecordingCutover {
    pub names: Mutex<BTreeMap<String, Endpoint>>,
    pub switches: Mutex<Vec<CutoverRequest>>,
    /// Called inside every switch, before it takes effect (to check the journal).
    pub on_switch: Mutex<Option<SwitchCheck>>,
    /// When set, every switch takes effect and then reports a failure (a backend that
    /// timed out after applying the change).
    pub fail_after_switch: std::sync::atomic::AtomicBool,
}

#[async_trait]
impl Cutover for RecordingCutover {
    async fn switch(&self, req: &CutoverRequest) -> Result<(), CutoverError> {
        if let Some(check) = &*self.on_switch.lock().unwrap() {
            check(req);
        }
        let mut names = self.names.lock().unwrap();
        let current = names.get(&req.public_name);
        if current != req.old.as_ref() && current != Some(&req.new) {
            return Err(CutoverError::changed(format!(
                "{} points at {current:?}, not {:?}",
                req.public_name, req.old
            )));
        }
        names.insert(req.public_name.clone(), req.new.clone());
        self.switches.lock().unwrap().push(req.clone());
        if self
            .fail_after_switch
            .load(std::sync::atomic::Ordering::SeqCst)
        {
            return Err(CutoverError::new(
                lifeboat_provider::ErrorClass::Unavailable,
                "connection reset after the update was sent",
            ));
        }
        Ok(())
    }

    async fn resolve(&self, public_name: &str) -> anyhow::Result<Resolved> {
        Ok(Resolved {
            endpoint: self.names.lock().unwrap().get(public_name).cloned(),
            ttl: None,
        })
    }
}

impl RecordingCutover {
    pub fn switched(&self) -> Vec<String> {
        self.switches
            .lock()
            .unwrap()
            .iter()
            .map(|s| s.workload.clone())
            .collect()
    }
}

/// The world of one test: simulated providers by name, their handles, the cutover.
pub struct World {
    pub sims: BTreeMap<String, Arc<SimProvider>>,
    pub cutover: Arc<RecordingCutover>,
    pub workloads: Vec<WorkloadConfig>,
    pub policy: PolicyConfig,
}

pub fn workload(name: &str, hooks: &str) -> WorkloadConfig {
    serde_yaml::from_str(&format!(
        "name: {name}\ncommand: [serve]\nport: 8080\nplacement: [a, b, c]\n{hooks}"
    ))
    .unwrap()
}

pub fn policy() -> PolicyConfig {
    PolicyConfig {
        step_timeout: Duration::from_secs(30),
        step_attempts: 3,
        parallelism: 8,
        per_provider_parallelism: 4,
        ..PolicyConfig::default()
    }
}

impl World {
    /// Providers `names`, each with the given sim settings.
    pub fn new(providers: &[(&str, SimConfig)], workloads: Vec<WorkloadConfig>) -> World {
        World {
            sims: providers
                .iter()
                .map(|(n, c)| (n.to_string(), Arc::new(SimProvider::new(*n, c.clone()))))
                .collect(),
            cutover: Arc::default(),
            workloads,
            policy: policy(),
        }
    }

    pub fn handle(&self, provider: &str) -> SimHandle {
        self.sims[provider].handle()
    }

    pub fn providers(&self) -> BTreeMap<String, Arc<dyn Provider>> {
        self.sims
            .iter()
            .map(|(n, s)| (n.clone(), s.clone() as Arc<dyn Provider>))
            .collect()
    }

    pub fn executor(&self, store: &Arc<Store>) -> Executor {
        self.executor_with(store, self.providers())
    }

    /// An executor over every provider with `options` (a daemon's kill switch, its
    /// clock).
    pub fn executor_with_options(&self, store: &Arc<Store>, options: ExecOptions) -> Executor {
        self.executor_with(store, self.providers())
            .with_options(options)
    }

    pub fn executor_with(
        &self,
        store: &Arc<Store>,
        providers: BTreeMap<String, Arc<dyn Provider>>,
    ) -> Executor {
        Executor::new(
            owner(),
            providers,
            self.cutover.clone(),
            store.clone(),
            self.policy.clone(),
            &self.workloads,
        )
        .with_options(ExecOptions {
            health_poll: Duration::from_millis(200),
            ..ExecOptions::default()
        })
    }

    /// Runs every workload on `provider` at generation 1, placed and cut over to.
    pub async fn place_all(&self, store: &Store, provider: &str) {
        let sim = &self.sims[provider];
        for w in &self.workloads {
            let req = DeployRequest {
                workload: workload::spec(w),
                generation: Generation(1),
                owner: owner(),
            };
            let mut dep = sim.deploy(&req).await.unwrap();
            let endpoint = loop {
                if let DeploymentState::Healthy { endpoint } = sim.inspect(&dep).await.unwrap() {
                    break endpoint;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            };
            dep.endpoint = Some(endpoint.clone());
            store
                .put_placement(&Placement {
                    workload: w.name.clone(),
                    provider: provider.into(),
                    generation: Generation(1),
                    deployment: Some(dep),
                    since: Timestamp::now(),
                })
                .unwrap();
            self.cutover
                .names
                .lock()
                .unwrap()
                .insert(workload::public_name(w).to_owned(), endpoint);
        }
    }

    /// Live copies of `workload` over every provider, as (provider, generation).
    pub fn copies(&self, workload: &str) -> Vec<(String, u64)> {
        self.sims
            .iter()
            .flat_map(|(n, s)| {
                s.handle()
                    .copies_of(workload)
                    .into_iter()
                    .map(move |d| (n.clone(), d.generation.0))
            })
            .collect()
    }
}

/// A plan moving every workload from `from` to `targets`, wave = position.
pub fn plan(workloads: &[(&str, u32)], from: &str, targets: &[&str]) -> Plan {
    Plan {
        moves: workloads
            .iter()
            .map(|(name, wave)| Move {
                workload: name.to_string(),
                from: Some(from.into()),
                targets: targets.iter().map(|t| t.to_string()).collect(),
                generation: Generation(2),
                wave: *wave,
                deadline: None,
                priority: 0,
                steps: Step::ALL.to_vec(),
            })
            .collect(),
        stranded: vec![],
        held: vec![],
    }
}

pub fn open(dir: &Path) -> Arc<Store> {
    Arc::new(Store::open(dir).unwrap())
}

/// Wraps a provider so that every deploy and retire first checks, through an
/// independent read-only connection, that the journal's last line announces it.
pub struct JournalChecking {
    pub inner: Arc<dyn Provider>,
    pub reader: Arc<Store>,
    pub checked: Arc<std::sync::atomic::AtomicUsize>,
}

impl JournalChecking {
    fn expect_last(&self, step: Step, workload: &str) {
        let ev = self
            .reader
            .evacuations()
            .unwrap()
            .pop()
            .expect("an evacuation");
        let last = self
            .reader
            .journal(&ev.id)
            .unwrap()
            .pop()
            .expect("a journal line");
        assert_eq!(
            (last.step, last.status, last.workload.as_str()),
            (step, lifeboat::store::Status::Started, workload),
            "the action was not journaled first"
        );
        self.checked
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }
}

#[async_trait]
impl Provider for JournalChecking {
    fn kind(&self) -> &'static str {
        "journal-checking"
    }
    async fn probe(&self) -> lifeboat_provider::Probe {
        self.inner.probe().await
    }
    async fn deploy(
        &self,
        req: &DeployRequest,
    ) -> Result<lifeboat_provider::DeploymentRef, lifeboat_provider::ProviderError> {
        self.expect_last(Step::Deploy, &req.workload.name);
        self.inner.deploy(req).await
    }
    async fn inspect(
        &self,
        dep: &lifeboat_provider::DeploymentRef,
    ) -> Result<DeploymentState, lifeboat_provider::ProviderError> {
        self.inner.inspect(dep).await
    }
    async fn retire(
        &self,
        dep: &lifeboat_provider::DeploymentRef,
    ) -> Result<(), lifeboat_provider::ProviderError> {
        self.expect_last(Step::RetireSource, &dep.workload);
        self.inner.retire(dep).await
    }
    async fn list_managed(
        &self,
        owner: Option<&lifeboat_provider::Owner>,
    ) -> Result<Vec<lifeboat_provider::DeploymentRef>, lifeboat_provider::ProviderError> {
        self.inner.list_managed(owner).await
    }
}

/// The world's providers, each wrapped in [`JournalChecking`], and the count of checks.
pub fn journal_checking_providers(
    world: &World,
    reader: Arc<Store>,
) -> (
    BTreeMap<String, Arc<dyn Provider>>,
    Arc<std::sync::atomic::AtomicUsize>,
) {
    let checked = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let providers = world
        .providers()
        .into_iter()
        .map(|(name, inner)| {
            let wrapped: Arc<dyn Provider> = Arc::new(JournalChecking {
                inner,
                reader: reader.clone(),
                checked: checked.clone(),
            });
            (name, wrapped)
        })
        .collect();
    (providers, checked)
}

/// The installation the tests' executors act for.
pub fn owner() -> lifeboat_provider::Owner {
    lifeboat_provider::Owner::installation("test")
}
