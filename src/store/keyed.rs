//! Tables of one JSON value per name (a provider, a workload), written whole once a
//! round: the probe memory, the copy watches, the datasets. One piece of code for the
//! reading and the writing of all of them.

use std::collections::{BTreeMap, BTreeSet};

use anyhow::Context;
use jiff::Timestamp;
use rusqlite::{OptionalExtension, params};
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
    /// go (the table says exactly what the round saw), except those of `untouched`,
    /// which stay as they are (another writer owns them for now).
    pub(super) fn put_keyed<T: Serialize>(
        &self,
        t: Keyed,
        rows: &BTreeMap<String, T>,
        untouched: &BTreeSet<String>,
        at: Timestamp,
        replace: bool,
    ) -> anyhow::Result<()> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        if replace {
            let mut stmt = tx.prepare(&format!("SELECT {} FROM {}", t.key, t.table))?;
            let names: Vec<String> = stmt
                .query_map([], |row| row.get(0))?
                .collect::<Result<_, _>>()?;
            drop(stmt);
            let delete = format!("DELETE FROM {} WHERE {} = ?1", t.table, t.key);
            for name in names {
                if !rows.contains_key(&name) && !untouched.contains(&name) {
                    tx.execute(&delete, params![name])?;
                }
            }
        }
        let insert = format!(
            "INSERT OR REPLACE INTO {} ({}, {}, at) VALUES (?1, ?2, ?3)",
            t.table, t.key, t.value
        );
        for (name, value) in rows.iter().filter(|(name, _)| !untouched.contains(*name)) {
            tx.execute(&insert, params![name, to_json(value)?, at.to_string()])?;
        }
        tx.commit().with_context(|| format!("storing {}", t.what))
    }

    /// Changes the row of `name` in one transaction: `change` gets its value (`None`
    /// when there is none) and returns the new one (`None`: leave it).
    pub(super) fn update_keyed<T: Serialize + DeserializeOwned>(
        &self,
        t: Keyed,
        name: &str,
        at: Timestamp,
        change: impl FnOnce(Option<T>) -> Option<T>,
    ) -> anyhow::Result<()> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let select = format!("SELECT {} FROM {} WHERE {} = ?1", t.value, t.table, t.key);
        let text: Option<String> = tx
            .query_row(&select, params![name], |row| row.get(0))
            .optional()?;
        let value = text.map(|text| from_json(&text)).transpose()?;
        if let Some(value) = change(value) {
            let insert = format!(
                "INSERT OR REPLACE INTO {} ({}, {}, at) VALUES (?1, ?2, ?3)",
                t.table, t.key, t.value
            );
            tx.execute(&insert, params![name, to_json(&value)?, at.to_string()])?;
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
