//! The one implementation of a workload [`HealthCheck`]: a TCP connect, or an HTTP/1.1
//! GET that must answer 2xx, against a copy's `host:port`, within one deadline.
//!
//! Every adapter that checks a copy itself (local processes, EC2 instances, bare-metal
//! hosts) and the drill's independent prober use this module, so "healthy" means the
//! same thing wherever a workload runs: the same path handling, the same statuses, the
//! same timeout rules.
//!
//! The GET is written by hand over a tokio `TcpStream` rather than with an HTTP client
//! crate: it only needs the status line of a plain-HTTP answer, and this keeps the
//! contract free of a TLS stack and its crypto-provider set-up. It follows no redirect
//! (a `3xx` is not healthy, as the contract's `2xx` says) and uses no proxy from the
//! environment: the check is about the copy itself, reached directly.
//!
//! Behind the `health` cargo feature, so the contract without it still has no tokio I/O.

use std::borrow::Cow;
use std::io;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::{Endpoint, HealthCheck};

/// The deadline of one health check (connect, request and answer together) for callers
/// that have no setting of their own. Short, because a check is repeated until the
/// controller's own step deadline: a copy that cannot answer within it is not healthy
/// yet.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(2);

/// The most of an answer read while looking for its status line; a status line is
/// short, and anything longer is not HTTP.
const MAX_STATUS_LINE: usize = 1024;

/// What a check that passed saw.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Passed {
    /// The TCP connection was accepted.
    Connected,
    /// The HTTP GET answered with this 2xx status.
    Status(u16),
}

/// A check that did not pass: what was tried (`connect 10.0.0.5:80`,
/// `GET http://10.0.0.5:80/healthz`) and why it failed. The message is fit for logs and
/// status lines; callers that act on the failure match on [`Failure::reason`].
#[derive(Debug, thiserror::Error)]
#[error("{target}: {reason}")]
pub struct Failure {
    /// What was tried, for humans.
    pub target: String,
    /// Why it failed.
    pub reason: Reason,
}

/// Why a health check failed.
#[derive(Debug, thiserror::Error)]
pub enum Reason {
    /// Nothing accepted the connection (refused, no route, a name that does not resolve).
    #[error("{0}")]
    Connect(io::Error),
    /// No complete answer within the deadline (connect, request and status line).
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    /// The connection broke while the request was sent or the answer read.
    #[error("{0}")]
    Io(io::Error),
    /// The answer did not start with an HTTP/1.x status line.
    #[error("the answer is not HTTP (no status line)")]
    NotHttp,
    /// The server answered with a status outside `2xx`.
    #[error("status {0}")]
    Status(u16),
    /// The path holds white space or control characters, which would break the request
    /// line (or smuggle headers into it); nothing is sent.
    #[error("the path holds white space or control characters")]
    BadPath,
}

/// Runs `check` once against `endpoint`, all of it within `timeout`.
///
/// An HTTP path without a leading `/` gets one (`healthz` asks for `/healthz`). Never
/// panics and never retries: a failure is one observation, and the caller decides what
/// a run of them means.
pub async fn check(
    check: &HealthCheck,
    endpoint: &Endpoint,
    timeout: Duration,
) -> Result<Passed, Failure> {
    match check {
        HealthCheck::Tcp => tcp(endpoint, timeout).await,
        HealthCheck::Http { path } => http(endpoint, path, timeout).await,
    }
}

async fn tcp(endpoint: &Endpoint, timeout: Duration) -> Result<Passed, Failure> {
    let fail = |reason| Failure {
        target: format!("connect {endpoint}"),
        reason,
    };
    match tokio::time::timeout(timeout, connect(endpoint)).await {
        Ok(Ok(_)) => Ok(Passed::Connected),
        Ok(Err(e)) => Err(fail(Reason::Connect(e))),
        Err(_) => Err(fail(Reason::Timeout(timeout))),
    }
}

async fn http(endpoint: &Endpoint, path: &str, timeout: Duration) -> Result<Passed, Failure> {
    let path = request_path(path);
    let fail = |reason| Failure {
        target: format!("GET http://{endpoint}{path}"),
        reason,
    };
    if path.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(fail(Reason::BadPath));
    }
    let status = tokio::time::timeout(timeout, get_status(endpoint, &path))
        .await
        .map_err(|_| fail(Reason::Timeout(timeout)))?
        .map_err(fail)?;
    if (200..300).contains(&status) {
        Ok(Passed::Status(status))
    } else {
        Err(fail(Reason::Status(status)))
    }
}

/// The path as sent: with the leading `/` a request line needs.
fn request_path(path: &str) -> Cow<'_, str> {
    if path.starts_with('/') {
        Cow::Borrowed(path)
    } else {
        Cow::Owned(format!("/{path}"))
    }
}

async fn connect(endpoint: &Endpoint) -> io::Result<TcpStream> {
    // A (host, port) pair resolves names as well as addresses, IPv6 ones unbracketed.
    TcpStream::connect((endpoint.host.as_str(), endpoint.port)).await
}

async fn get_status(endpoint: &Endpoint, path: &str) -> Result<u16, Reason> {
    let mut stream = connect(endpoint).await.map_err(Reason::Connect)?;
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {endpoint}\r\nUser-Agent: lifeboat-health\r\n\
         Accept: */*\r\nConnection: close\r\n\r\n"
    );
    stream
        .write_all(request.as_bytes())
        .await
        .map_err(Reason::Io)?;
    // The status line is all that is needed; read until its end or a small cap.
    let mut buf = Vec::with_capacity(256);
    let mut chunk = [0u8; 256];
    while !buf.contains(&b'\n') && buf.len() < MAX_STATUS_LINE {
        let n = stream.read(&mut chunk).await.map_err(Reason::Io)?;
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    parse_status_line(&buf).ok_or(Reason::NotHttp)
}

/// The status code of an HTTP/1.x answer that starts with `bytes`; `None` when they are
/// not the start of one.
pub fn parse_status_line(bytes: &[u8]) -> Option<u16> {
    let line = bytes.split(|b| *b == b'\n').next()?;
    let line = std::str::from_utf8(line).ok()?;
    let mut parts = line.split_whitespace();
    if !parts.next()?.starts_with("HTTP/1.") {
        return None;
    }
    let code = parts.next()?;
    (code.len() == 3).then(|| code.parse().ok()).flatten()
}

#[cfg(test)]
#[path = "health_tests.rs"]
mod tests;
