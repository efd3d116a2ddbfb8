//! Fault injection at the adapter boundary, for drills.
//!
//! A drill must exercise the real detect path: probes fail, signals are recorded,
//! conditions change after their confirmations, decide and plan react. So the fault is
//! injected *below* all of that, by wrapping the fenced providers in [`Faulty`]: while
//! its [`FaultSwitch`] holds a [`Scenario`], every call fails with that scenario's
//! error class, exactly as a real vendor's refusal would come back from its adapter.
//! Time to detect is then measured honestly, through the same probe intervals and
//! confirmations as a real outage.

use std::sync::{Arc, RwLock};
use std::time::Duration;

use async_trait::async_trait;
use lifeboat_provider::{
    DeployRequest, DeploymentRef, DeploymentState, ErrorClass, Op, Owner, Probe, Provider,
    ProviderError, Timing,
};

use crate::config::Scenario;

/// The vendor code an injected error carries (`drill:account-suspended`, ...), so a
/// report or a log can never mistake a drill for the real thing.
pub fn code(scenario: Scenario) -> String {
    format!("drill:{}", scenario_name(scenario))
}

fn scenario_name(scenario: Scenario) -> &'static str {
    match scenario {
        Scenario::AccountSuspended => "account-suspended",
        Scenario::CredentialsRevoked => "credentials-revoked",
        Scenario::Unreachable => "unreachable",
    }
}

/// The error class a scenario produces. `Unreachable` is `Timeout` when calls hang
/// before failing and `Unavailable` (connection refused) when they fail at once.
pub fn class_of(scenario: Scenario, hangs: bool) -> ErrorClass {
    match scenario {
        Scenario::AccountSuspended => ErrorClass::AccountSuspended,
        Scenario::CredentialsRevoked => ErrorClass::CredentialsRejected,
        Scenario::Unreachable if hangs => ErrorClass::Timeout,
        Scenario::Unreachable => ErrorClass::Unavailable,
    }
}

/// A handle that turns a drill's fault on and off at run time. Cheap to clone; all
/// clones (and every [`Faulty`] given one) share one setting.
#[derive(Debug, Clone, Default)]
pub struct FaultSwitch {
    scenario: Arc<RwLock<Option<Scenario>>>,
}

impl FaultSwitch {
    /// A switch with no fault set.
    pub fn new() -> Self {
        FaultSwitch::default()
    }

    /// From now on, every call through the wrapped providers fails with `scenario`.
    pub fn set(&self, scenario: Scenario) {
        *self.scenario.write().unwrap_or_else(|p| p.into_inner()) = Some(scenario);
    }

    /// Lets calls through again (the end of a drill, or its fail-back).
    pub fn clear(&self) {
        *self.scenario.write().unwrap_or_else(|p| p.into_inner()) = None;
    }

    /// The fault in force, if any.
    pub fn current(&self) -> Option<Scenario> {
        *self.scenario.read().unwrap_or_else(|p| p.into_inner())
    }
}

/// A provider whose calls fail on demand (see the module docs); passes every call
/// through untouched while its switch is clear.
pub struct Faulty {
    inner: Arc<dyn Provider>,
    switch: FaultSwitch,
    hang: Duration,
}

impl Faulty {
    /// Wraps `inner`. Under `Scenario::Unreachable` each call first hangs for `hang`
    /// (like a vendor that no longer answers; give it the call's own timeout, so the
    /// caller's deadline is what fires) and then fails with `Timeout`; with a zero
    /// `hang` it fails at once with `Unavailable`, like a refused connection. The
    /// hang runs on tokio's clock.
    pub fn new(inner: Arc<dyn Provider>, switch: FaultSwitch, hang: Duration) -> Self {
        Faulty {
            inner,
            switch,
            hang,
        }
    }

    /// The switch that controls this wrapper.
    pub fn switch(&self) -> &FaultSwitch {
        &self.switch
    }

    /// The injected failure for `op`, if a fault is set (after the hang, for
    /// `Unreachable`).
    async fn injected(&self, op: Op) -> Option<ProviderError> {
        let scenario = self.switch.current()?;
        let hangs = !self.hang.is_zero();
        if scenario == Scenario::Unreachable && hangs {
            tokio::time::sleep(self.hang).await;
        }
        let class = class_of(scenario, hangs);
        Some(
            ProviderError::new(
                class,
                op,
                format!("drill: {} injected", scenario_name(scenario)),
            )
            .with_code(code(scenario)),
        )
    }
}

#[async_trait]
impl Provider for Faulty {
    fn kind(&self) -> &'static str {
        self.inner.kind()
    }

    async fn probe(&self) -> Probe {
        match self.injected(Op::Probe).await {
            Some(e) => Err(e),
            None => self.inner.probe().await,
        }
    }

    async fn deploy(&self, req: &DeployRequest) -> Result<DeploymentRef, ProviderError> {
        match self.injected(Op::Deploy).await {
            Some(e) => Err(e),
            None => self.inner.deploy(req).await,
        }
    }

    async fn inspect(&self, dep: &DeploymentRef) -> Result<DeploymentState, ProviderError> {
        match self.injected(Op::Inspect).await {
            Some(e) => Err(e),
            None => self.inner.inspect(dep).await,
        }
    }

    async fn retire(&self, dep: &DeploymentRef) -> Result<(), ProviderError> {
        match self.injected(Op::Retire).await {
            Some(e) => Err(e),
            None => self.inner.retire(dep).await,
        }
    }

    async fn list_managed(
        &self,
        owner: Option<&Owner>,
    ) -> Result<Vec<DeploymentRef>, ProviderError> {
        match self.injected(Op::ListManaged).await {
            Some(e) => Err(e),
            None => self.inner.list_managed(owner).await,
        }
    }

    /// Passed through even under a fault: the figures describe deploys already done.
    fn timings(&self, dep: &DeploymentRef) -> Vec<Timing> {
        self.inner.timings(dep)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lifeboat_provider::{Generation, ProbeReport, Resources, Run, WorkloadSpec};
    use std::collections::BTreeMap;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// Answers every call successfully and counts the calls that reached it.
    #[derive(Default)]
    struct Counting(AtomicUsize);

    fn dep() -> DeploymentRef {
        DeploymentRef {
            workload: "api".into(),
            generation: Generation(1),
            handle: "api-g1".into(),
            endpoint: None,
            owner: None,
        }
    }

    #[async_trait]
    impl Provider for Counting {
        fn kind(&self) -> &'static str {
            "counting"
        }
        async fn probe(&self) -> Probe {
            self.0.fetch_add(1, Ordering::SeqCst);
            Ok(ProbeReport::default())
        }
        async fn deploy(&self, _: &DeployRequest) -> Result<DeploymentRef, ProviderError> {
            self.0.fetch_add(1, Ordering::SeqCst);
            Ok(dep())
        }
        async fn inspect(&self, _: &DeploymentRef) -> Result<DeploymentState, ProviderError> {
            self.0.fetch_add(1, Ordering::SeqCst);
            Ok(DeploymentState::Gone)
        }
        async fn retire(&self, _: &DeploymentRef) -> Result<(), ProviderError> {
            self.0.fetch_add(1, Ordering::SeqCst);
            Ok(())
        }
        async fn list_managed(
            &self,
            _: Option<&Owner>,
        ) -> Result<Vec<DeploymentRef>, ProviderError> {
            self.0.fetch_add(1, Ordering::SeqCst);
            Ok(vec![dep()])
        }
    }

    fn request() -> DeployRequest {
        DeployRequest {
            workload: WorkloadSpec {
                name: "api".into(),
                run: Run::Command {
                    command: vec!["true".into()],
                },
                env: BTreeMap::new(),
                port: None,
                resources: Resources::default(),
                replicas: 1,
                health: None,
                extra: BTreeMap::new(),
            },
            generation: Generation(1),
            owner: Owner::installation("test"),
        }
    }

    /// Every operation's error class, or `None` for each that succeeded.
    async fn call_all(p: &Faulty) -> Vec<Option<(ErrorClass, Op, Option<String>)>> {
        let e = |e: ProviderError| (e.class, e.op, e.code);
        vec![
            p.probe().await.err().map(e),
            p.deploy(&request()).await.err().map(e),
            p.inspect(&dep()).await.err().map(e),
            p.retire(&dep()).await.err().map(e),
            p.list_managed(None).await.err().map(e),
        ]
    }

    const OPS: [Op; 5] = [
        Op::Probe,
        Op::Deploy,
        Op::Inspect,
        Op::Retire,
        Op::ListManaged,
    ];

    #[tokio::test]
    async fn every_call_fails_with_the_scenario_class_while_set() {
        let inner = Arc::new(Counting::default());
        let switch = FaultSwitch::new();
        let faulty = Faulty::new(inner.clone(), switch.clone(), Duration::ZERO);
        assert_eq!(faulty.kind(), "counting");
        assert_eq!(call_all(&faulty).await, vec![None; 5]);
        assert_eq!(inner.0.load(Ordering::SeqCst), 5);

        for (scenario, class) in [
            (Scenario::AccountSuspended, ErrorClass::AccountSuspended),
            (
                Scenario::CredentialsRevoked,
                ErrorClass::CredentialsRejected,
            ),
            (Scenario::Unreachable, ErrorClass::Unavailable),
        ] {
            switch.set(scenario);
            assert_eq!(faulty.switch().current(), Some(scenario));
            let expected: Vec<_> = OPS
                .iter()
                .map(|op| Some((class, *op, Some(code(scenario)))))
                .collect();
            assert_eq!(call_all(&faulty).await, expected);
        }
        // Nothing reached the real provider while a fault was set.
        assert_eq!(inner.0.load(Ordering::SeqCst), 5);

        switch.clear();
        assert_eq!(call_all(&faulty).await, vec![None; 5]);
        assert_eq!(inner.0.load(Ordering::SeqCst), 10);
    }

    #[tokio::test(start_paused = true)]
    async fn unreachable_hangs_for_the_call_time_then_times_out() {
        let switch = FaultSwitch::new();
        let hang = Duration::from_secs(5);
        let faulty = Faulty::new(Arc::new(Counting::default()), switch.clone(), hang);
        switch.set(Scenario::Unreachable);
        let start = tokio::time::Instant::now();
        let e = faulty.probe().await.unwrap_err();
        assert_eq!(e.class, ErrorClass::Timeout);
        assert_eq!(e.code.as_deref(), Some("drill:unreachable"));
        assert_eq!(start.elapsed(), hang);
        // A caller with a shorter deadline sees its own timeout fire first.
        let cut = tokio::time::timeout(Duration::from_secs(1), faulty.probe()).await;
        assert!(cut.is_err());
        // Suspension fails at once, whatever the hang.
        switch.set(Scenario::AccountSuspended);
        let start = tokio::time::Instant::now();
        assert!(faulty.probe().await.is_err());
        assert_eq!(start.elapsed(), Duration::ZERO);
    }
}
