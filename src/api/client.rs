//! The commands' side of the API: `lifeboat notice`, `pause`, `resume`, `evacuations`
//! and `status` talk to a running daemon through this.

use anyhow::{Context, bail};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::auth::Token;

/// A client of one daemon's `/api/v1`.
pub struct Client {
    base: String,
    token: Token,
    http: reqwest::Client,
}

impl Client {
    /// A client of the daemon at `url` (`http://127.0.0.1:7480`). With `trust`, a PEM
    /// certificate file, HTTPS also accepts a server certificate it signs (or is): the
    /// daemon's own `api.tls.cert_file`, typically self-signed.
    pub fn new(url: &str, token: Token, trust: Option<&std::path::Path>) -> anyhow::Result<Client> {
        let mut builder = reqwest::Client::builder().timeout(std::time::Duration::from_secs(30));
        if let Some(file) = trust {
            let pem = std::fs::read(file)
                .with_context(|| format!("reading the API certificate {}", file.display()))?;
            for cert in reqwest::Certificate::from_pem_bundle(&pem)
                .with_context(|| format!("reading the API certificate {}", file.display()))?
            {
                builder = builder.add_root_certificate(cert);
            }
        }
        let http = builder.build().context("building the HTTP client")?;
        Ok(Client {
            base: format!("{}/api/v1", url.trim_end_matches('/')),
            token,
            http,
        })
    }

    /// A client of the daemon of `config` at `url`, with the token the commands use
    /// (see [`super::auth::client_token`]) and the daemon's own certificate, when the
    /// config gives it one.
    pub fn of_daemon(config: &crate::config::Config, url: &str) -> anyhow::Result<Client> {
        let token = super::auth::client_token(config, &config.state_dir)?;
        let trust = (config.api.tls.as_ref()).map(|tls| config.resolve_path(&tls.cert_file));
        Client::new(url, token, trust.as_deref())
    }

    /// `GET path`.
    pub async fn get<T: DeserializeOwned>(&self, path: &str) -> anyhow::Result<T> {
        self.call(self.http.get(self.url(path)), path).await
    }

    /// `POST path` with a JSON body.
    pub async fn post<T: DeserializeOwned>(
        &self,
        path: &str,
        body: &impl Serialize,
    ) -> anyhow::Result<T> {
        self.call(self.http.post(self.url(path)).json(body), path)
            .await
    }

    /// `DELETE path`.
    pub async fn delete(&self, path: &str) -> anyhow::Result<()> {
        let response = self.send(self.http.delete(self.url(path)), path).await?;
        drop(response);
        Ok(())
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    async fn call<T: DeserializeOwned>(
        &self,
        request: reqwest::RequestBuilder,
        path: &str,
    ) -> anyhow::Result<T> {
        self.send(request, path)
            .await?
            .json()
            .await
            .with_context(|| format!("reading the daemon's answer to {path}"))
    }

    async fn send(
        &self,
        request: reqwest::RequestBuilder,
        path: &str,
    ) -> anyhow::Result<reqwest::Response> {
        let response = request
            .bearer_auth(self.token.expose())
            .send()
            .await
            .with_context(|| format!("calling the daemon at {}{path}", self.base))?;
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }
        let body: serde_json::Value = response.json().await.unwrap_or_default();
        let message = body["error"].as_str().unwrap_or("no reason given");
        match body["field"].as_str() {
            Some(field) => bail!("the daemon refused {path} ({status}): {field}: {message}"),
            None => bail!("the daemon refused {path} ({status}): {message}"),
        }
    }
}
