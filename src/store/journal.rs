//! The journal: every step transition of every move, written before it is acted on, and
//! the evacuations and outcomes that frame them. `resume` rebuilds in-flight moves
//! from here after a crash.

use std::collections::BTreeMap;

use anyhow::{Context, bail};
use jiff::Timestamp;
use lifeboat_provider::{DeploymentRef, Generation};
use rusqlite::{OptionalExtension, params};
use serde::{Deserialize, Serialize};

use super::{Store, enum_from, enum_text, from_json, timestamp, to_json};
use crate::deadline::Sample;
use crate::model::{Placement, Plan, Step};

/// Where one step attempt stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// About to act (written before the action).
    Started,
    /// The action succeeded.
    Done,
    /// This attempt failed; another attempt may follow.
    Failed,
    /// The target was given up after this failure; the move falls through to the next.
    Abandoned,
}

/// One journal line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct JournalEntry {
    /// Order of writing, assigned by the store (ignored by [`Store::record`]).
    pub id: i64,
    /// The evacuation this move belongs to.
    pub evacuation: String,
    /// The workload moving.
    pub workload: String,
    /// The step.
    pub step: Step,
    /// Attempt number of the step at this target, from 1; 0 on lines that are not an
    /// attempt (a target given up, a cutover found to have taken effect).
    pub attempt: u32,
    /// The transition.
    pub status: Status,
    /// The target provider of the move at the time.
    pub target: String,
    /// The generation of the new copy.
    pub generation: Generation,
    /// The copy at the target, once deployed (so a resume can find it again).
    pub deployment: Option<DeploymentRef>,
    /// Error or note, for humans.
    pub detail: Option<String>,
    /// Wall-clock time of the transition.
    pub at: Timestamp,
}

/// One execution of a plan, kept so that a resume knows what it was asked to do.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Evacuation {
    /// Unique id (`ev-...`).
    pub id: String,
    /// The plan being executed.
    pub plan: Plan,
    /// Where each moving workload ran before (its placement), if it had one.
    pub sources: BTreeMap<String, Placement>,
    /// Shadow mode: verify copies, move no traffic.
    pub shadow: bool,
    /// When it started.
    pub started: Timestamp,
    /// When it finished; `None` while in flight (or interrupted).
    pub finished: Option<Timestamp>,
}

/// How a move ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Outcome {
    /// Traffic moved to `to`; `warnings` lists what went wrong after the cutover (an
    /// `after_cutover` hook, a source left orphaned).
    Moved {
        /// The new provider.
        to: String,
        /// Problems that did not undo the move.
        warnings: Vec<String>,
    },
    /// Shadow mode: a copy was deployed and verified healthy on `on`, then retired.
    Verified {
        /// The provider that ran the verified copy.
        on: String,
    },
    /// No target worked.
    Stranded {
        /// The last error per target, for humans.
        reason: String,
    },
    /// A newer placement of the workload appeared while moving: fenced, not cut over.
    Superseded {
        /// The generation that won.
        by: Generation,
    },
}

impl Store {
    /// Records a new evacuation before any of its moves act.
    pub fn begin_evacuation(&self, ev: &Evacuation) -> anyhow::Result<()> {
        self.conn()
            .execute(
                "INSERT INTO evacuations (id, plan, sources, shadow, started, finished)
                 VALUES (?1, ?2, ?3, ?4, ?5, NULL)",
                params![
                    ev.id,
                    to_json(&ev.plan)?,
                    to_json(&ev.sources)?,
                    ev.shadow,
                    ev.started.to_string()
                ],
            )
            .with_context(|| format!("recording evacuation {}", ev.id))?;
        Ok(())
    }

    /// Marks an evacuation finished (every move has an outcome).
    pub fn finish_evacuation(&self, id: &str, at: Timestamp) -> anyhow::Result<()> {
        self.conn()
            .execute(
                "UPDATE evacuations SET finished = ?2 WHERE id = ?1",
                params![id, at.to_string()],
            )
            .with_context(|| format!("finishing evacuation {id}"))?;
        Ok(())
    }

    /// Evacuations that started and never finished, oldest first.
    pub fn unfinished_evacuations(&self) -> anyhow::Result<Vec<Evacuation>> {
        self.evacuations_where("finished IS NULL")
    }

    /// Every evacuation, oldest first.
    pub fn evacuations(&self) -> anyhow::Result<Vec<Evacuation>> {
        self.evacuations_where("1")
    }

    fn evacuations_where(&self, filter: &str) -> anyhow::Result<Vec<Evacuation>> {
        let conn = self.conn();
        let mut stmt = conn.prepare(&format!(
            "SELECT id, plan, sources, shadow, started, finished FROM evacuations
             WHERE {filter} ORDER BY rowid"
        ))?;
        let rows = stmt.query_map([], |row| {
            Ok((
                row.get::<_, String>(0)?,
                row.get::<_, String>(1)?,
                row.get::<_, String>(2)?,
                row.get::<_, bool>(3)?,
                row.get::<_, String>(4)?,
                row.get::<_, Option<String>>(5)?,
            ))
        })?;
        rows.map(|row| {
            let (id, plan, sources, shadow, started, finished) = row?;
            Ok(Evacuation {
                id,
                plan: from_json(&plan)?,
                sources: from_json(&sources)?,
                shadow,
                started: timestamp(&started)?,
                finished: finished.as_deref().map(timestamp).transpose()?,
            })
        })
        .collect()
    }

    /// Journals `entry` — call it **before** acting on the transition — in a
    /// transaction it shares with the other lines written at the same moment (group
    /// commit), and returns its row id once it is durable.
    pub async fn append(&self, entry: &JournalEntry) -> anyhow::Result<i64> {
        let write = super::group::Write {
            entry: entry.clone(),
            placement: None,
        };
        self.committer()?.write(write).await
    }

    /// Journals a completed cutover and commits the workload's new placement in the
    /// same transaction, so the journal and the placements never disagree after a
    /// crash; group-committed like [`Store::append`].
    pub async fn append_cutover(
        &self,
        entry: &JournalEntry,
        placement: &Placement,
    ) -> anyhow::Result<()> {
        let write = super::group::Write {
            entry: entry.clone(),
            placement: Some(placement.clone()),
        };
        self.committer()?
            .write(write)
            .await
            .with_context(|| format!("committing the cutover of {}", entry.workload))?;
        Ok(())
    }

    fn committer(&self) -> anyhow::Result<&super::group::Committer> {
        match &self.committer {
            Some(c) => Ok(c),
            None => bail!("the store is open read-only"),
        }
    }

    /// The journal of one evacuation (every move), in order of writing.
    pub fn journal(&self, evacuation: &str) -> anyhow::Result<Vec<JournalEntry>> {
        self.journal_where("evacuation = ?1", params![evacuation], None)
    }

    /// The completed moves of the latest `evacuations` (not shadow drills, which have
    /// no cutover), each from its first deploy to its cutover: what
    /// [`crate::deadline`] estimates from.
    pub fn moves_observed(&self, evacuations: u32) -> anyhow::Result<Vec<Sample>> {
        let entries = self.journal_where(
            "evacuation IN (SELECT id FROM evacuations WHERE shadow = 0
                            ORDER BY rowid DESC LIMIT ?1)
             AND ((step = 'deploy' AND status = 'started') OR (step = 'cutover' AND status = 'done'))",
            params![evacuations],
            None,
        )?;
        let mut started: BTreeMap<(&str, &str), Timestamp> = BTreeMap::new();
        let mut samples = Vec::new();
        for e in &entries {
            let key = (e.evacuation.as_str(), e.workload.as_str());
            match e.step {
                Step::Deploy => {
                    started.entry(key).or_insert(e.at);
                }
                _ => {
                    if let Some(from) = started.get(&key)
                        && let Ok(took) = std::time::Duration::try_from(e.at.duration_since(*from))
                    {
                        samples.push(Sample {
                            workload: e.workload.clone(),
                            target: e.target.clone(),
                            at: e.at,
                            took,
                        });
                    }
                }
            }
        }
        Ok(samples)
    }

    /// Journal lines of every evacuation written after line `after`, oldest first, at
    /// most `limit`: the event feed of the API, paged by the last id seen.
    pub fn events(&self, after: i64, limit: u32) -> anyhow::Result<Vec<JournalEntry>> {
        self.journal_where("id > ?1", params![after], Some(limit))
    }

    fn journal_where(
        &self,
        filter: &str,
        args: impl rusqlite::Params,
        limit: Option<u32>,
    ) -> anyhow::Result<Vec<JournalEntry>> {
        let conn = self.conn();
        let limit = limit.map(|n| format!(" LIMIT {n}")).unwrap_or_default();
        let mut stmt = conn.prepare(&format!(
            "SELECT id, evacuation, workload, step, attempt, status, target, generation,
                    deployment, detail, at
             FROM journal WHERE {filter} ORDER BY id{limit}"
        ))?;
        let rows = stmt.query_map(args, |row| {
            Ok((
                row.get::<_, i64>(0)?,
                row.get::<_, String>(1)?,
                row.get::<_, String>(2)?,
                row.get::<_, String>(3)?,
                row.get::<_, u32>(4)?,
                row.get::<_, String>(5)?,
                row.get::<_, String>(6)?,
                row.get::<_, i64>(7)?,
                row.get::<_, Option<String>>(8)?,
                row.get::<_, Option<String>>(9)?,
                row.get::<_, String>(10)?,
            ))
        })?;
        rows.map(|row| {
            let (
                id,
                evacuation,
                workload,
                step,
                attempt,
                status,
                target,
                generation,
                dep,
                detail,
                at,
            ) = row?;
            Ok(JournalEntry {
                id,
                evacuation,
                workload,
                step: enum_from(&step)?,
                attempt,
                status: enum_from(&status)?,
                target,
                generation: Generation(u64::try_from(generation).context("negative generation")?),
                deployment: dep.as_deref().map(from_json).transpose()?,
                detail,
                at: timestamp(&at)?,
            })
        })
        .collect()
    }

    /// Records how a move ended. Idempotent: a repeated outcome replaces the first.
    pub fn record_outcome(
        &self,
        evacuation: &str,
        workload: &str,
        outcome: &Outcome,
        at: Timestamp,
    ) -> anyhow::Result<()> {
        self.conn()
            .execute(
                "INSERT OR REPLACE INTO outcomes (evacuation, workload, outcome, at)
                 VALUES (?1, ?2, ?3, ?4)",
                params![evacuation, workload, to_json(outcome)?, at.to_string()],
            )
            .with_context(|| format!("recording the outcome of {workload}"))?;
        Ok(())
    }

    /// The outcome of one move, if it ended.
    pub fn outcome(&self, evacuation: &str, workload: &str) -> anyhow::Result<Option<Outcome>> {
        let text: Option<String> = self
            .conn()
            .query_row(
                "SELECT outcome FROM outcomes WHERE evacuation = ?1 AND workload = ?2",
                params![evacuation, workload],
                |row| row.get(0),
            )
            .optional()?;
        text.as_deref().map(from_json).transpose()
    }
}

pub(super) fn insert_entry(conn: &rusqlite::Connection, e: &JournalEntry) -> anyhow::Result<()> {
    conn.execute(
        "INSERT INTO journal (evacuation, workload, step, attempt, status, target,
                              generation, deployment, detail, at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
        params![
            e.evacuation,
            e.workload,
            enum_text(&e.step)?,
            e.attempt,
            enum_text(&e.status)?,
            e.target,
            i64::try_from(e.generation.0).context("generation out of range")?,
            e.deployment.as_ref().map(to_json).transpose()?,
            e.detail,
            e.at.to_string(),
        ],
    )
    .with_context(|| format!("journaling {:?} of {}", e.step, e.workload))?;
    Ok(())
}
