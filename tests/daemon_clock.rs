//! The daemon's loop driven by a clock moved by hand: an hour's grace period and a
//! day's notice are crossed in seconds of real time, while the probes, the steps and
//! the journal run for real against simulated vendors.

mod support;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use lifeboat::api::Heartbeat;
use lifeboat::clock::Clock;
use lifeboat::config::{DrillMode, Scenario};
use lifeboat::control::Control;
use lifeboat::daemon::{self, Ended, Parts, Standalone};
use lifeboat::drill::{self, run::DrillOptions, run::Interrupts};
use lifeboat::execute::ExecOptions;
use lifeboat::metrics::Metrics;
use lifeboat::model::Notice;
use lifeboat::notify::Notifier;
use lifeboat::providers::BuildOptions;
use lifeboat::store::Store;
use lifeboat_provider::{ErrorClass, Op};
use lifeboat_provider_sim::SimConfig;
use support::World;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// Waits are for hangs, not speed: the machine is shared.
const PATIENCE: Duration = Duration::from_secs(60);

/// Two vendors; `db` and `api` run at `cloud` and may go to `metal`. Each move is
/// expected to take ten minutes (`rto`), one at a time.
const CONFIG: &str = "
vendors:
  - name: cloud
    accounts: [prod]
  - name: metal
providers:
  - { name: cloud-1, vendor: cloud, account: prod, adapter: { kind: sim } }
  - { name: metal-1, vendor: metal, adapter: { kind: sim } }
workloads:
  - { name: api, command: [api], placement: [cloud-1, metal-1], priority: 5, rto: 10m }
  - { name: db, command: [db], placement: [cloud-1, metal-1], priority: 10, rto: 10m }
cutover: { kind: endpoints-file, path: endpoints.json }
policy:
  probe_interval: 100ms
  probe_timeout: 100ms
  confirmations: 2
  unreachable_grace: 1h
  notice_margin: 1h
  parallelism: 1
  step_timeout: 20s
";

/// A daemon over `World`'s simulated providers, deciding by a clock the test moves.
struct Daemon {
    clock: Clock,
    store: Arc<Store>,
    control: Control,
    world: World,
    stop: CancellationToken,
    task: JoinHandle<anyhow::Result<Ended>>,
}

impl Daemon {
    /// Places every workload on cloud-1, then starts the loop at `start`.
    async fn start(dir: &Path, start: Timestamp) -> Daemon {
        let mut config = lifeboat::config::parse(CONFIG, &dir.join("lifeboat.yaml")).unwrap();
        config.state_dir = dir.join("state");
        let config = Arc::new(config);
        let sim = SimConfig {
            latency: Duration::from_millis(20),
            ..SimConfig::default()
        };
        let mut world = World::new(
            &[("cloud-1", sim.clone()), ("metal-1", sim)],
            config.workloads.clone(),
        );
        world.policy = config.policy.clone();
        let store = Arc::new(Store::open(&config.state_dir).unwrap());
        world.place_all(&store, "cloud-1").await;
        let clock = Clock::manual(start);
        let control = Control::new(store.clone()).unwrap();
        let executor = world.executor_with_options(
            &store,
            ExecOptions {
                health_poll: Duration::from_millis(50),
                pause: control.switch(),
                clock: clock.clone(),
                ..ExecOptions::default()
            },
        );
        let parts = Parts {
            config,
            store: store.clone(),
            providers: world.providers(),
            executor,
            control: control.clone(),
            metrics: Arc::new(Metrics::new()),
            heartbeat: Arc::new(Heartbeat::default()),
            notifier: Notifier::none(),
        };
        let stop = CancellationToken::new();
        let task = tokio::spawn({
            let stop = stop.clone();
            async move {
                daemon::reconcile(parts, &BuildOptions::default(), &mut Standalone, &stop).await
            }
        });
        Daemon {
            clock,
            store,
            control,
            world,
            stop,
            task,
        }
    }

    /// The provider each workload is placed on.
    fn placed(&self) -> Vec<(String, String)> {
        (self.store.placements().unwrap().into_values())
            .map(|p| (p.workload, p.provider))
            .collect()
    }

    /// Waits until every workload is placed on `provider`, with one live copy.
    async fn all_on(&self, provider: &str) {
        let waited = tokio::time::timeout(PATIENCE, async {
            loop {
                let done = self.placed().iter().all(|(_, p)| p == provider)
                    && ["api", "db"]
                        .iter()
                        .all(|w| self.world.copies(w).len() == 1);
                if done {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
        .await;
        assert!(
            waited.is_ok(),
            "not all on {provider}: {:?}, evacuations {:?}",
            self.placed(),
            self.store.evacuations().unwrap()
        );
    }

    /// Raises a notice on vendor `cloud` with its deadline at `deadline`.
    fn notice(&self, dir: &Path, deadline: Timestamp) {
        let config = lifeboat::config::parse(CONFIG, &dir.join("lifeboat.yaml")).unwrap();
        let notice = Notice {
            scope: config.resolve_scope("cloud").unwrap(),
            deadline: Some(deadline),
            reason: "the account closes in 24 hours".into(),
        };
        self.store.add_notice(&notice, start()).unwrap();
    }

    /// Waits until the evacuation under way has finished, and says when.
    async fn finished(&self) -> Timestamp {
        let evacuations = self.store.evacuations().unwrap();
        assert_eq!(evacuations.len(), 1, "{evacuations:?}");
        tokio::time::timeout(PATIENCE, async {
            loop {
                if let Some(at) = self.store.evacuations().unwrap()[0].finished {
                    break at;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
        .await
        .expect("the evacuation to finish")
    }

    /// Lets the loop run some rounds in real time, the clock standing still.
    async fn rounds(&self) {
        tokio::time::sleep(Duration::from_millis(1500)).await;
    }

    async fn stop(self) {
        self.stop.cancel();
        let ended = self.task.await.unwrap().unwrap();
        assert_eq!(ended, Ended::Stopped);
    }
}

fn start() -> Timestamp {
    Timestamp::from_second(1_900_000_000).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_vendor_is_left_when_the_clock_passes_its_grace_not_before() {
    let dir = tempfile::tempdir().unwrap();
    let daemon = Daemon::start(dir.path(), start()).await;
    daemon
        .world
        .handle("cloud-1")
        .set_fault(ErrorClass::Unavailable, &[Op::Probe]);
    daemon.rounds().await;
    daemon.clock.advance(Duration::from_secs(59 * 60));
    daemon.rounds().await;
    assert!(
        daemon.placed().iter().all(|(_, p)| p == "cloud-1"),
        "moved within the hour's grace: {:?}",
        daemon.placed()
    );
    assert!(daemon.store.evacuations().unwrap().is_empty());

    daemon.clock.advance(Duration::from_secs(2 * 60));
    daemon.all_on("metal-1").await;
    let evacuations = daemon.store.evacuations().unwrap();
    assert_eq!(evacuations.len(), 1, "{evacuations:?}");
    // The journal is stamped by the same clock the decision was made by.
    assert!(evacuations[0].started >= start() + SignedDuration::from_mins(60));
    daemon.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_days_notice_is_met_when_its_time_comes_most_critical_first() {
    let dir = tempfile::tempdir().unwrap();
    let daemon = Daemon::start(dir.path(), start()).await;
    let deadline = start() + SignedDuration::from_hours(24);
    daemon.notice(dir.path(), deadline);
    // Due by 23:00 (the margin is an hour); two ten-minute moves one at a time, with
    // twice that left: they start at 22:20, and not an instant before.
    let by = deadline - SignedDuration::from_hours(1);
    let start_at = by - SignedDuration::from_mins(40);
    daemon.rounds().await;
    daemon.clock.set(start_at - SignedDuration::from_mins(1));
    daemon.rounds().await;
    assert!(
        daemon.store.evacuations().unwrap().is_empty(),
        "started before its time: {:?}",
        daemon.store.evacuations().unwrap()
    );

    daemon.clock.set(start_at + SignedDuration::from_mins(1));
    daemon.all_on("metal-1").await;
    let finished = daemon.finished().await;
    assert!(finished <= by, "finished at {finished}, due by {by}");
    // The more critical db went first.
    assert_eq!(daemon.world.cutover.switched(), ["db", "api"]);
    daemon.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_notice_is_scheduled_by_how_long_the_last_drill_took_not_by_the_rto() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = lifeboat::config::parse(CONFIG, &dir.path().join("lifeboat.yaml")).unwrap();
    config.state_dir = dir.path().join("state");
    // A shadow drill of losing `cloud`, from the command line's entry point: it keeps
    // its report in its own store, beside the daemon's.
    let options = DrillOptions {
        lose: "cloud".into(),
        scenario: Scenario::AccountSuspended,
        mode: DrillMode::Shadow,
        blackout: false,
        build: BuildOptions::default(),
        patience: PATIENCE,
        probe_every: Duration::from_millis(100),
    };
    let report = drill::run::run(&config, options, Arc::new(|_| {}), Interrupts::default())
        .await
        .unwrap();
    let measured: Vec<Duration> = (report.workloads.iter())
        .map(|w| w.move_duration().expect("the drill to time each move"))
        .collect();
    assert_eq!(measured.len(), 2, "{report:?}");

    let daemon = Daemon::start(dir.path(), start()).await;
    let by = start() + SignedDuration::from_hours(23);
    daemon.notice(dir.path(), by + SignedDuration::from_hours(1));
    daemon.rounds().await;
    // Two moves one at a time: what the drill measured, not the two `rto`s of 10 min.
    let schedules = daemon.control.schedules();
    assert_eq!(schedules.len(), 1, "{schedules:?}");
    assert_eq!(schedules[0].estimate, measured.iter().sum::<Duration>());
    assert!(!schedules[0].at_risk);

    // By the `rto`s the moves would have started 40 min before 23:00; the drill says
    // there is time.
    daemon.clock.set(by - SignedDuration::from_mins(30));
    daemon.rounds().await;
    assert!(
        daemon.store.evacuations().unwrap().is_empty(),
        "started by the rto, not by the drill: {:?}",
        daemon.store.evacuations().unwrap()
    );
    daemon.clock.set(schedules[0].start_at);
    daemon.all_on("metal-1").await;
    let finished = daemon.finished().await;
    assert!(finished <= by, "finished at {finished}, due by {by}");
    daemon.stop().await;
}
