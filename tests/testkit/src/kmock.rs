//! kmock's Kubernetes emulator on loopback (`tests/peers/kmock_server.py`), with the
//! kubeconfig a client needs to reach it and the launcher's fault controls.
//!
//! The emulator runs no controllers: a test that needs a Deployment to look rolled out
//! writes its status itself ([`Kmock::set_status`]), as the Deployment controller would.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, Result, bail};

use crate::{Peer, free_port, repo_root, venv_bin};

/// A running emulator, stopped on drop.
pub struct Kmock {
    peer: Peer,
    port: u16,
    /// The token the emulator requires, as far as this handle knows.
    token: Option<String>,
}

impl Kmock {
    /// Starts an emulator; with `token`, every API request must carry it as a bearer
    /// token (else 401, as a real API server answers).
    pub fn start(token: Option<&str>) -> Result<Kmock> {
        let python = venv_bin("python")?;
        let script = repo_root().join("tests/peers/kmock_server.py");
        let port = free_port();
        let mut command = Command::new(python);
        command.arg(&script).arg("--port").arg(port.to_string());
        if let Some(t) = token {
            command.arg("--token").arg(t);
        }
        let mut peer = Peer::start("kmock", Peer::prepare_dir()?, command)?;
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        peer.wait_for_tcp(addr, Duration::from_secs(60))?;
        Ok(Kmock {
            peer,
            port,
            token: token.map(str::to_owned),
        })
    }

    /// The API server URL.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Writes a kubeconfig for this emulator (context `kmock`, namespace `namespace`,
    /// bearer token `token` if any) into the peer's folder and returns its path.
    pub fn kubeconfig(&self, namespace: &str, token: Option<&str>) -> Result<PathBuf> {
        let user = match token {
            Some(t) => format!("    token: {t}\n"),
            None => "    {}\n".to_owned(),
        };
        let yaml = format!(
            "apiVersion: v1\nkind: Config\ncurrent-context: kmock\n\
             clusters:\n- name: kmock\n  cluster:\n    server: {url}\n\
             contexts:\n- name: kmock\n  context:\n    cluster: kmock\n    user: lifeboat\n    namespace: {namespace}\n\
             users:\n- name: lifeboat\n  user:\n{user}",
            url = self.url()
        );
        let path = self.peer.path().join(format!("kubeconfig-{}", free_port()));
        std::fs::write(&path, yaml).with_context(|| format!("writing {}", path.display()))?;
        Ok(path)
    }

    /// Makes the emulator require `token` from now on (`None`: no authentication), as
    /// when credentials are revoked or rotated.
    pub fn set_token(&mut self, token: Option<&str>) -> Result<()> {
        let body = match token {
            Some(t) => format!("{{\"token\": {t:?}}}"),
            None => "{\"token\": null}".to_owned(),
        };
        self.control("/__kmock/token", &body)?;
        self.token = token.map(str::to_owned);
        Ok(())
    }

    /// Makes requests matching `rules` (`"delete deployments"`, `"list nodes"`) answer
    /// 403 Forbidden, and SelfSubjectAccessReviews for them answer "not allowed".
    pub fn forbid(&self, rules: &[&str]) -> Result<()> {
        let list: Vec<String> = rules.iter().map(|r| format!("{r:?}")).collect();
        self.control(
            "/__kmock/forbid",
            &format!("{{\"rules\": [{}]}}", list.join(", ")),
        )
    }

    fn control(&self, path: &str, body: &str) -> Result<()> {
        let (status, text) = self.request("POST", path, Some(("application/json", body)))?;
        if status != 200 {
            bail!("{path} answered {status}: {text}");
        }
        Ok(())
    }

    /// Writes `status` (a JSON object) into an object's status subresource with a merge
    /// patch, as its controller would. `path` is the object's API path, e.g.
    /// `/apis/apps/v1/namespaces/prod/deployments/api-g1`.
    pub fn set_status(&self, path: &str, status: &str) -> Result<()> {
        let body = format!("{{\"status\": {status}}}");
        let (code, text) = self.request(
            "PATCH",
            &format!("{path}/status"),
            Some(("application/merge-patch+json", &body)),
        )?;
        if code != 200 {
            bail!("PATCH {path}/status answered {code}: {text}");
        }
        Ok(())
    }

    /// One HTTP/1.1 request to the emulator (with the current token), returning the
    /// status code and body. For setting up state and checking it behind the client's back.
    pub fn request(
        &self,
        method: &str,
        path: &str,
        body: Option<(&str, &str)>,
    ) -> Result<(u16, String)> {
        let mut stream = TcpStream::connect(("127.0.0.1", self.port))
            .with_context(|| format!("connecting to kmock at {}", self.url()))?;
        stream.set_read_timeout(Some(Duration::from_secs(30)))?;
        let mut head = format!(
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nConnection: close\r\n",
            self.port
        );
        if let Some(t) = &self.token {
            head.push_str(&format!("Authorization: Bearer {t}\r\n"));
        }
        let (content_type, text) = body.unwrap_or(("application/json", ""));
        if body.is_some() {
            head.push_str(&format!("Content-Type: {content_type}\r\n"));
        }
        head.push_str(&format!("Content-Length: {}\r\n\r\n", text.len()));
        stream.write_all(head.as_bytes())?;
        stream.write_all(text.as_bytes())?;
        let mut response = String::new();
        stream
            .read_to_string(&mut response)
            .context("reading kmock's answer")?;
        let status = response
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .with_context(|| format!("kmock answered no status line: {response:?}"))?;
        let body = response
            .split_once("\r\n\r\n")
            .map(|(_, b)| b.to_owned())
            .unwrap_or_default();
        Ok((status, body))
    }

    /// The emulator's log so far.
    pub fn log_text(&self) -> String {
        self.peer.log_text()
    }
}
