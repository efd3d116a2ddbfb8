//! Real EC2 API peers: moto's EC2 server, and mitmproxy with `tests/peers/faults.py` in
//! front of it (switchable faults: EC2-shaped errors, delay, hang, reset). Both bind
//! 127.0.0.1 on ports picked here and are killed when dropped.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, Result, bail};

use crate::{Peer, free_port, repo_root, venv_bin};

/// The region the tests use.
pub const REGION: &str = "us-east-1";
/// An AMI moto knows.
pub const AMI: &str = "ami-12c6146b";
const START: Duration = Duration::from_secs(60);

/// A blocking `GET path` on 127.0.0.1:port; true on any 2xx answer.
pub fn get_ok(port: u16, path: &str) -> bool {
    let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    let request = format!("GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n");
    if stream.write_all(request.as_bytes()).is_err() {
        return false;
    }
    let mut head = [0u8; 12];
    stream.read_exact(&mut head).is_ok() && head.starts_with(b"HTTP/1.") && head[9] == b'2'
}

/// moto's server, one per test.
pub struct Moto {
    /// The server process.
    pub peer: Peer,
    /// Its port on 127.0.0.1.
    pub port: u16,
}

impl Moto {
    /// Starts moto on a free port and waits until it answers.
    pub fn start() -> Result<Moto> {
        let port = free_port();
        let dir = Peer::prepare_dir()?;
        let mut command = Command::new(venv_bin("moto_server")?);
        command.args(["-H", "127.0.0.1", "-p", &port.to_string()]);
        let mut peer = Peer::start("moto_server", dir, command)?;
        peer.wait_until(START, || get_ok(port, "/moto-api/"))?;
        Ok(Moto { peer, port })
    }

    /// Its base URL.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Switches moto's IAM checks on: from now on unknown access keys get `AuthFailure`.
    pub async fn enforce_auth(&self) -> Result<()> {
        let response = reqwest::Client::new()
            .post(format!("{}/moto-api/reset-auth", self.url()))
            .header("Content-Type", "text/plain")
            .body("0")
            .send()
            .await?;
        if !response.status().is_success() {
            bail!("moto reset-auth answered {}", response.status());
        }
        Ok(())
    }
}

/// mitmproxy in reverse mode in front of `upstream`, with the project's fault addon.
pub struct Proxy {
    /// The proxy process.
    pub peer: Peer,
    /// Its port on 127.0.0.1.
    pub port: u16,
}

impl Proxy {
    /// Starts mitmproxy in reverse mode in front of 127.0.0.1:`upstream`.
    pub fn start(upstream: u16) -> Result<Proxy> {
        Self::in_front_of(&format!("http://127.0.0.1:{upstream}"))
    }

    /// Starts mitmproxy in reverse mode in front of `upstream` (a URL), serving plain
    /// HTTP on loopback. An `https` upstream's certificate is not checked: it is a test
    /// peer on loopback (a kube-apiserver with its self-signed certificate).
    pub fn in_front_of(upstream: &str) -> Result<Proxy> {
        let port = free_port();
        let dir = Peer::prepare_dir()?;
        let confdir = dir.path().join("mitm");
        let addon = repo_root().join("tests/peers/faults.py");
        let mut command = Command::new(venv_bin("mitmdump")?);
        command
            .args([
                "--listen-host",
                "127.0.0.1",
                "--listen-port",
                &port.to_string(),
            ])
            .args(["--mode", &format!("reverse:{upstream}")])
            .args(["--set", "ssl_insecure=true"])
            .args(["--set", &format!("confdir={}", confdir.display())])
            .args(["--set", "keep_host_header=true"])
            .arg("-s")
            .arg(addon);
        let mut peer = Peer::start("mitmdump", dir, command)?;
        peer.wait_until(START, || get_ok(port, "/__fault"))?;
        Ok(Proxy { peer, port })
    }

    /// Its base URL.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Switches the fault (`{"mode": "none"}` forwards untouched again).
    pub async fn set(&self, fault: serde_json::Value) -> Result<()> {
        reqwest::Client::new()
            .post(format!("{}/__fault", self.url()))
            .json(&fault)
            .send()
            .await?
            .error_for_status()?;
        Ok(())
    }

    /// How many requests the current fault has touched.
    pub async fn hits(&self) -> Result<u64> {
        let state: serde_json::Value = reqwest::Client::new()
            .get(format!("{}/__fault", self.url()))
            .send()
            .await?
            .json()
            .await?;
        state["hits"].as_u64().context("no hits in the fault state")
    }
}
