//! A webhook receiver for the tests: a real HTTP server (axum) on loopback, on its own
//! runtime so sync and async tests alike can use it, stopped when dropped.
#![allow(dead_code)]

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use serde_json::Value;

#[derive(Clone, Default)]
struct Book {
    got: Arc<Mutex<Vec<(String, Value)>>>,
    script: Arc<Mutex<HashMap<String, VecDeque<u16>>>>,
}

/// Records what it is sent under `/hook/NAME` and answers with the statuses scripted
/// for NAME (with `Retry-After: 0`), then 200. `/hook/hang` never answers.
pub struct Receiver {
    book: Book,
    addr: SocketAddr,
    runtime: Option<tokio::runtime::Runtime>,
}

impl Drop for Receiver {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

async fn hook(
    State(book): State<Book>,
    Path(name): Path<String>,
    Json(body): Json<Value>,
) -> impl IntoResponse {
    book.got.lock().unwrap().push((name.clone(), body));
    if name == "hang" {
        std::future::pending::<()>().await;
    }
    let status = (book.script.lock().unwrap().get_mut(&name))
        .and_then(VecDeque::pop_front)
        .unwrap_or(200);
    (
        StatusCode::from_u16(status).unwrap(),
        [(header::RETRY_AFTER, "0")],
    )
}

impl Receiver {
    /// Listens on a free loopback port.
    pub fn start() -> Receiver {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("a runtime for the receiver");
        let book = Book::default();
        let app = axum::Router::new()
            .route("/hook/{name}", axum::routing::post(hook))
            .with_state(book.clone());
        // Bound here, served on the receiver's runtime: a test on a runtime of its own
        // cannot block on another.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a loopback port");
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        runtime.spawn(async move {
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            axum::serve(listener, app).await
        });
        Receiver {
            book,
            addr,
            runtime: Some(runtime),
        }
    }

    /// The URL of hook `name`.
    pub fn url(&self, name: &str) -> String {
        format!("http://{}/hook/{name}", self.addr)
    }

    /// The statuses hook `name` answers with, in order, before it answers 200.
    pub fn script(&self, name: &str, statuses: &[u16]) {
        (self.book.script.lock().unwrap()).insert(name.into(), statuses.iter().copied().collect());
    }

    /// Bodies received by hook `name` (answered or not), in order.
    pub fn got(&self, name: &str) -> Vec<Value> {
        (self.book.got.lock().unwrap().iter())
            .filter(|(n, _)| n == name)
            .map(|(_, body)| body.clone())
            .collect()
    }

    /// Waits up to `limit` until hook `name` has received `count` bodies; them all.
    pub fn wait_for(&self, name: &str, count: usize, limit: Duration) -> Vec<Value> {
        let until = std::time::Instant::now() + limit;
        loop {
            let got = self.got(name);
            if got.len() >= count || std::time::Instant::now() > until {
                return got;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}
