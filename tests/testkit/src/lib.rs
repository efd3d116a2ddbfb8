//! Test support shared by the integration tests of the controller and of every adapter:
//! free loopback ports, the project's Python virtualenv, and real peer processes that are
//! stopped when the test that started them ends.
//!
//! Peers are installed by `tests/peers/install.sh` (run by `tests/run.sh`); a test whose
//! peer is missing fails with a message that says which script installs it.

pub mod bind;

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

pub mod kube;
pub mod moto;
pub mod postgres;
pub mod sshd;
pub mod sushy;

/// A TCP port on 127.0.0.1 that was free a moment ago. The OS picks it, so parallel tests
/// do not collide.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("binding 127.0.0.1:0 must work on a test machine")
}

/// The repository root (where `Cargo.lock` lives).
pub fn repo_root() -> PathBuf {
    let mut dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    while !dir.join("Cargo.lock").exists() && dir.pop() {}
    dir
}

/// A program installed in the project's virtualenv (`.venv/bin/NAME`), with a clear
/// error when `tests/peers/install.sh` has not been run.
pub fn venv_bin(name: &str) -> Result<PathBuf> {
    let path = repo_root().join(".venv/bin").join(name);
    if !path.exists() {
        bail!(
            "{} is missing: run tests/peers/install.sh (or tests/run.sh) first",
            path.display()
        );
    }
    Ok(path)
}

/// A system program at an absolute path, with a clear error naming the Debian package.
pub fn system_bin(path: &str, debian_package: &str) -> Result<PathBuf> {
    let p = PathBuf::from(path);
    if !p.exists() {
        bail!(
            "{path} is missing: apt-get install {debian_package} (tests/peers/install.sh does this)"
        );
    }
    Ok(p)
}

/// A peer process (a real server) that is killed when dropped. Its stdout and stderr go
/// to a log file in its own temporary folder, shown when it fails to become ready.
pub struct Peer {
    name: String,
    child: Child,
    /// For a watched peer, the write end of its stdin: closed when this process exits.
    _stdin: Option<std::process::ChildStdin>,
    log: PathBuf,
    /// The peer's private folder (config, state, log); removed on drop.
    pub dir: tempfile::TempDir,
}

impl Peer {
    /// Starts `command` (its stdout/stderr captured to `DIR/NAME.log`). The command is
    /// built by the caller, usually with paths inside [`Peer::dir`] prepared beforehand
    /// with [`Peer::prepare_dir`].
    pub fn start(name: &str, dir: tempfile::TempDir, command: Command) -> Result<Peer> {
        Self::spawn(name, dir, command, false)
    }

    /// Starts `command` like [`Peer::start`], with a pipe for stdin that stays open
    /// while this process lives: a command that stops when its stdin closes (a wrapper
    /// around a server) then outlives no test process, even one that is killed.
    pub fn start_watched(name: &str, dir: tempfile::TempDir, command: Command) -> Result<Peer> {
        Self::spawn(name, dir, command, true)
    }

    fn spawn(
        name: &str,
        dir: tempfile::TempDir,
        mut command: Command,
        watched: bool,
    ) -> Result<Peer> {
        let log = dir.path().join(format!("{name}.log"));
        let out =
            std::fs::File::create(&log).with_context(|| format!("creating {}", log.display()))?;
        let err = out.try_clone()?;
        let mut child = command
            .stdin(if watched {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(out)
            .stderr(err)
            .spawn()
            .with_context(|| format!("starting {name} ({command:?})"))?;
        let stdin = child.stdin.take();
        Ok(Peer {
            name: name.to_owned(),
            child,
            _stdin: stdin,
            log,
            dir,
        })
    }

    /// A fresh temporary folder for a peer's files.
    pub fn prepare_dir() -> Result<tempfile::TempDir> {
        tempfile::Builder::new()
            .prefix("lifeboat-peer-")
            .tempdir()
            .context("creating a peer folder")
    }

    /// Waits until `ready` returns true, failing with the peer's log when it exits first
    /// or `timeout` passes.
    pub fn wait_until(&mut self, timeout: Duration, mut ready: impl FnMut() -> bool) -> Result<()> {
        let start = Instant::now();
        loop {
            if ready() {
                return Ok(());
            }
            if let Some(status) = self.child.try_wait()? {
                bail!(
                    "{} exited ({status}) before it was ready:\n{}",
                    self.name,
                    self.log_text()
                );
            }
            if start.elapsed() > timeout {
                bail!(
                    "{} was not ready after {timeout:?}:\n{}",
                    self.name,
                    self.log_text()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits until something accepts TCP connections at `addr`.
    pub fn wait_for_tcp(&mut self, addr: SocketAddr, timeout: Duration) -> Result<()> {
        self.wait_until(timeout, || {
            TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok()
        })
    }

    /// The peer's log so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The peer's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The peer's folder.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
