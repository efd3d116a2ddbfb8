//! Tables of one JSON value per name (a provider, a workload), written whole once a
//! round: the probe memory, the copy watches, the datasets. One piece of code for the
//! reading and the writing of all of them.

use std::collections::BTreeMap;

use anyhow::Context;
use jiff::Timestamp;
use rusqlite::params;
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::{Store, from_json, to_json};

/// One such table: `KEY TEXT PRIMARY KEY, VALUE TEXT NOT NULL, at TEXT NOT NULL`.
#[derive(Debug, Clone, Copy)]
pub(super) struct Keyed {
    pub table: &'static str,
    pub key: &'static str,
    pub value: &'static str,
    /// What the rows are, for errors (`the probe memory`).
    pub what: &'static str,
}

impl Store {
    /// Writes `rows` in one transaction; with `replace`, rows of names not in `rows`
    /// go (the table says exactly what the round saw).
    pub(super) fn put_keyed<T: Serialize>(
        &self,
        t: Keyed,
        rows: &BTreeMap<String, T>,
        at: Timestamp,
        replace: bool,
    ) -> anyhow::Result<()> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        if replace {
            tx.execute(&format!("DELETE FROM {}", t.table), [])?;
        }
        let insert = format!(
            "INSERT OR REPLACE INTO {} ({}, {}, at) VALUES (?1, ?2, ?3)",
            t.table, t.key, t.value
        );
        for (name, value) in rows {
            tx.execute(&insert, params![name, to_json(value)?, at.to_string()])?;
        }
        tx.commit().with_context(|| format!("storing {}", t.what))
    }

    /// Every row of the table, by name.
    pub(super) fn keyed<T: DeserializeOwned>(
        &self,
        t: Keyed,
    ) -> anyhow::Result<BTreeMap<String, T>> {
        let conn = self.conn();
        let mut stmt = conn.prepare(&format!("SELECT {}, {} FROM {}", t.key, t.value, t.table))?;
        let rows = stmt.query_map([], |row| {
            Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?))
        })?;
        rows.map(|row| {
            let (name, value) = row?;
            Ok((name, from_json(&value)?))
        })
        .collect::<anyhow::Result<_>>()
        .with_context(|| format!("reading {}", t.what))
    }
}
