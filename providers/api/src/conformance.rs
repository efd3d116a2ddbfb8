//! The adapter conformance suite: one set of checks that every adapter runs against its
//! real peer (moto, a Kubernetes API server, sshd, this host), so an out-of-tree adapter
//! meets the same bar as the in-tree ones.
//!
//! ```ignore
//! let report = conformance::run(&provider, &Fixture::new(workload, "conformance")).await;
//! assert!(report.passed(), "{report}");
//! ```
//!
//! Each check makes its own copies at generations of its own and removes everything it
//! made, also when it fails, so the checks can run one after another against one peer.
//! A check fails with a message that says what the contract promised and what the
//! adapter did instead.

use std::collections::BTreeSet;
use std::fmt;
use std::time::Duration;

use crate::{
    DeployRequest, DeploymentRef, DeploymentState, ErrorClass, Generation, Owner, Provider,
    WorkloadSpec,
};

/// What the suite needs to know about the adapter under test.
#[derive(Debug, Clone)]
pub struct Fixture {
    /// A workload this provider can run as it is configured in the test.
    pub workload: WorkloadSpec,
    /// The installation the checks act as; a drill of it is the second owner.
    pub installation: String,
    /// How long a copy may take to become healthy; `None` for a peer whose copies never
    /// run (an API emulator without a data plane), where health is not checked.
    pub healthy_within: Option<Duration>,
    /// How long the peer may take to show a change in its listings (eventually
    /// consistent APIs); the checks poll that long before they call a listing wrong.
    pub settle: Duration,
    /// A workload the provider must refuse with `InvalidRequest`, when it has one to
    /// refuse (an image for a provider that runs only commands, say).
    pub invalid: Option<WorkloadSpec>,
}

impl Fixture {
    /// A fixture with no health wait, a 5 s settle time and no invalid request.
    pub fn new(workload: WorkloadSpec, installation: impl Into<String>) -> Fixture {
        Fixture {
            workload,
            installation: installation.into(),
            healthy_within: None,
            settle: Duration::from_secs(5),
            invalid: None,
        }
    }

    fn production(&self) -> Owner {
        Owner::installation(self.installation.clone())
    }

    fn drill(&self) -> Owner {
        Owner::drill(self.installation.clone(), "conformance")
    }

    fn request(&self, generation: u64, owner: &Owner) -> DeployRequest {
        DeployRequest {
            workload: self.workload.clone(),
            generation: Generation(generation),
            owner: owner.clone(),
        }
    }
}

/// The outcome of one check.
#[derive(Debug, Clone)]
pub struct Check {
    /// The check's name (`deploy-is-idempotent`, ...).
    pub name: &'static str,
    /// `Err` says what the contract promised and what happened.
    pub result: Result<(), String>,
}

/// The outcome of the whole suite.
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// Every check that ran, in order.
    pub checks: Vec<Check>,
}

impl Report {
    /// Whether every check passed.
    pub fn passed(&self) -> bool {
        self.checks.iter().all(|c| c.result.is_ok())
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for check in &self.checks {
            match &check.result {
                Ok(()) => writeln!(f, "ok    {}", check.name)?,
                Err(why) => writeln!(f, "FAIL  {}: {why}", check.name)?,
            }
        }
        Ok(())
    }
}

type CheckResult = Result<(), String>;

/// Runs every check against `provider` and reports each; never panics on the adapter's
/// behalf. Everything the checks made is retired before it returns.
pub async fn run(provider: &dyn Provider, fixture: &Fixture) -> Report {
    let mut report = Report::default();
    let mut record = |name, result| report.checks.push(Check { name, result });
    record(
        "deploy-is-idempotent",
        deploy_is_idempotent(provider, fixture).await,
    );
    record(
        "owners-are-isolated",
        owners_are_isolated(provider, fixture).await,
    );
    record(
        "list-finds-exactly-what-was-made",
        list_finds_exactly_what_was_made(provider, fixture).await,
    );
    record(
        "retire-is-idempotent",
        retire_is_idempotent(provider, fixture).await,
    );
    if fixture.healthy_within.is_some() {
        record("becomes-healthy", becomes_healthy(provider, fixture).await);
    }
    record(
        "errors-are-classified",
        errors_are_classified(provider, fixture).await,
    );
    for owner in [fixture.production(), fixture.drill()] {
        sweep(provider, &owner).await;
    }
    report
}

/// Deploying (workload, generation, owner) twice yields one copy and one reference.
pub async fn deploy_is_idempotent(provider: &dyn Provider, fixture: &Fixture) -> CheckResult {
    let owner = fixture.production();
    let result = async {
        let req = fixture.request(901, &owner);
        let first = deploy(provider, &req).await?;
        let second = deploy(provider, &req).await?;
        if first.handle != second.handle {
            return Err(format!(
                "a second deploy of the same (workload, generation, owner) made another copy: \
                 {} then {}",
                first.handle, second.handle
            ));
        }
        let listed = eventually(fixture, || async {
            let listed = list(provider, Some(&owner)).await?;
            let copies = of(&listed, &req);
            if copies.len() == 1 {
                Ok(())
            } else {
                Err(format!(
                    "after two deploys, list_managed shows {} copies of {} generation {}: {:?}",
                    copies.len(),
                    req.workload.name,
                    req.generation,
                    handles(copies.iter().copied())
                ))
            }
        })
        .await;
        listed?;
        Ok(())
    }
    .await;
    sweep(provider, &owner).await;
    result
}

/// A drill's copy and the installation's copy of the same (workload, generation) are
/// two copies; neither owner lists, nor retires, the other's.
pub async fn owners_are_isolated(provider: &dyn Provider, fixture: &Fixture) -> CheckResult {
    let (prod, drill) = (fixture.production(), fixture.drill());
    let result = async {
        let prod_copy = deploy(provider, &fixture.request(902, &prod)).await?;
        let drill_copy = deploy(provider, &fixture.request(902, &drill)).await?;
        if prod_copy.handle == drill_copy.handle {
            return Err(format!(
                "a drill's deploy of (workload, generation) returned the installation's copy \
                 {}: a drill would adopt production",
                prod_copy.handle
            ));
        }
        eventually(fixture, || async {
            let of_prod = handles(&list(provider, Some(&prod)).await?);
            let of_drill = handles(&list(provider, Some(&drill)).await?);
            let unowned = handles(&list(provider, None).await?);
            if of_prod.contains(&drill_copy.handle) {
                return Err("the installation's listing shows the drill's copy".to_owned());
            }
            if of_drill.contains(&prod_copy.handle) {
                return Err("the drill's listing shows the installation's copy".to_owned());
            }
            if unowned.contains(&prod_copy.handle) || unowned.contains(&drill_copy.handle) {
                return Err("the listing of unowned copies shows owned ones".to_owned());
            }
            if !of_prod.contains(&prod_copy.handle) || !of_drill.contains(&drill_copy.handle) {
                return Err(format!(
                    "an owner's listing misses its own copy (installation: {of_prod:?}, \
                     drill: {of_drill:?})"
                ));
            }
            Ok(())
        })
        .await?;
        // A reference that names the installation's copy with the drill as owner (a
        // drill's cleanup gone wrong) must not remove it.
        let forged = DeploymentRef {
            owner: Some(drill.clone()),
            ..prod_copy.clone()
        };
        provider.retire(&forged).await.map_err(|e| {
            format!("retire of another owner's handle should be a no-op Ok(()), got: {e}")
        })?;
        provider
            .retire(&drill_copy)
            .await
            .map_err(|e| format!("retire of the drill's copy failed: {e}"))?;
        match inspect(provider, &prod_copy).await? {
            DeploymentState::Gone => Err(
                "retiring the drill's copy (or a forged reference) removed the installation's \
                 copy"
                    .to_owned(),
            ),
            _ => Ok(()),
        }
    }
    .await;
    sweep(provider, &prod).await;
    sweep(provider, &drill).await;
    result
}

/// `list_managed` shows exactly the copies made, of every generation, and none once
/// they are retired.
pub async fn list_finds_exactly_what_was_made(
    provider: &dyn Provider,
    fixture: &Fixture,
) -> CheckResult {
    let owner = fixture.production();
    let result = async {
        let mut made = BTreeSet::new();
        for generation in [903, 904] {
            let dep = deploy(provider, &fixture.request(generation, &owner)).await?;
            made.insert((dep.workload, dep.generation, dep.handle));
        }
        eventually(fixture, || async {
            let listed: BTreeSet<_> = list(provider, Some(&owner))
                .await?
                .into_iter()
                .map(|d| (d.workload, d.generation, d.handle))
                .collect();
            if listed == made {
                Ok(())
            } else {
                Err(format!(
                    "list_managed shows {listed:?}, but exactly {made:?} were made"
                ))
            }
        })
        .await?;
        for dep in list(provider, Some(&owner)).await? {
            if dep.owner.as_ref() != Some(&owner) {
                return Err(format!(
                    "a listed copy carries owner {:?}, not the owner it was listed for",
                    dep.owner
                ));
            }
            provider
                .retire(&dep)
                .await
                .map_err(|e| format!("retire of a listed copy failed: {e}"))?;
        }
        eventually(fixture, || async {
            let left = list(provider, Some(&owner)).await?;
            if left.is_empty() {
                Ok(())
            } else {
                Err(format!(
                    "list_managed still shows {:?} after retiring everything",
                    handles(&left)
                ))
            }
        })
        .await
    }
    .await;
    sweep(provider, &owner).await;
    result
}

/// Retiring twice is fine, and a retired copy inspects as `Gone`.
pub async fn retire_is_idempotent(provider: &dyn Provider, fixture: &Fixture) -> CheckResult {
    let owner = fixture.production();
    let result = async {
        let dep = deploy(provider, &fixture.request(905, &owner)).await?;
        for attempt in ["first", "second"] {
            provider
                .retire(&dep)
                .await
                .map_err(|e| format!("the {attempt} retire failed: {e}"))?;
        }
        eventually(fixture, || async {
            match inspect(provider, &dep).await? {
                DeploymentState::Gone => Ok(()),
                other => Err(format!("a retired copy inspects as {other:?}, not Gone")),
            }
        })
        .await
    }
    .await;
    sweep(provider, &owner).await;
    result
}

/// A deployed copy becomes healthy, with an endpoint, within the fixture's time.
pub async fn becomes_healthy(provider: &dyn Provider, fixture: &Fixture) -> CheckResult {
    let owner = fixture.production();
    let within = fixture.healthy_within.unwrap_or(Duration::from_secs(30));
    let result = async {
        let dep = deploy(provider, &fixture.request(906, &owner)).await?;
        let deadline = tokio::time::Instant::now() + within;
        loop {
            match inspect(provider, &dep).await? {
                DeploymentState::Healthy { .. } => return Ok(()),
                DeploymentState::Failed { reason } => {
                    return Err(format!(
                        "the copy failed instead of becoming healthy: {reason}"
                    ));
                }
                DeploymentState::Gone => {
                    return Err("the copy disappeared before becoming healthy".to_owned());
                }
                state if tokio::time::Instant::now() >= deadline => {
                    return Err(format!("not healthy within {within:?}: {state:?}"));
                }
                _ => tokio::time::sleep(Duration::from_millis(200)).await,
            }
        }
    }
    .await;
    sweep(provider, &owner).await;
    result
}

/// A request that cannot succeed comes back `InvalidRequest`, and a handle the provider
/// never made inspects as `Gone` (or fails as `NotFound`/`InvalidRequest`), never as
/// some other class or a success.
pub async fn errors_are_classified(provider: &dyn Provider, fixture: &Fixture) -> CheckResult {
    let owner = fixture.production();
    let result = async {
        if let Some(invalid) = &fixture.invalid {
            let req = DeployRequest {
                workload: invalid.clone(),
                generation: Generation(907),
                owner: owner.clone(),
            };
            match provider.deploy(&req).await {
                Err(e) if e.class == ErrorClass::InvalidRequest => {}
                Err(e) => {
                    return Err(format!(
                        "an impossible deploy failed as {}, not invalid-request: {e}",
                        e.class
                    ));
                }
                Ok(dep) => {
                    return Err(format!(
                        "an impossible deploy was accepted as {}",
                        dep.handle
                    ));
                }
            }
        }
        let unknown = DeploymentRef {
            workload: fixture.workload.name.clone(),
            generation: Generation(908),
            handle: "lifeboat-conformance-never-made".into(),
            endpoint: None,
            owner: Some(owner.clone()),
        };
        match provider.inspect(&unknown).await {
            Ok(DeploymentState::Gone) => Ok(()),
            Err(e) if matches!(e.class, ErrorClass::NotFound | ErrorClass::InvalidRequest) => {
                Ok(())
            }
            Ok(other) => Err(format!("a handle never made inspects as {other:?}")),
            Err(e) => Err(format!(
                "inspecting a handle never made failed as {}, not not-found: {e}",
                e.class
            )),
        }
    }
    .await;
    sweep(provider, &owner).await;
    result
}

async fn deploy(provider: &dyn Provider, req: &DeployRequest) -> Result<DeploymentRef, String> {
    let dep = provider.deploy(req).await.map_err(|e| {
        format!(
            "deploy of {} generation {} failed: {e}",
            req.workload.name, req.generation
        )
    })?;
    if dep.owner.as_ref() != Some(&req.owner) {
        return Err(format!(
            "deploy returned a reference with owner {:?}, not the request's {}",
            dep.owner, req.owner
        ));
    }
    if dep.workload != req.workload.name || dep.generation != req.generation {
        return Err(format!(
            "deploy of {} generation {} returned a reference to {} generation {}",
            req.workload.name, req.generation, dep.workload, dep.generation
        ));
    }
    Ok(dep)
}

async fn inspect(provider: &dyn Provider, dep: &DeploymentRef) -> Result<DeploymentState, String> {
    provider
        .inspect(dep)
        .await
        .map_err(|e| format!("inspect of {} failed: {e}", dep.handle))
}

async fn list(
    provider: &dyn Provider,
    owner: Option<&Owner>,
) -> Result<Vec<DeploymentRef>, String> {
    let listed = provider
        .list_managed(owner)
        .await
        .map_err(|e| format!("list_managed failed: {e}"))?;
    if let Some(wrong) = listed.iter().find(|d| d.owner.as_ref() != owner) {
        return Err(format!(
            "list_managed for owner {owner:?} returned {} of owner {:?}",
            wrong.handle, wrong.owner
        ));
    }
    Ok(listed)
}

fn of<'a>(listed: &'a [DeploymentRef], req: &DeployRequest) -> Vec<&'a DeploymentRef> {
    listed
        .iter()
        .filter(|d| d.workload == req.workload.name && d.generation == req.generation)
        .collect()
}

fn handles<'a>(deps: impl IntoIterator<Item = &'a DeploymentRef>) -> BTreeSet<String> {
    deps.into_iter().map(|d| d.handle.clone()).collect()
}

/// Retries `check` until it passes or the fixture's settle time is over.
async fn eventually<F, Fut>(fixture: &Fixture, check: F) -> CheckResult
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = CheckResult>,
{
    let deadline = tokio::time::Instant::now() + fixture.settle;
    loop {
        match check().await {
            Ok(()) => return Ok(()),
            Err(why) if tokio::time::Instant::now() >= deadline => return Err(why),
            Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
}

/// Best-effort removal of everything an owner has here, so one failed check leaves
/// nothing behind for the next.
async fn sweep(provider: &dyn Provider, owner: &Owner) {
    if let Ok(copies) = provider.list_managed(Some(owner)).await {
        for dep in copies {
            let _ = provider.retire(&dep).await;
        }
    }
}
