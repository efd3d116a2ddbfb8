//! Operators' standing intents: today the kill switch. Stored, not only held in memory,
//! because "paused" must survive the restart an operator might try next.

use anyhow::Context;
use jiff::Timestamp;
use rusqlite::{OptionalExtension, params};
use serde::{Deserialize, Serialize};

use super::{Store, from_json, to_json};

/// The kill switch, thrown: while it is set the controller probes, decides and plans,
/// but starts no step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Pause {
    /// Why, as the operator said it (shown on every surface).
    pub reason: String,
    /// When it was thrown.
    pub since: Timestamp,
}

const PAUSE: &str = "pause";

impl Store {
    /// Throws the kill switch. Pausing a paused controller keeps the first time and
    /// reason, so `status` says how long it has been paused.
    pub fn pause(&self, pause: &Pause) -> anyhow::Result<Pause> {
        let conn = self.conn();
        conn.execute(
            "INSERT INTO intents (name, value, at) VALUES (?1, ?2, ?3)
             ON CONFLICT (name) DO NOTHING",
            params![PAUSE, to_json(pause)?, pause.since.to_string()],
        )
        .context("recording the pause")?;
        drop(conn);
        Ok(self.paused()?.unwrap_or_else(|| pause.clone()))
    }

    /// Releases the kill switch; `true` when it was thrown.
    pub fn resume(&self) -> anyhow::Result<bool> {
        let changed = self
            .conn()
            .execute("DELETE FROM intents WHERE name = ?1", params![PAUSE])
            .context("lifting the pause")?;
        Ok(changed > 0)
    }

    /// The kill switch, when it is thrown.
    pub fn paused(&self) -> anyhow::Result<Option<Pause>> {
        let value: Option<String> = self
            .conn()
            .query_row(
                "SELECT value FROM intents WHERE name = ?1",
                params![PAUSE],
                |row| row.get(0),
            )
            .optional()
            .context("reading the pause")?;
        value.as_deref().map(from_json).transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pause_survives_reopening_and_keeps_its_first_reason() {
        let dir = tempfile::tempdir().unwrap();
        let first = Pause {
            reason: "vendor call at 14:00".into(),
            since: "2026-12-01T14:00:00Z".parse().unwrap(),
        };
        {
            let store = Store::open(dir.path()).unwrap();
            assert_eq!(store.paused().unwrap(), None);
            assert_eq!(store.pause(&first).unwrap(), first);
            let again = Pause {
                reason: "again".into(),
                since: "2026-12-01T15:00:00Z".parse().unwrap(),
            };
            assert_eq!(store.pause(&again).unwrap(), first);
        }
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(store.paused().unwrap(), Some(first));
        assert!(store.resume().unwrap());
        assert!(!store.resume().unwrap());
        assert_eq!(store.paused().unwrap(), None);
    }
}
