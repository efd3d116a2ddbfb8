//! The state store: placements, the journal, orphans, provider conditions, notices,
//! drill records and the watch over workloads' copies, in one embedded SQLite database under the state directory.
//!
//! Why SQLite (through `rusqlite`, bundled so no system library is needed):
//! * **crash-safe**: in WAL mode with `synchronous = FULL` a committed transaction
//!   survives a crash or a power cut, and a half-written one is rolled back on open, so
//!   "journal before acting" holds after a `SIGKILL`;
//! * **readers while the daemon writes**: WAL lets `lifeboat status` read a consistent
//!   snapshot while `lifeboat run` keeps writing, without taking the writer's lock;
//! * **inspectable**: an operator can open `lifeboat.db` with the `sqlite3` CLI during
//!   an incident; every value is plain text or JSON of the model types.
//!
//! One writer at a time: [`Store::open`] takes an exclusive lock on `STATE_DIR/lock`
//! (released by the OS when the process dies, so a crash never leaves a stale lock);
//! [`Store::open_read_only`] takes none.
//!
//! Calls are blocking and guarded by a std `Mutex`, not run through `spawn_blocking`:
//! each is one small transaction (well under a millisecond, plus one fsync on commit).
//! The exception is the executor's journal, the one hot write path: its lines go
//! through [`Store::append`] and [`Store::append_cutover`], where a step that arrives
//! while another commits waits (without blocking a runtime worker) and its line goes
//! into the next transaction with every other one queued meanwhile (group commit, see
//! `group.rs`): many moves at once share fsyncs, and each step still goes on only once
//! its line is durable.

mod datasets;
mod drill_runs;
mod group;
mod intents;
mod journal;
mod keyed;
mod records;
mod schema;
mod watches;

pub use drill_runs::DrillRun;
pub use intents::Pause;
pub use journal::{Evacuation, JournalEntry, Outcome, Status};
pub use records::{ConditionRecord, DrillRecord, NoticeRecord, Orphan};
pub use watches::DaemonRecord;

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use anyhow::{Context, bail};
use rusqlite::{Connection, OpenFlags};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// The database file inside the state directory.
pub const DB_FILE: &str = "lifeboat.db";
/// The lock file inside the state directory.
pub const LOCK_FILE: &str = "lock";

/// A handle on the state database. Share it behind an `Arc`; all methods take `&self`.
#[derive(Debug)]
pub struct Store {
    conn: Arc<Mutex<Connection>>,
    /// Writes the executor's journal lines in shared transactions (writers only).
    committer: Option<group::Committer>,
    dir: PathBuf,
    /// Held for the life of a writer; the OS drops the lock with the process.
    _lock: Option<File>,
}

impl Store {
    /// Opens (creating if needed) the state in `state_dir` as its only writer, migrating
    /// the schema to the current version. Fails with a clear message when another
    /// process holds the state.
    pub fn open(state_dir: &Path) -> anyhow::Result<Store> {
        std::fs::create_dir_all(state_dir)
            .with_context(|| format!("creating state directory {}", state_dir.display()))?;
        let lock = take_lock(state_dir)?;
        let path = state_dir.join(DB_FILE);
        let mut conn =
            Connection::open(&path).with_context(|| format!("opening {}", path.display()))?;
        conn.pragma_update(None, "journal_mode", "wal")
            .and_then(|()| conn.pragma_update(None, "synchronous", "full"))
            .and_then(|()| conn.pragma_update(None, "foreign_keys", "on"))
            .with_context(|| format!("configuring {}", path.display()))?;
        schema::migrate(&mut conn).with_context(|| format!("migrating {}", path.display()))?;
        let conn = Arc::new(Mutex::new(conn));
        Ok(Store {
            committer: Some(group::Committer::new(conn.clone())),
            conn,
            dir: state_dir.to_owned(),
            _lock: Some(lock),
        })
    }

    /// Opens existing state for reading only (`lifeboat status`), without the writer's
    /// lock, while a daemon may be writing.
    pub fn open_read_only(state_dir: &Path) -> anyhow::Result<Store> {
        let path = state_dir.join(DB_FILE);
        if !path.exists() {
            bail!(
                "no lifeboat state at {} (has `lifeboat run` or a drill used it yet?)",
                state_dir.display()
            );
        }
        let conn = Connection::open_with_flags(
            &path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .with_context(|| format!("opening {} read-only", path.display()))?;
        // The writer may hold the database for the length of a commit.
        conn.busy_timeout(Duration::from_secs(5))?;
        schema::check_readable(&conn).with_context(|| format!("reading {}", path.display()))?;
        Ok(Store {
            conn: Arc::new(Mutex::new(conn)),
            committer: None,
            dir: state_dir.to_owned(),
            _lock: None,
        })
    }

    /// Fails when the store cannot take a write now (read-only, its disk gone, locked
    /// beyond the busy timeout): what `/readyz` asks before saying ready.
    pub fn check_writable(&self) -> anyhow::Result<()> {
        self.conn()
            .execute_batch("BEGIN IMMEDIATE; ROLLBACK;")
            .context("starting a write transaction")
    }

    /// The state directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The connection. A poisoned lock is still usable: SQLite's own transactions keep
    /// the data consistent whatever a panicking thread was doing.
    fn conn(&self) -> MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The pid of the process that is the writer of `state_dir` right now (a daemon, a
/// drill), or `None` when nobody is. Takes and drops the lock to find out, so it can
/// say `None` for a writer that starts a moment later.
pub fn writer_pid(state_dir: &Path) -> anyhow::Result<Option<String>> {
    let path = state_dir.join(LOCK_FILE);
    let mut file = match OpenOptions::new().read(true).open(&path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("opening {}", path.display())),
    };
    match file.try_lock_shared() {
        Ok(()) => Ok(None),
        Err(TryLockError::WouldBlock) => {
            let mut pid = String::new();
            let _ = file.read_to_string(&mut pid);
            let pid = pid.trim();
            Ok(Some(
                if pid.is_empty() { "unknown" } else { pid }.to_owned(),
            ))
        }
        Err(TryLockError::Error(e)) => {
            Err(e).with_context(|| format!("locking {}", path.display()))
        }
    }
}

/// Takes the exclusive writer lock and records our pid in it for the next one to read.
fn take_lock(state_dir: &Path) -> anyhow::Result<File> {
    let path = state_dir.join(LOCK_FILE);
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .with_context(|| format!("opening lock file {}", path.display()))?;
    match file.try_lock() {
        Ok(()) => {}
        Err(TryLockError::WouldBlock) => {
            let mut pid = String::new();
            let _ = file.read_to_string(&mut pid);
            let pid = pid.trim();
            let pid = if pid.is_empty() { "unknown" } else { pid };
            return Err(StateLocked {
                pid: pid.to_owned(),
                dir: state_dir.to_owned(),
            }
            .into());
        }
        Err(TryLockError::Error(e)) => {
            return Err(e).with_context(|| format!("locking {}", path.display()));
        }
    }
    file.set_len(0)
        .and_then(|()| file.rewind())
        .and_then(|()| writeln!(file, "{}", std::process::id()))
        .with_context(|| format!("writing pid to {}", path.display()))?;
    Ok(file)
}

/// Another process is the writer of a state folder (a daemon, or a drill).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("another lifeboat process (pid {pid}) holds {}; stop it first", dir.display())]
pub struct StateLocked {
    /// The holder's pid as it wrote it in the lock file (`unknown` when unreadable).
    pub pid: String,
    /// The state folder.
    pub dir: PathBuf,
}

/// Whether `error` (from [`Store::open`]) says another process holds the state.
pub fn is_locked(error: &anyhow::Error) -> bool {
    error.downcast_ref::<StateLocked>().is_some()
}

/// The stable text of a kebab/snake-case enum, as serde writes it.
fn enum_text<T: Serialize>(value: &T) -> anyhow::Result<String> {
    match serde_json::to_value(value)? {
        serde_json::Value::String(s) => Ok(s),
        other => bail!("expected a plain enum, got {other}"),
    }
}

/// The enum back from its text.
fn enum_from<T: DeserializeOwned>(text: &str) -> anyhow::Result<T> {
    serde_json::from_value(serde_json::Value::String(text.to_owned()))
        .with_context(|| format!("unknown value {text:?} in the store"))
}

fn to_json<T: Serialize>(value: &T) -> anyhow::Result<String> {
    serde_json::to_string(value).context("serialising a store record")
}

fn from_json<T: DeserializeOwned>(text: &str) -> anyhow::Result<T> {
    serde_json::from_str(text).with_context(|| format!("reading a store record: {text}"))
}

fn timestamp(text: &str) -> anyhow::Result<jiff::Timestamp> {
    text.parse()
        .with_context(|| format!("bad timestamp {text:?} in the store"))
}

#[cfg(test)]
mod tests;
