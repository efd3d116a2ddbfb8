//! `lifeboat run --kubernetes` end to end, against real kube-apiservers and etcd (see
//! `lifeboat_testkit::kube`): lifeboat is installed into "cluster B" (the cluster at the
//! other vendor, where lifeboat runs) from `manifests/` and runs with their RBAC; its
//! workloads start in "cluster A"; when A deletes lifeboat's service account every
//! workload moves to B, the `Workload` status shows it and an Event records it. And
//! leader election between two daemons on a real Lease.

#![cfg(feature = "kubernetes")]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use lifeboat_testkit::kube::{self, Controllers, IMAGE_WORKLOAD_RULES, KubeApiServer};
use lifeboat_testkit::require_kube;
use serde_json::{Value, json};

const NS: &str = "lifeboat";
const API: &str = "/apis/lifeboat.dev/v1alpha1/namespaces/lifeboat";

/// A `lifeboat run --kubernetes` process, stopped (SIGTERM, then SIGKILL) on drop.
struct Daemon {
    child: Option<Child>,
    log: PathBuf,
    state: PathBuf,
}

impl Daemon {
    fn start(kubeconfig: &Path, dir: &Path, identity: &str, lease_secs: u64) -> Daemon {
        let log = dir.join(format!("{identity}.log"));
        let child = Command::new(env!("CARGO_BIN_EXE_lifeboat"))
            .args([
                "run",
                "--kubernetes",
                "--namespace",
                NS,
                "--identity",
                identity,
            ])
            .arg("--kubeconfig")
            .arg(kubeconfig)
            .arg("--state")
            .arg(dir.join(format!("state-{identity}")))
            .args(["--lease-duration", &lease_secs.to_string()])
            .env("LIFEBOAT_LOG", "info,lifeboat=debug")
            // Each replica its own free port, written to its state folder's api.json.
            .env("LIFEBOAT_API_LISTEN", "127.0.0.1:0")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        Daemon {
            child: Some(child),
            log,
            state: dir.join(format!("state-{identity}")),
        }
    }

    /// `GET path` on the replica's probe port: (status, body); `None` until it serves.
    fn probe(&self, path: &str) -> Option<(u16, String)> {
        use std::io::{Read, Write};
        let endpoint: Value =
            serde_json::from_str(&std::fs::read_to_string(self.state.join("api.json")).ok()?)
                .ok()?;
        let addr = endpoint["url"]
            .as_str()?
            .strip_prefix("http://")?
            .to_owned();
        let mut stream = std::net::TcpStream::connect(addr).ok()?;
        stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
        write!(stream, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").ok()?;
        let mut text = String::new();
        stream.read_to_string(&mut text).ok()?;
        let status = text.split(' ').nth(1)?.parse().ok()?;
        Some((status, text.split_once("\r\n\r\n")?.1.to_owned()))
    }

    /// The value of the sample `line_start` (name and labels as written) in `/metrics`.
    fn metric(&self, line_start: &str) -> Option<f64> {
        let (_, text) = self.probe("/metrics")?;
        text.lines()
            .find_map(|l| l.strip_prefix(line_start))
            .and_then(|rest| rest.trim().parse().ok())
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// SIGKILL: the daemon gets no chance to release its lease, as when its node dies.
    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let pid = nix::unistd::Pid::from_raw(child.id() as i32);
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn post(server: &KubeApiServer, path: &str, body: &Value) {
    let (code, text) = server.request("POST", path, Some(body)).unwrap();
    assert_eq!(code, 201, "POST {path}: {text}");
}

fn get(server: &KubeApiServer, path: &str) -> Value {
    server.get(path).unwrap_or(Value::Null)
}

/// Installs lifeboat into its home cluster as a user would, with the built kubectl and
/// server-side apply: its namespace, CRDs, ServiceAccount and least-privilege RBAC from
/// `manifests/` (everything but its own Deployment, which no kubelet would run here).
/// Returns a kubeconfig for the ServiceAccount, so the daemon runs with exactly the
/// rights the manifests give it.
fn install(home: &KubeApiServer) -> PathBuf {
    let admin = home.admin_kubeconfig(NS).unwrap();
    let manifests = lifeboat_testkit::repo_root().join("manifests");
    for file in [
        "namespace.yaml",
        "crds.yaml",
        "serviceaccount.yaml",
        "rbac.yaml",
    ] {
        let output = Command::new(kube::kubectl())
            .arg("--kubeconfig")
            .arg(&admin)
            .args(["apply", "--server-side", "-f"])
            .arg(manifests.join(file))
            .output()
            .unwrap();
        assert!(output.status.success(), "kubectl apply {file}: {output:?}");
    }
    let output = Command::new(kube::kubectl())
        .arg("--kubeconfig")
        .arg(&admin)
        .args([
            "wait",
            "--for=condition=Established",
            "--timeout=60s",
            "crd",
            "--all",
        ])
        .output()
        .unwrap();
    assert!(output.status.success(), "CRDs established: {output:?}");
    let (code, body) = home
        .request(
            "POST",
            &format!("/api/v1/namespaces/{NS}/serviceaccounts/lifeboat/token"),
            Some(
                &json!({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
                         "spec": {"expirationSeconds": 7200}}),
            ),
        )
        .unwrap();
    assert_eq!(code, 201, "{body}");
    let token: Value = serde_json::from_str(&body).unwrap();
    home.kubeconfig(NS, token["status"]["token"].as_str().unwrap())
        .unwrap()
}

fn resource(kind: &str, name: &str, spec: Value) -> Value {
    json!({
        "apiVersion": "lifeboat.dev/v1alpha1", "kind": kind,
        "metadata": {"name": name, "namespace": NS}, "spec": spec,
    })
}

/// Waits (generously: the machine is shared) for `check` to give a value.
fn wait_for<T>(what: &str, logs: &dyn Fn() -> String, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        if let Some(v) = check() {
            return v;
        }
        if Instant::now() > deadline {
            panic!("gave up waiting for {what}; daemon log:\n{}", logs());
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn placement(home: &KubeApiServer, workload: &str) -> Option<String> {
    get(home, &format!("{API}/workloads/{workload}"))["status"]["placement"]["provider"]
        .as_str()
        .map(str::to_owned)
}

#[test]
fn revoked_credentials_in_cluster_a_move_every_workload_to_cluster_b() {
    require_kube!();
    let dir = tempfile::tempdir().unwrap();
    let a = KubeApiServer::start().unwrap();
    let b = KubeApiServer::start().unwrap();
    let daemon_kubeconfig = install(&b);
    let token_a = a
        .service_account("shop", "lifeboat", IMAGE_WORKLOAD_RULES, &[])
        .unwrap();
    let token_b = b
        .service_account("shop", "lifeboat", IMAGE_WORKLOAD_RULES, &[])
        .unwrap();
    let kubeconfig_a = a.kubeconfig("shop", &token_a).unwrap();
    let kubeconfig_b = b.kubeconfig("shop", &token_b).unwrap();
    let provider = |vendor: &str, kubeconfig: &Path| {
        json!({
            "vendor": vendor,
            "capacity": {"replicas": 20},
            "adapter": {"kind": "kubernetes", "kubeconfig": kubeconfig, "namespace": "shop", "timeout_secs": 5},
        })
    };
    post(
        &b,
        &format!("{API}/providers"),
        &resource(
            "Provider",
            "cluster-a",
            provider("acme-cloud", &kubeconfig_a),
        ),
    );
    post(
        &b,
        &format!("{API}/providers"),
        &resource("Provider", "cluster-b", provider("hetzner", &kubeconfig_b)),
    );
    for name in ["api", "web"] {
        let spec =
            json!({"image": "nginx:1.27", "port": 80, "placement": ["cluster-a", "cluster-b"]});
        post(
            &b,
            &format!("{API}/workloads"),
            &resource("Workload", name, spec),
        );
    }
    let policy = json!({
        "probe_interval": "2s", "probe_timeout": "2s", "step_timeout": "20s",
        "cutover": {"kind": "endpoints-file", "path": "endpoints.json"},
    });
    post(
        &b,
        &format!("{API}/policies"),
        &resource("Policy", "default", policy),
    );
    let _controllers = Controllers::start(&[&a, &b], &["shop"]);
    let daemon = Daemon::start(&daemon_kubeconfig, dir.path(), "lifeboat-0", 10);
    let logs = || daemon.log_text();

    for workload in ["api", "web"] {
        let at = wait_for(&format!("{workload} placed"), &logs, || {
            placement(&b, workload)
        });
        assert_eq!(at, "cluster-a");
    }
    let provider_a = get(&b, &format!("{API}/providers/cluster-a"));
    assert_eq!(provider_a["status"]["conditions"][0]["type"], "Ready");
    assert_eq!(provider_a["status"]["conditions"][0]["status"], "True");

    // Cluster A's vendor deletes lifeboat's service account: every call now answers 401.
    a.revoke("shop", "lifeboat", &token_a).unwrap();

    for workload in ["api", "web"] {
        wait_for(&format!("{workload} moved to cluster-b"), &logs, || {
            (placement(&b, workload).as_deref() == Some("cluster-b")).then_some(())
        });
    }
    let home = &b;
    let workload = get(home, &format!("{API}/workloads/web"));
    assert!(
        workload["status"]["placement"]["generation"]
            .as_u64()
            .unwrap()
            >= 2,
        "{workload}"
    );
    assert_eq!(workload["status"]["conditions"][0]["type"], "Placed");
    // The copies run in cluster B now.
    let deployments = get(home, "/apis/apps/v1/namespaces/shop/deployments");
    assert_eq!(
        deployments["items"].as_array().unwrap().len(),
        2,
        "{deployments}"
    );

    let provider_a = get(home, &format!("{API}/providers/cluster-a"));
    assert_eq!(
        provider_a["status"]["conditions"][0]["status"], "False",
        "{provider_a}"
    );
    assert_eq!(provider_a["status"]["conditions"][0]["reason"], "Suspended");

    let events = get(
        home,
        &format!("/apis/events.k8s.io/v1/namespaces/{NS}/events"),
    );
    let events = events["items"].as_array().cloned().unwrap_or_default();
    for workload in ["api", "web"] {
        let moved = events.iter().find(|e| {
            e["reason"] == "Moved"
                && e["regarding"]["kind"] == "Workload"
                && e["regarding"]["name"] == workload
        });
        let moved = moved.unwrap_or_else(|| panic!("no Moved event for {workload}: {events:?}"));
        assert!(
            moved["note"]
                .as_str()
                .unwrap()
                .contains("from cluster-a to cluster-b"),
            "{moved}"
        );
    }
    assert!(
        events
            .iter()
            .any(|e| e["reason"] == "Suspended" && e["regarding"]["name"] == "cluster-a"),
        "no condition-change event for cluster-a: {events:?}"
    );
    // The evacuation is an Evacuation resource with its steps.
    let evacuations = get(home, &format!("{API}/evacuations"));
    let moved_off_a = evacuations["items"].as_array().unwrap().iter().find(|e| {
        e["spec"]["moves"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["from"] == "cluster-a")
    });
    let evacuation = moved_off_a
        .unwrap_or_else(|| panic!("no Evacuation off cluster-a: {evacuations}\n{}", logs()));
    let steps = evacuation["status"]["steps"].as_array().unwrap();
    assert!(
        steps
            .iter()
            .any(|s| s["step"] == "cutover" && s["status"] == "done" && s["target"] == "cluster-b"),
        "{evacuation}"
    );
    wait_for("the evacuation's phase", &logs, || {
        let e = get(
            home,
            &format!(
                "{API}/evacuations/{}",
                evacuation["metadata"]["name"].as_str()?
            ),
        );
        (e["status"]["phase"] == "Succeeded").then_some(())
    });
}

fn lease_holder(home: &KubeApiServer) -> Option<String> {
    get(
        home,
        &format!("/apis/coordination.k8s.io/v1/namespaces/{NS}/leases/lifeboat"),
    )["spec"]["holderIdentity"]
        .as_str()
        .map(str::to_owned)
}

/// One simulated provider `sim-1`, one workload `job` placed there, and the Policy
/// `default` with `policy` as its spec.
fn one_job(home: &KubeApiServer, policy: Value) {
    let sim = json!({"vendor": "self", "adapter": {"kind": "sim"}});
    post(
        home,
        &format!("{API}/providers"),
        &resource("Provider", "sim-1", sim),
    );
    let spec = json!({"command": ["sleep", "1000"], "placement": ["sim-1"]});
    post(
        home,
        &format!("{API}/workloads"),
        &resource("Workload", "job", spec),
    );
    post(
        home,
        &format!("{API}/policies"),
        &resource("Policy", "default", policy),
    );
}

/// On a real Lease: kube-lease-manager's writes carry the Lease's resourceVersion, so of
/// two replicas that found it free at the same instant only one wins (the other's write
/// answers 409). Both start together here.
#[test]
fn only_the_leader_acts_and_the_other_takes_over_when_it_dies() {
    require_kube!();
    let dir = tempfile::tempdir().unwrap();
    let home = KubeApiServer::start().unwrap();
    let kubeconfig = install(&home);
    one_job(
        &home,
        json!({"probe_interval": "1s", "probe_timeout": "1s", "cutover": {"kind": "endpoints-file", "path": "endpoints.json"}}),
    );

    let lease_secs = 4;
    let mut daemons = [
        Daemon::start(&kubeconfig, dir.path(), "one", lease_secs),
        Daemon::start(&kubeconfig, dir.path(), "two", lease_secs),
    ];
    let logs: Vec<PathBuf> = daemons.iter().map(|d| d.log.clone()).collect();
    let read = |p: &Path| std::fs::read_to_string(p).unwrap_or_default();
    let logs_both = || format!("one:\n{}\ntwo:\n{}", read(&logs[0]), read(&logs[1]));
    let leader = wait_for("one of them to hold the lease", &logs_both, || {
        lease_holder(&home)
    });
    let (lead, follow) = if leader == "one" { (0, 1) } else { (1, 0) };
    let follower = if leader == "one" { "two" } else { "one" };
    wait_for("the leader to place the workload", &logs_both, || {
        placement(&home, "job")
    });
    // Give the follower several of its lease checks to (wrongly) act.
    wait_for("the other to start following", &logs_both, || {
        daemons[follow]
            .log_text()
            .contains("waiting for the lease")
            .then_some(())
    });
    std::thread::sleep(Duration::from_secs(lease_secs));
    assert_eq!(lease_holder(&home).as_deref(), Some(leader.as_str()));
    // Both replicas answer the kubelet; the metrics say which one leads, and the
    // leader's show what its rounds found.
    for (daemon, leading) in [(&daemons[lead], 1.0), (&daemons[follow], 0.0)] {
        let healthz = wait_for("the probes served", &logs_both, || daemon.probe("/healthz"));
        assert_eq!(healthz.0, 200, "{healthz:?}");
        let readyz = daemon.probe("/readyz").unwrap();
        assert_eq!(readyz.0, 200, "{readyz:?}");
        assert_eq!(daemon.metric("lifeboat_leader "), Some(leading));
    }
    assert!(
        daemons[follow]
            .probe("/readyz")
            .unwrap()
            .1
            .contains("standing by")
    );
    assert_eq!(
        daemons[lead]
            .metric(r#"lifeboat_provider_condition{provider="sim-1",condition="healthy"} "#),
        Some(1.0)
    );
    assert!(
        !daemons[follow].log_text().contains("acquired the lease"),
        "{}",
        logs_both()
    );
    let events = get(
        &home,
        &format!("/apis/events.k8s.io/v1/namespaces/{NS}/events"),
    );
    let events = events["items"].as_array().cloned().unwrap_or_default();
    assert!(!events.is_empty());
    assert!(
        events
            .iter()
            .all(|e| e["reportingInstance"] == leader.as_str()),
        "only the leader writes: {events:?}"
    );

    // The leader dies without releasing the lease; the other waits out the lease and
    // takes over.
    let killed = Instant::now();
    daemons[lead].kill();
    wait_for("the other to take over", &logs_both, || {
        (lease_holder(&home).as_deref() == Some(follower)).then_some(())
    });
    eprintln!(
        "takeover {:.1} s after the leader was killed (lease {lease_secs} s)",
        killed.elapsed().as_secs_f64()
    );
    wait_for("the other to lead", &logs_both, || {
        daemons[follow]
            .log_text()
            .contains("acquired the lease: leading")
            .then_some(())
    });
    // The new leader acts (its first round records the provider's condition) and
    // starts from the placement in the Workload status rather than placing it afresh.
    wait_for("an event from the new leader", &logs_both, || {
        let events = get(
            &home,
            &format!("/apis/events.k8s.io/v1/namespaces/{NS}/events"),
        );
        let events = events["items"].as_array().cloned().unwrap_or_default();
        events
            .iter()
            .any(|e| e["reportingInstance"] == follower)
            .then_some(())
    });
    let job = get(&home, &format!("{API}/workloads/job"));
    assert_eq!(job["status"]["placement"]["generation"], 1, "{job}");
    assert!(
        daemons[follow]
            .log_text()
            .contains("placement taken from the Workload status"),
        "{}",
        logs_both()
    );
}

/// A status computed from a stale read must not undo what was written since: the write
/// carries the version it was computed from, the server answers 409, and the writer
/// reads again and computes anew.
#[tokio::test]
async fn a_status_write_over_a_newer_version_reads_again_and_keeps_both() {
    use ::kube::config::{KubeConfigOptions, Kubeconfig};
    use lifeboat::k8s::resources::Provider;
    use lifeboat::k8s::writer::Writer;

    require_kube!();
    let home = KubeApiServer::start().unwrap();
    let kubeconfig = install(&home);
    let sim = json!({"vendor": "self", "adapter": {"kind": "sim"}});
    post(
        &home,
        &format!("{API}/providers"),
        &resource("Provider", "sim-1", sim),
    );
    let config = ::kube::Config::from_custom_kubeconfig(
        Kubeconfig::read_from(&kubeconfig).unwrap(),
        &KubeConfigOptions::default(),
    )
    .await
    .unwrap();
    let client = ::kube::Client::try_from(config).unwrap();
    // As the daemon reads (its RBAC allows list and watch, not get).
    let stale: Provider = ::kube::Api::namespaced(client.clone(), NS)
        .list(&Default::default())
        .await
        .unwrap()
        .items
        .remove(0);

    // Someone else writes a condition of theirs after the daemon's read.
    let path = format!("{API}/providers/sim-1");
    home.set_status(
        &path,
        &json!({"conditions": [{"type": "Audited", "status": "True", "reason": "Checked",
                "message": "checked by the audit", "lastTransitionTime": "2026-12-01T00:00:00Z"}]}),
    )
    .unwrap();

    let (_leader, leading) = tokio::sync::watch::channel(true);
    let writer = Writer::new(client, NS, leading, "test");
    writer
        .provider_condition(
            &stale,
            &lifeboat::model::Condition::Healthy,
            None,
            jiff::Timestamp::now(),
        )
        .await
        .unwrap();
    let status = get(&home, &path)["status"].clone();
    let types: Vec<&str> = status["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["type"].as_str().unwrap())
        .collect();
    assert_eq!(types, ["Audited", "Ready"], "{status:#}");
}

/// `policy.mode: confirm` in a cluster: the first placement waits for approval; an
/// approval given while the Policy's pause annotation is set starts nothing; lifting
/// the pause lets it run.
#[test]
fn in_a_cluster_the_policy_annotations_pause_and_approve() {
    require_kube!();
    let dir = tempfile::tempdir().unwrap();
    let home = KubeApiServer::start().unwrap();
    let kubeconfig = install(&home);
    one_job(
        &home,
        json!({"probe_interval": "500ms", "probe_timeout": "500ms", "mode": "confirm",
               "cutover": {"kind": "endpoints-file", "path": "endpoints.json"}}),
    );
    let annotate = |annotations: Value| {
        let object = json!({
            "apiVersion": "lifeboat.dev/v1alpha1", "kind": "Policy",
            "metadata": {"name": "default", "namespace": NS, "annotations": annotations},
        });
        home.apply(&format!("{API}/policies/default"), &object)
            .unwrap();
    };

    let daemon = Daemon::start(&kubeconfig, dir.path(), "one", 10);
    let logs = || daemon.log_text();
    // The Policy's status names the evacuation that waits, for `kubectl annotate`.
    let policy_status = || get(&home, &format!("{API}/policies/default"))["status"].clone();
    let id = wait_for("the placement to wait for approval", &logs, || {
        (policy_status()["pendingEvacuation"].as_str()).map(str::to_owned)
    });
    assert!(id.starts_with("pe-"), "{id}");
    assert!(
        placement(&home, "job").is_none(),
        "nothing moves before approval"
    );

    annotate(json!({"lifeboat.dev/pause": "vendor call", "lifeboat.dev/approve": id}));
    wait_for("the pause and the approval taken in", &logs, || {
        let log = daemon.log_text();
        (log.contains("paused by the Policy's lifeboat.dev/pause annotation")
            && log.contains("approved by the Policy's lifeboat.dev/approve annotation"))
        .then_some(())
    });
    wait_for("the pause shown in the Policy's status", &logs, || {
        (policy_status()["paused"] == "vendor call").then_some(())
    });
    std::thread::sleep(Duration::from_secs(3));
    assert!(
        placement(&home, "job").is_none(),
        "paused: no step starts\n{}",
        logs()
    );

    annotate(json!({"lifeboat.dev/approve": id}));
    wait_for(
        "the workload placed once the pause is lifted",
        &logs,
        || placement(&home, "job"),
    );
    wait_for("the Policy's status to show nothing pending", &logs, || {
        let status = policy_status();
        (status["pendingEvacuation"].is_null() && status["paused"].is_null()).then_some(())
    });
    assert!(
        daemon
            .log_text()
            .contains("resumed: the Policy's lifeboat.dev/pause annotation is gone")
    );
}

/// A Drill resource is a request the leader runs: a shadow drill once (not again for the
/// same spec), or on its schedule, each run answered in the Drill's status; a live drill
/// is refused with why. Production stays where it was.
#[test]
fn drill_resources_run_as_shadow_drills_and_answer_in_their_status() {
    require_kube!();
    let dir = tempfile::tempdir().unwrap();
    let home = KubeApiServer::start().unwrap();
    let kubeconfig = install(&home);
    for (name, vendor) in [("sim-1", "cloud"), ("sim-2", "metal")] {
        let spec = json!({"vendor": vendor, "adapter": {"kind": "sim"}});
        post(
            &home,
            &format!("{API}/providers"),
            &resource("Provider", name, spec),
        );
    }
    let spec = json!({"command": ["sleep", "1000"], "placement": ["sim-1", "sim-2"]});
    post(
        &home,
        &format!("{API}/workloads"),
        &resource("Workload", "job", spec),
    );
    let policy = json!({"probe_interval": "250ms", "probe_timeout": "250ms",
        "cutover": {"kind": "endpoints-file", "path": "endpoints.json"}});
    post(
        &home,
        &format!("{API}/policies"),
        &resource("Policy", "default", policy),
    );
    let daemon = Daemon::start(&kubeconfig, dir.path(), "one", 10);
    let logs = || daemon.log_text();
    wait_for("the workload placed", &logs, || placement(&home, "job"));
    let placed = get(&home, &format!("{API}/workloads/job"))["status"].clone();

    for (name, spec) in [
        ("once", json!({"lose": "cloud"})),
        (
            "every-2s",
            json!({"lose": "cloud", "schedule": "*/2 * * * * *"}),
        ),
        ("live", json!({"lose": "cloud", "mode": "live"})),
    ] {
        post(
            &home,
            &format!("{API}/drills"),
            &resource("Drill", name, spec),
        );
    }
    let status = |name: &str| get(&home, &format!("{API}/drills/{name}"))["status"].clone();
    let complete = |status: &Value| {
        (status["conditions"].as_array().into_iter().flatten())
            .find(|c| c["type"] == "Complete" && c["status"] == "True")
            .cloned()
    };

    let once = wait_for("the one-off drill's result", &logs, || {
        let s = status("once");
        complete(&s).map(|_| s)
    });
    assert_eq!(once["outcome"], "objectives met", "{once:#}\n{}", logs());
    assert_eq!(once["summary"]["moved"], 1, "{once:#}");
    assert_eq!(once["summary"]["objectivesMet"], true, "{once:#}");

    let refused = wait_for("the live drill refused", &logs, || {
        complete(&status("live"))
    });
    assert_eq!(refused["reason"], "Refused", "{refused:#}");
    let why = refused["message"].as_str().unwrap_or_default();
    assert!(why.contains("shadow drills only"), "{refused:#}");

    // The scheduled one runs again and again; the one-off does not.
    let first = wait_for("a scheduled run", &logs, || {
        status("every-2s")["lastRun"].as_str().map(str::to_owned)
    });
    wait_for("another scheduled run", &logs, || {
        let last = status("every-2s")["lastRun"].as_str().map(str::to_owned)?;
        (last != first).then_some(())
    });
    assert_eq!(status("once")["lastRun"], once["lastRun"], "run once only");
    assert_eq!(
        get(&home, &format!("{API}/workloads/job"))["status"]["placement"],
        placed["placement"],
        "production did not move\n{}",
        logs()
    );
}
