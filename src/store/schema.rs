//! Schema migrations, versioned with `PRAGMA user_version`.
//!
//! Each entry of [`MIGRATIONS`] moves the schema one version up and runs in one
//! transaction with the version bump, so a crash mid-migration leaves the old version.
//! Append new migrations; never edit a released one.

use anyhow::{Context, bail};
use rusqlite::Connection;

const MIGRATIONS: &[&str] = &[
    // 1: the first schema.
    "CREATE TABLE placements (
         workload   TEXT PRIMARY KEY,
         provider   TEXT NOT NULL,
         generation INTEGER NOT NULL,
         deployment TEXT,            -- DeploymentRef as JSON
         since      TEXT NOT NULL
     );
     CREATE TABLE evacuations (
         id       TEXT PRIMARY KEY,
         plan     TEXT NOT NULL,     -- Plan as JSON
         sources  TEXT NOT NULL,     -- workload -> Placement before the move, JSON
         shadow   INTEGER NOT NULL,
         started  TEXT NOT NULL,
         finished TEXT
     );
     CREATE TABLE journal (
         id         INTEGER PRIMARY KEY AUTOINCREMENT,
         evacuation TEXT NOT NULL REFERENCES evacuations(id),
         workload   TEXT NOT NULL,
         step       TEXT NOT NULL,
         attempt    INTEGER NOT NULL,
         status     TEXT NOT NULL,
         target     TEXT NOT NULL,
         generation INTEGER NOT NULL,
         deployment TEXT,
         detail     TEXT,
         at         TEXT NOT NULL
     );
     CREATE INDEX journal_by_move ON journal(evacuation, workload, id);
     CREATE TABLE outcomes (
         evacuation TEXT NOT NULL REFERENCES evacuations(id),
         workload   TEXT NOT NULL,
         outcome    TEXT NOT NULL,   -- Outcome as JSON
         at         TEXT NOT NULL,
         PRIMARY KEY (evacuation, workload)
     );
     CREATE TABLE orphans (
         provider   TEXT NOT NULL,
         handle     TEXT NOT NULL,
         deployment TEXT NOT NULL,
         reason     TEXT NOT NULL,
         at         TEXT NOT NULL,
         PRIMARY KEY (provider, handle)
     );
     CREATE TABLE conditions (
         provider  TEXT PRIMARY KEY,
         condition TEXT NOT NULL,    -- Condition as JSON
         at        TEXT NOT NULL
     );
     CREATE TABLE notices (
         id      INTEGER PRIMARY KEY AUTOINCREMENT,
         notice  TEXT NOT NULL,      -- Notice as JSON
         raised  TEXT NOT NULL,
         cleared TEXT
     );
     CREATE TABLE drills (
         id     INTEGER PRIMARY KEY AUTOINCREMENT,
         at     TEXT NOT NULL,
         record TEXT NOT NULL        -- the drill report as JSON
     );",
    // 2: drill runs, recorded with their owner before a drill creates anything, so the
    // copies of a drill that died can be found and removed.
    "CREATE TABLE drill_runs (
         id       TEXT PRIMARY KEY,
         owner    TEXT NOT NULL,     -- Owner as JSON
         mode     TEXT NOT NULL,
         lose     TEXT NOT NULL,
         pid      INTEGER NOT NULL,
         started  TEXT NOT NULL,
         cleaned  TEXT               -- set once nothing the drill made is left
     );",
    // 3: operators' standing intents (the kill switch), kept across restarts so a
    // paused daemon that is restarted stays paused.
    "CREATE TABLE intents (
         name  TEXT PRIMARY KEY,
         value TEXT NOT NULL,        -- the intent as JSON
         at    TEXT NOT NULL
     );",
    // 4: each provider's probe memory (confirmation streak, grace timer), so that a
    // restarted daemon goes on counting where the last one stopped.
    "CREATE TABLE probe_memory (
         provider TEXT PRIMARY KEY,
         health   TEXT NOT NULL,     -- conditions::Health as JSON
         at       TEXT NOT NULL
     );",
    // 5: the watch over each workload's live copy (last health look, unhealthy since,
    // replacements), and the running daemon's pid, start and last round, for `status`.
    "CREATE TABLE copy_watches (
         workload TEXT PRIMARY KEY,
         watch    TEXT NOT NULL,     -- watch::CopyWatch as JSON
         at       TEXT NOT NULL
     );
     CREATE TABLE daemon (
         id         INTEGER PRIMARY KEY CHECK (id = 1),
         pid        INTEGER NOT NULL,
         started    TEXT NOT NULL,
         last_round TEXT
     );",
    // 6: each dataset as the last round saw it (primary, standby, lag), for `status`.
    "CREATE TABLE datasets (
         workload TEXT PRIMARY KEY,
         state    TEXT NOT NULL,     -- dataset::DatasetState as JSON
         at       TEXT NOT NULL
     );",
];

/// The schema version this build writes.
pub const VERSION: i64 = MIGRATIONS.len() as i64;

fn version(conn: &Connection) -> anyhow::Result<i64> {
    conn.pragma_query_value(None, "user_version", |row| row.get(0))
        .context("reading the schema version")
}

/// Brings the schema up to [`VERSION`]; refuses a database from a newer lifeboat.
pub fn migrate(conn: &mut Connection) -> anyhow::Result<()> {
    let current = version(conn)?;
    if current > VERSION {
        bail!(
            "state schema version {current} is newer than this lifeboat understands ({VERSION}); upgrade lifeboat"
        );
    }
    for (index, sql) in MIGRATIONS.iter().enumerate().skip(current as usize) {
        let to = index as i64 + 1;
        let tx = conn.transaction()?;
        tx.execute_batch(sql)
            .with_context(|| format!("migrating the schema to version {to}"))?;
        tx.pragma_update(None, "user_version", to)?;
        tx.commit()?;
    }
    Ok(())
}

/// Checks that a reader understands the schema it opened.
pub fn check_readable(conn: &Connection) -> anyhow::Result<()> {
    match version(conn)? {
        0 => bail!("the state database is empty (never initialised by a writer)"),
        v if v > VERSION => {
            bail!("state schema version {v} is newer than this lifeboat understands ({VERSION})")
        }
        _ => Ok(()),
    }
}
