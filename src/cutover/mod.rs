//! Cutover: making clients reach the new copy of a workload. A trait, so the endpoints
//! file, the exec hook and RFC 2136 DNS are interchangeable. [`build`] makes the one
//! the config names.

pub mod dns;
pub mod endpoints_file;
pub mod exec;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use lifeboat_provider::{Endpoint, ErrorClass, Generation};

use crate::config::{Config, CutoverConfig};
pub use endpoints_file::EndpointsFile;
pub use exec::Exec;

/// One traffic switch: point `public_name` at `new`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CutoverRequest {
    /// The workload being moved.
    pub workload: String,
    /// The name clients use.
    pub public_name: String,
    /// What lifeboat last pointed the name at (`None` on a first placement).
    pub old: Option<Endpoint>,
    /// The new copy.
    pub new: Endpoint,
    /// The generation of the new copy.
    pub generation: Generation,
}

/// What a client resolving a public name would get.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    /// The endpoint, if the name points anywhere.
    pub endpoint: Option<Endpoint>,
    /// How long a client may cache the answer (the DNS TTL); `None` when not cached.
    pub ttl: Option<Duration>,
}

/// Why a switch failed, classified in the adapter contract's terms so the executor
/// decides between retrying and giving the target up without reading the message:
/// a name changed behind lifeboat's back is `InvalidRequest` (never overwritten, so
/// never retried), a server that does not answer `Unavailable` or `Timeout`, a refused
/// key `PermissionDenied`; anything unforeseen is `Internal` (retried).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct CutoverError {
    /// How the executor treats it.
    pub class: ErrorClass,
    /// What happened, for humans.
    pub message: String,
}

impl CutoverError {
    /// An error of `class`.
    pub fn new(class: ErrorClass, message: impl Into<String>) -> CutoverError {
        CutoverError {
            class,
            message: message.into(),
        }
    }

    /// The name no longer points where lifeboat left it: someone else changed it.
    pub fn changed(message: impl Into<String>) -> CutoverError {
        CutoverError::new(ErrorClass::InvalidRequest, message)
    }
}

/// An error raised with context on its way up keeps the class of the [`CutoverError`]
/// inside it; any other error is `Internal`.
impl From<anyhow::Error> for CutoverError {
    fn from(error: anyhow::Error) -> CutoverError {
        let class = (error.chain())
            .find_map(|cause| cause.downcast_ref::<CutoverError>())
            .map_or(ErrorClass::Internal, |inner| inner.class);
        CutoverError::new(class, format!("{error:#}"))
    }
}

/// A way to move traffic.
#[async_trait]
pub trait Cutover: Send + Sync {
    /// Points `req.public_name` at `req.new` and returns once the change is in effect
    /// at the source of truth. Idempotent: repeating a switch that already happened
    /// succeeds. Refuses (with an error) when the name no longer points at `req.old`,
    /// so a concurrent manual change is never overwritten silently; that refusal is
    /// classified `InvalidRequest`.
    async fn switch(&self, req: &CutoverRequest) -> Result<(), CutoverError>;

    /// Resolves `public_name` the way a client would (read the file, query DNS).
    async fn resolve(&self, public_name: &str) -> anyhow::Result<Resolved>;
}

/// A cutover that moves nothing: what a shadow drill uses where the real backend (DNS,
/// an exec hook) would move the traffic of real clients. Every switch succeeds without
/// effect, and no name resolves, so nothing measures an outage it did not cause.
#[derive(Debug, Clone, Copy, Default)]
pub struct Skipped;

#[async_trait]
impl Cutover for Skipped {
    async fn switch(&self, _: &CutoverRequest) -> Result<(), CutoverError> {
        Ok(())
    }

    async fn resolve(&self, _: &str) -> anyhow::Result<Resolved> {
        Ok(Resolved {
            endpoint: None,
            ttl: None,
        })
    }
}

/// The cutover backend `config.cutover` names. Relative paths (the endpoints file, an
/// exec program written with a `/` such as `./switch.sh`) are taken relative to the
/// config file; a bare program name is looked up on `PATH`.
pub fn build(config: &Config) -> anyhow::Result<Arc<dyn Cutover>> {
    if let CutoverConfig::Dns(settings) = &config.cutover {
        // DNS needs the workloads too (record names, ports), not the section alone.
        return Ok(Arc::new(dns::Dns::from_config(settings, config)?));
    }
    build_with(&config.cutover, |p| config.resolve_path(p))
}

/// Environment variables a workload needs to find its dependencies the way a client
/// does: for the endpoints-file backend, [`crate::demo::ENDPOINTS_ENV`] with the file's
/// absolute path (a workload's working folder is not the config file's). Empty for
/// backends that clients reach through DNS or a vendor's own routing.
pub fn client_env(config: &Config) -> BTreeMap<String, String> {
    let mut env = BTreeMap::new();
    if let CutoverConfig::EndpointsFile { path } = &config.cutover {
        let path = config.resolve_path(path);
        let path = std::path::absolute(&path).unwrap_or(path);
        env.insert(
            crate::demo::ENDPOINTS_ENV.to_owned(),
            path.to_string_lossy().into_owned(),
        );
    }
    env
}

/// [`build`] on the cutover section alone, with the function that resolves relative
/// paths.
pub fn build_with(
    cutover: &CutoverConfig,
    resolve: impl Fn(&Path) -> PathBuf,
) -> anyhow::Result<Arc<dyn Cutover>> {
    let program = |argv: &[String]| -> Vec<String> {
        let mut argv = argv.to_vec();
        if let Some(first) = argv.first_mut()
            && first.contains('/')
        {
            *first = resolve(Path::new(first.as_str()))
                .to_string_lossy()
                .into_owned();
        }
        argv
    };
    Ok(match cutover {
        CutoverConfig::EndpointsFile { path } => Arc::new(EndpointsFile::new(resolve(path))),
        CutoverConfig::Exec {
            command,
            timeout,
            resolve_command,
        } => {
            anyhow::ensure!(!command.is_empty(), "cutover.command is empty");
            Arc::new(Exec::new(
                program(command),
                resolve_command.as_deref().map(program),
                *timeout,
            ))
        }
        CutoverConfig::Dns(_) => {
            anyhow::bail!("the dns cutover is built from the whole config (cutover::build)")
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use anyhow::Context;

    #[test]
    fn a_class_survives_context_and_anything_else_is_internal() {
        let changed: anyhow::Result<()> =
            Err(CutoverError::changed("db.test points elsewhere").into());
        let e = CutoverError::from(changed.context("switching db.test").unwrap_err());
        assert_eq!(e.class, ErrorClass::InvalidRequest);
        assert_eq!(e.message, "switching db.test: db.test points elsewhere");
        let other = CutoverError::from(anyhow::anyhow!("disk full"));
        assert_eq!(other.class, ErrorClass::Internal);
    }

    #[tokio::test]
    async fn builds_each_backend_with_paths_relative_to_the_config() {
        let dir = tempfile::tempdir().unwrap();
        let base = dir.path().to_owned();
        let resolve = |p: &Path| base.join(p);
        let file = CutoverConfig::EndpointsFile {
            path: "endpoints.json".into(),
        };
        let backend = build_with(&file, resolve).unwrap();
        std::fs::write(base.join("endpoints.json"), r#"{"web": "127.0.0.1:8080"}"#).unwrap();
        let resolved = backend.resolve("web").await.unwrap();
        assert_eq!(resolved.endpoint.unwrap().port, 8080);

        let script = base.join("where.sh");
        std::fs::write(&script, "#!/bin/sh\necho 10.0.0.1:443\n").unwrap();
        std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .unwrap();
        let exec = CutoverConfig::Exec {
            command: vec!["true".into()],
            timeout: Duration::from_secs(30),
            resolve_command: Some(vec!["./where.sh".into()]),
        };
        let backend = build_with(&exec, resolve).unwrap();
        let resolved = backend.resolve("web").await.unwrap();
        assert_eq!(resolved.endpoint.unwrap().host, "10.0.0.1");

        let empty = CutoverConfig::Exec {
            command: vec![],
            timeout: Duration::from_secs(1),
            resolve_command: None,
        };
        assert!(build_with(&empty, resolve).is_err());
    }
}
