//! `examples/ec2-to-local.yaml` end to end, against moto's EC2 server behind the fault
//! proxy: the built `lifeboat` binary places the workloads on EC2, the account is lost
//! (`Blocked`, `AuthFailure`), and the daemon moves every workload to this machine;
//! throttling never makes it leave; the drill runs and leaves nothing behind; and the
//! daemon's debug log never holds the secret key.
//!
//! Each test starts its own moto, proxy and lifeboat processes, and stops them (and the
//! workloads lifeboat started) when it ends, also when it fails.

mod ec2_support;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use ec2_support::{
    Aws, EC2, LOCAL, Policy, Running, Setup, WORKLOADS, all_on, assert_no_secret, condition_of,
    ec2, lifeboat, local_copies,
};
use jiff::{SignedDuration, Timestamp};
use lifeboat::conditions::{self, Health};
use lifeboat::decide;
use lifeboat::model::{Condition, SignalKind};
use lifeboat::probe::probe_all;
use lifeboat::providers::{BuildOptions, build_one};
use lifeboat_provider::{ErrorClass, Provider};
use serde_json::{Value, json};

/// The daemon places both workloads on EC2 and they really run there (in moto).
async fn placed_on_ec2(aws: &Aws, setup: &Setup, daemon: &mut Running) -> Result<()> {
    let status = daemon.wait_for("placed on EC2", |s| {
        all_on(s, EC2) && condition_of(s, EC2).as_deref() == Some("healthy")
    })?;
    let instances = aws.managed(&setup.state).await?;
    let mut running: Vec<&str> = instances.iter().map(|d| d.workload.as_str()).collect();
    running.sort();
    assert_eq!(running, WORKLOADS, "one instance per workload: {status:#}");
    Ok(())
}

/// Every workload ends up on the local provider, the EC2 provider suspended, and the
/// local copies answer where the endpoints file points.
fn evacuated(setup: &Setup, daemon: &mut Running) -> Result<Value> {
    let status = daemon.wait_for("evacuated to the local provider", |s| all_on(s, LOCAL))?;
    assert_eq!(
        condition_of(&status, EC2).as_deref(),
        Some("suspended"),
        "{status:#}"
    );
    let endpoints: Value = serde_json::from_str(&std::fs::read_to_string(&setup.endpoints)?)?;
    // Keyed by workload name: the test copy has no public names (see Setup::new).
    for name in ["api", "web"] {
        let endpoint = endpoints[name]
            .as_str()
            .with_context(|| format!("{name} in the endpoints file: {endpoints:#}"))?;
        let port = endpoint
            .strip_prefix("127.0.0.1:")
            .and_then(|p| p.parse::<u16>().ok())
            .with_context(|| format!("{name} points at this machine: {endpoint}"))?;
        assert!(
            lifeboat_testkit::moto::get_ok(port, "/healthz"),
            "{name} answers at {endpoint}"
        );
    }
    Ok(status)
}

/// What the daemon leaves in its state folder and logs once stopped: no secret, and a
/// clean stop on SIGTERM.
fn stopped_cleanly(daemon: &mut Running, setup: &Setup) -> Result<String> {
    let exit = daemon.stop().context("the daemon was running")?;
    let log = daemon.log_text();
    assert!(
        exit.success(),
        "SIGTERM stops the daemon cleanly ({exit}):\n{log}"
    );
    assert_no_secret("the daemon's log", &log);
    let status = ec2_support::status(&setup.state).context("status after the stop")?;
    assert_no_secret("status --json", &status.to_string());
    Ok(log)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_blocked_account_moves_every_workload_to_local() -> Result<()> {
    let aws = Aws::start().await?;
    let setup = Setup::new(&aws.proxy.url(), Policy::Fast)?;
    let mut daemon = Running::daemon(&setup, "info,lifeboat=debug", false)?;
    placed_on_ec2(&aws, &setup, &mut daemon).await?;

    // What EC2 answers every call of a blocked account, as real EC2 shapes it.
    aws.proxy
        .set(json!({"mode": "ec2-error", "code": "Blocked", "status": 403,
                    "message": "This account is currently blocked and not recognized as a valid account."}))
        .await?;
    evacuated(&setup, &mut daemon)?;
    let log = stopped_cleanly(&mut daemon, &setup)?;
    assert!(log.contains("Blocked"), "the reason is logged:\n{log}");
    // The instances stay behind at the blocked account (every call is refused), so the
    // daemon records them as orphans, to retire once the account answers again.
    assert_eq!(aws.managed(&setup.state).await?.len(), WORKLOADS.len());
    let status = ec2_support::status(&setup.state).context("status")?;
    assert_eq!(status["orphans"], WORKLOADS.len(), "{status:#}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rejected_credentials_move_every_workload_to_local() -> Result<()> {
    let aws = Aws::start().await?;
    let setup = Setup::new(&aws.proxy.url(), Policy::Fast)?;
    let mut daemon = Running::daemon(&setup, "info,lifeboat=debug", false)?;
    placed_on_ec2(&aws, &setup, &mut daemon).await?;

    // moto's own IAM checks: from now on the daemon's key is unknown, and every call
    // gets a genuine `AuthFailure` (no proxy fault involved).
    aws.moto.enforce_auth().await?;
    evacuated(&setup, &mut daemon)?;
    let log = stopped_cleanly(&mut daemon, &setup)?;
    assert!(log.contains("AuthFailure"), "the reason is logged:\n{log}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_daemons_debug_log_never_contains_the_secret_key() -> Result<()> {
    let aws = Aws::start().await?;
    let setup = Setup::new(&aws.proxy.url(), Policy::Fast)?;
    // Everything at debug: the SDK's request orchestration, signing, credential chain.
    let mut daemon = Running::daemon(&setup, "debug", true)?;
    placed_on_ec2(&aws, &setup, &mut daemon).await?;
    // Errors carry their whole source chain into the log: reject the credentials.
    aws.proxy
        .set(
            json!({"mode": "ec2-error", "code": "AuthFailure", "status": 401,
                    "message": "AWS was not able to validate the provided access credentials"}),
        )
        .await?;
    evacuated(&setup, &mut daemon)?;
    let log = stopped_cleanly(&mut daemon, &setup)?;
    for sign in ["aws_smithy_runtime", "aws_config", "AuthFailure"] {
        assert!(log.contains(sign), "{sign} is in the captured log");
    }
    Ok(())
}

/// Throttling never evacuates: 5 minutes of `RequestLimitExceeded`, probed every 10 s
/// (the example's own policy) through the real adapter, leave the provider `Degraded`
/// and in place, while the same 5 minutes of `InternalError` do evacuate it once the
/// grace period has passed, and two `Blocked` answers right away.
///
/// Why simulated timestamps and not tokio's paused clock: the controller stamps signals
/// and conditions with the wall clock (`Timestamp::now`), which a paused tokio clock
/// does not move, and a paused clock auto-advances whenever the runtime waits on real
/// network I/O, which fires the SDK's attempt timeouts at once and turns throttling
/// into `Timeout`. So each round is a real probe of the real adapter through the proxy
/// (with `probe_all`, as the controller does it), stamped with a simulated instant 10 s
/// after the previous one, and folded through the controller's pure core
/// (`conditions::observe`, `conditions::conditions`, `decide::decide`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_minutes_of_throttling_never_evacuate() -> Result<()> {
    let aws = Aws::start().await?;
    let setup = Setup::new(&aws.proxy.url(), Policy::AsWritten)?;
    let config = setup.load()?;
    let policy = &config.policy;
    assert_eq!(policy.probe_interval, Duration::from_secs(10));

    let settings = match &config.provider(EC2).context("the EC2 provider")?.adapter {
        lifeboat::config::AdapterConfig::AwsEc2(settings) => settings.clone(),
        other => anyhow::bail!("{EC2} is {}", other.kind()),
    };
    let mut providers: BTreeMap<String, Arc<dyn Provider>> = BTreeMap::new();
    providers.insert(EC2.into(), Arc::new(ec2(settings).await?));
    let local = config.provider(LOCAL).context("the local provider")?;
    let state = setup.state.clone();
    providers.insert(
        LOCAL.into(),
        build_one(local, &state, |p| p.to_owned(), &BuildOptions::default()).await?,
    );

    let mut clock = Sim {
        now: Timestamp::now(),
        healths: BTreeMap::new(),
        errors: BTreeMap::new(),
    };
    // A clean start, so the quiet period has something to measure from.
    clock.round(&config, &providers).await;

    let five_minutes = 30;
    aws.proxy
        .set(json!({"mode": "ec2-error", "code": "RequestLimitExceeded", "status": 503}))
        .await?;
    for _ in 0..five_minutes {
        let (classes, condition, decision) = clock.round(&config, &providers).await;
        assert_eq!(
            classes[EC2],
            Some(ErrorClass::Throttled),
            "{:?}",
            clock.errors
        );
        assert!(
            matches!(condition, Condition::Degraded { .. }),
            "{condition:?}"
        );
        assert!(decision.departures.is_empty(), "{decision:?}");
    }
    assert!(aws.proxy.hits().await? >= five_minutes);

    // The same harness does see an outage: 5xx answers evacuate once they outlast the
    // grace period, not before.
    aws.proxy
        .set(json!({"mode": "ec2-error", "code": "InternalError", "status": 500}))
        .await?;
    let outage_start = clock.now;
    let left_after = loop {
        let (classes, _, decision) = clock.round(&config, &providers).await;
        assert_eq!(
            classes[EC2],
            Some(ErrorClass::Unavailable),
            "{:?}",
            clock.errors
        );
        if decision.departures.iter().any(|d| d.provider == EC2) {
            break clock.now.duration_since(outage_start);
        }
        assert!(
            clock.now.duration_since(outage_start) < SignedDuration::from_mins(5),
            "an outage of 5 minutes was never left"
        );
    };
    let grace = SignedDuration::try_from(policy.unreachable_grace)?;
    assert!(left_after >= grace, "left after {left_after:?}");

    // And an account loss after two confirmations, from healthy.
    aws.proxy.set(json!({"mode": "none"})).await?;
    let mut fresh = Sim {
        now: clock.now,
        healths: BTreeMap::new(),
        errors: BTreeMap::new(),
    };
    fresh.round(&config, &providers).await;
    aws.proxy
        .set(json!({"mode": "ec2-error", "code": "Blocked", "status": 403}))
        .await?;
    let (_, first, decision) = fresh.round(&config, &providers).await;
    assert!(decision.departures.is_empty(), "one answer is not proof");
    assert!(matches!(first, Condition::Degraded { .. }), "{first:?}");
    let (_, second, decision) = fresh.round(&config, &providers).await;
    assert!(matches!(second, Condition::Suspended { .. }), "{second:?}");
    assert!(decision.departures.iter().any(|d| d.provider == EC2));
    Ok(())
}

/// The controller's memory of every provider, on a simulated clock that moves one
/// probe interval per round.
struct Sim {
    now: Timestamp,
    healths: BTreeMap<String, Health>,
    /// The adapters' messages of the latest round, for failure messages.
    errors: BTreeMap<String, String>,
}

impl Sim {
    /// One round: probe every provider for real, stamp the signals `now`, fold, derive,
    /// decide; then move the clock on. Returns each provider's failure class, the EC2
    /// provider's condition and the decision.
    async fn round(
        &mut self,
        config: &lifeboat::config::Config,
        providers: &BTreeMap<String, Arc<dyn Provider>>,
    ) -> (
        BTreeMap<String, Option<ErrorClass>>,
        Condition,
        decide::Decision,
    ) {
        let policy = &config.policy;
        let now = self.now;
        let results = probe_all(providers, policy.probe_timeout, || now).await;
        let mut classes = BTreeMap::new();
        for result in &results {
            let health = self
                .healths
                .entry(result.signal.provider.clone())
                .or_default();
            *health = conditions::observe(health, &result.signal, policy);
            let class = match &result.signal.kind {
                SignalKind::ProbeFailed { class, .. } => Some(*class),
                _ => None,
            };
            classes.insert(result.signal.provider.clone(), class);
            if let Some(error) = &result.error {
                self.errors
                    .insert(result.signal.provider.clone(), error.clone());
            }
        }
        let conditions = conditions::conditions(config, &self.healths, &[], now);
        let decision = decide::decide(config, &conditions, now);
        self.now = now + SignedDuration::try_from(policy.probe_interval).unwrap_or_default();
        let ec2 = conditions.get(EC2).cloned().unwrap_or(Condition::Healthy);
        (classes, ec2, decision)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_drill_runs_against_moto_and_leaves_nothing_behind() -> Result<()> {
    let aws = Aws::start().await?;
    let setup = Setup::new(&aws.proxy.url(), Policy::Fast)?;
    let report_dir = setup.dir.path().join("report");
    let mut command = lifeboat(false);
    command
        .args(["drill", "--move-production-traffic", "-c"])
        .arg(&setup.config)
        .arg("--report")
        .arg(&report_dir);
    let mut drill = Running::start(&setup, "drill", command)?;
    let exit = drill.wait(ec2_support::PATIENCE)?;
    let log = drill.log_text();
    assert!(
        exit.success(),
        "the drill met its objectives ({exit}):\n{log}"
    );
    assert_no_secret("the drill's output", &log);

    let report: Value =
        serde_json::from_str(&std::fs::read_to_string(report_dir.join("report.json"))?)?;
    assert_eq!(report["objectives_met"], true, "{report:#}");
    assert_eq!(report["lost_providers"], json!([EC2]), "{report:#}");
    let mut moved: Vec<(String, String, String)> = report["workloads"]
        .as_array()
        .context("workloads in the report")?
        .iter()
        .map(|w| {
            let s = |k: &str| w[k].as_str().unwrap_or_default().to_owned();
            (s("name"), s("from"), s("to"))
        })
        .collect();
    moved.sort();
    let want: Vec<_> = WORKLOADS
        .iter()
        .map(|w| (w.to_string(), EC2.to_owned(), LOCAL.to_owned()))
        .collect();
    assert_eq!(moved, want, "{report:#}");
    assert!(
        report["failback"]
            .as_str()
            .is_some_and(|f| f.starts_with("ok")),
        "{report:#}"
    );

    // Nothing left: no managed instance in moto, no local copy.
    assert_eq!(aws.managed(&setup.state).await?, vec![]);
    assert_eq!(
        local_copies(&setup, &setup.state.join("drill")).await?,
        vec![]
    );
    Ok(())
}

/// The report, as a test: with the daemon's instances running on EC2, a shadow
/// drill of the same config beside it deploys, verifies and removes copies of its own,
/// and leaves every production instance running and every placement as it was.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shadow_drill_beside_the_daemon_leaves_its_instances_running() -> Result<()> {
    let aws = Aws::start().await?;
    let setup = Setup::new(&aws.proxy.url(), Policy::Fast)?;
    let mut daemon = Running::daemon(&setup, "info", false)?;
    placed_on_ec2(&aws, &setup, &mut daemon).await?;
    let installation = lifeboat::installation::kept(&setup.state)?
        .context("the daemon kept its installation id")?;
    let production = lifeboat_provider::Owner::installation(installation);
    let direct = aws.direct().await?;
    let handles = |deps: Vec<lifeboat_provider::DeploymentRef>| {
        let mut handles: Vec<String> = deps.into_iter().map(|d| d.handle).collect();
        handles.sort();
        handles
    };
    let before = handles(direct.list_managed(Some(&production)).await?);
    let placements = ec2_support::status(&setup.state).context("status")?["placements"].clone();

    let started = std::time::Instant::now();
    let mut command = lifeboat(false);
    command
        .args(["drill", "--mode", "shadow", "-c"])
        .arg(&setup.config);
    let mut drill = Running::start(&setup, "drill", command)?;
    let exit = drill.wait(ec2_support::PATIENCE)?;
    let log = drill.log_text();
    eprintln!("the shadow drill took {:?}", started.elapsed());
    assert!(exit.success(), "the shadow drill passed ({exit}):\n{log}");
    assert_no_secret("the drill's output", &log);

    assert_eq!(
        handles(direct.list_managed(Some(&production)).await?),
        before,
        "the production instances are the same ones:\n{log}"
    );
    for dep in direct.list_managed(Some(&production)).await? {
        let state = direct.inspect(&dep).await?;
        assert!(
            !matches!(state, lifeboat_provider::DeploymentState::Gone),
            "{} still runs: {state:?}",
            dep.handle
        );
    }
    let after = ec2_support::status(&setup.state).context("status")?;
    assert_eq!(after["placements"], placements, "the daemon's placements");
    // Everything the drill made is gone, at EC2 and on this machine.
    assert_eq!(aws.managed(&setup.state).await?.len(), WORKLOADS.len());
    assert_eq!(
        local_copies(&setup, &setup.state.join("drill")).await?,
        vec![]
    );
    stopped_cleanly(&mut daemon, &setup)?;
    Ok(())
}
