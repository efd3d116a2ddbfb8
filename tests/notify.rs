//! Webhook notifications against a real HTTP receiver (axum on loopback): what each
//! format posts, the `events` filter, retries on 5xx, no retry on other refusals, a
//! hanging receiver that holds up nothing else, and a URL that never reaches the logs.

#[path = "support/webhook.rs"]
mod webhook;

use std::io::Write;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use lifeboat::config::WebhookConfig;
use lifeboat::notify::{Event, Notifier, Options, Retry};
use webhook::Receiver;

fn webhook(yaml: &str) -> WebhookConfig {
    serde_yaml::from_str(yaml).unwrap()
}

fn quick() -> Options {
    Options {
        retry: Retry {
            attempts: 5,
            first_backoff: Duration::from_millis(10),
            max_backoff: Duration::from_millis(50),
        },
        ..Options::default()
    }
}

fn notifier(webhooks: &[WebhookConfig], options: Options) -> Notifier {
    Notifier::new(webhooks, Path::new("."), "prod-eu", options, |_| None).unwrap()
}

fn stranded() -> Event {
    Event::Stranded {
        workload: "db".into(),
        reason: "no target has 64 GiB free".into(),
    }
}

fn notice() -> Event {
    Event::NoticeRaised {
        id: 7,
        scope: "aws".into(),
        deadline: Some("2026-12-04T09:00:00Z".parse().unwrap()),
        reason: "the vendor gave 24 hours".into(),
    }
}

#[tokio::test]
async fn each_receiver_gets_the_event_in_its_own_format() {
    let peer = Receiver::start();
    let notifier = notifier(
        &[
            webhook(&format!("{{name: pager, url: '{}'}}", peer.url("pager"))),
            webhook(&format!(
                "{{name: chat, format: slack, url: '{}'}}",
                peer.url("chat")
            )),
        ],
        quick(),
    );
    notifier.send(&notice());
    assert!(notifier.flush(Duration::from_secs(30)).await);

    let pager = peer.got("pager");
    assert_eq!(pager.len(), 1);
    assert_eq!(pager[0]["event"], "notice_raised");
    assert_eq!(pager[0]["installation"], "prod-eu");
    assert_eq!(pager[0]["scope"], "aws");
    assert_eq!(pager[0]["deadline"], "2026-12-04T09:00:00Z");
    assert_eq!(pager[0]["reason"], "the vendor gave 24 hours");
    let chat = peer.got("chat");
    assert_eq!(
        chat,
        [
            serde_json::json!({"text": "lifeboat [prod-eu] notice 7 for aws: everything there moves \
             before 2026-12-04T09:00:00Z (the vendor gave 24 hours)"})
        ]
    );
}

#[tokio::test]
async fn a_webhook_hears_only_the_events_it_subscribed_to() {
    let peer = Receiver::start();
    let notifier = notifier(
        &[webhook(&format!(
            "{{name: oncall, events: [stranded, deadline_at_risk], url: '{}'}}",
            peer.url("oncall")
        ))],
        quick(),
    );
    notifier.send(&notice());
    notifier.send(&stranded());
    assert!(notifier.flush(Duration::from_secs(30)).await);
    let got = peer.got("oncall");
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0]["event"], "stranded");
    assert_eq!(got[0]["workload"], "db");
}

#[tokio::test]
async fn a_failing_receiver_is_retried_until_it_takes_the_event_once() {
    let peer = Receiver::start();
    peer.script("flaky", &[503, 429]);
    let notifier = notifier(
        &[webhook(&format!(
            "{{name: flaky, url: '{}'}}",
            peer.url("flaky")
        ))],
        quick(),
    );
    notifier.send(&stranded());
    assert!(notifier.flush(Duration::from_secs(30)).await);
    assert_eq!(
        peer.got("flaky").len(),
        3,
        "two failures, then the delivery"
    );
    let stats = &notifier.stats()[0];
    assert_eq!((stats.delivered, stats.failed, stats.dropped), (1, 0, 0));
}

#[tokio::test]
async fn a_refusal_is_final() {
    let peer = Receiver::start();
    peer.script("strict", &[400]);
    let notifier = notifier(
        &[webhook(&format!(
            "{{name: strict, url: '{}'}}",
            peer.url("strict")
        ))],
        quick(),
    );
    notifier.send(&stranded());
    assert!(notifier.flush(Duration::from_secs(30)).await);
    assert_eq!(peer.got("strict").len(), 1, "a 400 is not sent again");
    let stats = &notifier.stats()[0];
    assert_eq!((stats.delivered, stats.failed), (0, 1));
}

#[tokio::test]
async fn a_hanging_receiver_holds_up_neither_the_sender_nor_its_sibling() {
    let peer = Receiver::start();
    let notifier = notifier(
        &[
            webhook(&format!(
                "{{name: hang, timeout: 1h, url: '{}'}}",
                peer.url("hang")
            )),
            webhook(&format!("{{name: ok, url: '{}'}}", peer.url("ok"))),
        ],
        Options {
            queue: 2,
            ..quick()
        },
    );
    // No await between the sends: the hanging webhook's worker has not taken any yet,
    // so its queue of 2 takes two and the other three are dropped; the sibling, whose
    // queue is just as small, takes two as well.
    for _ in 0..5 {
        notifier.send(&stranded());
    }
    assert!(
        !notifier.flush(Duration::from_millis(500)).await,
        "the hanging webhook is still busy"
    );
    // The sibling delivers its two meanwhile (a bound for a loaded machine, not a speed).
    for _ in 0..300 {
        if notifier.stats()[1].delivered == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(peer.got("ok").len(), 2);
    assert_eq!(
        peer.got("hang").len(),
        1,
        "its first event is held by the receiver"
    );
    let stats = notifier.stats();
    assert_eq!((stats[0].name.as_str(), stats[0].dropped), ("hang", 3));
    assert_eq!(
        (stats[1].name.as_str(), stats[1].delivered, stats[1].dropped),
        ("ok", 2, 3)
    );
}

/// Log lines written while the test runs on this thread.
#[derive(Clone, Default)]
struct Logs(Arc<Mutex<Vec<u8>>>);

impl Write for Logs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn the_url_and_its_token_never_reach_the_logs() {
    let logs = Logs::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    // A port nothing listens on: every attempt fails to connect.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!(
        "http://{}/services/T0/B0/xoxb-s3cret",
        closed.local_addr().unwrap()
    );
    drop(closed);
    let config = webhook(&format!("{{name: chat, url: '{url}'}}"));
    assert!(!format!("{config:?}").contains("s3cret"));
    let notifier = notifier(
        &[config],
        Options {
            retry: Retry {
                attempts: 3,
                ..quick().retry
            },
            ..Options::default()
        },
    );
    notifier.send(&stranded());
    assert!(notifier.flush(Duration::from_secs(30)).await);
    assert_eq!(notifier.stats()[0].failed, 1);

    let logs = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    assert!(logs.contains("webhook=chat"), "{logs}");
    assert!(logs.contains("giving up"), "{logs}");
    assert!(
        !logs.contains("s3cret") && !logs.contains("/services/"),
        "{logs}"
    );
}

#[tokio::test]
async fn urls_come_from_files_and_the_environment() {
    let peer = Receiver::start();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("hook-url"),
        format!("{}\n", peer.url("from-file")),
    )
    .unwrap();
    let env_url = peer.url("from-env");
    let notifier = Notifier::new(
        &[
            webhook("{name: a, url_file: hook-url}"),
            webhook("{name: b, url_env: HOOK_URL}"),
        ],
        dir.path(),
        "prod-eu",
        quick(),
        |var| (var == "HOOK_URL").then(|| env_url.clone()),
    )
    .unwrap();
    notifier.send(&stranded());
    assert!(notifier.flush(Duration::from_secs(30)).await);
    assert_eq!(peer.got("from-file").len(), 1);
    assert_eq!(peer.got("from-env").len(), 1);

    let missing = Notifier::new(
        &[webhook("{name: b, url_env: HOOK_URL}")],
        dir.path(),
        "prod-eu",
        quick(),
        |_| None,
    )
    .err()
    .unwrap();
    assert_eq!(
        missing.to_string(),
        "webhook b: its URL variable HOOK_URL is not set in the environment"
    );
}
