//! The contract between lifeboat's controller and a dataset's replication method.
//!
//! A dataset is the data a stateful workload serves (a PostgreSQL cluster, say). Its
//! primary runs as the workload's copy; a warm standby runs as a second copy at another
//! vendor, kept current by the method. The controller moves processes; a method is what
//! it asks about the data: which copy is the primary, how far behind a standby is, and,
//! when the primary's vendor is lost, to promote the standby and to fence the old
//! primary so it never accepts another write.
//!
//! Methods live in their own crates (`datasets/postgres`), as provider adapters do, so
//! another database is added the same way. The promises every method keeps:
//!
//! * **Reads are reads.** [`Replication::role`], [`Replication::lag`] and
//!   [`Replication::position`] change nothing; the controller calls them every round.
//! * **Promotion is idempotent.** Promoting a member that already is a primary
//!   succeeds and says so, so a controller killed mid-promotion can simply ask again.
//! * **A fence holds.** After [`Replication::fence`] succeeds, no client of the member
//!   can commit a write there, also one connected before; fencing a fenced member
//!   succeeds.
//! * **Errors are classified** with the adapters' [`ErrorClass`], so the controller
//!   never parses messages; credentials never appear in a message.

#![deny(missing_docs)]

use std::fmt;

use async_trait::async_trait;
pub use lifeboat_provider::{Endpoint, ErrorClass};
use serde::{Deserialize, Serialize};

/// The environment variable that tells a new member of a dataset to start as a standby
/// of the primary at this `host:port` (seeded from it, then streaming from it). A member
/// started without it is a dataset's first primary.
pub const PRIMARY_ENV: &str = "LIFEBOAT_PRIMARY";

/// The environment variable naming the stream a standby follows the primary under (the
/// name [`Replication::lag`] and [`Replication::require_standby`] take).
pub const STANDBY_NAME_ENV: &str = "LIFEBOAT_STANDBY_NAME";

/// The environment variable naming a member uniquely (workload, generation and owner):
/// the name of its data folder, so members of two drills, or of a drill and its
/// installation, never share one.
pub const MEMBER_ENV: &str = "LIFEBOAT_MEMBER";

/// What a member of a dataset is now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// It accepts writes.
    Primary,
    /// It replays a primary's changes and accepts no write.
    Standby,
    /// It was fenced: it accepts no write, and replays nothing.
    Fenced,
}

/// How far a standby is behind its primary, as the primary sees it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Lag {
    /// Bytes of change the standby has not replayed yet.
    pub bytes: u64,
    /// How long ago the newest change the standby replayed was committed at the
    /// primary; zero when it is caught up.
    pub seconds: f64,
    /// The standby confirms commits before the primary acknowledges them (synchronous
    /// replication): a failover to it loses no acknowledged write.
    pub synchronous: bool,
}

/// A point in a member's history of changes (PostgreSQL: a WAL position), comparable
/// between the members of one dataset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Position(pub u64);

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // PostgreSQL's own notation, which operators know from its logs.
        write!(f, "{:X}/{:X}", self.0 >> 32, self.0 & 0xFFFF_FFFF)
    }
}

/// How a promotion went.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Promoted {
    /// The standby is now the primary, from `at`.
    Now {
        /// The position it was promoted at: everything before it is kept.
        at: Position,
    },
    /// It was the primary already (an earlier promotion, asked again).
    Already,
}

/// A failed call of a method: what kind of failure, and what happened, for humans.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message} ({class})")]
pub struct DatasetError {
    /// What the controller does about it.
    pub class: ErrorClass,
    /// What happened. Never holds a credential.
    pub message: String,
}

impl DatasetError {
    /// An error of `class`.
    pub fn new(class: ErrorClass, message: impl Into<String>) -> DatasetError {
        DatasetError {
            class,
            message: message.into(),
        }
    }
}

/// A replication method: what the controller asks of a dataset's members, each reached
/// at its copy's endpoint.
#[async_trait]
pub trait Replication: Send + Sync {
    /// The method's name as the config writes it (`postgres-streaming`).
    fn method(&self) -> &'static str;

    /// What `member` is now.
    async fn role(&self, member: &Endpoint) -> Result<Role, DatasetError>;

    /// How far the standby named `standby` is behind `primary`; `None` when it is not
    /// connected to the primary (not streaming: a signal in itself).
    async fn lag(&self, primary: &Endpoint, standby: &str) -> Result<Option<Lag>, DatasetError>;

    /// Where `member` is in the dataset's history: the last change it wrote (a
    /// primary) or replayed (a standby).
    async fn position(&self, member: &Endpoint) -> Result<Position, DatasetError>;

    /// Makes the standby at `standby` the primary, and returns once it accepts writes.
    async fn promote(&self, standby: &Endpoint) -> Result<Promoted, DatasetError>;

    /// Makes `member` refuse writes now, changing only that member's own settings: a
    /// standby still streaming from it receives nothing of it, so the standby can be
    /// promoted afterwards with the data the member had (a planned switchover: stop the
    /// writes, let the standby catch up, promote, then [`Replication::fence`]).
    async fn stop_writes(&self, member: &Endpoint) -> Result<(), DatasetError>;

    /// Makes sure `member` never accepts another write: the old primary of a lost
    /// vendor, before anything can reach it again. Stops the writes first (see
    /// [`Replication::stop_writes`]); the rest of the fence may reach the member's
    /// standbys, so a standby to be promoted is promoted before its old primary is
    /// fenced.
    async fn fence(&self, member: &Endpoint) -> Result<(), DatasetError>;

    /// Makes every commit at `primary` wait for the standby named `standby` (`Some`),
    /// or for no standby (`None`): the setting for a dataset whose RPO is zero, given
    /// only once that standby streams, so a primary never waits for a standby that is
    /// not there.
    async fn require_standby(
        &self,
        primary: &Endpoint,
        standby: Option<&str>,
    ) -> Result<(), DatasetError>;

    /// Commits the numbered row `n` of a drill's writer at `primary`, returning once the
    /// commit is acknowledged (synchronously replicated, when so configured). The rows
    /// live in lifeboat's own table, so a drill never touches the service's data.
    async fn write_row(&self, primary: &Endpoint, n: u64) -> Result<(), DatasetError>;

    /// What `member` has of a drill writer's rows (`None` before any): the highest,
    /// how many of rows `1..=up_to` (the acknowledged ones) are there, and up to which
    /// row none is missing — what a move kept, and where its gap starts.
    async fn rows(&self, member: &Endpoint, up_to: u64) -> Result<Option<RowCount>, DatasetError>;
}

/// What [`Replication::rows`] found of a drill writer's rows at one member.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RowCount {
    /// The highest row number present.
    pub last: u64,
    /// How many rows numbered 1 to the asked `up_to` are present.
    pub present: u64,
    /// Rows `1..=prefix` are all present; row `prefix + 1` is the first missing.
    pub prefix: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_read_as_postgres_writes_them_and_order_by_history() {
        assert_eq!(Position(0x1_6B37_4D48).to_string(), "1/6B374D48");
        assert_eq!(Position(0).to_string(), "0/0");
        assert!(Position(0x1_0000_0000) > Position(0xFFFF_FFFF));
    }

    #[test]
    fn an_error_says_its_class() {
        let e = DatasetError::new(ErrorClass::Unavailable, "connection refused");
        assert_eq!(e.to_string(), "connection refused (unavailable)");
    }
}
