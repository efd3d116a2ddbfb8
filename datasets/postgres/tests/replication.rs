//! The PostgreSQL method against real PostgreSQL servers on loopback (Debian's
//! `postgresql`, installed by `tests/peers/install.sh`): a primary made by `initdb`, a
//! standby seeded by `pg_basebackup` and streaming from it.

use std::time::{Duration, Instant};

use lifeboat_dataset::{Endpoint, ErrorClass, Promoted, Replication, Role};
use lifeboat_dataset_postgres::PostgresStreaming;
use lifeboat_testkit::postgres::{PASSWORD, Postgres, unavailable};

/// Waits are for hangs, not speed: the machine is shared.
const PATIENCE: Duration = Duration::from_secs(60);

macro_rules! require_postgres {
    () => {
        if let Some(why) = unavailable() {
            eprintln!("skipped: {why}");
            return;
        }
    };
}

fn method() -> PostgresStreaming {
    PostgresStreaming::new(
        "postgres",
        Some(PASSWORD.into()),
        "postgres",
        Duration::from_secs(10),
    )
}

fn at(pg: &Postgres) -> Endpoint {
    Endpoint {
        host: "127.0.0.1".into(),
        port: pg.port,
    }
}

/// Waits until `check` holds, polling.
async fn eventually(what: &str, mut check: impl AsyncFnMut() -> bool) {
    let start = Instant::now();
    while !check().await {
        assert!(start.elapsed() < PATIENCE, "gave up waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn a_streaming_standby_shows_its_lag_and_catches_up() {
    require_postgres!();
    let primary = Postgres::primary().unwrap();
    let standby = Postgres::standby_of(&primary, "standby-1").unwrap();
    let m = method();
    assert_eq!(m.role(&at(&primary)).await.unwrap(), Role::Primary);
    assert_eq!(m.role(&at(&standby)).await.unwrap(), Role::Standby);
    eventually("the standby streaming", async || {
        m.lag(&at(&primary), "standby-1").await.unwrap().is_some()
    })
    .await;
    assert_eq!(m.lag(&at(&primary), "nosuch").await.unwrap(), None);

    primary
        .psql("CREATE TABLE rows (n int); INSERT INTO rows SELECT generate_series(1, 10000)")
        .unwrap();
    let written = m.position(&at(&primary)).await.unwrap();
    eventually("the standby caught up", async || {
        m.position(&at(&standby)).await.unwrap() >= written
    })
    .await;
    eventually("no lag left", async || {
        m.lag(&at(&primary), "standby-1")
            .await
            .unwrap()
            .is_some_and(|l| l.bytes == 0)
    })
    .await;
    let lag = m.lag(&at(&primary), "standby-1").await.unwrap().unwrap();
    assert!(!lag.synchronous, "asynchronous unless configured: {lag:?}");
    assert_eq!(standby.psql("SELECT count(*) FROM rows").unwrap(), "10000");

    m.require_standby(&at(&primary), Some("standby-1"))
        .await
        .unwrap();
    eventually("the standby synchronous", async || {
        m.lag(&at(&primary), "standby-1")
            .await
            .unwrap()
            .is_some_and(|l| l.synchronous)
    })
    .await;
}

#[tokio::test]
async fn a_promoted_standby_takes_writes_and_a_second_promotion_is_a_no_op() {
    require_postgres!();
    let primary = Postgres::primary().unwrap();
    primary
        .psql("CREATE TABLE rows (n int); INSERT INTO rows VALUES (1)")
        .unwrap();
    let standby = Postgres::standby_of(&primary, "standby-1").unwrap();
    let m = method();
    let err = standby.psql("INSERT INTO rows VALUES (2)").unwrap_err();
    assert!(err.to_string().contains("read-only"), "{err:#}");

    let promoted = m.promote(&at(&standby)).await.unwrap();
    assert!(matches!(promoted, Promoted::Now { .. }), "{promoted:?}");
    assert_eq!(m.role(&at(&standby)).await.unwrap(), Role::Primary);
    standby.psql("INSERT INTO rows VALUES (2)").unwrap();
    assert_eq!(standby.psql("SELECT count(*) FROM rows").unwrap(), "2");
    assert_eq!(m.promote(&at(&standby)).await.unwrap(), Promoted::Already);
}

#[tokio::test]
async fn a_switchover_stops_writes_first_and_loses_no_acknowledged_row() {
    require_postgres!();
    let primary = Postgres::primary().unwrap();
    let standby = Postgres::standby_of(&primary, "standby-1").unwrap();
    let m = method();
    m.require_standby(&at(&primary), Some("standby-1"))
        .await
        .unwrap();
    for n in 1..=200 {
        m.write_row(&at(&primary), n).await.unwrap();
    }
    m.stop_writes(&at(&primary)).await.unwrap();
    let refused = m.write_row(&at(&primary), 201).await.unwrap_err();
    assert_eq!(refused.class, ErrorClass::InvalidRequest, "{refused}");
    // Stopping writes is the member's own setting: the standby is still a standby,
    // not fenced, and catches up with everything acknowledged.
    let stopped_at = m.position(&at(&primary)).await.unwrap();
    eventually("the standby caught up", async || {
        m.position(&at(&standby)).await.unwrap() >= stopped_at
    })
    .await;
    assert_eq!(m.role(&at(&standby)).await.unwrap(), Role::Standby);
    m.promote(&at(&standby)).await.unwrap();
    m.fence(&at(&primary)).await.unwrap();
    // The copied synchronous setting is gone: the new primary commits alone.
    m.write_row(&at(&standby), 201).await.unwrap();
    let rows = m.rows(&at(&standby), 201).await.unwrap().unwrap();
    assert_eq!((rows.last, rows.present, rows.prefix), (201, 201, 201));
    // A gap (a row the old primary acknowledged and the new one never had) shows where
    // the kept prefix ends.
    standby
        .psql("DELETE FROM lifeboat_drill_rows WHERE n = 150")
        .unwrap();
    let rows = m.rows(&at(&standby), 200).await.unwrap().unwrap();
    assert_eq!((rows.last, rows.present, rows.prefix), (201, 199, 149));
    assert_eq!(m.role(&at(&primary)).await.unwrap(), Role::Fenced);
    assert_eq!(m.role(&at(&standby)).await.unwrap(), Role::Primary);
}

#[tokio::test]
async fn a_fenced_primary_takes_no_write_from_anyone_also_not_an_open_session() {
    require_postgres!();
    let primary = Postgres::primary().unwrap();
    primary
        .psql(
            "CREATE ROLE app LOGIN PASSWORD 'app'; CREATE TABLE rows (n int); \
             GRANT INSERT, SELECT ON rows TO app",
        )
        .unwrap();
    let app = |port: u16| async move {
        let config = format!("host=127.0.0.1 port={port} user=app password=app dbname=postgres");
        tokio_postgres::connect(&config, tokio_postgres::NoTls).await
    };
    let (open, connection) = app(primary.port).await.unwrap();
    let connection = tokio::spawn(connection);
    open.execute("INSERT INTO rows VALUES (1)", &[])
        .await
        .unwrap();

    let m = method();
    m.fence(&at(&primary)).await.unwrap();
    assert_eq!(m.role(&at(&primary)).await.unwrap(), Role::Fenced);
    // The session that was writing lost its connection; nobody logs in as the app; the
    // superuser's new sessions are read-only.
    assert!(
        open.execute("INSERT INTO rows VALUES (2)", &[])
            .await
            .is_err()
    );
    let _ = connection.await;
    assert!(app(primary.port).await.is_err(), "the app cannot log in");
    let err = primary.psql("INSERT INTO rows VALUES (3)").unwrap_err();
    assert!(err.to_string().contains("read-only"), "{err:#}");
    assert_eq!(primary.psql("SELECT count(*) FROM rows").unwrap(), "1");
    // Fencing again changes nothing and succeeds.
    m.fence(&at(&primary)).await.unwrap();
}

#[tokio::test]
async fn failures_are_classified() {
    require_postgres!();
    let mut primary = Postgres::primary().unwrap();
    let wrong = PostgresStreaming::new(
        "postgres",
        Some("wrong".into()),
        "postgres",
        Duration::from_secs(10),
    );
    let err = wrong.role(&at(&primary)).await.unwrap_err();
    assert_eq!(err.class, ErrorClass::CredentialsRejected, "{err}");
    assert!(
        !err.message.contains(PASSWORD) && !err.message.contains("wrong"),
        "{err}"
    );

    let nodb = PostgresStreaming::new(
        "postgres",
        Some(PASSWORD.into()),
        "nosuch",
        Duration::from_secs(10),
    );
    assert_eq!(
        nodb.role(&at(&primary)).await.unwrap_err().class,
        ErrorClass::InvalidRequest
    );

    primary.stop().unwrap();
    let err = method().role(&at(&primary)).await.unwrap_err();
    assert_eq!(err.class, ErrorClass::Unavailable, "{err}");
}
