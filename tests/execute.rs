//! The executor against simulated providers: make before break, fall-through,
//! stranding, bounds, retries, journal-before-act, shadow mode, fencing.

mod support;

use std::sync::Arc;
use std::time::Duration;

use lifeboat::model::Step;
use lifeboat::store::{Outcome, Status, Store};
use lifeboat_provider::{ErrorClass, Generation, Op};
use lifeboat_provider_sim::SimConfig;
use support::{World, open, plan, workload};

fn three() -> Vec<lifeboat::config::WorkloadConfig> {
    vec![workload("db", ""), workload("api", ""), workload("web", "")]
}

fn sim(healthy_after_ms: u64) -> SimConfig {
    SimConfig {
        latency: Duration::from_millis(50),
        healthy_after: Duration::from_millis(healthy_after_ms),
        ..SimConfig::default()
    }
}

#[tokio::test(start_paused = true)]
async fn a_plan_runs_end_to_end_with_one_live_copy_each() {
    let world = World::new(&[("a", sim(0)), ("b", sim(3000))], three());
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    world.place_all(&store, "a").await;

    let exec = world.executor(&store);
    let report = exec
        .execute(&plan(&[("db", 0), ("api", 1), ("web", 2)], "a", &["b"]))
        .await
        .unwrap();

    assert!(report.all_moved(), "{report:#?}");
    for name in ["db", "api", "web"] {
        assert_eq!(world.copies(name), [("b".to_owned(), 2)], "{name}");
        let placement = store.placement(name).unwrap().unwrap();
        assert_eq!(
            (placement.provider.as_str(), placement.generation),
            ("b", Generation(2))
        );
        let public = world.cutover.names.lock().unwrap()[name].clone();
        assert_eq!(Some(public), placement.deployment.unwrap().endpoint);
    }
    // Waves order the cutovers: the database before the API before the front.
    assert_eq!(world.cutover.switched(), ["db", "api", "web"]);
    let db = &report.moves[0];
    assert!(db.time_to_healthy.unwrap() >= Duration::from_secs(3));
    assert!(db.time_to_cutover.unwrap() >= db.time_to_healthy.unwrap());
    assert!(store.unfinished_evacuations().unwrap().is_empty());
}

#[tokio::test(start_paused = true)]
async fn a_later_wave_never_cuts_over_before_an_earlier_one() {
    // The wave-0 target is slow to become healthy, the wave-1 target fast.
    let world = World::new(
        &[("a", sim(0)), ("b", sim(20_000)), ("c", sim(0))],
        vec![workload("db", ""), workload("web", "")],
    );
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    world.place_all(&store, "a").await;
    let mut p = plan(&[("db", 0), ("web", 1)], "a", &["b"]);
    p.moves[1].targets = vec!["c".into()];
    let report = world.executor(&store).execute(&p).await.unwrap();
    assert!(report.all_moved(), "{report:#?}");
    assert_eq!(world.cutover.switched(), ["db", "web"]);
    assert!(report.moves[1].time_to_healthy < report.moves[0].time_to_healthy);
}

#[tokio::test(start_paused = true)]
async fn a_failing_target_falls_through_to_the_next() {
    let world = World::new(&[("a", sim(0)), ("b", sim(0)), ("c", sim(0))], three());
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    world.place_all(&store, "a").await;
    world
        .handle("b")
        .set_fault(ErrorClass::InvalidRequest, &[Op::Deploy]);

    let report = world
        .executor(&store)
        .execute(&plan(
            &[("db", 0), ("api", 0), ("web", 0)],
            "a",
            &["b", "c"],
        ))
        .await
        .unwrap();
    assert!(report.all_moved(), "{report:#?}");
    for name in ["db", "api", "web"] {
        assert_eq!(world.copies(name), [("c".to_owned(), 2)]);
    }
    let journal = store.journal(&report.evacuation).unwrap();
    let abandoned: Vec<_> = journal
        .iter()
        .filter(|e| e.status == Status::Abandoned)
        .map(|e| (e.target.as_str(), e.step))
        .collect();
    assert_eq!(abandoned, [("b", Step::Deploy); 3]);
    // InvalidRequest is not retried: one attempt per workload.
    assert_eq!(world.handle("b").calls(Op::Deploy), 3);
}

#[tokio::test(start_paused = true)]
async fn a_copy_that_never_gets_healthy_is_retired_before_falling_through() {
    let world = World::new(&[("a", sim(0)), ("b", sim(0)), ("c", sim(0))], three());
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    world.place_all(&store, "a").await;
    // b accepts the deploy but its copies never answer inspect.
    world
        .handle("b")
        .set_fault(ErrorClass::Timeout, &[Op::Inspect]);
    let report = world
        .executor(&store)
        .execute(&plan(&[("db", 0)], "a", &["b", "c"]))
        .await
        .unwrap();
    assert!(report.all_moved(), "{report:#?}");
    assert_eq!(world.copies("db"), [("c".to_owned(), 2)]);
}

#[tokio::test(start_paused = true)]
async fn a_workload_with_no_working_target_is_stranded_and_keeps_running() {
    let world = World::new(
        &[
            ("a", sim(0)),
            ("b", sim(0)),
            (
                "c",
                SimConfig {
                    capacity: Some(0),
                    ..sim(0)
                },
            ),
        ],
        three(),
    );
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    world.place_all(&store, "a").await;
    world
        .handle("b")
        .set_fault(ErrorClass::AccountSuspended, &[]);

    let report = world
        .executor(&store)
        .execute(&plan(&[("db", 0)], "a", &["b", "c"]))
        .await
        .unwrap();
    let Outcome::Stranded { reason } = &report.moves[0].outcome else {
        panic!("expected stranded: {report:#?}");
    };
    assert!(
        reason.contains("account-suspended") && reason.contains("capacity-exhausted"),
        "{reason}"
    );
    assert!(!report.all_moved());
    assert_eq!(world.copies("db"), [("a".to_owned(), 1)]);
    assert_eq!(store.placement("db").unwrap().unwrap().provider, "a");
    assert!(world.cutover.switched().is_empty());
}

#[tokio::test(start_paused = true)]
async fn concurrent_deploys_per_target_provider_stay_within_the_bound() {
    let names: Vec<String> = (0..12).map(|i| format!("w{i}")).collect();
    let workloads = names.iter().map(|n| workload(n, "")).collect();
    let slow = SimConfig {
        latency: Duration::from_secs(1),
        ..SimConfig::default()
    };
    let mut world = World::new(&[("a", SimConfig::default()), ("b", slow)], workloads);
    world.policy.per_provider_parallelism = 3;
    world.policy.parallelism = 10;
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    world.place_all(&store, "a").await;
    let moves: Vec<(&str, u32)> = names.iter().map(|n| (n.as_str(), 0)).collect();
    let report = world
        .executor(&store)
        .execute(&plan(&moves, "a", &["b"]))
        .await
        .unwrap();
    assert!(report.all_moved());
    // Exactly the bound: never more, and the bound was actually reached.
    assert_eq!(world.handle("b").max_concurrent_deploys(), 3);
}

#[tokio::test(start_paused = true)]
async fn transient_failures_are_retried_with_backoff() {
    let world = World::new(&[("a", sim(0)), ("b", sim(0))], vec![workload("db", "")]);
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    world.place_all(&store, "a").await;
    world
        .handle("b")
        .fail_next(Op::Deploy, ErrorClass::Throttled, 2);

    let start = tokio::time::Instant::now();
    let report = world
        .executor(&store)
        .execute(&plan(&[("db", 0)], "a", &["b"]))
        .await
        .unwrap();
    assert!(report.all_moved(), "{report:#?}");
    let deploys: Vec<_> = store
        .journal(&report.evacuation)
        .unwrap()
        .into_iter()
        .filter(|e| e.step == Step::Deploy && e.status != Status::Started)
        .map(|e| (e.attempt, e.status))
        .collect();
    assert_eq!(
        deploys,
        [(1, Status::Failed), (2, Status::Failed), (3, Status::Done)]
    );
    // Backoff of 1 s then 2 s, each jittered down to no less than half.
    assert!(start.elapsed() >= Duration::from_millis(1500));
}

#[tokio::test(start_paused = true)]
async fn shadow_mode_verifies_and_retires_without_moving_traffic() {
    let world = World::new(&[("a", sim(0)), ("b", sim(1000))], three());
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    world.place_all(&store, "a").await;
    let exec = world
        .executor(&store)
        .with_options(lifeboat::execute::ExecOptions {
            shadow: true,
            ..Default::default()
        });
    let report = exec
        .execute(&plan(&[("db", 0), ("api", 1)], "a", &["b"]))
        .await
        .unwrap();
    assert!(report.all_moved());
    assert_eq!(
        report.moves[0].outcome,
        Outcome::Verified { on: "b".into() }
    );
    assert!(world.cutover.switched().is_empty());
    for name in ["db", "api"] {
        assert_eq!(world.copies(name), [("a".to_owned(), 1)]);
        assert_eq!(
            store.placement(name).unwrap().unwrap().generation,
            Generation(1)
        );
    }
    assert_eq!(world.handle("b").calls(Op::Deploy), 2);
}

#[tokio::test(start_paused = true)]
async fn an_unreachable_source_is_orphaned_then_retired_when_it_returns() {
    let world = World::new(&[("a", sim(0)), ("b", sim(0))], vec![workload("db", "")]);
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    world.place_all(&store, "a").await;
    world
        .handle("a")
        .set_fault(ErrorClass::Unavailable, &[Op::Retire]);
    let exec = world.executor(&store);
    let report = exec
        .execute(&plan(&[("db", 0)], "a", &["b"]))
        .await
        .unwrap();
    let Outcome::Moved { to, warnings } = &report.moves[0].outcome else {
        panic!("{report:#?}");
    };
    assert_eq!((to.as_str(), warnings.len()), ("b", 1));
    assert_eq!(store.orphans().unwrap().len(), 1);

    world.handle("a").clear_faults();
    let stale = exec.retire_stale().await.unwrap();
    assert_eq!(
        stale.retired.len() + stale.orphans_retired.len(),
        1,
        "{stale:#?}"
    );
    assert_eq!(world.copies("db"), [("b".to_owned(), 2)]);
    assert!(store.orphans().unwrap().is_empty());
}

#[tokio::test(start_paused = true)]
async fn stale_copies_are_retired_and_never_cut_over_to() {
    let world = World::new(&[("a", sim(0)), ("b", sim(0))], vec![workload("db", "")]);
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    world.place_all(&store, "a").await;
    // A newer placement appeared (another controller moved it to generation 5 on a).
    let mut newer = store.placement("db").unwrap().unwrap();
    newer.generation = Generation(5);
    store.put_placement(&newer).unwrap();

    let exec = world.executor(&store);
    let report = exec
        .execute(&plan(&[("db", 0)], "a", &["b"]))
        .await
        .unwrap();
    assert_eq!(
        report.moves[0].outcome,
        Outcome::Superseded { by: Generation(5) }
    );
    assert!(world.cutover.switched().is_empty());
    assert!(
        world.copies("db").iter().all(|(p, _)| p == "a"),
        "the fenced copy is retired"
    );

    // The generation-1 copy on a is older than the placement: stale.
    let stale = exec.retire_stale().await.unwrap();
    assert_eq!(stale.retired.len(), 1, "{stale:#?}");
    assert!(world.copies("db").is_empty());
}

#[tokio::test(start_paused = true)]
async fn every_action_is_journaled_before_it_happens() {
    let world = World::new(&[("a", sim(0)), ("b", sim(0))], vec![workload("db", "")]);
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    world.place_all(&store, "a").await;
    // An independent reader (another connection) sees the line on disk at switch time.
    let reader = Arc::new(Store::open_read_only(dir.path()).unwrap());
    let check = reader.clone();
    *world.cutover.on_switch.lock().unwrap() = Some(Box::new(move |req| {
        let ev = check.evacuations().unwrap().pop().unwrap();
        let last = check.journal(&ev.id).unwrap().pop().unwrap();
        assert_eq!(
            (last.workload.as_str(), last.step, last.status),
            (req.workload.as_str(), Step::Cutover, Status::Started)
        );
    }));
    let (checking, checked) = support::journal_checking_providers(&world, reader);
    let report = world
        .executor_with(&store, checking)
        .execute(&plan(&[("db", 0)], "a", &["b"]))
        .await
        .unwrap();
    assert!(report.all_moved(), "{report:#?}");
    assert_eq!(world.cutover.switched(), ["db"]);
    // One deploy on b and one retire on a were checked.
    assert_eq!(checked.load(std::sync::atomic::Ordering::SeqCst), 2);
}

#[tokio::test(start_paused = true)]
async fn a_switch_that_took_effect_despite_an_error_is_kept() {
    let world = World::new(
        &[("a", sim(0)), ("b", sim(0)), ("c", sim(0))],
        vec![workload("db", "")],
    );
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    world.place_all(&store, "a").await;
    world
        .cutover
        .fail_after_switch
        .store(true, std::sync::atomic::Ordering::SeqCst);
    let report = world
        .executor(&store)
        .execute(&plan(&[("db", 0)], "a", &["b", "c"]))
        .await
        .unwrap();
    // No fall-through to c: traffic already reaches the copy on b.
    assert!(
        matches!(&report.moves[0].outcome, Outcome::Moved { to, .. } if to == "b"),
        "{report:#?}"
    );
    assert_eq!(world.copies("db"), [("b".to_owned(), 2)]);
    assert_eq!(store.placement("db").unwrap().unwrap().provider, "b");
}
