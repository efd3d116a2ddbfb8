//! Crash and resume: an execution is dropped at every possible point (as a SIGKILL
//! would stop it), the store is reopened, and `resume()` must finish the evacuation
//! with exactly one live copy of each workload, on the right provider.

mod support;

use std::sync::{Arc, Weak};
use std::time::Duration;

use lifeboat::store::Store;
use lifeboat_provider::{ErrorClass, Generation, Op};
use lifeboat_provider_sim::SimConfig;
use support::{World, open, plan, workload};

fn sim(healthy_after_ms: u64) -> SimConfig {
    SimConfig {
        latency: Duration::from_millis(50),
        jitter: Duration::from_millis(20),
        healthy_after: Duration::from_millis(healthy_after_ms),
        seed: Some(1),
        ..SimConfig::default()
    }
}

fn world() -> World {
    World::new(
        &[("a", sim(0)), ("b", sim(1000)), ("c", sim(500))],
        vec![workload("db", ""), workload("api", ""), workload("web", "")],
    )
}

/// Waits until every task of the dropped execution has let go of the store, as the
/// death of a process would, so the writer lock can be taken again.
async fn until_released(store: Weak<Store>) {
    for _ in 0..100_000 {
        if store.upgrade().is_none() {
            return;
        }
        tokio::task::yield_now().await;
    }
    panic!("the aborted execution still holds the store");
}

/// Runs the plan, kills it after `crash_after` progress events, resumes. Returns
/// whether the kill interrupted anything.
async fn crash_and_resume(
    world: &World,
    targets: &[&str],
    crash_after: usize,
    expect_on: &str,
) -> bool {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    world.place_all(&store, "a").await;
    let exec = world.executor(&store);
    let mut events = exec.subscribe();
    let the_plan = plan(&[("db", 0), ("api", 1), ("web", 2)], "a", targets);
    let mut task = tokio::spawn({
        let exec = exec.clone();
        async move { exec.execute(&the_plan).await }
    });
    let mut ended = None;
    for _ in 0..crash_after {
        tokio::select! {
            biased;
            result = &mut task => {
                ended = Some(result);
                break;
            }
            event = events.recv() => {
                if event.is_err() {
                    break;
                }
            }
        }
    }
    let ended = match ended {
        Some(result) => result,
        None => {
            task.abort();
            task.await
        }
    };
    let finished_anyway = matches!(ended, Ok(Ok(_)));
    let weak = Arc::downgrade(&store);
    drop((exec, store, events));
    until_released(weak).await;

    let store = open(dir.path());
    let interrupted = !store.unfinished_evacuations().unwrap().is_empty();
    assert_eq!(interrupted, !finished_anyway);
    let reports = world.executor(&store).resume().await.unwrap();
    assert_eq!(reports.len(), usize::from(interrupted));
    assert!(
        reports.iter().all(|r| r.all_moved()),
        "crash after {crash_after}: {reports:#?}"
    );
    assert!(store.unfinished_evacuations().unwrap().is_empty());
    for name in ["db", "api", "web"] {
        assert_eq!(
            world.copies(name),
            [(expect_on.to_owned(), 2)],
            "crash after {crash_after} events: {name}"
        );
        let placement = store.placement(name).unwrap().unwrap();
        assert_eq!(
            (placement.provider.as_str(), placement.generation),
            (expect_on, Generation(2))
        );
        let points_at = world.cutover.names.lock().unwrap()[name].clone();
        assert_eq!(Some(points_at), placement.deployment.unwrap().endpoint);
    }
    interrupted
}

#[tokio::test(start_paused = true)]
async fn a_crash_at_any_step_resumes_to_one_live_copy_each() {
    // 3 moves × 6 steps × (started, done) = 36 transitions; crash after each of them.
    let mut interrupted = 0;
    for crash_after in 1..=37 {
        let world = world();
        interrupted += usize::from(crash_and_resume(&world, &["b"], crash_after, "b").await);
    }
    assert!(
        interrupted >= 30,
        "only {interrupted} runs were really interrupted"
    );
}

#[tokio::test(start_paused = true)]
async fn a_crash_during_fall_through_leaves_no_copy_on_the_abandoned_target() {
    let mut interrupted = 0;
    for crash_after in (1..=45).step_by(2) {
        let world = world();
        // b accepts copies but they never pass their health check.
        world
            .handle("b")
            .set_fault(ErrorClass::InvalidRequest, &[Op::Inspect]);
        interrupted += usize::from(crash_and_resume(&world, &["b", "c"], crash_after, "c").await);
    }
    assert!(
        interrupted >= 15,
        "only {interrupted} runs were really interrupted"
    );
}
