//! A journal line acknowledged to a step is in the store after the process dies: many
//! writers at once (their lines sharing commits, see the store's group commit) journal
//! in a child process, each printing a line's id once `append` answered, and the child
//! is killed with SIGKILL in the middle of it. Every id it printed is in the store when
//! it is opened again.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use jiff::Timestamp;
use lifeboat::model::{Plan, Step};
use lifeboat::store::{Evacuation, JournalEntry, Status, Store};
use lifeboat_provider::Generation;

/// Set in the child: the state folder it journals into.
const CHILD: &str = "LIFEBOAT_JOURNAL_DURABILITY_CHILD";
const TEST: &str = "a_line_acknowledged_before_a_kill_is_in_the_store_after_it";
/// Steps journaling at once in the child.
const WRITERS: usize = 32;

#[test]
fn a_line_acknowledged_before_a_kill_is_in_the_store_after_it() {
    if let Ok(dir) = std::env::var(CHILD) {
        journal_until_killed(Path::new(&dir));
    }
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", TEST, "--nocapture", "--test-threads=1"])
        .env(CHILD, dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut acked = Vec::new();
    let started = Instant::now();
    // Killed at a moment that depends on the machine's pace: after some thousand
    // acknowledged lines, in the middle of whatever commit is under way.
    for line in BufReader::new(child.stdout.take().unwrap()).lines() {
        let Some(id) = line.unwrap().strip_prefix("ack ").map(str::to_owned) else {
            continue;
        };
        acked.push(id.parse::<i64>().unwrap());
        if acked.len() >= 2_000 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "the child journals too slowly: {} lines",
            acked.len()
        );
    }
    child.kill().unwrap();
    child.wait().unwrap();

    let store = Store::open(dir.path()).unwrap();
    let mut stored = std::collections::BTreeSet::new();
    let mut after = 0;
    loop {
        let page = store.events(after, 1_000).unwrap();
        let Some(last) = page.last() else { break };
        after = last.id;
        stored.extend(page.iter().map(|e| e.id));
    }
    let lost: Vec<i64> = acked
        .iter()
        .copied()
        .filter(|id| !stored.contains(id))
        .collect();
    assert!(
        lost.is_empty(),
        "{} of {} acknowledged lines are not in the store: {:?}",
        lost.len(),
        acked.len(),
        &lost[..lost.len().min(10)]
    );
    assert!(stored.len() >= acked.len());
}

/// The child: `WRITERS` steps journal as fast as the store takes it, each printing the
/// id of every line `append` acknowledged, until the parent kills the process.
fn journal_until_killed(dir: &Path) -> ! {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let store = Arc::new(Store::open(dir).unwrap());
        store
            .begin_evacuation(&Evacuation {
                id: "ev-durability".into(),
                plan: Plan::default(),
                sources: Default::default(),
                shadow: false,
                started: Timestamp::now(),
                finished: None,
            })
            .unwrap();
        let mut writers = tokio::task::JoinSet::new();
        for w in 0..WRITERS {
            let store = store.clone();
            writers.spawn(async move {
                for attempt in 1.. {
                    let entry = JournalEntry {
                        id: 0,
                        evacuation: "ev-durability".into(),
                        workload: format!("w{w}"),
                        step: Step::Deploy,
                        attempt,
                        status: Status::Started,
                        target: "metal".into(),
                        generation: Generation(1),
                        deployment: None,
                        detail: None,
                        at: Timestamp::now(),
                    };
                    let id = store.append(&entry).await.unwrap();
                    let mut out = std::io::stdout().lock();
                    writeln!(out, "ack {id}").unwrap();
                    out.flush().unwrap();
                }
            });
        }
        while writers.join_next().await.is_some() {}
    });
    unreachable!("the writers journal until the process is killed")
}
