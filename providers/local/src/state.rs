//! One small JSON file per deployment, so the copies this provider started can be
//! found again by a controller that restarted (or by a second controller process, such
//! as `lifeboat status` next to a running daemon).
//!
//! A record is written atomically (temp file, fsync, rename), so a crash leaves either
//! the old record or the new one, never half of one.

use std::io::{self, Write};
use std::path::{Path, PathBuf};

use lifeboat_provider::{Endpoint, Generation, HealthCheck, Owner};
use serde::{Deserialize, Serialize};

/// What this provider remembers about one running copy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    /// The workload name.
    pub workload: String,
    /// The generation the copy was started with.
    pub generation: Generation,
    /// The process id; also the process group id (each copy leads its own group).
    pub pid: u32,
    /// The kernel's start time of the process (clock ticks since boot, from
    /// `/proc/PID/stat`). A pid with another start time is someone else's process
    /// that reused the number.
    pub proc_start: u64,
    /// The port handed to the copy as `PORT`.
    pub port: u16,
    /// The address the copy is reached at.
    pub host: String,
    /// Wall-clock start time, milliseconds since the Unix epoch (for humans).
    pub started_unix_ms: u64,
    /// The command line that was started (for humans).
    pub command: Vec<String>,
    /// The copy's stdout/stderr.
    pub log: PathBuf,
    /// The workload's health check, kept here because `inspect` only gets the handle.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health: Option<HealthCheck>,
    /// Who started the copy; `None` in records written before owners existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<Owner>,
}

impl Record {
    /// Where the copy serves.
    pub fn endpoint(&self) -> Endpoint {
        Endpoint {
            host: self.host.clone(),
            port: self.port,
        }
    }
}

/// The name of a deployment: its handle and the stem of its files. Workload names are
/// checked by [`check_name`] first, so this is always a safe file name. The owner's
/// discriminator keeps a drill's copy of (workload, generation) apart from production's.
pub fn key(workload: &str, generation: Generation, owner: &Owner) -> String {
    format!("{workload}-g{generation}-{}", owner.discriminator())
}

/// Whether `name` is safe to use as part of a file name: 1–128 characters from
/// `[A-Za-z0-9._-]`, not starting with a dot. Everything that reaches the file system
/// (workload names, handles given back by the controller) passes through here.
pub fn check_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 128
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// The state and log files of one provider.
#[derive(Debug, Clone)]
pub struct StateDir {
    dir: PathBuf,
}

impl StateDir {
    /// Uses (and creates) `dir`.
    pub fn open(dir: PathBuf) -> io::Result<Self> {
        std::fs::create_dir_all(&dir)?;
        Ok(StateDir { dir })
    }

    /// The folder.
    pub fn path(&self) -> &Path {
        &self.dir
    }

    fn record_path(&self, key: &str) -> PathBuf {
        self.dir.join(format!("{key}.json"))
    }

    /// The folder that is the deployment's own (see `labels::COPY_DIR_ENV`).
    pub fn copy_dir(&self, key: &str) -> PathBuf {
        self.dir.join(format!("{key}.d"))
    }

    /// The log file of a deployment.
    pub fn log_path(&self, key: &str) -> PathBuf {
        self.dir.join(format!("{key}.log"))
    }

    /// The record of `key`, or `None` when there is none.
    pub fn read(&self, key: &str) -> io::Result<Option<Record>> {
        match std::fs::read(self.record_path(key)) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Writes the record of `key` atomically.
    pub fn write(&self, key: &str, record: &Record) -> io::Result<()> {
        let bytes = serde_json::to_vec_pretty(record).map_err(io::Error::other)?;
        self.write_atomic(&self.record_path(key), &bytes)
    }

    fn write_atomic(&self, path: &Path, bytes: &[u8]) -> io::Result<()> {
        let tmp = path.with_extension(format!("tmp.{}", std::process::id()));
        let result = (|| {
            let mut f = std::fs::File::create(&tmp)?;
            f.write_all(bytes)?;
            f.sync_all()?;
            std::fs::rename(&tmp, path)?;
            // The rename is durable only once the folder itself is synced.
            std::fs::File::open(&self.dir)?.sync_all()
        })();
        if result.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        result
    }

    /// Removes the record and the log of `key`; missing files are fine.
    pub fn remove(&self, key: &str) -> io::Result<()> {
        for path in [self.record_path(key), self.log_path(key)] {
            match std::fs::remove_file(&path) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
                _ => {}
            }
        }
        match std::fs::remove_dir_all(self.copy_dir(key)) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }

    /// Every record, sorted by key. A file that does not parse is reported by name
    /// rather than skipped, so a damaged record never hides a running copy.
    pub fn list(&self) -> io::Result<Vec<(String, Record)>> {
        let mut out = Vec::new();
        for entry in std::fs::read_dir(&self.dir)? {
            let name = entry?.file_name();
            let Some(key) = name.to_str().and_then(|n| n.strip_suffix(".json")) else {
                continue;
            };
            if !check_name(key) {
                continue;
            }
            let record = self
                .read(key)
                .map_err(|e| io::Error::new(e.kind(), format!("state file {key}.json: {e}")))?;
            if let Some(record) = record {
                out.push((key.to_owned(), record));
            }
        }
        out.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(out)
    }

    /// Creates, writes, syncs and removes a scratch file: what `probe` uses to tell
    /// that this provider can still record what it starts.
    pub fn check_writable(&self) -> io::Result<()> {
        let path = self.dir.join(format!(".probe.{}", std::process::id()));
        self.write_atomic(&path, b"ok")?;
        std::fs::remove_file(&path)
    }

    /// The last `max_bytes` of a deployment's log, from a line start where possible.
    pub fn log_tail(&self, key: &str, max_bytes: usize) -> String {
        let Ok(bytes) = std::fs::read(self.log_path(key)) else {
            return String::new();
        };
        let start = bytes.len().saturating_sub(max_bytes);
        let mut tail = &bytes[start..];
        if start > 0
            && let Some(nl) = tail.iter().position(|b| *b == b'\n')
        {
            tail = &tail[nl + 1..];
        }
        String::from_utf8_lossy(tail).trim_end().to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(workload: &str, generation: u64) -> Record {
        Record {
            workload: workload.into(),
            generation: Generation(generation),
            pid: 42,
            proc_start: 7,
            port: 20000,
            host: "127.0.0.1".into(),
            started_unix_ms: 1,
            command: vec!["true".into()],
            log: PathBuf::from("x.log"),
            health: Some(HealthCheck::Tcp),
            owner: None,
        }
    }

    #[test]
    fn names_that_could_escape_the_folder_are_refused() {
        for bad in ["", ".", "..", "../x", "a/b", ".hidden", "a b", "ä"] {
            assert!(!check_name(bad), "{bad:?}");
        }
        for good in ["api", "db-1", "web.v2", "A_b"] {
            assert!(check_name(good), "{good:?}");
        }
        assert!(!check_name(&"a".repeat(129)));
    }

    #[test]
    fn records_round_trip_list_and_remove() {
        let dir = tempfile::tempdir().unwrap();
        let state = StateDir::open(dir.path().join("p")).unwrap();
        assert_eq!(state.read("api-g1").unwrap(), None);
        state.write("api-g1", &record("api", 1)).unwrap();
        state.write("db-g2", &record("db", 2)).unwrap();
        assert_eq!(state.read("api-g1").unwrap(), Some(record("api", 1)));
        let keys: Vec<_> = state.list().unwrap().into_iter().map(|(k, _)| k).collect();
        assert_eq!(keys, ["api-g1", "db-g2"]);
        state.remove("api-g1").unwrap();
        state.remove("api-g1").unwrap();
        assert_eq!(state.list().unwrap().len(), 1);
        state.check_writable().unwrap();
        assert_eq!(state.list().unwrap().len(), 1);
    }

    #[test]
    fn a_damaged_record_is_an_error_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let state = StateDir::open(dir.path().to_owned()).unwrap();
        std::fs::write(dir.path().join("api-g1.json"), "{").unwrap();
        let e = state.list().unwrap_err().to_string();
        assert!(e.contains("api-g1.json"), "{e}");
    }

    #[test]
    fn log_tail_keeps_whole_lines() {
        let dir = tempfile::tempdir().unwrap();
        let state = StateDir::open(dir.path().to_owned()).unwrap();
        assert_eq!(state.log_tail("w-g1", 10), "");
        std::fs::write(state.log_path("w-g1"), "first line\nsecond\nthird\n").unwrap();
        assert_eq!(state.log_tail("w-g1", 8), "third");
        assert_eq!(state.log_tail("w-g1", 1000), "first line\nsecond\nthird");
    }
}
