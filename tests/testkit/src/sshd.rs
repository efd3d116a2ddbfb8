//! OpenSSH's sshd as a bare-metal "host" on 127.0.0.1: a fresh host key, a client key
//! that is the only way in, a `known_hosts` file that trusts the host, and a private
//! state folder for the workloads lifeboat starts there. Stopped on drop, together with
//! every workload process a test left on the host.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, Result, ensure};

use crate::{Peer, free_port, system_bin};

/// Generous upper bound for sshd to come up on a busy machine; waits end as soon as it
/// accepts connections.
pub const PATIENCE: Duration = Duration::from_secs(60);

/// Runs a helper program, failing with its stderr.
pub(crate) fn run(cmd: &mut Command) -> Result<()> {
    let out = cmd.output().with_context(|| format!("running {cmd:?}"))?;
    ensure!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(())
}

/// A fresh ed25519 key pair at `path` (and `path.pub`).
pub fn keygen(path: &Path) -> Result<()> {
    let keygen = system_bin("/usr/bin/ssh-keygen", "openssh-client")?;
    run(Command::new(keygen)
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "lifeboat-test", "-f"])
        .arg(path))
}

/// An sshd that lets the current user in with [`SshHost::client_key`] only. It can be
/// prepared without running (a host still booting) and launched later.
pub struct SshHost {
    /// The running sshd, once launched.
    pub peer: Option<Peer>,
    /// Keys, config, known_hosts and the state folder; outlives restarts of sshd.
    pub files: tempfile::TempDir,
    /// The port sshd listens on (127.0.0.1).
    pub port: u16,
    /// The private key the test logs in with.
    pub client_key: PathBuf,
    /// A `known_hosts` file that trusts this sshd.
    pub known_hosts: PathBuf,
    /// Where lifeboat keeps its copies on this "host" (a private folder per test).
    pub state_dir: PathBuf,
}

impl SshHost {
    /// Stops sshd (the host "goes down"); the files stay for a later [`SshHost::launch`].
    pub fn stop(&mut self) {
        self.peer = None;
    }

    /// Kills every workload process lifeboat started here (what a power cut does).
    pub fn kill_workloads(&self) {
        for pid in self.leftover_pids() {
            let _ = Command::new("kill")
                .args(["-KILL", "--", &format!("-{pid}")])
                .status();
        }
    }

    /// Prepares and launches an sshd.
    pub fn start() -> Result<SshHost> {
        let mut host = SshHost::prepare()?;
        host.launch()?;
        Ok(host)
    }

    /// Starts sshd and waits until it accepts connections.
    pub fn launch(&mut self) -> Result<()> {
        let sshd = system_bin("/usr/sbin/sshd", "openssh-server")?;
        std::fs::create_dir_all("/run/sshd").context("sshd needs /run/sshd")?;
        let mut cmd = Command::new(sshd);
        cmd.arg("-D")
            .arg("-e")
            .arg("-f")
            .arg(self.files.path().join("sshd_config"));
        let mut peer = Peer::start("sshd", Peer::prepare_dir()?, cmd)?;
        peer.wait_for_tcp(SocketAddr::from(([127, 0, 0, 1], self.port)), PATIENCE)?;
        self.peer = Some(peer);
        Ok(())
    }

    /// Writes keys and config for an sshd on a fresh port, without starting it.
    pub fn prepare() -> Result<SshHost> {
        let dir = Peer::prepare_dir()?;
        let d = dir.path().to_path_buf();
        keygen(&d.join("host_ed25519"))?;
        keygen(&d.join("client"))?;
        std::fs::copy(d.join("client.pub"), d.join("authorized_keys"))?;
        let port = free_port();
        let user = current_user();
        let config = format!(
            "Port {port}\nListenAddress 127.0.0.1\nHostKey {d}/host_ed25519\nPidFile {d}/sshd.pid\n\
             AuthorizedKeysFile {d}/authorized_keys\nAllowUsers {user}\nPubkeyAuthentication yes\n\
             PasswordAuthentication no\nKbdInteractiveAuthentication no\nPermitRootLogin prohibit-password\n\
             UsePAM no\nStrictModes no\nLogLevel VERBOSE\n",
            d = d.display()
        );
        std::fs::write(d.join("sshd_config"), config)?;
        let host_pub = std::fs::read_to_string(d.join("host_ed25519.pub"))?;
        let mut fields = host_pub.split_whitespace();
        let (algo, key) = (
            fields.next().unwrap_or_default(),
            fields.next().unwrap_or_default(),
        );
        std::fs::write(
            d.join("known_hosts"),
            format!("[127.0.0.1]:{port} {algo} {key}\n"),
        )?;
        std::fs::create_dir_all(d.join("state"))?;
        Ok(SshHost {
            port,
            client_key: d.join("client"),
            known_hosts: d.join("known_hosts"),
            state_dir: d.join("state"),
            peer: None,
            files: dir,
        })
    }

    /// Process groups of the copies lifeboat started here and did not stop.
    pub fn leftover_pids(&self) -> Vec<i32> {
        let Ok(entries) = std::fs::read_dir(&self.state_dir) else {
            return Vec::new();
        };
        entries
            .flatten()
            .filter_map(|e| std::fs::read_to_string(e.path().join("pid")).ok())
            .filter_map(|p| p.trim().parse().ok())
            .filter(|pid| alive(*pid))
            .collect()
    }
}

impl Drop for SshHost {
    fn drop(&mut self) {
        // Workloads run detached from sshd; a failed test must not leave them behind.
        self.kill_workloads();
    }
}

/// Whether a process exists and is not a zombie.
pub fn alive(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .map(|s| {
            !s.lines()
                .any(|l| l.starts_with("State:") && l.contains('Z'))
        })
        .unwrap_or(false)
}

/// The user the tests run as, which sshd lets in.
pub fn current_user() -> String {
    std::env::var("USER")
        .ok()
        .filter(|u| !u.is_empty())
        .or_else(|| {
            Command::new("id")
                .arg("-un")
                .output()
                .ok()
                .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        })
        .unwrap_or_else(|| "root".into())
}
