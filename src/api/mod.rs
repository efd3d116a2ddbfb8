//! The daemon's HTTP surface (axum): `/healthz` and `/readyz` for whatever supervises
//! it, `/metrics` for Prometheus, and `/api/v1` for operators and `lifeboat`'s own
//! commands (`notice`, `pause`, `resume`, `evacuations`, `status`).
//!
//! `/api` needs the bearer token (see [`auth`]); the probes and metrics do not, so a
//! kubelet and a scraper need no secret (bind to loopback, the default, to keep them
//! private). Bodies are limited to `api.max_body_bytes`. With `api.tls` it speaks HTTPS
//! (rustls). The address it got is written to `STATE_DIR/api.json` so that the
//! commands find a running daemon without being told.

pub mod auth;
pub mod client;
pub mod openapi;
pub mod routes;
mod tls;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use axum::Router;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::{delete, get, post};
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::control::Control;
use crate::metrics::Metrics;
use crate::store::Store;
use auth::Token;

/// The file in the state folder that says where a running daemon's API is.
pub const ENDPOINT_FILE: &str = "api.json";

/// What `STATE_DIR/api.json` holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Endpoint {
    /// The base URL (`http://127.0.0.1:7480`).
    pub url: String,
    /// The daemon's process id.
    pub pid: u32,
}

/// How the loop is doing, for `/readyz`: when it last finished a round, how often it
/// should, whether an evacuation runs (a long one is no reason to take the daemon out
/// of service), and, in a cluster, whether this replica leads.
#[derive(Debug, Default)]
pub struct Heartbeat {
    last_round: Mutex<Option<Instant>>,
    evacuating: AtomicBool,
    every: Mutex<Option<Duration>>,
    role: Mutex<Role>,
}

/// A replica's part in leader election.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Role {
    /// The only daemon of its state folder (`lifeboat run`).
    #[default]
    Alone,
    /// Holds the lease: runs the loop.
    Leading,
    /// Another replica holds the lease: this one watches it, ready to take over.
    Following,
}

impl Heartbeat {
    /// The loop finishes a round at least this often when all is well (three probe
    /// intervals, say): longer without one and `/readyz` says the loop is stuck.
    pub fn expect_every(&self, within: Duration) {
        *self.every.lock().unwrap_or_else(|p| p.into_inner()) = Some(within);
    }

    /// This replica's role changed.
    pub fn role(&self, role: Role) {
        *self.role.lock().unwrap_or_else(|p| p.into_inner()) = role;
    }

    fn current_role(&self) -> Role {
        *self.role.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A round finished now.
    pub fn beat(&self) {
        *self.last_round.lock().unwrap_or_else(|p| p.into_inner()) = Some(Instant::now());
    }

    /// An evacuation starts (`true`) or ends.
    pub fn evacuating(&self, running: bool) {
        self.evacuating.store(running, Ordering::Relaxed);
    }

    /// Why the loop is not ready, if it is not: no round yet, or none for as long as
    /// [`Heartbeat::expect_every`] allows.
    fn stale(&self) -> Option<String> {
        if self.evacuating.load(Ordering::Relaxed) {
            return None;
        }
        let within = (*self.every.lock().unwrap_or_else(|p| p.into_inner()))
            .unwrap_or(Duration::from_secs(60));
        match *self.last_round.lock().unwrap_or_else(|p| p.into_inner()) {
            None => Some("no probe round has finished yet".into()),
            Some(at) if at.elapsed() > within => Some(format!(
                "no probe round for {:.0}s",
                at.elapsed().as_secs_f64()
            )),
            Some(_) => None,
        }
    }
}

/// What `/healthz`, `/readyz` and `/metrics` read: the same in a standalone daemon and
/// in every replica in a cluster, whether it leads or not.
#[derive(Clone)]
pub struct Probes {
    /// The metrics.
    pub metrics: Arc<Metrics>,
    /// The loop's heartbeat.
    pub heartbeat: Arc<Heartbeat>,
    /// The store `/readyz` checks is writable, when the process has one for good (a
    /// cluster replica opens its store anew each term).
    pub store: Option<Arc<Store>>,
}

/// `/healthz`, `/readyz` and `/metrics`, open to anyone who can reach them (a kubelet,
/// a scraper): they carry no secret.
pub fn probe_routes(probes: Probes) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .with_state(probes)
}

/// Everything a handler may touch.
pub struct ApiState {
    /// The configuration the daemon runs.
    pub config: Arc<Config>,
    /// The daemon's store.
    pub store: Arc<Store>,
    /// Pause and approvals.
    pub control: Control,
    /// The metrics.
    pub metrics: Arc<Metrics>,
    /// The loop's heartbeat.
    pub heartbeat: Arc<Heartbeat>,
}

/// The whole router: probes and metrics open, `/api/v1` behind `token`.
pub fn router(state: Arc<ApiState>, token: Token) -> Router {
    let limit = state.config.api.max_body_bytes;
    let api = Router::new()
        .route("/providers", get(routes::providers))
        .route("/workloads", get(routes::workloads))
        .route("/evacuations", get(routes::evacuations))
        .route("/evacuations/{id}/approve", post(routes::approve))
        .route("/evacuations/{id}/reject", post(routes::reject))
        .route("/notices", get(routes::notices).post(routes::raise_notice))
        .route("/notices/{id}", delete(routes::clear_notice))
        .route("/events", get(routes::events))
        .route("/pause", post(routes::pause))
        .route("/resume", post(routes::resume))
        .route("/openapi.json", get(routes::openapi))
        .layer(axum::middleware::from_fn_with_state(
            token,
            auth::require_token,
        ));
    let probes = Probes {
        metrics: state.metrics.clone(),
        heartbeat: state.heartbeat.clone(),
        store: Some(state.store.clone()),
    };
    Router::new()
        .nest("/api/v1", api.with_state(state))
        .merge(probe_routes(probes))
        .layer(DefaultBodyLimit::max(limit))
}

async fn readyz(State(probes): State<Probes>) -> impl IntoResponse {
    // A replica standing by does its job by watching the lease; were it not ready, a
    // Deployment of two would never finish rolling out.
    if probes.heartbeat.current_role() == Role::Following {
        return (
            StatusCode::OK,
            "ready: standing by (another replica leads)\n".to_owned(),
        );
    }
    let mut problems = Vec::new();
    if let Some(store) = &probes.store
        && let Err(e) = store.check_writable()
    {
        problems.push(format!("the store is not writable: {e:#}"));
    }
    problems.extend(probes.heartbeat.stale());
    if problems.is_empty() {
        (StatusCode::OK, "ready\n".to_owned())
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, problems.join("\n") + "\n")
    }
}

async fn metrics(State(probes): State<Probes>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        probes.metrics.encode(),
    )
}

/// A bound API server; it stops when the daemon's stop token is cancelled.
pub struct Server {
    /// The address it listens on (the port it got, when 0 was asked for).
    pub addr: SocketAddr,
    endpoint_file: PathBuf,
    task: tokio::task::JoinHandle<()>,
}

impl Server {
    /// Waits for the server to finish after the stop token was cancelled, and removes
    /// `api.json`.
    pub async fn stopped(self) {
        let _ = self.task.await;
        let _ = std::fs::remove_file(&self.endpoint_file);
    }
}

/// Binds `config.api.listen`, writes `STATE_DIR/api.json` and serves until `stop`.
pub async fn serve(
    state: Arc<ApiState>,
    token: Token,
    stop: CancellationToken,
) -> anyhow::Result<Server> {
    let api = state.config.api.clone();
    let tls = (api.tls.as_ref()).map(|tls| {
        (
            state.config.resolve_path(&tls.cert_file),
            state.config.resolve_path(&tls.key_file),
        )
    });
    let dir = state.store.dir().to_owned();
    let app = router(state, token);
    start(app, api.listen, tls, &dir, stop).await
}

/// Serves only the probes and metrics (a replica in a cluster, whose operators use the
/// resources rather than `/api`) on `listen`, writing `state_dir/api.json`.
pub async fn serve_probes(
    probes: Probes,
    listen: SocketAddr,
    state_dir: &Path,
    stop: CancellationToken,
) -> anyhow::Result<Server> {
    std::fs::create_dir_all(state_dir)
        .with_context(|| format!("creating {}", state_dir.display()))?;
    start(probe_routes(probes), listen, None, state_dir, stop).await
}

/// Binds `listen`, serves `app` over HTTP, or HTTPS with the (certificate, key) files
/// of `tls`, until `stop`, and says where in `dir/api.json`.
async fn start(
    app: Router,
    listen: SocketAddr,
    tls: Option<(PathBuf, PathBuf)>,
    dir: &Path,
    stop: CancellationToken,
) -> anyhow::Result<Server> {
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("binding the API to {listen} (api.listen)"))?;
    let addr = listener.local_addr()?;
    let (scheme, task) = match tls {
        None => {
            let server = axum::serve(listener, app).with_graceful_shutdown(stop.cancelled_owned());
            ("http", tokio::spawn(async move { log_end(server.await) }))
        }
        Some((cert, key)) => {
            let acceptor = tls::acceptor(&cert, &key)?;
            let listener = tls::TlsListener::new(listener, acceptor)?;
            let server = axum::serve(listener, app).with_graceful_shutdown(stop.cancelled_owned());
            ("https", tokio::spawn(async move { log_end(server.await) }))
        }
    };
    let endpoint = Endpoint {
        url: format!("{scheme}://{addr}"),
        pid: std::process::id(),
    };
    let endpoint_file = dir.join(ENDPOINT_FILE);
    write_endpoint(&endpoint_file, &endpoint)?;
    tracing::info!(url = %endpoint.url, "API listening");
    Ok(Server {
        addr,
        endpoint_file,
        task,
    })
}

fn log_end(result: std::io::Result<()>) {
    if let Err(e) = result {
        tracing::error!("the API server stopped: {e}");
    }
}

fn write_endpoint(path: &Path, endpoint: &Endpoint) -> anyhow::Result<()> {
    let text = serde_json::to_string(endpoint)?;
    // Written whole and renamed, so a reader never sees half a file.
    let partial = path.with_extension("json.partial");
    std::fs::write(&partial, text)
        .and_then(|()| std::fs::rename(&partial, path))
        .with_context(|| format!("writing {}", path.display()))
}

/// Where the daemon of `state_dir` serves its API, when one runs (its `api.json` is
/// there and the state's writer is alive).
pub fn running_endpoint(state_dir: &Path) -> anyhow::Result<Option<Endpoint>> {
    let path = state_dir.join(ENDPOINT_FILE);
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    };
    let endpoint: Endpoint =
        serde_json::from_str(&text).with_context(|| format!("reading {}", path.display()))?;
    // A daemon killed with SIGKILL leaves its api.json behind: only a live writer counts.
    let alive =
        crate::store::writer_pid(state_dir)?.is_some_and(|pid| pid == endpoint.pid.to_string());
    Ok(alive.then_some(endpoint))
}
