//! PostgreSQL streaming replication as a [`Replication`] method (`postgres-streaming`).
//!
//! The primary and its standbys are ordinary PostgreSQL servers, each a workload copy;
//! a standby is seeded with `pg_basebackup -R` and streams from the primary under its
//! own `application_name`. This crate only talks SQL to them, as a superuser (or a role
//! with `pg_monitor`, `pg_signal_backend` and the right to `ALTER SYSTEM` and
//! `ALTER ROLE`):
//!
//! * **role**: `pg_is_in_recovery()`, and the fence's marker (`lifeboat.fenced`);
//! * **lag**: the primary's `pg_stat_replication` row of the standby — bytes not yet
//!   replayed, `replay_lag`, and whether it is a synchronous standby;
//! * **promote**: `pg_promote(wait => true)`, answered `Already` on a primary;
//! * **stop writes**: read-only by default through `ALTER SYSTEM` and every client
//!   session cut — the member's own settings only, so a standby streaming from it
//!   receives nothing and can be promoted with all it had;
//! * **require a standby**: `synchronous_standby_names` (and `synchronous_commit`);
//! * **drill rows**: a writer's numbered rows in lifeboat's own `lifeboat_drill_rows`;
//! * **fence**: writes stopped, then every other login role loses `LOGIN`, the server turns read-only by
//!   default (`default_transaction_read_only`, through `ALTER SYSTEM` so a restart keeps
//!   it), lifeboat's role is marked fenced, and every other client session is
//!   terminated — a session that was writing loses its connection, a new one cannot log
//!   in, and lifeboat's own sessions start read-only. (A superuser can always turn
//!   read-only off for its session; no other role keeps the right to log in.)

#![deny(missing_docs)]

pub mod server;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use lifeboat_dataset::{
    DatasetError, Endpoint, ErrorClass, Lag, Position, Promoted, Replication, Role, RowCount,
};
use tokio_postgres::error::SqlState;
use tokio_postgres::{Client, NoTls};

/// The setting a fenced member gives lifeboat's role, so [`Replication::role`] can tell
/// a fenced primary from a read-only one.
pub const FENCE_MARK: &str = "lifeboat.fenced";

/// How lifeboat reaches the members of one PostgreSQL dataset.
#[derive(Clone)]
pub struct PostgresStreaming {
    user: String,
    password: Option<String>,
    database: String,
    timeout: Duration,
    /// The drill writer's open session per member: a commit a few milliseconds apart
    /// cannot pay for a new login each time.
    writers: Arc<Mutex<HashMap<String, Arc<Client>>>>,
}

/// Never shows the password.
impl std::fmt::Debug for PostgresStreaming {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresStreaming")
            .field("user", &self.user)
            .field("password", &self.password.as_ref().map(|_| "***"))
            .field("database", &self.database)
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl PostgresStreaming {
    /// A method that logs in as `user` (with `password`, if the servers ask for one) to
    /// `database`, and gives every call `timeout` (connecting included).
    pub fn new(
        user: impl Into<String>,
        password: Option<String>,
        database: impl Into<String>,
        timeout: Duration,
    ) -> PostgresStreaming {
        PostgresStreaming {
            user: user.into(),
            password,
            database: database.into(),
            timeout,
            writers: Arc::default(),
        }
    }

    /// The writer's session with `primary`, opened once and kept until a write fails.
    async fn writer(&self, primary: &Endpoint) -> Result<Arc<Client>, DatasetError> {
        let key = primary.to_string();
        let cached = self
            .writers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&key)
            .cloned();
        if let Some(client) = cached.filter(|c| !c.is_closed()) {
            return Ok(client);
        }
        let client = self.session(primary).await?;
        let create = client.batch_execute(
            "CREATE TABLE IF NOT EXISTS lifeboat_drill_rows \
             (n bigint PRIMARY KEY, at timestamptz NOT NULL DEFAULT now())",
        );
        self.bounded(primary, "making the drill's table", create)
            .await?;
        let client = Arc::new(client);
        self.writers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(key, client.clone());
        Ok(client)
    }

    /// One insert of drill row `n` at `primary` through the kept writer session; on
    /// failure, also whether that session had been closed (the session's end, not the
    /// member's answer).
    async fn insert_row(&self, primary: &Endpoint, n: u64) -> Result<(), (DatasetError, bool)> {
        let client = self.writer(primary).await.map_err(|e| (e, false))?;
        let n = i64::try_from(n).unwrap_or(i64::MAX);
        let params: [&(dyn tokio_postgres::types::ToSql + Sync); 1] = [&n];
        let insert = client.execute(
            "INSERT INTO lifeboat_drill_rows (n) VALUES ($1) ON CONFLICT (n) DO NOTHING",
            &params,
        );
        match self.bounded(primary, "writing a drill row", insert).await {
            Ok(_) => Ok(()),
            Err(e) => {
                self.forget_writer(primary);
                Err((e, client.is_closed()))
            }
        }
    }

    fn forget_writer(&self, primary: &Endpoint) {
        self.writers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&primary.to_string());
    }

    /// A session with `member`, for one call. A new session per call keeps a member
    /// that went away from holding a broken one, and is cheap at one call a round.
    async fn session(&self, member: &Endpoint) -> Result<Client, DatasetError> {
        let mut config = tokio_postgres::Config::new();
        config
            .host(&member.host)
            .port(member.port)
            .user(&self.user)
            .dbname(&self.database)
            .application_name("lifeboat")
            .connect_timeout(self.timeout);
        if let Some(password) = &self.password {
            config.password(password);
        }
        let (client, connection) = self
            .bounded(member, "connecting", config.connect(NoTls))
            .await?;
        tokio::spawn(async move {
            // The connection ends when the client is dropped; an error then is the
            // server's business, already reported to the call that saw it.
            let _ = connection.await;
        });
        Ok(client)
    }

    /// Runs `call` within the method's timeout, classifying what goes wrong.
    async fn bounded<T>(
        &self,
        member: &Endpoint,
        what: &str,
        call: impl std::future::Future<Output = Result<T, tokio_postgres::Error>>,
    ) -> Result<T, DatasetError> {
        match tokio::time::timeout(self.timeout, call).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(e)) => Err(classify(member, what, &e)),
            Err(_) => Err(DatasetError::new(
                ErrorClass::Timeout,
                format!("{what} at {member}: no answer within {:?}", self.timeout),
            )),
        }
    }

    /// Runs each of `statements` on its own at `member`, in order, in one session
    /// (`ALTER SYSTEM` refuses to share a transaction, which one multi-statement query
    /// would be).
    async fn each(
        &self,
        member: &Endpoint,
        what: &str,
        statements: &[&str],
    ) -> Result<(), DatasetError> {
        let client = self.session(member).await?;
        for sql in statements {
            self.bounded(member, what, client.batch_execute(sql))
                .await?;
        }
        Ok(())
    }

    /// One row of `sql` (no parameters) at `member`.
    async fn one(
        &self,
        member: &Endpoint,
        what: &str,
        sql: &str,
    ) -> Result<tokio_postgres::Row, DatasetError> {
        let client = self.session(member).await?;
        self.bounded(member, what, client.query_one(sql, &[])).await
    }
}

#[async_trait]
impl Replication for PostgresStreaming {
    fn method(&self) -> &'static str {
        "postgres-streaming"
    }

    async fn role(&self, member: &Endpoint) -> Result<Role, DatasetError> {
        let row = self
            .one(
                member,
                "reading the role",
                &format!(
                    "SELECT pg_is_in_recovery(), \
                     coalesce(current_setting('{FENCE_MARK}', true), '') = 'on'"
                ),
            )
            .await?;
        let (recovering, fenced): (bool, bool) = (row.get(0), row.get(1));
        Ok(match (fenced, recovering) {
            (true, _) => Role::Fenced,
            (false, true) => Role::Standby,
            (false, false) => Role::Primary,
        })
    }

    async fn lag(&self, primary: &Endpoint, standby: &str) -> Result<Option<Lag>, DatasetError> {
        let client = self.session(primary).await?;
        let rows = self
            .bounded(
                primary,
                "reading the standby's lag",
                client.query(
                    "SELECT coalesce(pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn), 0)::bigint,
                            coalesce(extract(epoch FROM replay_lag), 0)::float8,
                            sync_state IN ('sync', 'quorum')
                     FROM pg_stat_replication
                     WHERE application_name = $1 AND state = 'streaming'",
                    &[&standby],
                ),
            )
            .await?;
        Ok(rows.first().map(|row| Lag {
            bytes: u64::try_from(row.get::<_, i64>(0)).unwrap_or(0),
            seconds: row.get(1),
            synchronous: row.get(2),
        }))
    }

    async fn position(&self, member: &Endpoint) -> Result<Position, DatasetError> {
        let row = self
            .one(
                member,
                "reading the position",
                "SELECT (CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn()
                              ELSE pg_current_wal_lsn() END)::text",
            )
            .await?;
        let text: Option<String> = row.get(0);
        let text = text.unwrap_or_else(|| "0/0".to_owned());
        parse_lsn(&text).ok_or_else(|| {
            DatasetError::new(
                ErrorClass::Internal,
                format!("{member} answered the position {text:?}, which is no WAL position"),
            )
        })
    }

    async fn promote(&self, standby: &Endpoint) -> Result<Promoted, DatasetError> {
        let role = self.role(standby).await?;
        if role == Role::Fenced {
            return Err(DatasetError::new(
                ErrorClass::InvalidRequest,
                format!("{standby} is fenced: a fenced member is never promoted"),
            ));
        }
        let client = self.session(standby).await?;
        let promoted = if role == Role::Standby {
            let wait = i32::try_from(self.timeout.as_secs().max(1)).unwrap_or(i32::MAX);
            let done: bool = self
                .bounded(
                    standby,
                    "promoting",
                    client.query_one("SELECT pg_promote(true, $1)", &[&wait]),
                )
                .await?
                .get(0);
            if !done {
                return Err(DatasetError::new(
                    ErrorClass::Timeout,
                    format!("{standby} did not finish its promotion within {wait} s"),
                ));
            }
            tracing::info!(member = %standby, "standby promoted");
            true
        } else {
            false
        };
        // A base backup copies the old primary's ALTER SYSTEM settings: a new primary
        // must neither wait for the old one's synchronous standby nor start read-only.
        // Done on a repeated promotion too, which may follow a crash right after it.
        let reset = [
            "SET default_transaction_read_only = off",
            "ALTER SYSTEM RESET synchronous_standby_names",
            "ALTER SYSTEM RESET default_transaction_read_only",
            "SELECT pg_reload_conf()",
        ];
        self.each(standby, "clearing copied settings", &reset)
            .await?;
        if promoted {
            Ok(Promoted::Now {
                at: self.position(standby).await?,
            })
        } else {
            Ok(Promoted::Already)
        }
    }

    async fn stop_writes(&self, member: &Endpoint) -> Result<(), DatasetError> {
        let steps = [
            "SET default_transaction_read_only = off",
            "ALTER SYSTEM SET default_transaction_read_only = on",
            "SELECT pg_reload_conf()",
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
             WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()",
        ];
        self.each(member, "stopping writes", &steps).await?;
        tracing::warn!(%member, "writes stopped: every session cut, new ones read-only");
        Ok(())
    }

    async fn fence(&self, member: &Endpoint) -> Result<(), DatasetError> {
        self.stop_writes(member).await?;
        let mark = format!("ALTER ROLE CURRENT_USER SET {FENCE_MARK} = 'on'");
        let steps = [
            // The server is read-only by default now; lifeboat's own session is not.
            "SET default_transaction_read_only = off",
            // Nor does it wait for a synchronous standby that has moved on.
            "SET synchronous_commit = local",
            "DO $$DECLARE r record; BEGIN
               FOR r IN SELECT rolname FROM pg_roles
                        WHERE rolcanlogin AND rolname <> current_user LOOP
                 EXECUTE format('ALTER ROLE %I NOLOGIN', r.rolname);
               END LOOP;
             END$$",
            // The mark is a setting of lifeboat's own role (a custom setting cannot be
            // set server-wide), so its next session reads it.
            &mark,
            // Sessions that logged in before their role lost LOGIN go too.
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
             WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()",
        ];
        self.each(member, "fencing", &steps).await?;
        tracing::warn!(%member, "fenced: no role but lifeboat's logs in, and nothing is written");
        Ok(())
    }

    async fn require_standby(
        &self,
        primary: &Endpoint,
        standby: Option<&str>,
    ) -> Result<(), DatasetError> {
        let setting = match standby {
            // ALTER SYSTEM takes no parameters: the name is quoted as an identifier
            // inside a quoted literal.
            Some(name) => format!(
                "ALTER SYSTEM SET synchronous_standby_names = '\"{}\"'",
                name.replace('\'', "''").replace('"', "")
            ),
            None => "ALTER SYSTEM RESET synchronous_standby_names".to_owned(),
        };
        let steps = [
            "SET default_transaction_read_only = off",
            &setting,
            "ALTER SYSTEM SET synchronous_commit = on",
            "SELECT pg_reload_conf()",
        ];
        self.each(primary, "setting the synchronous standby", &steps)
            .await
    }

    async fn write_row(&self, primary: &Endpoint, n: u64) -> Result<(), DatasetError> {
        // The kept session may have been ended under it (stopping writes ends every
        // session): the insert is idempotent, so a second try on a new session says what
        // the member itself answers now.
        match self.insert_row(primary, n).await {
            Err((_, true)) => self.insert_row(primary, n).await.map_err(|(e, _)| e),
            outcome => outcome.map_err(|(e, _)| e),
        }
    }

    async fn rows(&self, member: &Endpoint, up_to: u64) -> Result<Option<RowCount>, DatasetError> {
        let client = self.session(member).await?;
        let exists: bool = self
            .bounded(
                member,
                "looking for the drill's rows",
                client.query_one("SELECT to_regclass('lifeboat_drill_rows') IS NOT NULL", &[]),
            )
            .await?
            .get(0);
        if !exists {
            return Ok(None);
        }
        let up_to = i64::try_from(up_to).unwrap_or(i64::MAX);
        // The prefix ends at the first row whose successor is missing, if row 1 is there.
        let row = self
            .bounded(
                member,
                "counting the drill's rows",
                client.query_one(
                    "SELECT max(n), count(*) FILTER (WHERE n <= $1),
                            CASE WHEN EXISTS (SELECT 1 FROM lifeboat_drill_rows WHERE n = 1)
                                 THEN (SELECT min(r.n) FROM lifeboat_drill_rows r
                                       WHERE NOT EXISTS (SELECT 1 FROM lifeboat_drill_rows s
                                                         WHERE s.n = r.n + 1))
                                 ELSE 0 END
                     FROM lifeboat_drill_rows",
                    &[&up_to],
                ),
            )
            .await?;
        let count =
            |i: usize| u64::try_from(row.get::<_, Option<i64>>(i).unwrap_or(0)).unwrap_or(0);
        let last: Option<i64> = row.get(0);
        Ok(last.map(|_| RowCount {
            last: count(0),
            present: count(1),
            prefix: count(2),
        }))
    }
}

/// The folder of this machine's PostgreSQL server programs (`postgres`, `initdb`,
/// `pg_basebackup`, `pg_ctl`): the newest `/usr/lib/postgresql/N/bin` (Debian's layout),
/// else the folder of a `pg_basebackup` on `PATH`. The error says how to get them.
pub fn server_programs() -> Result<std::path::PathBuf, String> {
    let mut versions: Vec<(u32, std::path::PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let version = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            bin.join("pg_basebackup").exists().then_some((version, bin))
        })
        .collect();
    versions.sort();
    if let Some((_, bin)) = versions.pop() {
        return Ok(bin);
    }
    let on_path = std::env::var_os("PATH").and_then(|path| {
        std::env::split_paths(&path).find(|dir| dir.join("pg_basebackup").is_file())
    });
    on_path.ok_or_else(|| {
        "PostgreSQL's server programs (postgres, pg_basebackup) are not on this machine: \
         apt-get install postgresql"
            .to_owned()
    })
}

/// Reads a WAL position as PostgreSQL writes it (`16/B374D848`).
pub fn parse_lsn(text: &str) -> Option<Position> {
    let (high, low) = text.split_once('/')?;
    let high = u64::from_str_radix(high, 16).ok()?;
    let low = u64::from_str_radix(low, 16).ok()?;
    (high <= u64::from(u32::MAX) && low <= u64::from(u32::MAX))
        .then_some(Position((high << 32) | low))
}

/// What a failed call means for the controller. Server errors by their SQLSTATE, the
/// rest (refused, reset, closed connections) as the member being unavailable.
fn classify(member: &Endpoint, what: &str, e: &tokio_postgres::Error) -> DatasetError {
    let Some(db) = e.as_db_error() else {
        return DatasetError::new(ErrorClass::Unavailable, format!("{what} at {member}: {e}"));
    };
    let code = db.code();
    let class = if *code == SqlState::INVALID_PASSWORD
        || *code == SqlState::INVALID_AUTHORIZATION_SPECIFICATION
    {
        ErrorClass::CredentialsRejected
    } else if *code == SqlState::INSUFFICIENT_PRIVILEGE {
        ErrorClass::PermissionDenied
    } else if *code == SqlState::TOO_MANY_CONNECTIONS {
        ErrorClass::Throttled
    } else if *code == SqlState::CANNOT_CONNECT_NOW
        || *code == SqlState::ADMIN_SHUTDOWN
        || *code == SqlState::CRASH_SHUTDOWN
    {
        ErrorClass::Unavailable
    } else if *code == SqlState::INVALID_CATALOG_NAME
        || *code == SqlState::UNDEFINED_FUNCTION
        // A write at a member that stopped taking them (a standby, a fenced primary).
        || *code == SqlState::READ_ONLY_SQL_TRANSACTION
    {
        ErrorClass::InvalidRequest
    } else {
        ErrorClass::Internal
    };
    DatasetError::new(
        class,
        format!("{what} at {member}: {} ({})", db.message(), code.code()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wal_positions_read_back_as_written() {
        for text in ["0/0", "16/B374D848", "FFFFFFFF/FFFFFFFF"] {
            let position = parse_lsn(text).unwrap();
            assert_eq!(position.to_string(), text);
        }
        for bad in ["", "16", "16/", "/1", "G/0", "100000000/0", "0/1/2"] {
            assert_eq!(parse_lsn(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn the_password_never_shows() {
        let method = PostgresStreaming::new(
            "postgres",
            Some("s3cret".into()),
            "postgres",
            Duration::from_secs(1),
        );
        assert!(!format!("{method:?}").contains("s3cret"));
    }
}
