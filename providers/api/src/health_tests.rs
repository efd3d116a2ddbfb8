use std::time::Duration;

use proptest::prelude::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use super::*;

/// Long enough that a loaded machine does not fail the passing cases, short enough that
/// the hanging server's case ends quickly.
const TIMEOUT: Duration = Duration::from_millis(1500);

fn http(path: &str) -> HealthCheck {
    HealthCheck::Http { path: path.into() }
}

fn loopback(port: u16) -> Endpoint {
    Endpoint {
        host: "127.0.0.1".into(),
        port,
    }
}

/// A real HTTP server on loopback that answers each connection with the next of
/// `answers`, and hands back the request lines it received.
async fn serve(answers: &'static [&'static str]) -> (Endpoint, JoinHandle<Vec<String>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = loopback(listener.local_addr().unwrap().port());
    let server = tokio::spawn(async move {
        let mut requests = Vec::new();
        for answer in answers {
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut buf = [0u8; 1024];
            let n = socket.read(&mut buf).await.unwrap();
            let request = String::from_utf8_lossy(&buf[..n]).into_owned();
            requests.push(request.lines().next().unwrap_or_default().to_owned());
            socket.write_all(answer.as_bytes()).await.unwrap();
        }
        requests
    });
    (endpoint, server)
}

/// A port nothing listens on: one the OS just handed out, then released.
async fn closed_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    listener.local_addr().unwrap().port()
}

#[tokio::test]
async fn http_passes_on_2xx_and_fails_on_500() {
    let (endpoint, server) = serve(&[
        "HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n",
        "HTTP/1.1 500 Internal Server Error\r\n\r\n",
        "HTTP/1.0 204 No Content\r\n\r\n",
    ])
    .await;
    assert_eq!(
        check(&http("/healthz"), &endpoint, TIMEOUT).await.unwrap(),
        Passed::Status(200)
    );
    let failed = check(&http("/healthz"), &endpoint, TIMEOUT)
        .await
        .unwrap_err();
    assert!(matches!(failed.reason, Reason::Status(500)), "{failed}");
    assert_eq!(
        failed.to_string(),
        format!("GET http://{endpoint}/healthz: status 500")
    );
    assert_eq!(
        check(&http("/ready?full=1"), &endpoint, TIMEOUT)
            .await
            .unwrap(),
        Passed::Status(204)
    );
    let requests = server.await.unwrap();
    assert_eq!(
        requests,
        [
            "GET /healthz HTTP/1.1",
            "GET /healthz HTTP/1.1",
            "GET /ready?full=1 HTTP/1.1"
        ]
    );
}

#[tokio::test]
async fn a_path_without_a_leading_slash_gets_one() {
    let (endpoint, server) = serve(&["HTTP/1.1 200 OK\r\n\r\n"]).await;
    assert!(check(&http("healthz"), &endpoint, TIMEOUT).await.is_ok());
    assert_eq!(server.await.unwrap(), ["GET /healthz HTTP/1.1"]);
}

#[tokio::test]
async fn a_redirect_is_not_healthy() {
    let (endpoint, _server) = serve(&["HTTP/1.1 302 Found\r\nlocation: /x\r\n\r\n"]).await;
    let failed = check(&http("/"), &endpoint, TIMEOUT).await.unwrap_err();
    assert!(matches!(failed.reason, Reason::Status(302)), "{failed}");
}

#[tokio::test]
async fn an_answer_that_is_not_http_fails() {
    let (endpoint, _server) = serve(&["SSH-2.0-OpenSSH_9.6\r\n"]).await;
    let failed = check(&http("/"), &endpoint, TIMEOUT).await.unwrap_err();
    assert!(matches!(failed.reason, Reason::NotHttp), "{failed}");
}

#[tokio::test]
async fn tcp_passes_on_a_listener_and_both_fail_on_a_closed_port() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let open = loopback(listener.local_addr().unwrap().port());
    assert_eq!(
        check(&HealthCheck::Tcp, &open, TIMEOUT).await.unwrap(),
        Passed::Connected
    );

    let closed = loopback(closed_port().await);
    let failed = check(&HealthCheck::Tcp, &closed, TIMEOUT)
        .await
        .unwrap_err();
    assert!(matches!(failed.reason, Reason::Connect(_)), "{failed}");
    assert!(
        failed
            .to_string()
            .starts_with(&format!("connect {closed}: ")),
        "{failed}"
    );
    let failed = check(&http("/healthz"), &closed, TIMEOUT)
        .await
        .unwrap_err();
    assert!(matches!(failed.reason, Reason::Connect(_)), "{failed}");
}

#[tokio::test]
async fn a_server_that_accepts_and_never_answers_times_out() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = loopback(listener.local_addr().unwrap().port());
    // Accepts, reads the request, then holds the connection open without a word.
    let server = tokio::spawn(async move {
        let (mut socket, _) = listener.accept().await.unwrap();
        let mut buf = [0u8; 1024];
        let _ = socket.read(&mut buf).await;
        tokio::time::sleep(Duration::from_secs(60)).await;
        drop(socket);
    });
    let timeout = Duration::from_millis(300);
    let started = std::time::Instant::now();
    let failed = check(&http("/healthz"), &endpoint, timeout)
        .await
        .unwrap_err();
    assert!(
        matches!(failed.reason, Reason::Timeout(t) if t == timeout),
        "{failed}"
    );
    assert!(
        failed.to_string().ends_with("no answer within 300ms"),
        "{failed}"
    );
    // The deadline holds for the whole check, not per read.
    assert!(started.elapsed() < Duration::from_secs(5));
    server.abort();
}

#[tokio::test]
async fn a_path_that_would_break_the_request_line_is_never_sent() {
    // Nothing listens: a request sent at all would fail with `Connect` instead.
    let closed = loopback(closed_port().await);
    for path in ["/a b", "/x\r\nHost: evil", "/tab\there"] {
        let failed = check(&http(path), &closed, TIMEOUT).await.unwrap_err();
        assert!(
            matches!(failed.reason, Reason::BadPath),
            "{path:?}: {failed}"
        );
    }
}

#[test]
fn reads_status_lines() {
    assert_eq!(parse_status_line(b"HTTP/1.1 200 OK\r\n"), Some(200));
    assert_eq!(parse_status_line(b"HTTP/1.0 503 Busy\r\nX: y"), Some(503));
    assert_eq!(parse_status_line(b"HTTP/1.1 204\r\n"), Some(204));
    assert_eq!(parse_status_line(b"SSH-2.0-OpenSSH\r\n"), None);
    assert_eq!(parse_status_line(b"HTTP/1.1 2000 OK\r\n"), None);
    assert_eq!(parse_status_line(b"HTTP/2 200\r\n"), None);
    assert_eq!(parse_status_line(b""), None);
}

proptest! {
    #[test]
    fn status_parsing_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
        let _ = parse_status_line(&bytes);
    }
}
