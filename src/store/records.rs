//! Placements, orphans, provider conditions, notices and drill records.

use std::collections::BTreeMap;

use anyhow::Context;
use jiff::Timestamp;
use lifeboat_provider::{DeploymentRef, Generation};
use rusqlite::{Connection, OptionalExtension, params};
use serde::{Deserialize, Serialize};

use super::keyed::Keyed;
use super::{Store, from_json, timestamp, to_json};
use crate::conditions::Health;
use crate::model::{Condition, Notice, Placement};

/// A copy that should be gone but could not be retired (its provider did not answer).
/// Retried until it succeeds, so a provider that comes back does not keep serving a
/// stale copy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Orphan {
    /// The provider holding it.
    pub provider: String,
    /// The copy.
    pub deployment: DeploymentRef,
    /// Why it is orphaned (the last retire error).
    pub reason: String,
    /// When it was recorded.
    pub at: Timestamp,
}

/// A provider's last known condition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConditionRecord {
    /// The provider.
    pub provider: String,
    /// Its condition.
    pub condition: Condition,
    /// When it was derived.
    pub at: Timestamp,
}

/// A notice or fence, with its life span.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct NoticeRecord {
    /// Its id, for clearing it.
    pub id: i64,
    /// The notice.
    pub notice: Notice,
    /// When it was raised.
    pub raised: Timestamp,
    /// When it was lifted, if it was.
    pub cleared: Option<Timestamp>,
}

/// A stored drill report (free-form JSON, written by the drill).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DrillRecord {
    /// Its id.
    pub id: i64,
    /// When it was stored.
    pub at: Timestamp,
    /// The report.
    pub record: serde_json::Value,
}

pub(super) fn upsert_placement(conn: &Connection, p: &Placement) -> anyhow::Result<()> {
    conn.execute(
        "INSERT OR REPLACE INTO placements (workload, provider, generation, deployment, since)
         VALUES (?1, ?2, ?3, ?4, ?5)",
        params![
            p.workload,
            p.provider,
            i64::try_from(p.generation.0).context("generation out of range")?,
            p.deployment.as_ref().map(to_json).transpose()?,
            p.since.to_string(),
        ],
    )
    .with_context(|| format!("writing the placement of {}", p.workload))?;
    Ok(())
}

type PlacementRow = (String, String, i64, Option<String>, String);

fn placement_from(row: PlacementRow) -> anyhow::Result<Placement> {
    let (workload, provider, generation, deployment, since) = row;
    Ok(Placement {
        workload,
        provider,
        generation: Generation(u64::try_from(generation).context("negative generation")?),
        deployment: deployment.as_deref().map(from_json).transpose()?,
        since: timestamp(&since)?,
    })
}

fn placement_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<PlacementRow> {
    Ok((
        row.get(0)?,
        row.get(1)?,
        row.get(2)?,
        row.get(3)?,
        row.get(4)?,
    ))
}

const PROBE_MEMORY: Keyed = Keyed {
    table: "probe_memory",
    key: "provider",
    value: "health",
    what: "the probe memory",
};

impl Store {
    /// Sets where a workload runs (first placements, failback).
    pub fn put_placement(&self, placement: &Placement) -> anyhow::Result<()> {
        upsert_placement(&self.conn(), placement)
    }

    /// Where `workload` runs, if it is placed.
    pub fn placement(&self, workload: &str) -> anyhow::Result<Option<Placement>> {
        let row = self
            .conn()
            .query_row(
                "SELECT workload, provider, generation, deployment, since
                 FROM placements WHERE workload = ?1",
                [workload],
                placement_row,
            )
            .optional()?;
        row.map(placement_from).transpose()
    }

    /// Every placement, by workload name.
    pub fn placements(&self) -> anyhow::Result<BTreeMap<String, Placement>> {
        let conn = self.conn();
        let mut stmt = conn.prepare(
            "SELECT workload, provider, generation, deployment, since
             FROM placements ORDER BY workload",
        )?;
        let rows = stmt.query_map([], placement_row)?;
        rows.map(|row| {
            let p = placement_from(row?)?;
            Ok((p.workload.clone(), p))
        })
        .collect()
    }

    /// Forgets a workload's placement (a drill cleaning up after itself).
    pub fn remove_placement(&self, workload: &str) -> anyhow::Result<()> {
        self.conn()
            .execute("DELETE FROM placements WHERE workload = ?1", [workload])?;
        Ok(())
    }

    /// Records a copy that could not be retired. Idempotent per (provider, handle).
    pub fn record_orphan(&self, orphan: &Orphan) -> anyhow::Result<()> {
        self.conn()
            .execute(
                "INSERT OR REPLACE INTO orphans (provider, handle, deployment, reason, at)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                params![
                    orphan.provider,
                    orphan.deployment.handle,
                    to_json(&orphan.deployment)?,
                    orphan.reason,
                    orphan.at.to_string()
                ],
            )
            .with_context(|| format!("recording orphan {}", orphan.deployment.handle))?;
        Ok(())
    }

    /// Every orphan, by provider then handle.
    pub fn orphans(&self) -> anyhow::Result<Vec<Orphan>> {
        let conn = self.conn();
        let mut stmt = conn.prepare(
            "SELECT provider, deployment, reason, at FROM orphans ORDER BY provider, handle",
        )?;
        let rows = stmt.query_map([], |row| {
            Ok((
                row.get::<_, String>(0)?,
                row.get::<_, String>(1)?,
                row.get::<_, String>(2)?,
                row.get::<_, String>(3)?,
            ))
        })?;
        rows.map(|row| {
            let (provider, deployment, reason, at) = row?;
            Ok(Orphan {
                provider,
                deployment: from_json(&deployment)?,
                reason,
                at: timestamp(&at)?,
            })
        })
        .collect()
    }

    /// Forgets an orphan once it is retired.
    pub fn remove_orphan(&self, provider: &str, handle: &str) -> anyhow::Result<()> {
        self.conn().execute(
            "DELETE FROM orphans WHERE provider = ?1 AND handle = ?2",
            params![provider, handle],
        )?;
        Ok(())
    }

    /// Stores a provider's current condition, replacing the previous one.
    pub fn put_condition(
        &self,
        provider: &str,
        condition: &Condition,
        at: Timestamp,
    ) -> anyhow::Result<()> {
        self.conn()
            .execute(
                "INSERT OR REPLACE INTO conditions (provider, condition, at) VALUES (?1, ?2, ?3)",
                params![provider, to_json(condition)?, at.to_string()],
            )
            .with_context(|| format!("writing the condition of {provider}"))?;
        Ok(())
    }

    /// Every provider's last stored condition.
    pub fn conditions(&self) -> anyhow::Result<BTreeMap<String, ConditionRecord>> {
        let conn = self.conn();
        let mut stmt =
            conn.prepare("SELECT provider, condition, at FROM conditions ORDER BY provider")?;
        let rows = stmt.query_map([], |row| {
            Ok((
                row.get::<_, String>(0)?,
                row.get::<_, String>(1)?,
                row.get::<_, String>(2)?,
            ))
        })?;
        rows.map(|row| {
            let (provider, condition, at) = row?;
            let record = ConditionRecord {
                provider: provider.clone(),
                condition: from_json(&condition)?,
                at: timestamp(&at)?,
            };
            Ok((provider, record))
        })
        .collect()
    }

    /// Stores every provider's probe memory, in one transaction (one write a round).
    pub fn put_probe_memory(
        &self,
        memory: &BTreeMap<String, Health>,
        at: Timestamp,
    ) -> anyhow::Result<()> {
        self.put_keyed(PROBE_MEMORY, memory, &Default::default(), at, false)
    }

    /// Every provider's stored probe memory.
    pub fn probe_memory(&self) -> anyhow::Result<BTreeMap<String, Health>> {
        self.keyed(PROBE_MEMORY)
    }

    /// Stores a notice or fence and returns its id.
    pub fn add_notice(&self, notice: &Notice, raised: Timestamp) -> anyhow::Result<i64> {
        let conn = self.conn();
        conn.execute(
            "INSERT INTO notices (notice, raised, cleared) VALUES (?1, ?2, NULL)",
            params![to_json(notice)?, raised.to_string()],
        )
        .context("recording a notice")?;
        Ok(conn.last_insert_rowid())
    }

    /// Lifts a notice. Lifting one twice keeps the first time.
    pub fn clear_notice(&self, id: i64, at: Timestamp) -> anyhow::Result<()> {
        self.conn().execute(
            "UPDATE notices SET cleared = ?2 WHERE id = ?1 AND cleared IS NULL",
            params![id, at.to_string()],
        )?;
        Ok(())
    }

    /// Every notice, oldest first; `active_only` skips lifted ones.
    pub fn notices(&self, active_only: bool) -> anyhow::Result<Vec<NoticeRecord>> {
        let conn = self.conn();
        let filter = if active_only {
            "WHERE cleared IS NULL"
        } else {
            ""
        };
        let mut stmt = conn.prepare(&format!(
            "SELECT id, notice, raised, cleared FROM notices {filter} ORDER BY id"
        ))?;
        let rows = stmt.query_map([], |row| {
            Ok((
                row.get::<_, i64>(0)?,
                row.get::<_, String>(1)?,
                row.get::<_, String>(2)?,
                row.get::<_, Option<String>>(3)?,
            ))
        })?;
        rows.map(|row| {
            let (id, notice, raised, cleared) = row?;
            Ok(NoticeRecord {
                id,
                notice: from_json(&notice)?,
                raised: timestamp(&raised)?,
                cleared: cleared.as_deref().map(timestamp).transpose()?,
            })
        })
        .collect()
    }

    /// Stores a drill report and returns its id.
    pub fn put_drill<T: Serialize>(&self, record: &T, at: Timestamp) -> anyhow::Result<i64> {
        let conn = self.conn();
        conn.execute(
            "INSERT INTO drills (at, record) VALUES (?1, ?2)",
            params![at.to_string(), to_json(record)?],
        )
        .context("recording a drill")?;
        Ok(conn.last_insert_rowid())
    }

    /// Every drill record, oldest first.
    pub fn drills(&self) -> anyhow::Result<Vec<DrillRecord>> {
        self.drills_where("", [])
    }

    /// The latest `n` drill records, oldest first.
    pub fn latest_drills(&self, n: u32) -> anyhow::Result<Vec<DrillRecord>> {
        self.drills_where(
            "WHERE id IN (SELECT id FROM drills ORDER BY id DESC LIMIT ?1)",
            params![n],
        )
    }

    fn drills_where(
        &self,
        filter: &str,
        args: impl rusqlite::Params,
    ) -> anyhow::Result<Vec<DrillRecord>> {
        let conn = self.conn();
        let mut stmt = conn.prepare(&format!(
            "SELECT id, at, record FROM drills {filter} ORDER BY id"
        ))?;
        let rows = stmt.query_map(args, |row| {
            Ok((
                row.get::<_, i64>(0)?,
                row.get::<_, String>(1)?,
                row.get::<_, String>(2)?,
            ))
        })?;
        rows.map(|row| {
            let (id, at, record) = row?;
            Ok(DrillRecord {
                id,
                at: timestamp(&at)?,
                record: from_json(&record)?,
            })
        })
        .collect()
    }
}
