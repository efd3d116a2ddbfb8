//! The daemon's HTTP API and metrics, over real HTTP against the real binary: every
//! `/api` route refuses a missing or wrong token, bad bodies are refused with the status
//! and field that say why, `/metrics` parses as Prometheus text and follows a fence, and
//! in `confirm` mode nothing moves until an approval, which the kill switch holds back
//! until `resume` (thrown before the daemon started, so it also survives a restart).

#[path = "support/cli.rs"]
mod cli;
#[path = "support/webhook.rs"]
mod webhook;

use std::time::Duration;

use cli::{Lab, placements, quickstart_yaml, wait_for};
use reqwest::{Method, StatusCode};
use serde_json::{Value as Json, json};

const PATIENCE: Duration = Duration::from_secs(120);

/// A running daemon's API, found the way the commands find it.
struct Api {
    url: String,
    token: String,
    http: reqwest::Client,
    runtime: tokio::runtime::Runtime,
}

impl Api {
    fn of(lab: &Lab) -> Api {
        let endpoint: Json = wait_for(PATIENCE, "the daemon to write api.json", || {
            let text = std::fs::read_to_string(lab.state.join("api.json")).ok()?;
            serde_json::from_str(&text).ok()
        });
        let token = std::fs::read_to_string(lab.state.join("api-token"))
            .expect("the daemon made its token file");
        Api {
            url: endpoint["url"].as_str().expect("a url").to_owned(),
            token: token.trim().to_owned(),
            http: reqwest::Client::new(),
            runtime: tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime"),
        }
    }

    fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<&str>,
    ) -> (StatusCode, String) {
        self.runtime.block_on(async {
            let mut request = self.http.request(method, format!("{}{path}", self.url));
            if let Some(token) = token {
                request = request.bearer_auth(token);
            }
            if let Some(body) = body {
                request = request
                    .header("content-type", "application/json")
                    .body(body.to_owned());
            }
            let response = request.send().await.expect("the API answers");
            let status = response.status();
            (status, response.text().await.unwrap_or_default())
        })
    }

    fn get(&self, path: &str) -> Json {
        let (status, body) = self.call(Method::GET, path, Some(&self.token), None);
        assert_eq!(status, StatusCode::OK, "GET {path}: {body}");
        serde_json::from_str(&body).unwrap_or(Json::String(body))
    }

    fn post(&self, path: &str, body: &Json) -> (StatusCode, Json) {
        let (status, body) = self.call(
            Method::POST,
            path,
            Some(&self.token),
            Some(&body.to_string()),
        );
        (
            status,
            serde_json::from_str(&body).unwrap_or(Json::String(body)),
        )
    }

    /// Lifts the notice the API answered a raise with.
    fn clear_notice(&self, notice: &Json) {
        let path = format!("/api/v1/notices/{}", notice["id"]);
        let (status, body) = self.call(Method::DELETE, &path, Some(&self.token), None);
        assert_eq!(status, StatusCode::NO_CONTENT, "DELETE {path}: {body}");
    }

    /// `/metrics`, parsed.
    fn metrics(&self) -> prometheus_parse::Scrape {
        let (status, text) = self.call(Method::GET, "/metrics", None, None);
        assert_eq!(status, StatusCode::OK, "{text}");
        prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_owned())))
            .unwrap_or_else(|e| panic!("/metrics is not Prometheus text: {e}\n{text}"))
    }
}

/// The value of the sample `name` whose labels include `labels`.
fn sample(scrape: &prometheus_parse::Scrape, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    scrape
        .samples
        .iter()
        .find(|s| s.metric == name && labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
        .map(|s| match s.value {
            prometheus_parse::Value::Counter(v)
            | prometheus_parse::Value::Gauge(v)
            | prometheus_parse::Value::Untyped(v) => v,
            _ => f64::NAN,
        })
}

fn condition_gauge(
    scrape: &prometheus_parse::Scrape,
    provider: &str,
    condition: &str,
) -> Option<f64> {
    sample(
        scrape,
        "lifeboat_provider_condition",
        &[("provider", provider), ("condition", condition)],
    )
}

/// Checks `answer` against the schema the OpenAPI document gives for `status` of
/// `method path` (its template, `{id}` and all).
fn check_against_document(doc: &Json, method: &str, template: &str, status: u16, answer: &Json) {
    let op = &doc["paths"][template][method];
    assert!(op.is_object(), "{method} {template} is not documented");
    let schema = &op["responses"][status.to_string()]["content"]["application/json"]["schema"];
    assert!(
        schema.is_object(),
        "{method} {template} documents no JSON answer for {status}"
    );
    // The schema's references point into the document's components.
    let mut root = schema.clone();
    root["components"] = doc["components"].clone();
    let validator = jsonschema::draft202012::new(&root)
        .unwrap_or_else(|e| panic!("{method} {template}: the schema does not compile: {e}"));
    let errors: Vec<String> = validator
        .iter_errors(answer)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(
        errors.is_empty(),
        "{method} {template} answered what its schema does not allow:\n{}\n{answer:#}",
        errors.join("\n")
    );
}

#[test]
fn the_openapi_document_lists_every_route_and_the_answers_match_its_schemas() {
    let lab = Lab::quickstart();
    let daemon = lab.start("run", &["run", "-c", lab.config_arg()]);
    let api = Api::of(&lab);
    let (status, _) = api.call(Method::GET, "/api/v1/openapi.json", None, None);
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let doc = api.get("/api/v1/openapi.json");
    assert_eq!(doc["openapi"], "3.1.0");
    let documented: std::collections::BTreeSet<(String, String)> = (doc["paths"].as_object())
        .expect("paths")
        .iter()
        .flat_map(|(path, item)| {
            (item.as_object().expect("a path item").keys())
                .map(move |method| (method.to_uppercase(), path.clone()))
        })
        .collect();
    let served: std::collections::BTreeSet<(String, String)> = [
        ("GET", "/healthz"),
        ("GET", "/readyz"),
        ("GET", "/metrics"),
        ("GET", "/api/v1/providers"),
        ("GET", "/api/v1/workloads"),
        ("GET", "/api/v1/evacuations"),
        ("POST", "/api/v1/evacuations/{id}/approve"),
        ("POST", "/api/v1/evacuations/{id}/reject"),
        ("GET", "/api/v1/notices"),
        ("POST", "/api/v1/notices"),
        ("DELETE", "/api/v1/notices/{id}"),
        ("GET", "/api/v1/events"),
        ("POST", "/api/v1/pause"),
        ("POST", "/api/v1/resume"),
        ("GET", "/api/v1/openapi.json"),
    ]
    .into_iter()
    .map(|(m, p)| (m.to_owned(), p.to_owned()))
    .collect();
    assert_eq!(documented, served);
    // Every documented operation is served: none answers 404 or 405 for want of a route.
    for (method, template) in &documented {
        let path = template.replace("{id}", "999");
        let method = Method::from_bytes(method.as_bytes()).unwrap();
        let (status, body) = api.call(method.clone(), &path, Some(&api.token), Some("{}"));
        assert_ne!(
            status,
            StatusCode::METHOD_NOT_ALLOWED,
            "{method} {path}: {body}"
        );
        if status == StatusCode::NOT_FOUND {
            let body: Json = serde_json::from_str(&body).unwrap_or_default();
            assert!(body["error"].is_string(), "{method} {path}: no such route");
        }
    }
    // Refused answers are what the document says they are.
    let (status, body) = api.post("/api/v1/evacuations/pe-x/approve", &json!({}));
    assert_eq!(status, StatusCode::NOT_FOUND);
    check_against_document(&doc, "post", "/api/v1/evacuations/{id}/approve", 404, &body);
    let (status, body) = api.post(
        "/api/v1/notices",
        &json!({"target": "nowhere", "reason": "r"}),
    );
    assert_eq!(status, StatusCode::BAD_REQUEST);
    check_against_document(&doc, "post", "/api/v1/notices", 400, &body);

    // With something in every list, each answer matches its schema.
    wait_for(PATIENCE, "the quickstart placed", || {
        let workloads = api.get("/api/v1/workloads");
        let all = workloads.as_array()?;
        all.iter()
            .all(|w| w["copy"]["last"].is_object())
            .then_some(())
    });
    let deadline = jiff::Timestamp::now() + jiff::SignedDuration::from_hours(48);
    let (status, notice) = api.post(
        "/api/v1/notices",
        &json!({"target": "acme-cloud", "deadline": deadline.to_string(), "reason": "a letter"}),
    );
    assert_eq!(status, StatusCode::CREATED, "{notice}");
    check_against_document(&doc, "post", "/api/v1/notices", 201, &notice);
    let (status, pause) = api.post("/api/v1/pause", &json!({"reason": "looking"}));
    assert_eq!(status, StatusCode::OK);
    check_against_document(&doc, "post", "/api/v1/pause", 200, &pause);
    wait_for(PATIENCE, "the notice's moves scheduled", || {
        let view = api.get("/api/v1/evacuations");
        (!view["scheduled"].as_array()?.is_empty()).then_some(())
    });
    for path in [
        "/api/v1/providers",
        "/api/v1/workloads",
        "/api/v1/evacuations",
        "/api/v1/notices",
        "/api/v1/events",
    ] {
        check_against_document(&doc, "get", path, 200, &api.get(path));
    }
    let (status, resumed) = api.post("/api/v1/resume", &json!({}));
    assert_eq!(status, StatusCode::OK);
    check_against_document(&doc, "post", "/api/v1/resume", 200, &resumed);
    api.clear_notice(&notice);
    drop(daemon);
}

#[test]
fn every_route_needs_the_token_bad_bodies_are_refused_and_metrics_follow_a_fence() {
    let lab = Lab::quickstart();
    let daemon = lab.start("run", &["run", "-c", lab.config_arg()]);
    let api = Api::of(&lab);

    let wrong = "not-the-token-0123456789";
    let routes = [
        (Method::GET, "/api/v1/providers"),
        (Method::GET, "/api/v1/workloads"),
        (Method::GET, "/api/v1/evacuations"),
        (Method::GET, "/api/v1/notices"),
        (Method::GET, "/api/v1/events"),
        (Method::POST, "/api/v1/notices"),
        (Method::DELETE, "/api/v1/notices/1"),
        (Method::POST, "/api/v1/pause"),
        (Method::POST, "/api/v1/resume"),
        (Method::POST, "/api/v1/evacuations/pe-x/approve"),
        (Method::POST, "/api/v1/evacuations/pe-x/reject"),
        (Method::GET, "/api/v1/openapi.json"),
    ];
    for (method, path) in &routes {
        for token in [None, Some(wrong)] {
            let (status, body) = api.call(method.clone(), path, token, Some("{}"));
            assert_eq!(
                status,
                StatusCode::UNAUTHORIZED,
                "{method} {path} with {token:?}: {body}"
            );
        }
    }
    // Nothing the wrong calls did reached the state.
    assert_eq!(api.get("/api/v1/notices"), json!([]));
    assert!(api.get("/api/v1/evacuations")["paused"].is_null());

    // Bodies: too big, not JSON, a bad field.
    let huge = json!({"target": "acme-eu", "reason": "x".repeat(100 * 1024)});
    let (status, _) = api.post("/api/v1/notices", &huge);
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    let (status, body) = api.call(
        Method::POST,
        "/api/v1/notices",
        Some(&api.token),
        Some("{\"target\": "),
    );
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let (status, body) = api.post(
        "/api/v1/notices",
        &json!({"target": "acme-cloud", "deadline": "tomorrow", "reason": "r"}),
    );
    assert_eq!(
        (status, body["field"].as_str()),
        (StatusCode::BAD_REQUEST, Some("deadline")),
        "{body}"
    );
    let (status, body) = api.post(
        "/api/v1/notices",
        &json!({"target": "acme-cloud", "deadline": 5, "reason": "r"}),
    );
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(
        body["error"].as_str().unwrap().contains("deadline"),
        "{body}"
    );
    let (status, body) = api.post(
        "/api/v1/notices",
        &json!({"target": "nobody", "reason": "r"}),
    );
    assert_eq!(
        (status, body["field"].as_str()),
        (StatusCode::BAD_REQUEST, Some("target")),
        "{body}"
    );
    let (status, body) = api.post("/api/v1/evacuations/pe-none/approve", &json!({}));
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");

    // The probes need no token; ready once a round has run.
    let (status, _) = api.call(Method::GET, "/healthz", None, None);
    assert_eq!(status, StatusCode::OK);
    wait_for(PATIENCE, "/readyz to say ready", || {
        let answer = api.call(Method::GET, "/readyz", None, None);
        (answer.0 == StatusCode::OK).then_some(())
    });

    // Placed and healthy, then fenced through the API: the condition gauge follows.
    wait_for(PATIENCE, "three placements", || {
        (placements(&lab.status()).len() == 3).then_some(())
    });
    let scrape = api.metrics();
    assert_eq!(condition_gauge(&scrape, "acme-eu", "healthy"), Some(1.0));
    assert_eq!(condition_gauge(&scrape, "acme-eu", "fenced"), Some(0.0));
    assert!(sample(&scrape, "lifeboat_heartbeat_timestamp_seconds", &[]).unwrap() > 1.7e9);
    let (status, notice) = api.post(
        "/api/v1/notices",
        &json!({"target": "acme-eu", "reason": "disk errors"}),
    );
    assert_eq!(status, StatusCode::CREATED, "{notice}");
    wait_for(PATIENCE, "the fence to show in /metrics", || {
        let scrape = api.metrics();
        (condition_gauge(&scrape, "acme-eu", "fenced") == Some(1.0)
            && condition_gauge(&scrape, "acme-eu", "healthy") == Some(0.0))
        .then_some(())
    });
    // The commands talk to the same daemon: the notice shows, and is cleared.
    let listed = lab.run(&["notice", "list", "-c", lab.config_arg()]);
    assert_eq!(listed.code, Some(0), "{}", listed.output());
    assert!(
        listed.stdout.contains("acme-eu") && listed.stdout.contains("disk errors"),
        "{}",
        listed.output()
    );
    let id = notice["id"].to_string();
    let cleared = lab.run(&["notice", "clear", "-c", lab.config_arg(), &id]);
    assert_eq!(cleared.code, Some(0), "{}", cleared.output());
    assert_eq!(api.get("/api/v1/notices"), json!([]));
    let events = api.get("/api/v1/events?limit=1000");
    assert!(!events["events"].as_array().unwrap().is_empty(), "{events}");

    let log = daemon.stderr_so_far();
    assert!(log.contains("refused an API call"), "{log}");
    assert!(
        !log.contains(wrong) && !log.contains(&api.token),
        "a token in the log:\n{log}"
    );
}

#[test]
fn confirm_mode_moves_nothing_until_approved_and_pause_holds_the_steps() {
    let mut yaml = quickstart_yaml();
    yaml["policy"]["mode"] = "confirm".into();
    let lab = Lab::new(yaml, cli::SHORT_POLICY);

    // Thrown before any daemon runs: written to the state folder, found by the daemon.
    let paused = lab.run(&["pause", "-c", lab.config_arg(), "--reason", "change freeze"]);
    assert_eq!(paused.code, Some(0), "{}", paused.output());
    let daemon = lab.start("run", &["run", "-c", lab.config_arg()]);
    let api = Api::of(&lab);

    let pending = wait_for(PATIENCE, "the first placement to wait for approval", || {
        let view = api.get("/api/v1/evacuations");
        (!view["pending"].is_null()).then_some(view)
    });
    assert_eq!(pending["paused"]["reason"], "change freeze", "{pending}");
    let id = pending["pending"]["id"].as_str().unwrap().to_owned();
    // A few rounds later nothing runs yet.
    std::thread::sleep(Duration::from_secs(2));
    assert!(lab.live_copies().is_empty(), "{:?}", lab.live_copies());
    let listed = lab.run(&["evacuations", "-c", lab.config_arg()]);
    assert!(
        listed.stdout.contains(&id) && listed.stdout.contains("PAUSED"),
        "{}",
        listed.output()
    );

    let approved = lab.run(&["evacuations", "-c", lab.config_arg(), "approve", &id]);
    assert_eq!(approved.code, Some(0), "{}", approved.output());
    wait_for(
        PATIENCE,
        "the approved evacuation to hold at the kill switch",
        || {
            daemon
                .stderr_so_far()
                .contains("paused: the step waits for resume")
                .then_some(())
        },
    );
    std::thread::sleep(Duration::from_secs(1));
    assert!(lab.live_copies().is_empty(), "a step started while paused");
    let scrape = api.metrics();
    assert_eq!(sample(&scrape, "lifeboat_paused", &[]), Some(1.0));
    let status = lab.run(&["status", "-c", lab.config_arg()]);
    assert!(
        status.stdout.contains("PAUSED since"),
        "{}",
        status.output()
    );
    assert!(
        status.stdout.contains("daemon: running"),
        "{}",
        status.output()
    );

    let resumed = lab.run(&["resume", "-c", lab.config_arg()]);
    assert_eq!(resumed.stdout.trim(), "resumed", "{}", resumed.output());
    wait_for(
        PATIENCE,
        "the three workloads placed, one copy each",
        || {
            let live = lab.live_copies();
            (placements(&lab.status()).len() == 3 && live.len() == 3).then_some(())
        },
    );
    assert!(api.get("/api/v1/evacuations")["pending"].is_null());
    drop(daemon);
    let status = lab.run(&["status", "-c", lab.config_arg()]);
    assert!(
        status.stdout.contains("daemon: NOT RUNNING"),
        "{}",
        status.output()
    );
}

/// Three workloads on `cloud` (simulated) that can move to `metal` (simulated, each
/// move about a second), one at a time, with `rto: 2s` as the prior estimate.
fn notice_lab() -> Lab {
    notice_lab_with(|_| {})
}

fn notice_lab_with(edit: impl FnOnce(&mut serde_yaml::Value)) -> Lab {
    let mut yaml: serde_yaml::Value = serde_yaml::from_str(
        "
vendors: [{name: cloud}, {name: metal}]
providers:
  - {name: cloud-1, vendor: cloud, capacity: {replicas: 10}, adapter: {kind: sim}}
  - name: metal-1
    vendor: metal
    capacity: {replicas: 10}
    adapter: {kind: sim, latency: 50ms, healthy_after: 1s}
workloads:
  - {name: low, command: [serve], placement: [cloud-1, metal-1], rto: 2s}
  - {name: high, command: [serve], placement: [cloud-1, metal-1], rto: 2s, priority: 10}
  - {name: mid, command: [serve], placement: [cloud-1, metal-1], rto: 2s, priority: 5}
cutover: {kind: endpoints-file, path: endpoints.json}
",
    )
    .unwrap();
    edit(&mut yaml);
    Lab::new(
        yaml,
        "{probe_interval: 250ms, probe_timeout: 250ms, notice_margin: 2s, parallelism: 1, \
         step_timeout: 20s}",
    )
}

fn raise_notice(api: &Api, target: &str, deadline: jiff::Timestamp) -> Json {
    let (status, notice) = api.post(
        "/api/v1/notices",
        &json!({"target": target, "deadline": deadline.to_string(), "reason": "account closes"}),
    );
    assert_eq!(status, StatusCode::CREATED, "{notice}");
    notice
}

#[test]
fn a_notice_is_met_calmly_most_critical_first_and_a_hopeless_one_starts_at_once() {
    let lab = notice_lab();
    let daemon = lab.start("run", &["run", "-c", lab.config_arg()]);
    let api = Api::of(&lab);
    wait_for(PATIENCE, "the workloads placed on cloud-1", || {
        let placed = placements(&lab.status_when_ready()?);
        (placed.len() == 3 && placed.values().all(|(p, _)| p == "cloud-1")).then_some(())
    });
    let first_placement = api.get("/api/v1/evacuations")["evacuations"][0]["id"].clone();

    // 24 s of notice, 2 s of margin: due in 22 s. Three moves of 2 s one after the
    // other are 6 s, twice that is kept: the evacuation starts about 10 s from now.
    let raised = jiff::Timestamp::now();
    let deadline = raised + jiff::SignedDuration::from_secs(24);
    let due = deadline - jiff::SignedDuration::from_secs(2);
    let notice = raise_notice(&api, "cloud", deadline);
    let view = wait_for(PATIENCE, "the schedule", || {
        let view = api.get("/api/v1/evacuations");
        (!view["scheduled"].as_array()?.is_empty()).then_some(view)
    });
    let schedule = &view["scheduled"][0];
    assert_eq!(schedule["at_risk"], false, "{view}");
    let start_at: jiff::Timestamp = schedule["start_at"].as_str().unwrap().parse().unwrap();
    assert_eq!(
        start_at,
        due - jiff::SignedDuration::from_secs(12),
        "{view}"
    );

    let evacuation = wait_for(PATIENCE, "the evacuation to finish on metal-1", || {
        let view = api.get("/api/v1/evacuations");
        let latest = view["evacuations"][0].clone();
        (latest["id"] != first_placement && !latest["finished"].is_null()).then_some(latest)
    });
    let started: jiff::Timestamp = evacuation["started"].as_str().unwrap().parse().unwrap();
    let finished: jiff::Timestamp = evacuation["finished"].as_str().unwrap().parse().unwrap();
    assert!(
        started >= start_at,
        "started {started}, before its time {start_at}"
    );
    assert!(
        finished <= due,
        "finished {finished}, after the due time {due}"
    );
    let placed = placements(&lab.status());
    assert!(placed.values().all(|(p, _)| p == "metal-1"), "{placed:?}");
    // Most critical first: the order the moves deployed in.
    let events = api.get("/api/v1/events?limit=1000");
    let id = evacuation["id"].as_str().unwrap();
    let order: Vec<&str> = events["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["evacuation"] == id && e["step"] == "deploy" && e["status"] == "started")
        .map(|e| e["workload"].as_str().unwrap())
        .collect();
    assert_eq!(order, ["high", "mid", "low"], "{events}");

    // Then cloud is fine again, and metal gives a second's notice, less than the
    // margin: the moves back start at once, and the deadline is at risk.
    api.clear_notice(&notice);
    let hopeless = jiff::Timestamp::now() + jiff::SignedDuration::from_secs(1);
    raise_notice(&api, "metal", hopeless);
    wait_for(PATIENCE, "the workloads back on cloud-1", || {
        let placed = placements(&lab.status());
        placed.values().all(|(p, _)| p == "cloud-1").then_some(())
    });
    // The at-risk gauge is back at 0 as soon as that short evacuation is done: the log
    // keeps the alert.
    assert!(
        daemon.stderr_so_far().contains("deadline at risk"),
        "{}",
        daemon.stderr_so_far()
    );
}

#[test]
fn webhooks_hear_of_the_notice_the_evacuation_and_its_end() {
    let receiver = webhook::Receiver::start();
    // The team's chat fails twice before it takes anything: the daemon retries.
    receiver.script("chat", &[503, 503]);
    let lab = notice_lab_with(|yaml| {
        yaml["notify"] = serde_yaml::from_str(&format!(
            "[{{name: pager, url: '{}'}}, \
              {{name: chat, format: slack, events: [notice_raised], url: '{}'}}]",
            receiver.url("pager"),
            receiver.url("chat"),
        ))
        .unwrap();
    });
    let daemon = lab.start("run", &["run", "-c", lab.config_arg()]);
    let api = Api::of(&lab);
    wait_for(PATIENCE, "the workloads placed on cloud-1", || {
        let placed = placements(&lab.status_when_ready()?);
        (placed.len() == 3 && placed.values().all(|(p, _)| p == "cloud-1")).then_some(())
    });
    let (status, notice) = api.post(
        "/api/v1/notices",
        &json!({"target": "cloud", "reason": "the vendor suspends us tonight"}),
    );
    assert_eq!(status, StatusCode::CREATED, "{notice}");
    wait_for(PATIENCE, "the workloads on metal-1", || {
        let placed = placements(&lab.status());
        placed.values().all(|(p, _)| p == "metal-1").then_some(())
    });
    api.clear_notice(&notice);

    let kinds = |bodies: &[Json]| -> Vec<String> {
        (bodies.iter())
            .map(|b| b["event"].as_str().unwrap_or("?").to_owned())
            .collect()
    };
    let pager = wait_for(PATIENCE, "the pager to hear of the lifted notice", || {
        let got = receiver.got("pager");
        kinds(&got)
            .contains(&"notice_cleared".to_owned())
            .then_some(got)
    });
    // The first placement is an evacuation of its own; from the notice on, in order:
    let from_notice: Vec<String> = kinds(&pager)
        .into_iter()
        .skip_while(|k| k != "notice_raised")
        .filter(|k| k != "condition_changed")
        .collect();
    assert_eq!(
        from_notice,
        [
            "notice_raised",
            "evacuation_started",
            "evacuation_finished",
            "notice_cleared"
        ],
        "{pager:?}"
    );
    let fenced = (pager.iter())
        .find(|b| b["event"] == "condition_changed" && b["provider"] == "cloud-1")
        .unwrap_or_else(|| panic!("no condition change for cloud-1: {pager:?}"));
    assert_eq!(fenced["to"]["condition"], "fenced", "{fenced}");
    let finished = (pager.iter())
        .rfind(|b| b["event"] == "evacuation_finished")
        .unwrap();
    let mut moved: Vec<&str> = (finished["moved"].as_array().unwrap().iter())
        .map(|w| w.as_str().unwrap())
        .collect();
    moved.sort();
    assert_eq!(moved, ["high", "low", "mid"], "{finished}");
    assert!(
        pager.iter().all(|b| b["installation"].is_string()),
        "{pager:?}"
    );

    // The chat took one message, at the third attempt, and heard only of the notice.
    let chat = receiver.wait_for("chat", 3, PATIENCE);
    assert_eq!(chat.len(), 3, "{chat:?}");
    assert!(
        chat[2]["text"]
            .as_str()
            .unwrap()
            .contains("the vendor suspends us tonight"),
        "{chat:?}"
    );
    let delivered = wait_for(PATIENCE, "the deliveries counted in /metrics", || {
        let scrape = api.metrics();
        sample(
            &scrape,
            "lifeboat_notifications_total",
            &[("webhook", "chat"), ("outcome", "delivered")],
        )
    });
    assert_eq!(delivered, 1.0);
    let log = daemon.stderr_so_far();
    assert!(
        !log.contains(&receiver.url("chat")),
        "a webhook URL in the log:\n{log}"
    );
}

#[test]
fn with_api_tls_the_daemon_speaks_https_and_the_commands_trust_its_certificate() {
    let certs = tempfile::tempdir().unwrap();
    let (cert, key) = (certs.path().join("tls.crt"), certs.path().join("tls.key"));
    // A self-signed server certificate (not a CA: rustls refuses a CA as the server's).
    let openssl_config = certs.path().join("req.cnf");
    std::fs::write(
        &openssl_config,
        "[req]\ndistinguished_name = dn\nx509_extensions = leaf\nprompt = no\n\
         [dn]\nCN = lifeboat-test\n\
         [leaf]\nbasicConstraints = critical,CA:FALSE\nsubjectAltName = IP:127.0.0.1\n\
         keyUsage = critical,digitalSignature\nextendedKeyUsage = serverAuth\n",
    )
    .unwrap();
    let made = std::process::Command::new("openssl")
        .args(["req", "-x509", "-newkey", "ec", "-pkeyopt"])
        .args(["ec_paramgen_curve:P-256", "-nodes", "-days", "1", "-config"])
        .arg(&openssl_config)
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .expect("openssl (tests/peers/install.sh installs it)");
    assert!(made.status.success(), "{made:?}");
    let mut yaml = quickstart_yaml();
    yaml["api"] = serde_yaml::to_value(json!({
        "tls": {"cert_file": cert, "key_file": key},
    }))
    .unwrap();
    let lab = Lab::new(yaml, cli::SHORT_POLICY);
    let _daemon = lab.start("run", &["run", "-c", lab.config_arg()]);
    let endpoint: Json = wait_for(PATIENCE, "the daemon to write api.json", || {
        serde_json::from_str(&std::fs::read_to_string(lab.state.join("api.json")).ok()?).ok()
    });
    let url = endpoint["url"].as_str().unwrap().to_owned();
    assert!(url.starts_with("https://127.0.0.1:"), "{url}");

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let pem = std::fs::read(&cert).unwrap();
    let trusting = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(&pem).unwrap())
        .build()
        .unwrap();
    let status = runtime.block_on(async {
        let answer = trusting.get(format!("{url}/healthz")).send().await.unwrap();
        answer.status()
    });
    assert_eq!(status, StatusCode::OK);
    // A client that does not trust the certificate is refused, and plain HTTP on the
    // port gets no answer.
    runtime.block_on(async {
        assert!(reqwest::get(format!("{url}/healthz")).await.is_err());
        let plain = url.replace("https://", "http://");
        assert!(reqwest::get(format!("{plain}/healthz")).await.is_err());
    });
    // The commands read the same config, and so trust the daemon's certificate.
    let listed = lab.run(&["notice", "list", "-c", lab.config_arg()]);
    assert_eq!(listed.code, Some(0), "{}", listed.output());
    assert!(
        listed.stdout.contains("no notice in force"),
        "{}",
        listed.output()
    );
    let paused = lab.run(&["pause", "-c", lab.config_arg(), "--reason", "tls check"]);
    assert_eq!(paused.code, Some(0), "{}", paused.output());
    let view: Json = runtime.block_on(async {
        let token = std::fs::read_to_string(lab.state.join("api-token")).unwrap();
        (trusting.get(format!("{url}/api/v1/evacuations")))
            .bearer_auth(token.trim())
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    });
    assert_eq!(view["paused"]["reason"], "tls check", "{view}");
}
