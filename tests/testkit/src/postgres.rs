//! PostgreSQL clusters on 127.0.0.1 for the datasets' tests: a primary made with
//! `initdb`, standbys seeded from it with `pg_basebackup` and streaming, each on a free
//! port in its own folder, password authentication over TCP, stopped (`pg_ctl stop -m
//! immediate`) when dropped.
//!
//! PostgreSQL refuses to run as root: when the tests run as root, every server program
//! runs as the `postgres` user Debian's package creates, in a folder handed to it.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use anyhow::{Context, Result, bail};

use crate::free_port;

/// The superuser's password in every test cluster (a test secret, never a real one).
pub const PASSWORD: &str = "lifeboat-test-only";

/// Why PostgreSQL cannot run here, or `None` when it can. Tests skip with this.
pub fn unavailable() -> Option<String> {
    match bin_dir() {
        Ok(_) => None,
        Err(e) => Some(format!("{e:#}")),
    }
}

/// The server's programs, found as lifeboat finds them.
pub fn bin_dir() -> Result<PathBuf> {
    lifeboat_dataset_postgres::server_programs()
        .map_err(|why| anyhow::anyhow!("{why} (tests/peers/install.sh does this)"))
}

/// One running cluster.
pub struct Postgres {
    /// Its port on 127.0.0.1.
    pub port: u16,
    /// Its data folder.
    pub data: PathBuf,
    bin: PathBuf,
    _dir: tempfile::TempDir,
    running: bool,
}

impl Postgres {
    /// A new primary: `initdb`, replication allowed from loopback, started.
    pub fn primary() -> Result<Postgres> {
        let (dir, data, bin) = folder()?;
        let pwfile = dir.path().join("pwfile");
        std::fs::write(&pwfile, PASSWORD)?;
        hand_over(&pwfile)?;
        run(
            &bin,
            "initdb",
            &[
                "-D",
                path(&data),
                "-U",
                "postgres",
                "--auth-local=trust",
                "--auth-host=scram-sha-256",
                "--pwfile",
                path(&pwfile),
                "--no-sync",
            ],
        )?;
        std::fs::remove_file(&pwfile)?;
        Postgres::launch(dir, data, bin)
    }

    /// A standby of `primary`, seeded with `pg_basebackup` and streaming from it under
    /// the name `name` (its `application_name` in `pg_stat_replication`).
    pub fn standby_of(primary: &Postgres, name: &str) -> Result<Postgres> {
        let (dir, data, bin) = folder()?;
        std::fs::remove_dir(&data)?;
        let conninfo = format!(
            "host=127.0.0.1 port={} user=postgres password={PASSWORD} application_name={name}",
            primary.port
        );
        run(
            &bin,
            "pg_basebackup",
            &[
                "-d",
                &conninfo,
                "-D",
                path(&data),
                "-R",
                "-X",
                "stream",
                "--no-sync",
            ],
        )?;
        Postgres::launch(dir, data, bin)
    }

    /// Configures the cluster in `data` for a free port and starts it.
    fn launch(dir: tempfile::TempDir, data: PathBuf, bin: PathBuf) -> Result<Postgres> {
        let mut pg = Postgres {
            port: free_port(),
            data,
            bin,
            _dir: dir,
            running: false,
        };
        pg.configure()?;
        pg.start()?;
        Ok(pg)
    }

    /// Runs `sql` with psql as the superuser over TCP; its output, unaligned, without
    /// headers.
    pub fn psql(&self, sql: &str) -> Result<String> {
        psql(self.port, PASSWORD, sql)
    }

    /// Starts the server and waits until it accepts connections.
    pub fn start(&mut self) -> Result<()> {
        let log = self.data.with_extension("log");
        run(
            &self.bin,
            "pg_ctl",
            &[
                "-D",
                path(&self.data),
                "-l",
                path(&log),
                "-w",
                "-t",
                "60",
                "start",
            ],
        )
        .with_context(|| {
            format!(
                "starting PostgreSQL on port {}:\n{}",
                self.port,
                std::fs::read_to_string(&log).unwrap_or_default()
            )
        })?;
        self.running = true;
        Ok(())
    }

    /// Stops the server at once (no checkpoint), as a lost machine would.
    pub fn stop(&mut self) -> Result<()> {
        if self.running {
            run(
                &self.bin,
                "pg_ctl",
                &["-D", path(&self.data), "-m", "immediate", "-w", "stop"],
            )?;
            self.running = false;
        }
        Ok(())
    }

    /// Listens on loopback only, on this cluster's port, with room for test clients.
    fn configure(&mut self) -> Result<()> {
        let conf = self.data.join("postgresql.conf");
        let mut text = std::fs::read_to_string(&conf).context("reading postgresql.conf")?;
        text.push_str(&format!(
            "\n# lifeboat tests\nlisten_addresses = '127.0.0.1'\nport = {}\n\
             unix_socket_directories = '{}'\nfsync = off\nmax_connections = 50\n",
            self.port,
            self.data.display()
        ));
        std::fs::write(&conf, text).context("writing postgresql.conf")
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let _ = self.stop();
    }
}

/// Runs `sql` with psql as the superuser `postgres` (password `password`) on the
/// server at 127.0.0.1:`port`; its output, unaligned, without headers.
pub fn psql(port: u16, password: &str, sql: &str) -> Result<String> {
    let out = Command::new(bin_dir()?.join("psql"))
        .args(["-h", "127.0.0.1", "-p", &port.to_string()])
        .args([
            "-U",
            "postgres",
            "-d",
            "postgres",
            "-XAtq",
            "-v",
            "ON_ERROR_STOP=1",
        ])
        .args(["-c", sql])
        .env("PGPASSWORD", password)
        .output()
        .context("running psql")?;
    if !out.status.success() {
        bail!(
            "psql -c {sql:?}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

/// A fresh folder with an empty data folder in it, owned by the user the server runs
/// as, and the server's programs.
fn folder() -> Result<(tempfile::TempDir, PathBuf, PathBuf)> {
    let bin = bin_dir()?;
    let dir = tempfile::Builder::new().prefix("lifeboat-pg").tempdir()?;
    let data = dir.path().join("data");
    std::fs::create_dir(&data)?;
    hand_over(dir.path())?;
    hand_over(&data)?;
    Ok((dir, data, bin))
}

/// As root: gives `path` to the `postgres` user, which runs the server.
fn hand_over(target: &Path) -> Result<()> {
    if !is_root() {
        return Ok(());
    }
    let status = Command::new("chown")
        .args(["postgres:postgres", path(target)])
        .status()
        .context("running chown")?;
    if !status.success() {
        bail!(
            "chown postgres {} failed: is the postgresql package installed?",
            target.display()
        );
    }
    Ok(())
}

/// Runs a server program, as the `postgres` user when the tests run as root.
fn run(bin: &Path, program: &str, args: &[&str]) -> Result<Output> {
    let program = bin.join(program);
    let mut command = if is_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(&program);
        c
    } else {
        Command::new(&program)
    };
    let out = command
        .args(args)
        // pg_basebackup and psql take the password from the conninfo; nothing from the
        // caller's environment must change how the tests connect.
        .env_remove("PGPASSWORD")
        .current_dir("/")
        .output()
        .with_context(|| format!("running {}", program.display()))?;
    if !out.status.success() {
        bail!(
            "{} {}: {}{}",
            program.display(),
            args.join(" ").replace(PASSWORD, "***"),
            String::from_utf8_lossy(&out.stdout).trim(),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(out)
}

fn is_root() -> bool {
    nix::unistd::Uid::effective().is_root()
}

fn path(p: &Path) -> &str {
    p.to_str().expect("a UTF-8 temp path")
}
