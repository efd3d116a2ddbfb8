//! Starting one copy: choosing a free port and spawning the command detached, in its
//! own process group, with its output going to a log file.

use std::collections::BTreeSet;
use std::net::{IpAddr, SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{SystemTime, UNIX_EPOCH};

use lifeboat_provider::{DeployRequest, ErrorClass, Op, ProviderError, Run, labels};

use crate::classify::classify_io;
use crate::config::PortRange;
use crate::process;
use crate::state::Record;

/// The program name that stands for the running `lifeboat` binary (used by the built-in
/// demo server of the quickstart).
pub const SELF_PROGRAM: &str = "lifeboat";

/// The argv of a request: a command, or `InvalidRequest` for an image (there is no
/// container runtime on this host as far as this adapter is concerned).
pub fn argv(req: &DeployRequest) -> Result<&[String], ProviderError> {
    let name = &req.workload.name;
    match &req.workload.run {
        Run::Command { command } if !command.is_empty() => Ok(command),
        Run::Command { .. } => Err(ProviderError::new(
            ErrorClass::InvalidRequest,
            Op::Deploy,
            format!("workload {name} has an empty command"),
        )),
        Run::Image { image, .. } => Err(ProviderError::new(
            ErrorClass::InvalidRequest,
            Op::Deploy,
            format!(
                "workload {name} names the image {image}, but the local provider runs \
                 commands only (no container runtime): give it a command instead"
            ),
        )),
    }
}

/// The program to execute: `lifeboat` means `self_exe`, anything else is looked up on
/// `PATH` by the OS as usual.
pub fn program(first: &str, self_exe: &Path) -> PathBuf {
    if first == SELF_PROGRAM {
        self_exe.to_owned()
    } else {
        PathBuf::from(first)
    }
}

/// The first port of `range`, starting the search at `cursor` and wrapping around, that
/// no recorded copy uses and that can be bound on `bind` right now. Starting after the
/// last port handed out keeps a just-freed port (which clients may still hold as an old
/// endpoint) from going straight to another workload.
pub fn pick_port(range: PortRange, cursor: u16, used: &BTreeSet<u16>, bind: IpAddr) -> Option<u16> {
    let start = if range.contains(cursor) {
        cursor
    } else {
        range.first()
    };
    let after = start..=range.last();
    let before = range.first()..start;
    after
        .chain(before)
        .filter(|p| !used.contains(p))
        .find(|p| port_is_free(bind, *p))
}

/// Whether `port` can be bound on `bind` now (someone else's server holds it if not).
pub fn port_is_free(bind: IpAddr, port: u16) -> bool {
    TcpListener::bind(SocketAddr::new(bind, port)).is_ok()
}

/// What [`start`] needs besides the request.
pub struct Launch<'a> {
    /// The deployment's key (handle and file stem).
    pub key: &'a str,
    /// The chosen port.
    pub port: u16,
    /// The address the copy is reached at.
    pub bind: IpAddr,
    /// The log file.
    pub log: PathBuf,
    /// The copy's own folder (made here if missing).
    pub dir: PathBuf,
    /// What `lifeboat` as a program stands for.
    pub self_exe: &'a Path,
}

/// Spawns the copy and returns its child handle and record (not yet written).
///
/// The child leads a new process group, so retire can stop everything it started and
/// a Ctrl-C aimed at the controller's terminal does not reach it; its stdin is closed
/// and stdout/stderr go to the log file, so it does not depend on the controller in any
/// way and outlives it.
pub fn start(
    req: &DeployRequest,
    launch: &Launch<'_>,
) -> Result<(tokio::process::Child, Record), ProviderError> {
    let argv = argv(req)?;
    let io_error = |what: String| {
        move |e: std::io::Error| {
            ProviderError::new(classify_io(&e), Op::Deploy, format!("{what}: {e}")).with_source(e)
        }
    };
    let log = std::fs::File::create(&launch.log)
        .map_err(io_error(format!("creating {}", launch.log.display())))?;
    let log_err = log
        .try_clone()
        .map_err(io_error(format!("opening {}", launch.log.display())))?;
    std::fs::create_dir_all(&launch.dir)
        .map_err(io_error(format!("creating {}", launch.dir.display())))?;
    let program = program(&argv[0], launch.self_exe);
    let mut command = tokio::process::Command::new(&program);
    command
        .args(&argv[1..])
        .envs(&req.workload.env)
        .env("PORT", launch.port.to_string())
        .env("LIFEBOAT_BIND", launch.bind.to_string())
        .env(labels::GENERATION_ENV, req.generation.to_string())
        .env("LIFEBOAT_WORKLOAD", &req.workload.name)
        .env(labels::COPY_DIR_ENV, &launch.dir)
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(log_err)
        .process_group(0)
        .kill_on_drop(false);
    let child = command.spawn().map_err(io_error(format!(
        "starting {} for workload {}",
        program.display(),
        req.workload.name
    )))?;
    let pid = child.id().ok_or_else(|| {
        ProviderError::new(
            ErrorClass::Internal,
            Op::Deploy,
            format!("{}: the process has no id right after spawn", launch.key),
        )
    })?;
    // The child is not reaped until we wait for it, so its /proc entry exists even if
    // it already exited.
    let proc_start = process::stat(pid)
        .map_err(io_error(format!("reading /proc/{pid}/stat")))?
        .map(|s| s.start)
        .unwrap_or_default();
    let started_unix_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or_default();
    let record = Record {
        workload: req.workload.name.clone(),
        generation: req.generation,
        pid,
        proc_start,
        port: launch.port,
        host: launch.bind.to_string(),
        started_unix_ms,
        command: argv.to_vec(),
        log: launch.log.clone(),
        health: req.workload.health.clone(),
        owner: Some(req.owner.clone()),
    };
    Ok((child, record))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lifeboat_means_this_binary() {
        let me = Path::new("/opt/bin/lifeboat-x");
        assert_eq!(program("lifeboat", me), me);
        assert_eq!(program("python3", me), PathBuf::from("python3"));
    }

    #[test]
    fn picks_free_ports_from_the_cursor_and_wraps_around() {
        let lo = IpAddr::from([127, 0, 0, 1]);
        // A port the OS chose and that this test holds is surely not free.
        let held = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = held.local_addr().unwrap().port();
        let range = PortRange::new(port, port).unwrap();
        assert_eq!(pick_port(range, port, &BTreeSet::new(), lo), None);
        drop(held);
        assert_eq!(pick_port(range, port, &BTreeSet::new(), lo), Some(port));
        assert_eq!(pick_port(range, port, &BTreeSet::from([port]), lo), None);
    }
}
