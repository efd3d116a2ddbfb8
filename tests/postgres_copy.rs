//! `lifeboat postgres` as a workload copy would run it, against real PostgreSQL: the
//! first start of a primary makes its cluster, a standby's first start seeds itself from
//! the primary and streams, a restart keeps the data, the copy runs the
//! server (run as `postgres` when the tests run as root), and a stop is a fast shutdown.

use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use lifeboat_dataset::{Endpoint, Replication, Role};
use lifeboat_dataset_postgres::PostgresStreaming;
use lifeboat_testkit::free_port;
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;

const PASSWORD: &str = "copy-test-password";
/// Waits are for hangs, not speed: the machine is shared.
const PATIENCE: Duration = Duration::from_secs(90);

/// A running `lifeboat postgres`, stopped (fast shutdown, then SIGKILL of its group)
/// when dropped.
struct Copy {
    child: Child,
    port: u16,
}

impl Copy {
    fn start(root: &Path, generation: u32, primary: Option<u16>) -> Copy {
        Copy::start_on(root, generation, primary, free_port())
    }

    fn start_on(root: &Path, generation: u32, primary: Option<u16>, port: u16) -> Copy {
        let secret = root.join("password");
        std::fs::write(&secret, PASSWORD).unwrap();
        let mut command = Command::new(env!("CARGO_BIN_EXE_lifeboat"));
        command
            .args(["postgres", "--data-root"])
            .arg(root.join("data"))
            .arg("--password-file")
            .arg(&secret)
            .env("PORT", port.to_string())
            .env("LIFEBOAT_BIND", "127.0.0.1")
            .env("LIFEBOAT_WORKLOAD", "db")
            .env("LIFEBOAT_GENERATION", generation.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(root.join(format!("copy-{generation}.log"))).unwrap())
            .process_group(0);
        if let Some(primary) = primary {
            command.env("LIFEBOAT_PRIMARY", format!("127.0.0.1:{primary}"));
        }
        Copy {
            child: command.spawn().unwrap(),
            port,
        }
    }

    fn at(&self) -> Endpoint {
        Endpoint {
            host: "127.0.0.1".into(),
            port: self.port,
        }
    }

    fn stop(&mut self) {
        let group = Pid::from_raw(self.child.id() as i32);
        let _ = killpg(group, Signal::SIGINT);
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = killpg(group, Signal::SIGKILL);
        let _ = self.child.wait();
    }
}

impl Drop for Copy {
    fn drop(&mut self) {
        self.stop();
    }
}

fn method() -> PostgresStreaming {
    PostgresStreaming::new(
        "postgres",
        Some(PASSWORD.into()),
        "postgres",
        Duration::from_secs(5),
    )
}

async fn role_becomes(copy: &Copy, role: Role, root: &Path) {
    let start = Instant::now();
    loop {
        if method().role(&copy.at()).await.ok() == Some(role) {
            return;
        }
        assert!(
            start.elapsed() < PATIENCE,
            "no {role:?} on port {}:\n{}",
            copy.port,
            std::fs::read_dir(root)
                .unwrap()
                .flatten()
                .filter(|e| e.file_name().to_string_lossy().ends_with(".log"))
                .map(|e| std::fs::read_to_string(e.path()).unwrap_or_default())
                .collect::<String>()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The test's folder, or `None` (the test is skipped) without PostgreSQL.
fn folder() -> Option<tempfile::TempDir> {
    if let Err(why) = lifeboat_dataset_postgres::server_programs() {
        eprintln!("skipped: {why}");
        return None;
    }
    let dir = tempfile::tempdir().unwrap();
    if nix::unistd::Uid::effective().is_root() {
        // The server's user must reach the folders under the test's temporary one.
        std::fs::set_permissions(
            dir.path(),
            std::os::unix::fs::PermissionsExt::from_mode(0o755),
        )
        .unwrap();
    }
    Some(dir)
}

#[tokio::test]
async fn a_primary_and_its_standby_run_as_workload_copies() {
    let Some(dir) = folder() else { return };
    let root = dir.path();
    let mut primary = Copy::start(root, 1, None);
    role_becomes(&primary, Role::Primary, root).await;
    let sql = |port: u16, sql: &str| lifeboat_testkit::postgres::psql(port, PASSWORD, sql).unwrap();
    sql(
        primary.port,
        "CREATE TABLE rows (n int); INSERT INTO rows SELECT generate_series(1, 100)",
    );

    let standby = Copy::start(root, 2, Some(primary.port));
    role_becomes(&standby, Role::Standby, root).await;
    let start = Instant::now();
    while method().lag(&primary.at(), "db-2").await.unwrap().is_none() {
        assert!(
            start.elapsed() < PATIENCE,
            "the standby never streamed as db-2"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(sql(standby.port, "SELECT count(*) FROM rows"), "100");

    // A restart keeps the cluster: the copy's data folder is made once.
    primary.stop();
    let primary = Copy::start_on(root, 1, None, primary.port);
    role_becomes(&primary, Role::Primary, root).await;
    assert_eq!(sql(primary.port, "SELECT count(*) FROM rows"), "100");
}

#[tokio::test]
async fn a_stop_is_a_fast_shutdown_even_with_a_client_connected() {
    let Some(dir) = folder() else { return };
    let root = dir.path();
    let mut copy = Copy::start(root, 1, None);
    role_becomes(&copy, Role::Primary, root).await;
    // A client that stays: PostgreSQL's own answer to SIGTERM would wait for it.
    let mut client =
        std::process::Command::new(lifeboat_testkit::postgres::bin_dir().unwrap().join("psql"))
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &copy.port.to_string(),
                "-U",
                "postgres",
            ])
            .args(["-c", "SELECT pg_sleep(60)"])
            .env("PGPASSWORD", PASSWORD)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    // What the local adapter's retire sends: SIGTERM to the copy's process group.
    killpg(Pid::from_raw(copy.child.id() as i32), Signal::SIGTERM).unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = copy.child.try_wait().unwrap() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "the member still runs 30 s after SIGTERM"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(status.success(), "a fast shutdown ends cleanly: {status}");
    let _ = client.kill();
    let _ = client.wait();
}
