use std::collections::BTreeMap;

use jiff::Timestamp;
use lifeboat_provider::{DeploymentRef, Generation};

use super::*;
use crate::model::{Condition, Notice, Placement, Plan, Scope, Step};

fn placement(workload: &str, provider: &str, generation: u64) -> Placement {
    Placement {
        workload: workload.into(),
        provider: provider.into(),
        generation: Generation(generation),
        deployment: Some(DeploymentRef {
            workload: workload.into(),
            generation: Generation(generation),
            handle: format!("{workload}-{generation}"),
            endpoint: None,
            owner: None,
        }),
        since: Timestamp::UNIX_EPOCH,
    }
}

fn evacuation(id: &str) -> Evacuation {
    Evacuation {
        id: id.into(),
        plan: Plan::default(),
        sources: BTreeMap::from([("api".to_owned(), placement("api", "a", 1))]),
        shadow: false,
        started: Timestamp::UNIX_EPOCH,
        finished: None,
    }
}

fn entry(ev: &str, step: Step, status: Status) -> JournalEntry {
    JournalEntry {
        id: 0,
        evacuation: ev.into(),
        workload: "api".into(),
        step,
        attempt: 1,
        status,
        target: "b".into(),
        generation: Generation(2),
        deployment: None,
        detail: None,
        at: Timestamp::UNIX_EPOCH,
    }
}

#[test]
fn a_second_writer_is_refused_with_the_holders_pid() {
    let dir = tempfile::tempdir().unwrap();
    let first = Store::open(dir.path()).unwrap();
    let err = Store::open(dir.path()).unwrap_err().to_string();
    assert_eq!(
        err,
        format!(
            "another lifeboat process (pid {}) holds {}; stop it first",
            std::process::id(),
            dir.path().display()
        )
    );
    drop(first);
    Store::open(dir.path()).expect("the lock is released with the writer");
}

#[tokio::test]
async fn state_survives_reopening_and_readers_see_it_while_the_writer_runs() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = Store::open(dir.path()).unwrap();
        store.put_placement(&placement("api", "a", 1)).unwrap();
        store.begin_evacuation(&evacuation("ev-1")).unwrap();
        store
            .append(&entry("ev-1", Step::Deploy, Status::Started))
            .await
            .unwrap();
    }
    let store = Store::open(dir.path()).unwrap();
    assert_eq!(
        store.placement("api").unwrap(),
        Some(placement("api", "a", 1))
    );
    assert_eq!(store.journal("ev-1").unwrap().len(), 1);
    assert_eq!(
        store.unfinished_evacuations().unwrap(),
        [evacuation("ev-1")]
    );

    let reader = Store::open_read_only(dir.path()).unwrap();
    store.put_placement(&placement("web", "a", 3)).unwrap();
    assert_eq!(reader.placements().unwrap().len(), 2);
    assert!(reader.put_placement(&placement("x", "a", 1)).is_err());
}

#[test]
fn a_reader_opens_state_no_writer_has_open() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = Store::open(dir.path()).unwrap();
        store.put_placement(&placement("api", "a", 1)).unwrap();
    }
    let reader = Store::open_read_only(dir.path()).unwrap();
    assert_eq!(reader.placements().unwrap().len(), 1);
    // A reader does not take the writer's lock.
    drop(Store::open(dir.path()).unwrap());
}

#[test]
fn a_reader_needs_existing_state() {
    let dir = tempfile::tempdir().unwrap();
    let err = Store::open_read_only(dir.path()).unwrap_err().to_string();
    assert!(err.contains("no lifeboat state"), "{err}");
}

#[test]
fn a_newer_schema_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    drop(Store::open(dir.path()).unwrap());
    let conn = rusqlite::Connection::open(dir.path().join(DB_FILE)).unwrap();
    conn.pragma_update(None, "user_version", 99).unwrap();
    drop(conn);
    let err = format!("{:#}", Store::open(dir.path()).unwrap_err());
    assert!(err.contains("newer than this lifeboat"), "{err}");
}

#[tokio::test]
async fn the_journal_keeps_order_and_every_field() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    store.begin_evacuation(&evacuation("ev-1")).unwrap();
    let mut done = entry("ev-1", Step::Deploy, Status::Done);
    done.deployment = placement("api", "b", 2).deployment;
    done.detail = Some("deployed".into());
    let first = store
        .append(&entry("ev-1", Step::Deploy, Status::Started))
        .await
        .unwrap();
    let second = store.append(&done).await.unwrap();
    assert!(second > first);
    let journal = store.journal("ev-1").unwrap();
    assert_eq!(journal[1], JournalEntry { id: second, ..done });
    assert_eq!(journal[0].status, Status::Started);
}

#[tokio::test]
async fn a_cutover_moves_the_placement_with_its_journal_line() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    store.begin_evacuation(&evacuation("ev-1")).unwrap();
    store.put_placement(&placement("api", "a", 1)).unwrap();
    store
        .append_cutover(
            &entry("ev-1", Step::Cutover, Status::Done),
            &placement("api", "b", 2),
        )
        .await
        .unwrap();
    assert_eq!(store.placement("api").unwrap().unwrap().provider, "b");
    assert_eq!(store.journal("ev-1").unwrap()[0].step, Step::Cutover);

    let outcome = Outcome::Moved {
        to: "b".into(),
        warnings: vec![],
    };
    store
        .record_outcome("ev-1", "api", &outcome, Timestamp::UNIX_EPOCH)
        .unwrap();
    store
        .record_outcome("ev-1", "api", &outcome, Timestamp::UNIX_EPOCH)
        .unwrap();
    assert_eq!(store.outcome("ev-1", "api").unwrap(), Some(outcome));
    store
        .finish_evacuation("ev-1", Timestamp::UNIX_EPOCH)
        .unwrap();
    assert!(store.unfinished_evacuations().unwrap().is_empty());
}

#[test]
fn orphans_conditions_notices_and_drills_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let orphan = Orphan {
        provider: "a".into(),
        deployment: placement("api", "a", 1).deployment.unwrap(),
        reason: "unavailable".into(),
        at: Timestamp::UNIX_EPOCH,
    };
    store.record_orphan(&orphan).unwrap();
    store.record_orphan(&orphan).unwrap();
    assert_eq!(store.orphans().unwrap(), std::slice::from_ref(&orphan));
    store.remove_orphan("a", &orphan.deployment.handle).unwrap();
    assert!(store.orphans().unwrap().is_empty());

    let fenced = Condition::Fenced { by: "drill".into() };
    store
        .put_condition("a", &Condition::Healthy, Timestamp::UNIX_EPOCH)
        .unwrap();
    store
        .put_condition("a", &fenced, Timestamp::UNIX_EPOCH)
        .unwrap();
    assert_eq!(store.conditions().unwrap()["a"].condition, fenced);

    let notice = Notice {
        scope: Scope::Vendor("aws".into()),
        deadline: None,
        reason: "suspension e-mail".into(),
    };
    let id = store.add_notice(&notice, Timestamp::UNIX_EPOCH).unwrap();
    assert_eq!(store.notices(true).unwrap()[0].notice, notice);
    store.clear_notice(id, Timestamp::UNIX_EPOCH).unwrap();
    assert!(store.notices(true).unwrap().is_empty());
    assert_eq!(store.notices(false).unwrap().len(), 1);

    let report = serde_json::json!({"scenario": "account-suspended", "objectives_met": true});
    store.put_drill(&report, Timestamp::UNIX_EPOCH).unwrap();
    assert_eq!(store.drills().unwrap()[0].record, report);
    for n in 1..=3 {
        let later = serde_json::json!({ "n": n });
        store.put_drill(&later, Timestamp::UNIX_EPOCH).unwrap();
    }
    let latest: Vec<_> = (store.latest_drills(2).unwrap().into_iter())
        .map(|d| d.record)
        .collect();
    assert_eq!(
        latest,
        [serde_json::json!({"n": 2}), serde_json::json!({"n": 3})]
    );
}

#[test]
fn a_drill_run_stays_uncleaned_until_marked_and_names_its_copies() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let owner = lifeboat_provider::Owner::drill("prod", "d1");
    store
        .begin_drill_run(&DrillRun {
            id: "d1".into(),
            owner: owner.clone(),
            mode: "shadow".into(),
            lose: "acme".into(),
            pid: 7,
            started: Timestamp::UNIX_EPOCH,
            cleaned: None,
        })
        .unwrap();
    let mut p = placement("api", "metal", 1);
    if let Some(d) = p.deployment.as_mut() {
        d.owner = Some(owner.clone());
    }
    store.put_placement(&p).unwrap();
    let runs = store.uncleaned_drill_runs().unwrap();
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0].owner, owner);
    let recorded = store.recorded_deployments().unwrap();
    assert_eq!(recorded.len(), 1);
    assert_eq!(recorded[0].0, "metal");
    assert_eq!(recorded[0].1.owner, Some(owner));
    store
        .drill_run_cleaned("d1", Timestamp::UNIX_EPOCH)
        .unwrap();
    assert!(store.uncleaned_drill_runs().unwrap().is_empty());
}

#[test]
fn a_second_writer_is_refused_with_a_typed_error() {
    let dir = tempfile::tempdir().unwrap();
    let _first = Store::open(dir.path()).unwrap();
    let second = Store::open(dir.path()).unwrap_err();
    assert!(is_locked(&second), "{second:#}");
    assert_eq!(
        writer_pid(dir.path()).unwrap(),
        Some(std::process::id().to_string())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lines_written_at_once_share_commits_and_a_bad_one_fails_alone() {
    let dir = tempfile::tempdir().unwrap();
    let store = std::sync::Arc::new(Store::open(dir.path()).unwrap());
    store.begin_evacuation(&evacuation("ev-1")).unwrap();
    let mut writers = tokio::task::JoinSet::new();
    for i in 0..200 {
        let store = store.clone();
        writers.spawn(async move {
            // Every tenth line names an evacuation that does not exist: the foreign key
            // refuses it, in its own savepoint.
            let ev = if i % 10 == 0 { "ev-nosuch" } else { "ev-1" };
            (
                i,
                store
                    .append(&entry(ev, Step::Deploy, Status::Started))
                    .await,
            )
        });
    }
    let mut ids = std::collections::BTreeSet::new();
    while let Some(done) = writers.join_next().await {
        let (i, outcome) = done.unwrap();
        match outcome {
            Ok(id) => {
                assert_ne!(i % 10, 0, "line {i} should have been refused");
                assert!(ids.insert(id), "id {id} answered twice");
            }
            Err(e) => assert_eq!(i % 10, 0, "line {i} failed: {e:#}"),
        }
    }
    assert_eq!(ids.len(), 180);
    let journal: std::collections::BTreeSet<i64> = (store.journal("ev-1").unwrap().iter())
        .map(|e| e.id)
        .collect();
    assert_eq!(journal, ids, "every acknowledged line, and only those");
}
