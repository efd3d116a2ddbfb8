//! sushy-tools' Redfish emulator as a BMC on 127.0.0.1 (fake driver, basic auth from a
//! per-test password file, TLS with a per-test CA), and [`PoweredHost`]: an sshd "host"
//! that is up exactly while the emulator says its power is on, so a test sees lifeboat
//! wake a cold-standby server through Redfish and power it off again.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{Result, bail, ensure};

use crate::sshd::{PATIENCE, SshHost, run};
use crate::{Peer, free_port, system_bin, venv_bin};

/// sushy-tools' emulator with one fake system, basic auth (admin / a per-test password
/// in a file) and TLS with a per-test certificate.
pub struct Emulator {
    /// The emulator process.
    pub peer: Peer,
    /// Its base URL (`https://127.0.0.1:PORT`).
    pub url: String,
    /// The one `ComputerSystem` it emulates.
    pub system_id: String,
    /// The CA that signs its certificate.
    pub ca_file: PathBuf,
    /// A file with the BMC password (as lifeboat's config names it).
    pub password_file: PathBuf,
    /// A file with the BMC user name.
    pub username_file: PathBuf,
    reader: PowerReader,
}

/// Reads a system's `PowerState` with the emulator's credentials; cheap to clone.
#[derive(Clone)]
struct PowerReader {
    http: reqwest::Client,
    url: String,
    password: String,
}

impl PowerReader {
    async fn power_state(&self) -> Result<String> {
        let body: serde_json::Value = self
            .http
            .get(&self.url)
            .basic_auth("admin", Some(&self.password))
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        Ok(body["PowerState"].as_str().unwrap_or_default().to_owned())
    }
}

impl Emulator {
    /// Starts an emulator whose one system is in `power_state` (`On` or `Off`), with a
    /// fresh state folder, and waits until it accepts connections.
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
            reader: PowerReader {
                http,
                url: format!("https://127.0.0.1:{port}/redfish/v1/Systems/{system_id}"),
                password,
            },
            system_id,
            ca_file: d.join("ca.pem"),
            password_file: d.join("password"),
            username_file: d.join("username"),
        })
    }

    /// The system's `PowerState`, read directly from the emulator.
    pub async fn power_state(&self) -> Result<String> {
        self.reader.power_state().await
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

/// An sshd "host" behind the emulator's system: sshd runs while the system's power is
/// `On` and is stopped, with every workload on it, while it is `Off`, the way a real
/// server's OS comes and goes with its power. A watcher thread follows the emulator;
/// dropping the `PoweredHost` stops it and the host.
pub struct PoweredHost {
    host: Arc<Mutex<SshHost>>,
    stop: Arc<AtomicBool>,
    watcher: Option<JoinHandle<()>>,
    /// The host's sshd port on 127.0.0.1 (the same across power cycles).
    pub port: u16,
    /// The private key to log in with.
    pub client_key: PathBuf,
    /// A `known_hosts` file that trusts the host.
    pub known_hosts: PathBuf,
    /// Where lifeboat keeps its copies on this host.
    pub state_dir: PathBuf,
    /// How many times the watcher brought the host up (power-on seen).
    pub boots: Arc<std::sync::atomic::AtomicU32>,
}

impl PoweredHost {
    /// Puts `host` (prepared, not launched) behind `emulator`'s system.
    pub fn start(emulator: &Emulator, host: SshHost) -> Result<PoweredHost> {
        let (port, client_key, known_hosts, state_dir) = (
            host.port,
            host.client_key.clone(),
            host.known_hosts.clone(),
            host.state_dir.clone(),
        );
        let host = Arc::new(Mutex::new(host));
        let stop = Arc::new(AtomicBool::new(false));
        let boots = Arc::new(std::sync::atomic::AtomicU32::new(0));
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let (reader, h, s, b) = (
            emulator.reader.clone(),
            host.clone(),
            stop.clone(),
            boots.clone(),
        );
        let watcher = std::thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                let state = runtime.block_on(reader.power_state()).unwrap_or_default();
                let mut host = h.lock().unwrap_or_else(|p| p.into_inner());
                match (state.as_str(), host.peer.is_some()) {
                    ("On", false) => {
                        if let Err(e) = host.launch() {
                            eprintln!("powered host: sshd did not start: {e:#}");
                        } else {
                            b.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    ("Off", true) => {
                        host.kill_workloads();
                        host.stop();
                    }
                    _ => {}
                }
                drop(host);
                std::thread::sleep(Duration::from_millis(100));
            }
        });
        Ok(PoweredHost {
            host,
            stop,
            watcher: Some(watcher),
            port,
            client_key,
            known_hosts,
            state_dir,
            boots,
        })
    }

    /// Whether sshd runs now (the host is "up").
    pub fn is_up(&self) -> bool {
        self.host.lock().map(|h| h.peer.is_some()).unwrap_or(false)
    }

    /// Process groups of the copies lifeboat started here and did not stop.
    pub fn leftover_pids(&self) -> Vec<i32> {
        self.host
            .lock()
            .map(|h| h.leftover_pids())
            .unwrap_or_default()
    }
}

impl Drop for PoweredHost {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(w) = self.watcher.take() {
            let _ = w.join();
        }
        // The SshHost itself (sshd and leftover workloads) goes with the last Arc.
    }
}
