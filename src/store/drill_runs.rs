//! Drill runs: each drill is recorded, with the owner its copies carry, before it
//! creates anything, and marked cleaned once nothing it made is left. A run that is not
//! cleaned (the drill process died) tells `lifeboat drill --cleanup` and `lifeboat run`
//! exactly whose copies to remove.

use anyhow::Context;
use jiff::Timestamp;
use lifeboat_provider::{DeploymentRef, Owner};
use rusqlite::params;
use serde::{Deserialize, Serialize};

use super::{Store, from_json, timestamp, to_json};

/// One drill, as recorded when it started.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DrillRun {
    /// The drill's id (also `owner.drill`).
    pub id: String,
    /// The owner every copy of the drill carries.
    pub owner: Owner,
    /// `live` or `shadow`.
    pub mode: String,
    /// What the drill lost (`--lose`).
    pub lose: String,
    /// The drill process, for messages ("drill 1234 still runs").
    pub pid: u32,
    /// When it started.
    pub started: Timestamp,
    /// When everything it made was found gone; `None` while it runs, or after it died.
    pub cleaned: Option<Timestamp>,
}

impl Store {
    /// Records a drill before it creates anything.
    pub fn begin_drill_run(&self, run: &DrillRun) -> anyhow::Result<()> {
        self.conn()
            .execute(
                "INSERT INTO drill_runs (id, owner, mode, lose, pid, started, cleaned)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, NULL)",
                params![
                    run.id,
                    to_json(&run.owner)?,
                    run.mode,
                    run.lose,
                    run.pid,
                    run.started.to_string(),
                ],
            )
            .with_context(|| format!("recording drill {} before it starts", run.id))?;
        Ok(())
    }

    /// Marks a drill as cleaned up: nothing it made is left anywhere.
    pub fn drill_run_cleaned(&self, id: &str, at: Timestamp) -> anyhow::Result<()> {
        self.conn()
            .execute(
                "UPDATE drill_runs SET cleaned = ?2 WHERE id = ?1",
                params![id, at.to_string()],
            )
            .with_context(|| format!("marking drill {id} cleaned up"))?;
        Ok(())
    }

    /// Drills whose copies may still exist, oldest first.
    pub fn uncleaned_drill_runs(&self) -> anyhow::Result<Vec<DrillRun>> {
        Ok(self
            .drill_runs()?
            .into_iter()
            .filter(|r| r.cleaned.is_none())
            .collect())
    }

    /// Every drill ever recorded here, oldest first.
    pub fn drill_runs(&self) -> anyhow::Result<Vec<DrillRun>> {
        let conn = self.conn();
        let mut stmt = conn.prepare(
            "SELECT id, owner, mode, lose, pid, started, cleaned FROM drill_runs
             ORDER BY started, id",
        )?;
        let rows = stmt.query_map([], |row| {
            Ok((
                row.get::<_, String>(0)?,
                row.get::<_, String>(1)?,
                row.get::<_, String>(2)?,
                row.get::<_, String>(3)?,
                row.get::<_, u32>(4)?,
                row.get::<_, String>(5)?,
                row.get::<_, Option<String>>(6)?,
            ))
        })?;
        rows.map(|row| {
            let (id, owner, mode, lose, pid, started, cleaned) = row?;
            Ok(DrillRun {
                id,
                owner: from_json(&owner)?,
                mode,
                lose,
                pid,
                started: timestamp(&started)?,
                cleaned: cleaned.as_deref().map(timestamp).transpose()?,
            })
        })
        .collect()
    }

    /// Every copy the journal and the placements name, with its provider: what a drill
    /// that died may have left, beside what `list_managed` finds by its owner.
    pub fn recorded_deployments(&self) -> anyhow::Result<Vec<(String, DeploymentRef)>> {
        let conn = self.conn();
        let mut stmt = conn.prepare(
            "SELECT DISTINCT target, deployment FROM journal WHERE deployment IS NOT NULL
             UNION SELECT provider, deployment FROM placements WHERE deployment IS NOT NULL",
        )?;
        let rows = stmt.query_map([], |row| {
            Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?))
        })?;
        rows.map(|row| {
            let (provider, dep) = row?;
            Ok((provider, from_json(&dep)?))
        })
        .collect()
    }
}
