//! The built-in demo workload: a small HTTP service the quickstart runs as its database,
//! API and web front, so a drill needs nothing beyond this repository.
//!
//! It answers `/` and `/healthz` with JSON naming itself, its generation (from
//! `LIFEBOAT_GENERATION`, so a client sees which copy answered) and, when it has an
//! upstream, whether it reached it. The upstream is looked up by public name in the
//! endpoints file on every request, the way a client would, so it follows a cutover
//! without a restart. An unreachable upstream is reported, never fatal: `/healthz`
//! stays 200, so one tier's outage does not cascade into its dependents' health.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use axum::Json;
use axum::extract::State;
use axum::routing::get;
use serde::{Deserialize, Serialize};

use crate::cutover::endpoints_file;

/// The environment variable that carries the endpoints file's path to workloads.
pub const ENDPOINTS_ENV: &str = "LIFEBOAT_ENDPOINTS";

/// How long one upstream check may take.
const UPSTREAM_TIMEOUT: Duration = Duration::from_secs(1);

/// `lifeboat demo`: options of the demo service.
#[derive(Debug, Clone, clap::Args)]
pub struct DemoOptions {
    /// The name it reports (usually the workload's).
    #[arg(long)]
    pub name: String,
    /// What it plays in the demo (db, api, web, ...); reported as is.
    #[arg(long, default_value = "service")]
    pub role: String,
    /// The public name of a service it depends on, looked up in the endpoints file.
    #[arg(long)]
    pub upstream: Option<String>,
    /// The endpoints file to look the upstream up in.
    #[arg(long, env = ENDPOINTS_ENV)]
    pub endpoints: Option<PathBuf>,
    /// The port to listen on (the local provider sets `PORT`).
    #[arg(long, env = "PORT")]
    pub port: u16,
    /// The address to listen on.
    #[arg(long, env = "LIFEBOAT_BIND", default_value = "127.0.0.1")]
    pub bind: IpAddr,
    /// The generation of this copy (the local provider sets `LIFEBOAT_GENERATION`).
    #[arg(long, env = "LIFEBOAT_GENERATION")]
    pub generation: Option<u64>,
}

/// What the service answers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Answer {
    /// Its name.
    pub name: String,
    /// Its generation, if it was given one.
    pub generation: Option<u64>,
    /// Its role.
    pub role: String,
    /// The upstream's status, when it has one.
    pub upstream: Option<UpstreamStatus>,
}

/// Whether the upstream could be reached on this request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UpstreamStatus {
    /// The public name looked up.
    pub name: String,
    /// Where the endpoints file pointed, if anywhere.
    pub endpoint: Option<String>,
    /// It answered `/healthz` with a 2xx.
    pub reachable: bool,
    /// The name and generation that answered (shows which copy serves).
    pub answered_by: Option<String>,
    /// Why it was not reached.
    pub error: Option<String>,
}

struct Service {
    opts: DemoOptions,
    http: reqwest::Client,
}

impl Service {
    async fn answer(&self) -> Answer {
        let upstream = match &self.opts.upstream {
            Some(name) => Some(self.check_upstream(name).await),
            None => None,
        };
        Answer {
            name: self.opts.name.clone(),
            generation: self.opts.generation,
            role: self.opts.role.clone(),
            upstream,
        }
    }

    async fn check_upstream(&self, name: &str) -> UpstreamStatus {
        let mut status = UpstreamStatus {
            name: name.to_owned(),
            endpoint: None,
            reachable: false,
            answered_by: None,
            error: None,
        };
        let Some(path) = self.opts.endpoints.clone() else {
            status.error = Some(format!(
                "no endpoints file: pass --endpoints or set {ENDPOINTS_ENV}"
            ));
            return status;
        };
        let lookup = tokio::task::spawn_blocking(move || endpoints_file::read(&path)).await;
        let endpoint = match lookup {
            Ok(Ok(map)) => map.get(name).cloned(),
            Ok(Err(e)) => {
                status.error = Some(format!("{e:#}"));
                return status;
            }
            Err(e) => {
                status.error = Some(format!("endpoints lookup failed: {e}"));
                return status;
            }
        };
        let Some(endpoint) = endpoint else {
            status.error = Some(format!("{name} is not in the endpoints file"));
            return status;
        };
        status.endpoint = Some(endpoint.to_string());
        let url = format!("http://{endpoint}/healthz");
        match self.http.get(&url).send().await {
            Ok(resp) if resp.status().is_success() => {
                status.reachable = true;
                status.answered_by = resp
                    .json::<Answer>()
                    .await
                    .ok()
                    .map(|a| match a.generation {
                        Some(g) => format!("{} g{g}", a.name),
                        None => a.name,
                    });
            }
            Ok(resp) => status.error = Some(format!("{url}: status {}", resp.status())),
            Err(e) => status.error = Some(format!("{url}: {e}")),
        }
        status
    }
}

async fn handle(State(service): State<Arc<Service>>) -> Json<Answer> {
    Json(service.answer().await)
}

/// The demo's routes, for [`serve`] and tests.
pub fn router(opts: DemoOptions) -> Result<axum::Router> {
    let http = reqwest::Client::builder()
        .timeout(UPSTREAM_TIMEOUT)
        // The upstream is on this host: an HTTP proxy from the environment must not
        // intercept it.
        .no_proxy()
        .build()
        .context("building the upstream HTTP client")?;
    let service = Arc::new(Service { opts, http });
    Ok(axum::Router::new()
        .route("/", get(handle))
        .route("/healthz", get(handle))
        .with_state(service))
}

/// Serves the demo on `opts.bind:opts.port` until SIGTERM or Ctrl-C.
pub async fn serve(opts: DemoOptions) -> Result<()> {
    let addr = SocketAddr::new(opts.bind, opts.port);
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("listening on {addr}"))?;
    tracing::info!(name = %opts.name, %addr, generation = ?opts.generation, "demo serving");
    axum::serve(listener, router(opts)?)
        .with_graceful_shutdown(shutdown())
        .await
        .context("serving")
}

async fn shutdown() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            // Without a SIGTERM handler the default action still stops the process.
            Err(_) => std::future::pending().await,
        }
    };
    tokio::select! {
        _ = term => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(
        name: &str,
        generation: u64,
        upstream: Option<&str>,
        endpoints: Option<PathBuf>,
    ) -> DemoOptions {
        DemoOptions {
            name: name.into(),
            role: "tier".into(),
            upstream: upstream.map(Into::into),
            endpoints,
            port: 0,
            bind: [127, 0, 0, 1].into(),
            generation: Some(generation),
        }
    }

    /// Serves `opts` on a port the OS picks; the task ends with the test's runtime.
    async fn start(opts: DemoOptions) -> SocketAddr {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let app = router(opts).unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        addr
    }

    async fn get(addr: SocketAddr, path: &str) -> (u16, Answer) {
        let resp = reqwest::Client::builder()
            .no_proxy()
            .build()
            .unwrap()
            .get(format!("http://{addr}{path}"))
            .send()
            .await
            .unwrap();
        (resp.status().as_u16(), resp.json().await.unwrap())
    }

    #[tokio::test]
    async fn answers_with_its_identity() {
        let addr = start(opts("db", 3, None, None)).await;
        for path in ["/", "/healthz"] {
            let (status, answer) = get(addr, path).await;
            assert_eq!(status, 200);
            assert_eq!(
                answer,
                Answer {
                    name: "db".into(),
                    generation: Some(3),
                    role: "tier".into(),
                    upstream: None
                }
            );
        }
    }

    #[tokio::test]
    async fn follows_its_upstream_through_the_endpoints_file_and_degrades_gracefully() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("endpoints.json");
        let db = start(opts("db", 2, None, None)).await;
        let api = start(opts("api", 5, Some("db.test"), Some(file.clone()))).await;

        // No file yet: reported, still healthy.
        let (status, answer) = get(api, "/healthz").await;
        assert_eq!(status, 200);
        let up = answer.upstream.unwrap();
        assert!(!up.reachable);
        assert!(up.error.unwrap().contains("not in the endpoints file"));

        std::fs::write(&file, format!(r#"{{"db.test": "{db}"}}"#)).unwrap();
        let up = get(api, "/").await.1.upstream.unwrap();
        assert!(up.reachable, "{up:?}");
        assert_eq!(up.endpoint, Some(db.to_string()));
        assert_eq!(up.answered_by.as_deref(), Some("db g2"));

        // Pointed at a port where nothing listens: unreachable, with the reason.
        let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let closed_addr = closed.local_addr().unwrap();
        drop(closed);
        std::fs::write(&file, format!(r#"{{"db.test": "{closed_addr}"}}"#)).unwrap();
        let (status, answer) = get(api, "/healthz").await;
        assert_eq!(status, 200);
        let up = answer.upstream.unwrap();
        assert!(!up.reachable && up.error.is_some(), "{up:?}");

        // A damaged file is reported too.
        std::fs::write(&file, "not json").unwrap();
        let up = get(api, "/").await.1.upstream.unwrap();
        assert!(up.error.unwrap().contains("endpoints.json"));

        // Without any file configured, it says how to give one.
        let lone = start(opts("web", 1, Some("api.test"), None)).await;
        let up = get(lone, "/").await.1.upstream.unwrap();
        assert!(up.error.unwrap().contains(ENDPOINTS_ENV));
    }
}
