//! Real peers for the bare-metal adapter's tests: OpenSSH's sshd as a "host" and
//! sushy-tools' Redfish emulator as its BMC, both on 127.0.0.1, both stopped on drop
//! (together with every workload process a test left on the host).

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use lifeboat_provider::{
    DeployRequest, DeploymentState, Generation, HealthCheck, Provider, Resources, Run, WorkloadSpec,
};
use lifeboat_provider_bare_metal::{
    BareMetalConfig, BmcConfig, BmcCredentials, HostCapacity, HostConfig, HostKeyPolicy, Runtime,
    Standby, Timeouts,
};
use lifeboat_testkit::{Peer, free_port, system_bin, venv_bin};

/// Generous upper bound for peers and workloads to come up on a busy machine; waits end
/// as soon as the condition holds.
pub const PATIENCE: Duration = Duration::from_secs(60);

fn run(cmd: &mut Command) -> Result<()> {
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
    pub port: u16,
    /// The private key the test logs in with.
    pub client_key: PathBuf,
    /// A `known_hosts` file that trusts this sshd.
    pub known_hosts: PathBuf,
    /// Where lifeboat keeps its copies on this "host" (a private folder per test).
    pub state_dir: PathBuf,
}

impl SshHost {
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

    /// A host entry for this sshd, `process` runtime, no BMC.
    pub fn host_config(&self, name: &str) -> HostConfig {
        HostConfig {
            name: name.into(),
            ssh: format!("127.0.0.1:{}", self.port),
            user: current_user(),
            key_file: Some(self.client_key.clone()),
            host_key: HostKeyPolicy {
                known_hosts: self.known_hosts.clone(),
                trust_on_first_use: false,
            },
            capacity: HostCapacity {
                slots: Some(4),
                cpu_millis: None,
                memory_mib: None,
            },
            labels: BTreeMap::from([("site".into(), "test".into())]),
            runtime: Runtime::Process,
            address: None,
            state_dir: Some(self.state_dir.display().to_string()),
            bmc: None,
        }
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
        for pid in self.leftover_pids() {
            let _ = Command::new("kill")
                .args(["-KILL", "--", &format!("-{pid}")])
                .status();
        }
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

/// sushy-tools' emulator with one fake system, basic auth (admin / a per-test password
/// in a file) and TLS with a per-test certificate.
pub struct Emulator {
    pub peer: Peer,
    pub url: String,
    pub system_id: String,
    pub ca_file: PathBuf,
    pub password_file: PathBuf,
    pub username_file: PathBuf,
    http: reqwest::Client,
    password: String,
}

impl Emulator {
    pub fn start(power_state: &str) -> Result<Emulator> {
        let emulator = venv_bin("sushy-emulator")?;
        let python = venv_bin("python")?;
        let openssl = system_bin("/usr/bin/openssl", "openssl")?;
        let dir = Peer::prepare_dir()?;
        let d = dir.path().to_path_buf();
        // A CA and a leaf certificate it signs, as a BMC vendor would ship (rustls
        // refuses a self-signed CA certificate used as the server's own).
        let ec = [
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
        ];
        run(Command::new(&openssl)
            .args([
                "req",
                "-x509",
                "-days",
                "1",
                "-subj",
                "/CN=lifeboat-test-ca",
            ])
            .args(ec)
            .arg("-keyout")
            .arg(d.join("ca.key"))
            .arg("-out")
            .arg(d.join("ca.pem")))?;
        run(Command::new(&openssl)
            .args(["req", "-subj", "/CN=127.0.0.1"])
            .args(ec)
            .arg("-keyout")
            .arg(d.join("key.pem"))
            .arg("-out")
            .arg(d.join("leaf.csr")))?;
        std::fs::write(
            d.join("leaf.ext"),
            "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n",
        )?;
        run(Command::new(&openssl)
            .args(["x509", "-req", "-days", "1", "-CAcreateserial"])
            .arg("-in")
            .arg(d.join("leaf.csr"))
            .arg("-CA")
            .arg(d.join("ca.pem"))
            .arg("-CAkey")
            .arg(d.join("ca.key"))
            .arg("-extfile")
            .arg(d.join("leaf.ext"))
            .arg("-out")
            .arg(d.join("cert.pem")))?;
        let password = format!("pw-{}", free_port());
        std::fs::write(d.join("password"), format!("{password}\n"))?;
        std::fs::write(d.join("username"), "admin\n")?;
        let hash = Command::new(python)
            .args(["-c", "import bcrypt,sys; print(bcrypt.hashpw(sys.argv[1].encode(), bcrypt.gensalt(rounds=4)).decode())"])
            .arg(&password)
            .output()?;
        ensure!(
            hash.status.success(),
            "bcrypt: {}",
            String::from_utf8_lossy(&hash.stderr)
        );
        std::fs::write(
            d.join("htpasswd"),
            format!("admin:{}", String::from_utf8_lossy(&hash.stdout)),
        )?;
        let port = free_port();
        let system_id = "22222222-2222-2222-2222-222222222222".to_owned();
        let conf = format!(
            "SUSHY_EMULATOR_LISTEN_IP = '127.0.0.1'\nSUSHY_EMULATOR_LISTEN_PORT = {port}\n\
             SUSHY_EMULATOR_FAKE_DRIVER = True\nSUSHY_EMULATOR_STATE_DIR = '{d}/state'\n\
             SUSHY_EMULATOR_AUTH_FILE = '{d}/htpasswd'\n\
             SUSHY_EMULATOR_FAKE_SYSTEMS = [{{'uuid': '{system_id}', 'name': 'standby', 'power_state': '{power_state}', \
             'nics': [{{'mac': '00:5c:52:31:3a:9d', 'ip': '127.0.0.1'}}]}}]\n",
            d = d.display()
        );
        std::fs::write(d.join("emu.conf"), conf)?;
        let mut cmd = Command::new(emulator);
        cmd.arg("--config").arg(d.join("emu.conf"));
        cmd.arg("--ssl-certificate")
            .arg(d.join("cert.pem"))
            .arg("--ssl-key")
            .arg(d.join("key.pem"));
        let mut peer = Peer::start("sushy-emulator", dir, cmd)?;
        peer.wait_for_tcp(SocketAddr::from(([127, 0, 0, 1], port)), PATIENCE)?;
        let ca = reqwest::Certificate::from_pem(&std::fs::read(d.join("ca.pem"))?)?;
        let http = reqwest::Client::builder().tls_certs_only([ca]).build()?;
        Ok(Emulator {
            peer,
            url: format!("https://127.0.0.1:{port}"),
            system_id,
            ca_file: d.join("ca.pem"),
            password_file: d.join("password"),
            username_file: d.join("username"),
            http,
            password,
        })
    }

    pub fn bmc_config(&self) -> BmcConfig {
        BmcConfig {
            url: self.url.clone(),
            system_id: self.system_id.clone(),
            credentials: BmcCredentials {
                username_env: None,
                username_file: Some(self.username_file.clone()),
                password_env: None,
                password_file: Some(self.password_file.clone()),
            },
            ca_file: Some(self.ca_file.clone()),
            insecure: false,
        }
    }

    /// The system's `PowerState`, read directly from the emulator.
    pub async fn power_state(&self) -> Result<String> {
        let url = format!("{}/redfish/v1/Systems/{}", self.url, self.system_id);
        let body: serde_json::Value = self
            .http
            .get(&url)
            .basic_auth("admin", Some(&self.password))
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        Ok(body["PowerState"].as_str().unwrap_or_default().to_owned())
    }

    /// Waits (polling) until the emulator reports `want`.
    pub async fn wait_power(&self, want: &str) -> Result<()> {
        let start = Instant::now();
        loop {
            let now = self.power_state().await?;
            if now == want {
                return Ok(());
            }
            if start.elapsed() > PATIENCE {
                bail!("PowerState stayed {now}, wanted {want}");
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

/// A provider config over `hosts` with short timeouts suited to loopback peers.
pub fn config(hosts: Vec<HostConfig>, standby: Standby) -> BareMetalConfig {
    BareMetalConfig {
        hosts,
        standby,
        timeouts: Timeouts {
            power_on: PATIENCE,
            ssh_ready: PATIENCE,
            connect: Duration::from_secs(10),
            power_off: PATIENCE,
        },
    }
}

/// A real HTTP server as the workload: Python's http.server on `$PORT`.
pub fn http_workload(name: &str, port: u16, replicas: u32) -> DeployRequest {
    DeployRequest {
        workload: WorkloadSpec {
            name: name.into(),
            run: Run::Command {
                command: vec![
                    "sh".into(),
                    "-c".into(),
                    "exec python3 -m http.server \"$PORT\" --bind 127.0.0.1".into(),
                ],
            },
            env: BTreeMap::from([("APP_MODE".into(), "test".into())]),
            port: Some(port),
            resources: Resources {
                cpu_millis: 100,
                memory_mib: 32,
            },
            replicas,
            health: Some(HealthCheck::Http { path: "/".into() }),
            extra: BTreeMap::new(),
        },
        generation: Generation(1),
    }
}

/// Polls `inspect` until the deployment is healthy (or fails, or patience runs out).
pub async fn wait_healthy(
    p: &dyn Provider,
    dep: &lifeboat_provider::DeploymentRef,
) -> Result<DeploymentState> {
    let start = Instant::now();
    loop {
        let state = p.inspect(dep).await?;
        match &state {
            DeploymentState::Healthy { .. } => return Ok(state),
            DeploymentState::Failed { reason } => bail!("deployment failed: {reason}"),
            _ if start.elapsed() > PATIENCE => bail!("not healthy in time: {state:?}"),
            _ => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
}
