//! Group commit: journal lines written at the same moment share one transaction and one
//! fsync, so an evacuation of many workloads is bounded by its vendors rather than by
//! one disk's fsync latency per line — and every line is still durable before the step
//! that wrote it goes on.
//!
//! Leader and followers, without a thread of their own: a step that finds nobody
//! committing becomes the leader and commits its line at once, in its own task (as a
//! lone write always did). A step that arrives while a commit is under way queues its
//! line and waits for the answer without blocking a runtime worker. When the leader's
//! commit is done it takes every line queued meanwhile (up to [`MAX_BATCH`]) into the
//! next transaction, each in a savepoint (a line that cannot be written fails alone),
//! and answers each step only after that commit; it stops leading when the queue is
//! empty. The busier the executor, the more lines share an fsync; a lone line waits for
//! nobody, and on a single-threaded runtime every line is its own leader.

use std::sync::{Arc, Mutex};

use anyhow::{Context, anyhow};
use rusqlite::Connection;
use tokio::sync::oneshot;

use super::journal::{JournalEntry, insert_entry};
use crate::model::Placement;

/// The most lines one transaction takes.
pub const MAX_BATCH: usize = 512;

/// What a step asks to have written: a journal line, and with a completed cutover's
/// line the workload's new placement, committed together.
#[derive(Debug)]
pub(super) struct Write {
    /// The line.
    pub(super) entry: JournalEntry,
    /// The new placement, for a cutover.
    pub(super) placement: Option<Placement>,
}

#[derive(Debug)]
struct Job {
    write: Write,
    done: oneshot::Sender<anyhow::Result<i64>>,
}

#[derive(Debug, Default)]
struct Queue {
    jobs: Vec<Job>,
    leading: bool,
}

/// The journal's writers, sharing commits.
#[derive(Debug)]
pub(super) struct Committer {
    conn: Arc<Mutex<Connection>>,
    queue: Mutex<Queue>,
}

impl Committer {
    /// Commits through `conn`, the store's connection.
    pub(super) fn new(conn: Arc<Mutex<Connection>>) -> Committer {
        Committer {
            conn,
            queue: Mutex::new(Queue::default()),
        }
    }

    /// Writes `write` and returns its journal row id once it is committed.
    pub(super) async fn write(&self, write: Write) -> anyhow::Result<i64> {
        let answer = {
            let mut queue = self.queue();
            if !queue.leading {
                queue.leading = true;
                drop(queue);
                return self.lead(write);
            }
            let (done, answer) = oneshot::channel();
            queue.jobs.push(Job { write, done });
            answer
        };
        answer
            .await
            .map_err(|_| anyhow!("the journal's leading writer stopped before committing"))?
    }

    /// Commits `own`, then every line queued meanwhile, batch after batch, until the
    /// queue is empty; returns `own`'s outcome.
    fn lead(&self, own: Write) -> anyhow::Result<i64> {
        let mut leading = Leading {
            committer: self,
            finished: false,
        };
        let outcome = self
            .commit(&[&own])
            .pop()
            .unwrap_or_else(|| Err(anyhow!("no outcome")));
        loop {
            let batch: Vec<Job> = {
                let mut queue = self.queue();
                if queue.jobs.is_empty() {
                    queue.leading = false;
                    break;
                }
                let n = queue.jobs.len().min(MAX_BATCH);
                queue.jobs.drain(..n).collect()
            };
            let writes: Vec<&Write> = batch.iter().map(|j| &j.write).collect();
            let outcomes = self.commit(&writes);
            for (job, outcome) in batch.into_iter().zip(outcomes) {
                let _ = job.done.send(outcome);
            }
        }
        leading.finished = true;
        outcome
    }

    /// Writes `writes` in one transaction, each in its savepoint; their outcomes, in
    /// order, all failed when the commit itself failed.
    fn commit(&self, writes: &[&Write]) -> Vec<anyhow::Result<i64>> {
        let mut conn = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        let mut outcomes: Vec<anyhow::Result<i64>> = Vec::with_capacity(writes.len());
        let committed = (|| -> anyhow::Result<()> {
            let mut tx = conn.transaction()?;
            for write in writes {
                outcomes.push((|| {
                    let sp = tx.savepoint()?;
                    let id = apply(&sp, write)?;
                    sp.commit()?;
                    Ok(id)
                })());
            }
            tx.commit().context("committing journal lines")
        })();
        match committed {
            Ok(()) => outcomes,
            Err(e) => writes.iter().map(|_| Err(anyhow!("{e:#}"))).collect(),
        }
    }

    fn queue(&self) -> std::sync::MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Held by the leader; if it unwinds (a panic inside a commit), the lines queued behind
/// it are answered with an error instead of waiting forever, and the next writer leads.
struct Leading<'a> {
    committer: &'a Committer,
    /// The leader handed over normally (the queue was empty): nothing to undo, and
    /// the queue may already belong to the next leader.
    finished: bool,
}

impl Drop for Leading<'_> {
    fn drop(&mut self) {
        if self.finished {
            return;
        }
        let mut queue = self.committer.queue();
        queue.leading = false;
        // Dropping their senders answers the waiting steps with an error.
        queue.jobs.clear();
    }
}

fn apply(conn: &Connection, write: &Write) -> anyhow::Result<i64> {
    insert_entry(conn, &write.entry)?;
    let id = conn.last_insert_rowid();
    if let Some(placement) = &write.placement {
        super::records::upsert_placement(conn, placement)?;
    }
    Ok(id)
}
