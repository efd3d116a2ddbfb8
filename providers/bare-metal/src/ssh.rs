//! Running one shell script on a host over SSH (russh), with the host-key policy of the
//! config and a classified failure.
//!
//! Each call opens its own connection: lifeboat talks to a host a few times per minute,
//! so a pooled session would save little and would have to survive host reboots.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use russh::client::{self, Handle};
use russh::keys::{self, PrivateKeyWithHashAlg};
use russh::{ChannelMsg, Disconnect};

use crate::classify::SshFailure;
use crate::config::{HostConfig, split_address};

/// Output kept per stream; a runaway script cannot fill the controller's memory.
const OUTPUT_LIMIT: usize = 1 << 20;

/// Where and how to log in to one host.
#[derive(Debug, Clone)]
pub(crate) struct SshTarget {
    pub host: String,
    pub port: u16,
    pub user: String,
    pub key_file: Option<PathBuf>,
    pub known_hosts: PathBuf,
    pub trust_on_first_use: bool,
    pub connect_timeout: Duration,
}

impl SshTarget {
    /// The target of a validated host config.
    pub fn of(host: &HostConfig, connect_timeout: Duration) -> SshTarget {
        let (h, port) = split_address(&host.ssh).unwrap_or_else(|| (host.ssh.clone(), 22));
        SshTarget {
            host: h,
            port,
            user: host.user.clone(),
            key_file: host.key_file.clone(),
            known_hosts: host.host_key.known_hosts.clone(),
            trust_on_first_use: host.host_key.trust_on_first_use,
            connect_timeout,
        }
    }
}

/// What a script printed and how it ended.
#[derive(Debug, Clone, Default)]
pub(crate) struct Output {
    /// Exit status; `None` when the remote side gave none (killed by a signal).
    pub status: Option<u32>,
    pub stdout: String,
    pub stderr: String,
}

/// An SSH failure with its classification input and a message free of secrets.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub(crate) struct SshError {
    pub failure: SshFailure,
    pub message: String,
    #[source]
    pub source: Option<russh::Error>,
}

impl SshError {
    fn new(failure: SshFailure, message: impl Into<String>) -> SshError {
        SshError {
            failure,
            message: message.into(),
            source: None,
        }
    }
}

/// Checks the server's key against `known_hosts` and remembers why it refused, because
/// russh itself only reports "unknown key" for every refusal.
struct Verifier {
    host: String,
    port: u16,
    known_hosts: PathBuf,
    trust_on_first_use: bool,
    refusal: Arc<Mutex<Option<SshFailure>>>,
}

impl Verifier {
    fn refuse(&self, why: SshFailure) -> Result<bool, russh::Error> {
        if let Ok(mut slot) = self.refusal.lock() {
            *slot = Some(why);
        }
        Ok(false)
    }
}

impl client::Handler for Verifier {
    type Error = russh::Error;

    async fn check_server_key(
        &mut self,
        server_key: &keys::PublicKeyOrCertificate,
    ) -> Result<bool, Self::Error> {
        // Host certificates would need a CA policy of their own; until there is one they
        // are refused rather than half-checked.
        let keys::PublicKeyOrCertificate::PublicKey { key, .. } = server_key else {
            return self.refuse(SshFailure::HostKeyUnknown);
        };
        let known = if self.known_hosts.exists() {
            keys::check_known_hosts_path(&self.host, self.port, key, &self.known_hosts)
        } else {
            Ok(false)
        };
        match known {
            Ok(true) => Ok(true),
            Ok(false) if self.trust_on_first_use => {
                keys::known_hosts::learn_known_hosts_path(
                    &self.host,
                    self.port,
                    key,
                    &self.known_hosts,
                )?;
                tracing::info!(host = %self.host, port = self.port, "recorded a new SSH host key (trust on first use)");
                Ok(true)
            }
            Ok(false) => self.refuse(SshFailure::HostKeyUnknown),
            Err(keys::Error::KeyChanged { .. }) => self.refuse(SshFailure::HostKeyChanged),
            Err(e) => Err(e.into()),
        }
    }
}

/// Runs `script` with the login user's shell and returns its output. A non-zero exit is
/// not an error here: the caller decides what it means. `limit` bounds the whole call.
pub(crate) async fn run(
    target: &SshTarget,
    script: &str,
    limit: Duration,
) -> Result<Output, SshError> {
    let refusal = Arc::new(Mutex::new(None));
    let session = tokio::time::timeout(target.connect_timeout, connect(target, refusal.clone()))
        .await
        .map_err(|_| {
            SshError::new(
                SshFailure::TimedOut,
                format!("no SSH login at {}:{} within {:?}", target.host, target.port, target.connect_timeout),
            )
        })?
        .map_err(|e| {
            // A host-key refusal surfaces from russh as a generic error; the verifier
            // knows the real reason.
            match refusal.lock().ok().and_then(|r| *r) {
                Some(why) => SshError {
                    failure: why,
                    message: match why {
                        SshFailure::HostKeyChanged => format!(
                            "the SSH host key of {}:{} differs from the one in {}",
                            target.host,
                            target.port,
                            target.known_hosts.display()
                        ),
                        _ => format!(
                            "the SSH host key of {}:{} is not in {} (and trust_on_first_use is off)",
                            target.host,
                            target.port,
                            target.known_hosts.display()
                        ),
                    },
                    source: None,
                },
                None => e,
            }
        })?;
    let result = tokio::time::timeout(limit, exec(&session, script)).await;
    // Closing politely is a courtesy; the connection is dropped either way.
    let _ = session
        .disconnect(Disconnect::ByApplication, "", "en")
        .await;
    match result {
        Ok(r) => r,
        Err(_) => Err(SshError::new(
            SshFailure::TimedOut,
            format!(
                "command on {}:{} did not finish within {limit:?}",
                target.host, target.port
            ),
        )),
    }
}

async fn connect(
    target: &SshTarget,
    refusal: Arc<Mutex<Option<SshFailure>>>,
) -> Result<Handle<Verifier>, SshError> {
    let verifier = Verifier {
        host: target.host.clone(),
        port: target.port,
        known_hosts: target.known_hosts.clone(),
        trust_on_first_use: target.trust_on_first_use,
        refusal,
    };
    let config = Arc::new(client::Config::default());
    let mut session = client::connect(config, (target.host.as_str(), target.port), verifier)
        .await
        .map_err(|e| transport_error(target, e))?;
    let accepted = match &target.key_file {
        Some(path) => login_with_key(&mut session, &target.user, path).await?,
        None => login_with_agent(&mut session, &target.user).await?,
    };
    if !accepted {
        return Err(SshError::new(
            SshFailure::AuthRejected,
            format!(
                "{}:{} rejected the SSH login of user {:?}",
                target.host, target.port, target.user
            ),
        ));
    }
    Ok(session)
}

async fn login_with_key(
    session: &mut Handle<Verifier>,
    user: &str,
    path: &Path,
) -> Result<bool, SshError> {
    let key = keys::load_secret_key(path, None).map_err(|e| {
        SshError::new(
            SshFailure::LocalKey,
            format!("cannot load SSH key {}: {e}", path.display()),
        )
    })?;
    let hash = session
        .best_supported_rsa_hash()
        .await
        .map_err(|e| protocol_error("negotiating the key algorithm", e))?
        .flatten();
    let result = session
        .authenticate_publickey(user, PrivateKeyWithHashAlg::new(Arc::new(key), hash))
        .await
        .map_err(|e| protocol_error("authenticating", e))?;
    Ok(result.success())
}

async fn login_with_agent(session: &mut Handle<Verifier>, user: &str) -> Result<bool, SshError> {
    let mut agent = keys::agent::client::AgentClient::connect_env()
        .await
        .map_err(|e| {
            SshError::new(
                SshFailure::LocalKey,
                format!("no key_file and no usable ssh-agent: {e}"),
            )
        })?;
    let identities = agent.request_identities().await.map_err(|e| {
        SshError::new(
            SshFailure::LocalKey,
            format!("listing the ssh-agent's keys: {e}"),
        )
    })?;
    let hash = session
        .best_supported_rsa_hash()
        .await
        .map_err(|e| protocol_error("negotiating the key algorithm", e))?
        .flatten();
    for identity in identities {
        let keys::agent::AgentIdentity::PublicKey { key, .. } = identity else {
            continue;
        };
        match session
            .authenticate_publickey_with(user, key, hash, &mut agent)
            .await
        {
            Ok(r) if r.success() => return Ok(true),
            Ok(_) => continue,
            // The agent may decline one key; the next may still work.
            Err(e) => tracing::debug!(error = %e, "ssh-agent could not sign with one key"),
        }
    }
    Ok(false)
}

async fn exec(session: &Handle<Verifier>, script: &str) -> Result<Output, SshError> {
    let mut channel = session
        .channel_open_session()
        .await
        .map_err(|e| protocol_error("opening a session channel", e))?;
    channel
        .exec(true, script)
        .await
        .map_err(|e| protocol_error("starting the command", e))?;
    let mut out = Output::default();
    let (mut stdout, mut stderr) = (Vec::new(), Vec::new());
    while let Some(msg) = channel.wait().await {
        match msg {
            ChannelMsg::Data { data } => append(&mut stdout, &data),
            ChannelMsg::ExtendedData { data, .. } => append(&mut stderr, &data),
            ChannelMsg::ExitStatus { exit_status } => out.status = Some(exit_status),
            _ => {}
        }
    }
    out.stdout = String::from_utf8_lossy(&stdout).into_owned();
    out.stderr = String::from_utf8_lossy(&stderr).into_owned();
    Ok(out)
}

fn append(buf: &mut Vec<u8>, data: &[u8]) {
    let room = OUTPUT_LIMIT.saturating_sub(buf.len());
    buf.extend_from_slice(&data[..data.len().min(room)]);
}

fn transport_error(target: &SshTarget, e: russh::Error) -> SshError {
    let (failure, what) = match &e {
        russh::Error::IO(io) => (SshFailure::Connect(io.kind()), "cannot connect to"),
        russh::Error::ConnectionTimeout => (SshFailure::TimedOut, "timed out connecting to"),
        russh::Error::KeyChanged { .. } | russh::Error::Keys(keys::Error::KeyChanged { .. }) => {
            (SshFailure::HostKeyChanged, "host key changed at")
        }
        russh::Error::UnknownKey => (SshFailure::HostKeyUnknown, "unknown host key at"),
        _ => (SshFailure::Protocol, "SSH handshake failed with"),
    };
    SshError {
        failure,
        message: format!("{what} {}:{}: {e}", target.host, target.port),
        source: Some(e),
    }
}

fn protocol_error(doing: &str, e: russh::Error) -> SshError {
    let failure = match &e {
        russh::Error::IO(io) => SshFailure::Connect(io.kind()),
        russh::Error::ConnectionTimeout | russh::Error::InactivityTimeout => SshFailure::TimedOut,
        _ => SshFailure::Protocol,
    };
    SshError {
        failure,
        message: format!("SSH failed while {doing}: {e}"),
        source: Some(e),
    }
}
