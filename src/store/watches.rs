//! The watch over each workload's live copy, and the daemon's own record (pid, start,
//! last round): what `lifeboat status` reads to say how the copies are and whether a
//! daemon is watching at all.

use std::collections::BTreeMap;

use anyhow::Context;
use jiff::Timestamp;
use rusqlite::{OptionalExtension, params};
use serde::{Deserialize, Serialize};

use super::keyed::Keyed;
use super::{Store, timestamp};
use crate::watch::CopyWatch;

/// The daemon that last ran on this state folder.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DaemonRecord {
    /// Its process id.
    pub pid: u32,
    /// When it started.
    pub started: Timestamp,
    /// When it last finished a round (probe, decide, plan).
    pub last_round: Option<Timestamp>,
}

const WATCHES: Keyed = Keyed {
    table: "copy_watches",
    key: "workload",
    value: "watch",
    what: "the workload watches",
};

impl Store {
    /// Stores the watches, in one transaction (one write a round).
    pub fn put_copy_watches(
        &self,
        watches: &BTreeMap<String, CopyWatch>,
        at: Timestamp,
    ) -> anyhow::Result<()> {
        self.put_keyed(WATCHES, watches, &Default::default(), at, true)
    }

    /// Every workload's stored watch.
    pub fn copy_watches(&self) -> anyhow::Result<BTreeMap<String, CopyWatch>> {
        self.keyed(WATCHES)
    }

    /// A daemon starts on this state folder.
    pub fn daemon_started(&self, pid: u32, at: Timestamp) -> anyhow::Result<()> {
        self.conn()
            .execute(
                "INSERT OR REPLACE INTO daemon (id, pid, started, last_round) VALUES (1, ?1, ?2, NULL)",
                params![pid, at.to_string()],
            )
            .context("recording the daemon's start")?;
        Ok(())
    }

    /// The daemon finished a round.
    pub fn daemon_round(&self, at: Timestamp) -> anyhow::Result<()> {
        self.conn()
            .execute(
                "UPDATE daemon SET last_round = ?1 WHERE id = 1",
                params![at.to_string()],
            )
            .context("recording the daemon's round")?;
        Ok(())
    }

    /// The daemon that last ran here, if one ever did (it may have stopped since: the
    /// state folder's lock says whether it runs).
    pub fn daemon(&self) -> anyhow::Result<Option<DaemonRecord>> {
        let row: Option<(u32, String, Option<String>)> = self
            .conn()
            .query_row(
                "SELECT pid, started, last_round FROM daemon WHERE id = 1",
                [],
                |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)),
            )
            .optional()
            .context("reading the daemon record")?;
        row.map(|(pid, started, last_round)| {
            Ok(DaemonRecord {
                pid,
                started: timestamp(&started)?,
                last_round: last_round.as_deref().map(timestamp).transpose()?,
            })
        })
        .transpose()
    }
}
