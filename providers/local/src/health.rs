//! Health checks against a copy's port: a TCP connect, or an HTTP/1.1 GET that must
//! answer 2xx.
//!
//! The GET is written by hand over a tokio `TcpStream` rather than with an HTTP client
//! crate: it only needs the status line of a plain-HTTP loopback answer, and this keeps
//! the adapter free of a TLS stack and its crypto-provider set-up.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// How long one health check may take in all (connect, request, answer).
pub const TIMEOUT: Duration = Duration::from_secs(2);

/// Whether something accepts TCP connections at `addr` within [`TIMEOUT`].
pub async fn tcp(addr: SocketAddr) -> Result<(), String> {
    match tokio::time::timeout(TIMEOUT, TcpStream::connect(addr)).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(format!("connect {addr}: {e}")),
        Err(_) => Err(format!("connect {addr}: no answer within {TIMEOUT:?}")),
    }
}

/// Sends `GET path` to `addr` and succeeds on a 2xx status, within [`TIMEOUT`].
pub async fn http(addr: SocketAddr, path: &str) -> Result<u16, String> {
    let status = tokio::time::timeout(TIMEOUT, get_status(addr, path))
        .await
        .map_err(|_| format!("GET http://{addr}{path}: no answer within {TIMEOUT:?}"))?
        .map_err(|e| format!("GET http://{addr}{path}: {e}"))?;
    if (200..300).contains(&status) {
        Ok(status)
    } else {
        Err(format!("GET http://{addr}{path}: status {status}"))
    }
}

async fn get_status(addr: SocketAddr, path: &str) -> std::io::Result<u16> {
    let mut stream = TcpStream::connect(addr).await?;
    let path = if path.starts_with('/') {
        path.to_owned()
    } else {
        format!("/{path}")
    };
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nUser-Agent: lifeboat-health\r\n\
         Accept: */*\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await?;
    // The status line is all we need; read until its end or a small cap.
    let mut buf = Vec::with_capacity(256);
    let mut chunk = [0u8; 256];
    while !buf.contains(&b'\n') && buf.len() < 1024 {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    parse_status_line(&buf).ok_or_else(|| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "the answer is not HTTP (no status line)",
        )
    })
}

/// The status code of an HTTP/1.x answer that starts with `bytes`.
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
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn reads_status_lines() {
        assert_eq!(parse_status_line(b"HTTP/1.1 200 OK\r\n"), Some(200));
        assert_eq!(parse_status_line(b"HTTP/1.0 503 Busy\r\nX: y"), Some(503));
        assert_eq!(parse_status_line(b"HTTP/1.1 204\r\n"), Some(204));
        assert_eq!(parse_status_line(b"SSH-2.0-OpenSSH\r\n"), None);
        assert_eq!(parse_status_line(b"HTTP/1.1 2000 OK\r\n"), None);
        assert_eq!(parse_status_line(b""), None);
    }

    #[tokio::test]
    async fn checks_a_real_listener_and_a_closed_port() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            for answer in ["HTTP/1.1 200 OK\r\n\r\n", "HTTP/1.1 500 No\r\n\r\n"] {
                let (mut s, _) = listener.accept().await.unwrap();
                let mut req = [0u8; 512];
                let n = s.read(&mut req).await.unwrap();
                assert!(req[..n].starts_with(b"GET /healthz HTTP/1.1\r\n"));
                s.write_all(answer.as_bytes()).await.unwrap();
            }
        });
        assert_eq!(http(addr, "/healthz").await, Ok(200));
        let e = http(addr, "healthz").await.unwrap_err();
        assert!(e.contains("status 500"), "{e}");
        server.await.unwrap();
        // The listener is gone now, so nothing answers on its port.
        assert!(tcp(addr).await.is_err());
        assert!(http(addr, "/").await.is_err());
    }

    proptest! {
        #[test]
        fn status_parsing_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = parse_status_line(&bytes);
        }
    }
}
