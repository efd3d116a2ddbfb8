//! A small Redfish client: the service root, one `ComputerSystem` and its
//! `ComputerSystem.Reset` action — all lifeboat needs to keep a host as cold standby.
//!
//! Typed serde structs cover only the fields read; Redfish services add many more, which
//! serde ignores.

use std::time::Duration;

use lifeboat_provider::{ErrorClass, Op, ProviderError};
use serde::{Deserialize, Serialize};

use crate::classify;
use crate::config::{BmcConfig, BmcCredentials};

/// `GET /redfish/v1`: proves the service answers (it needs no login).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ServiceRoot {
    /// The Redfish protocol version, e.g. `1.5.0`.
    #[serde(default)]
    pub redfish_version: Option<String>,
}

/// `GET /redfish/v1/Systems/{id}`: the fields of a `ComputerSystem` lifeboat reads.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ComputerSystem {
    /// The system id.
    pub id: String,
    /// `On`, `Off`, `PoweringOn`, `PoweringOff`, `Paused`; absent on some services
    /// while the BMC itself boots.
    #[serde(default)]
    pub power_state: Option<PowerState>,
    /// Health of the system.
    #[serde(default)]
    pub status: Option<Status>,
}

/// A Redfish `PowerState`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
pub enum PowerState {
    /// Powered on.
    On,
    /// Powered off.
    Off,
    /// Transitioning to on.
    PoweringOn,
    /// Transitioning to off.
    PoweringOff,
    /// Paused (virtual systems).
    Paused,
    /// A value this client does not know.
    #[serde(other)]
    Unknown,
}

/// A Redfish `Status` object.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Status {
    /// `OK`, `Warning` or `Critical`.
    #[serde(default)]
    pub health: Option<String>,
    /// The health of the system and everything under it (some services spell it
    /// `HealthRollUp`).
    #[serde(default, alias = "HealthRollUp")]
    pub health_rollup: Option<String>,
}

/// The body of `POST .../Actions/ComputerSystem.Reset`.
#[derive(Debug, Clone, Copy, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ResetRequest {
    /// What to do.
    pub reset_type: ResetType,
}

/// The `ResetType` values lifeboat uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum ResetType {
    /// Power on.
    On,
    /// Ask the operating system to shut down.
    GracefulShutdown,
    /// Cut the power.
    ForceOff,
}

/// One host's BMC.
#[derive(Debug, Clone)]
pub(crate) struct Bmc {
    base: String,
    system_id: String,
    credentials: BmcCredentials,
    http: reqwest::Client,
}

impl Bmc {
    /// A client for `config`; reads the CA file now so a bad path fails at start-up.
    pub fn new(config: &BmcConfig, connect_timeout: Duration) -> Result<Bmc, String> {
        let mut builder = reqwest::Client::builder()
            .connect_timeout(connect_timeout)
            .timeout(connect_timeout * 3);
        if let Some(ca) = &config.ca_file {
            let pem = std::fs::read(ca)
                .map_err(|e| format!("reading bmc ca_file {}: {e}", ca.display()))?;
            let cert = reqwest::Certificate::from_pem(&pem)
                .map_err(|e| format!("bmc ca_file {} is not PEM: {e}", ca.display()))?;
            builder = builder.tls_certs_only([cert]);
        }
        if config.insecure {
            builder = builder.tls_danger_accept_invalid_certs(true);
        }
        let http = builder
            .build()
            .map_err(|e| format!("building the BMC client: {e}"))?;
        Ok(Bmc {
            base: config.url.trim_end_matches('/').to_owned(),
            system_id: config.system_id.clone(),
            credentials: config.credentials.clone(),
            http,
        })
    }

    fn system_url(&self) -> String {
        format!("{}/redfish/v1/Systems/{}", self.base, self.system_id)
    }

    /// The service root, unauthenticated: tells "BMC down" from "BMC refuses us".
    pub async fn service_root(&self, op: Op) -> Result<ServiceRoot, ProviderError> {
        let url = format!("{}/redfish/v1/", self.base);
        let resp = self
            .http
            .get(&url)
            .send()
            .await
            .map_err(|e| transport(op, &url, e))?;
        json(op, &url, resp).await
    }

    /// The system's power state and health (an authenticated call).
    pub async fn system(&self, op: Op) -> Result<ComputerSystem, ProviderError> {
        let url = self.system_url();
        let (user, password) = self.credentials(op)?;
        let resp = self
            .http
            .get(&url)
            .basic_auth(user, Some(password))
            .send()
            .await
            .map_err(|e| transport(op, &url, e))?;
        json(op, &url, resp).await
    }

    /// Sends a `ComputerSystem.Reset`; returns once the BMC accepted it.
    pub async fn reset(&self, op: Op, reset_type: ResetType) -> Result<(), ProviderError> {
        let url = format!("{}/Actions/ComputerSystem.Reset", self.system_url());
        let (user, password) = self.credentials(op)?;
        let resp = self
            .http
            .post(&url)
            .basic_auth(user, Some(password))
            .json(&ResetRequest { reset_type })
            .send()
            .await
            .map_err(|e| transport(op, &url, e))?;
        check(op, &url, resp).await.map(drop)
    }

    /// Polls `PowerState` until it reads `want` or `limit` passes. Polls often at first
    /// (emulated and virtual BMCs switch in seconds) and backs off to every 2 s. A
    /// passing hiccup of the BMC (a retryable error: a 5xx, a reset) does not end the
    /// wait; the limit decides, and its error names the last hiccup.
    pub async fn wait_for(
        &self,
        op: Op,
        want: PowerState,
        limit: Duration,
    ) -> Result<(), ProviderError> {
        let deadline = tokio::time::Instant::now() + limit;
        let mut pause = Duration::from_millis(250);
        loop {
            let last = match self.system(op).await {
                Ok(system) if system.power_state == Some(want) => return Ok(()),
                Ok(system) => format!("{:?}", system.power_state),
                Err(e) if e.class.is_retryable() => e.to_string(),
                Err(e) => return Err(e),
            };
            if tokio::time::Instant::now() + pause > deadline {
                return Err(ProviderError::new(
                    ErrorClass::Timeout,
                    op,
                    format!(
                        "{} did not reach PowerState {want:?} within {limit:?} (last {last})",
                        self.system_url()
                    ),
                )
                .with_code("power-state-timeout"));
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_secs(2));
        }
    }

    fn credentials(&self, op: Op) -> Result<(String, String), ProviderError> {
        let c = &self.credentials;
        let user = secret(
            op,
            "username",
            c.username_env.as_deref(),
            c.username_file.as_deref(),
        )?;
        let password = secret(
            op,
            "password",
            c.password_env.as_deref(),
            c.password_file.as_deref(),
        )?;
        Ok((user, password))
    }
}

/// Reads one credential from its environment variable or file. The error names where it
/// looked, never what it found.
fn secret(
    op: Op,
    what: &str,
    env: Option<&str>,
    file: Option<&std::path::Path>,
) -> Result<String, ProviderError> {
    let missing = |detail: String| {
        ProviderError::new(
            ErrorClass::InvalidRequest,
            op,
            format!("BMC {what}: {detail}"),
        )
        .with_code("bmc-credentials-missing")
    };
    if let Some(var) = env {
        return std::env::var(var)
            .map_err(|_| missing(format!("environment variable {var} is not set")));
    }
    if let Some(path) = file {
        let text = std::fs::read_to_string(path)
            .map_err(|e| missing(format!("cannot read {}: {}", path.display(), e.kind())))?;
        return Ok(text.trim_end_matches(['\r', '\n']).to_owned());
    }
    Err(missing("no source configured".into()))
}

fn transport(op: Op, url: &str, e: reqwest::Error) -> ProviderError {
    let class = if e.is_timeout() {
        ErrorClass::Timeout
    } else if let Some(io) = find_io(&e) {
        classify::io(io.kind())
    } else {
        ErrorClass::Unavailable
    };
    // reqwest's own message carries no credentials (basic auth lives in a header).
    ProviderError::new(class, op, format!("BMC request {url} failed: {e}"))
        .with_code("bmc-transport")
        .with_source(e)
}

fn find_io<'a>(e: &'a (dyn std::error::Error + 'static)) -> Option<&'a std::io::Error> {
    let mut cur = e.source();
    while let Some(err) = cur {
        if let Some(io) = err.downcast_ref::<std::io::Error>() {
            return Some(io);
        }
        cur = err.source();
    }
    None
}

async fn check(
    op: Op,
    url: &str,
    resp: reqwest::Response,
) -> Result<reqwest::Response, ProviderError> {
    let status = resp.status();
    if status.is_success() {
        return Ok(resp);
    }
    // The Redfish error body names the message id; keep it for operators.
    let body: serde_json::Value = resp.json().await.unwrap_or_default();
    let detail = body
        .pointer("/error/message")
        .and_then(|m| m.as_str())
        .unwrap_or("")
        .chars()
        .take(200)
        .collect::<String>();
    Err(ProviderError::new(
        classify::bmc_status(status.as_u16()),
        op,
        format!(
            "BMC answered {status} to {url}{}",
            if detail.is_empty() {
                String::new()
            } else {
                format!(": {detail}")
            }
        ),
    )
    .with_code(format!("HTTP {}", status.as_u16())))
}

async fn json<T: serde::de::DeserializeOwned>(
    op: Op,
    url: &str,
    resp: reqwest::Response,
) -> Result<T, ProviderError> {
    let resp = check(op, url, resp).await?;
    let bytes = resp.bytes().await.map_err(|e| transport(op, url, e))?;
    serde_json::from_slice(&bytes).map_err(|e| {
        ProviderError::new(
            ErrorClass::Internal,
            op,
            format!("BMC sent an unexpected body for {url}: {e}"),
        )
        .with_code("bmc-bad-body")
        .with_source(e)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn computer_system_reads_power_state_and_health() {
        let body = r##"{"@odata.type":"#ComputerSystem.v1_13_0.ComputerSystem","Id":"abc",
            "Status":{"State":"Enabled","Health":"Critical","HealthRollUp":"OK"},
            "PowerState":"PoweringOn","Boot":{"BootSourceOverrideTarget":"Hdd"}}"##;
        let sys: ComputerSystem = serde_json::from_str(body).unwrap();
        assert_eq!(sys.id, "abc");
        assert_eq!(sys.power_state, Some(PowerState::PoweringOn));
        assert_eq!(sys.status.unwrap().health.as_deref(), Some("Critical"));
    }

    #[test]
    fn unknown_power_states_do_not_fail_parsing() {
        let sys: ComputerSystem =
            serde_json::from_str(r#"{"Id":"x","PowerState":"Hibernating"}"#).unwrap();
        assert_eq!(sys.power_state, Some(PowerState::Unknown));
    }

    #[test]
    fn reset_body_is_what_redfish_expects() {
        let body = serde_json::to_string(&ResetRequest {
            reset_type: ResetType::ForceOff,
        })
        .unwrap();
        assert_eq!(body, r#"{"ResetType":"ForceOff"}"#);
    }
}
