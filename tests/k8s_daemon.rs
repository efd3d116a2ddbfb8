//! `lifeboat run --kubernetes` end to end, against kmock emulators: lifeboat's own
//! resources live in "cluster B" (the cluster at the other vendor, where lifeboat runs),
//! its workloads start in "cluster A"; when A's credentials are revoked every workload
//! moves to B, the `Workload` status shows it and an Event records it. And leader
//! election between two daemons on the emulator's Lease.

#![cfg(feature = "kubernetes")]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use lifeboat::k8s::crds;
use lifeboat_testkit::kmock::Kmock;
use serde_json::{Value, json};

const NS: &str = "lifeboat";
const API: &str = "/apis/lifeboat.dev/v1alpha1/namespaces/lifeboat";

/// A `lifeboat run --kubernetes` process, stopped (SIGTERM, then SIGKILL) on drop.
struct Daemon {
    child: Option<Child>,
    log: PathBuf,
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
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        Daemon {
            child: Some(child),
            log,
        }
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

/// Plays the Deployment controller the emulator lacks: every Deployment in `shop` is
/// marked rolled out. Stops when dropped.
struct FakeRollouts {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl FakeRollouts {
    fn start(clusters: Vec<Arc<Mutex<Kmock>>>) -> FakeRollouts {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            while !flag.load(Ordering::Relaxed) {
                for cluster in &clusters {
                    let kmock = cluster.lock().unwrap();
                    roll_out(&kmock);
                }
                std::thread::sleep(Duration::from_millis(200));
            }
        });
        FakeRollouts {
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for FakeRollouts {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn roll_out(kmock: &Kmock) {
    let Ok((200, body)) = kmock.request("GET", "/apis/apps/v1/namespaces/shop/deployments", None)
    else {
        return;
    };
    let Ok(list) = serde_json::from_str::<Value>(&body) else {
        return;
    };
    for d in list["items"].as_array().into_iter().flatten() {
        let generation = d["metadata"]["generation"].as_i64().unwrap_or(1);
        if d["status"]["observedGeneration"].as_i64() == Some(generation) {
            continue;
        }
        let replicas = d["spec"]["replicas"].as_i64().unwrap_or(1);
        let name = d["metadata"]["name"].as_str().unwrap_or_default();
        let status = json!({
            "observedGeneration": generation, "replicas": replicas,
            "updatedReplicas": replicas, "readyReplicas": replicas, "availableReplicas": replicas,
        });
        let _ = kmock.set_status(
            &format!("/apis/apps/v1/namespaces/shop/deployments/{name}"),
            &status.to_string(),
        );
    }
}

fn post(kmock: &Kmock, path: &str, body: &Value) {
    let (code, text) = kmock
        .request("POST", path, Some(("application/json", &body.to_string())))
        .unwrap();
    // A real server answers 201 Created; the emulator answers 200.
    assert!(code == 201 || code == 200, "POST {path}: {code} {text}");
}

fn get(kmock: &Kmock, path: &str) -> Value {
    let (code, text) = kmock.request("GET", path, None).unwrap();
    if code != 200 {
        return Value::Null;
    }
    serde_json::from_str(&text).unwrap_or(Value::Null)
}

/// Creates the CRDs in lifeboat's home cluster (the emulator needs no Namespace
/// object before namespaced objects are created in it).
fn install(home: &Kmock) {
    for crd in crds::all() {
        post(
            home,
            "/apis/apiextensions.k8s.io/v1/customresourcedefinitions",
            &serde_json::to_value(crd).unwrap(),
        );
    }
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

fn placement(home: &Kmock, workload: &str) -> Option<String> {
    get(home, &format!("{API}/workloads/{workload}"))["status"]["placement"]["provider"]
        .as_str()
        .map(str::to_owned)
}

#[test]
fn revoked_credentials_in_cluster_a_move_every_workload_to_cluster_b() {
    let dir = tempfile::tempdir().unwrap();
    let a = Arc::new(Mutex::new(Kmock::start(Some("token-a")).unwrap()));
    let b = Arc::new(Mutex::new(Kmock::start(None).unwrap()));
    let (kubeconfig_a, kubeconfig_b) = {
        let (a, b) = (a.lock().unwrap(), b.lock().unwrap());
        (
            a.kubeconfig("shop", Some("token-a")).unwrap(),
            b.kubeconfig(NS, None).unwrap(),
        )
    };
    {
        let home = b.lock().unwrap();
        install(&home);
        let provider = |vendor: &str, kubeconfig: &Path| {
            json!({
                "vendor": vendor,
                "capacity": {"replicas": 20},
                "adapter": {"kind": "kubernetes", "kubeconfig": kubeconfig, "namespace": "shop", "timeout_secs": 5},
            })
        };
        post(
            &home,
            &format!("{API}/providers"),
            &resource(
                "Provider",
                "cluster-a",
                provider("acme-cloud", &kubeconfig_a),
            ),
        );
        post(
            &home,
            &format!("{API}/providers"),
            &resource("Provider", "cluster-b", provider("hetzner", &kubeconfig_b)),
        );
        for name in ["api", "web"] {
            let spec =
                json!({"image": "nginx:1.27", "port": 80, "placement": ["cluster-a", "cluster-b"]});
            post(
                &home,
                &format!("{API}/workloads"),
                &resource("Workload", name, spec),
            );
        }
        let policy = json!({
            "probe_interval": "2s", "probe_timeout": "2s", "step_timeout": "20s",
            "cutover": {"kind": "endpoints-file", "path": "endpoints.json"},
        });
        post(
            &home,
            &format!("{API}/policies"),
            &resource("Policy", "default", policy),
        );
    }
    let rollouts = FakeRollouts::start(vec![a.clone(), b.clone()]);
    let daemon = Daemon::start(&kubeconfig_b, dir.path(), "lifeboat-0", 10);
    let logs = || daemon.log_text();

    // Locks are taken per request: the fake rollouts need both emulators meanwhile.
    for workload in ["api", "web"] {
        let at = wait_for(&format!("{workload} placed"), &logs, || {
            placement(&b.lock().unwrap(), workload)
        });
        assert_eq!(at, "cluster-a");
    }
    let provider_a = get(&b.lock().unwrap(), &format!("{API}/providers/cluster-a"));
    assert_eq!(provider_a["status"]["conditions"][0]["type"], "Ready");
    assert_eq!(provider_a["status"]["conditions"][0]["status"], "True");

    // Cluster A's vendor revokes lifeboat's credentials: every call now answers 401.
    a.lock()
        .unwrap()
        .set_token(Some("revoked-by-the-vendor"))
        .unwrap();

    for workload in ["api", "web"] {
        wait_for(&format!("{workload} moved to cluster-b"), &logs, || {
            (placement(&b.lock().unwrap(), workload).as_deref() == Some("cluster-b")).then_some(())
        });
    }
    drop(rollouts);
    let home = b.lock().unwrap();
    let workload = get(&home, &format!("{API}/workloads/web"));
    assert!(
        workload["status"]["placement"]["generation"]
            .as_u64()
            .unwrap()
            >= 2,
        "{workload}"
    );
    assert_eq!(workload["status"]["conditions"][0]["type"], "Placed");
    // The copies run in cluster B now.
    let deployments = get(&home, "/apis/apps/v1/namespaces/shop/deployments");
    assert_eq!(
        deployments["items"].as_array().unwrap().len(),
        2,
        "{deployments}"
    );

    let provider_a = get(&home, &format!("{API}/providers/cluster-a"));
    assert_eq!(
        provider_a["status"]["conditions"][0]["status"], "False",
        "{provider_a}"
    );
    assert_eq!(provider_a["status"]["conditions"][0]["reason"], "Suspended");

    let events = get(
        &home,
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
    let evacuations = get(&home, &format!("{API}/evacuations"));
    let moved_off_a = evacuations["items"].as_array().unwrap().iter().find(|e| {
        e["spec"]["moves"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["from"] == "cluster-a")
    });
    let evacuation =
        moved_off_a.unwrap_or_else(|| panic!("no Evacuation off cluster-a: {evacuations}"));
    let steps = evacuation["status"]["steps"].as_array().unwrap();
    assert!(
        steps
            .iter()
            .any(|s| s["step"] == "cutover" && s["status"] == "done" && s["target"] == "cluster-b"),
        "{evacuation}"
    );
    wait_for("the evacuation's phase", &logs, || {
        let e = get(
            &home,
            &format!(
                "{API}/evacuations/{}",
                evacuation["metadata"]["name"].as_str()?
            ),
        );
        (e["status"]["phase"] == "Succeeded").then_some(())
    });
}

fn lease_holder(home: &Kmock) -> Option<String> {
    get(
        home,
        &format!("/apis/coordination.k8s.io/v1/namespaces/{NS}/leases/lifeboat"),
    )["spec"]["holderIdentity"]
        .as_str()
        .map(str::to_owned)
}

/// Against the emulator's Lease: kube-lease-manager reads, creates and patches it, which
/// the emulator serves. What it cannot show is the real server's optimistic concurrency
/// (its apply never answers 409 Conflict), so two replicas that found the lease free at
/// the same instant could both think they won there; the test starts the second once
/// the first holds the lease, which is the case a real server and the emulator agree on.
#[test]
fn only_the_leader_acts_and_the_other_takes_over_when_it_dies() {
    let dir = tempfile::tempdir().unwrap();
    let home = Kmock::start(None).unwrap();
    let kubeconfig = home.kubeconfig(NS, None).unwrap();
    install(&home);
    let sim = json!({"vendor": "self", "adapter": {"kind": "sim"}});
    post(
        &home,
        &format!("{API}/providers"),
        &resource("Provider", "sim-1", sim),
    );
    let spec = json!({"command": ["sleep", "1000"], "placement": ["sim-1"]});
    post(
        &home,
        &format!("{API}/workloads"),
        &resource("Workload", "job", spec),
    );
    let policy = json!({"probe_interval": "1s", "probe_timeout": "1s", "cutover": {"kind": "endpoints-file", "path": "endpoints.json"}});
    post(
        &home,
        &format!("{API}/policies"),
        &resource("Policy", "default", policy),
    );

    let lease_secs = 4;
    let mut one = Daemon::start(&kubeconfig, dir.path(), "one", lease_secs);
    let logs_one = || one.log_text();
    wait_for("one to hold the lease", &logs_one, || {
        (lease_holder(&home).as_deref() == Some("one")).then_some(())
    });
    let two = Daemon::start(&kubeconfig, dir.path(), "two", lease_secs);
    let (log_one, log_two) = (one.log.clone(), two.log.clone());
    let read = |p: &Path| std::fs::read_to_string(p).unwrap_or_default();
    let logs_both = || format!("one:\n{}\ntwo:\n{}", read(&log_one), read(&log_two));
    wait_for("the leader to place the workload", &logs_both, || {
        placement(&home, "job")
    });
    // Give the follower several of its lease checks to (wrongly) act.
    wait_for("two to start following", &logs_both, || {
        two.log_text()
            .contains("waiting for the lease")
            .then_some(())
    });
    std::thread::sleep(Duration::from_secs(lease_secs));
    assert_eq!(lease_holder(&home).as_deref(), Some("one"));
    assert!(
        !two.log_text().contains("acquired the lease"),
        "{}",
        two.log_text()
    );
    let events = get(
        &home,
        &format!("/apis/events.k8s.io/v1/namespaces/{NS}/events"),
    );
    let events = events["items"].as_array().cloned().unwrap_or_default();
    assert!(!events.is_empty());
    assert!(
        events.iter().all(|e| e["reportingInstance"] == "one"),
        "only the leader writes: {events:?}"
    );

    // The leader dies without releasing the lease; the other waits out the lease and
    // takes over.
    let killed = Instant::now();
    one.kill();
    wait_for("two to take over", &logs_both, || {
        (lease_holder(&home).as_deref() == Some("two")).then_some(())
    });
    eprintln!(
        "takeover {:.1} s after the leader was killed (lease {lease_secs} s)",
        killed.elapsed().as_secs_f64()
    );
    wait_for("two to lead", &logs_both, || {
        two.log_text()
            .contains("acquired the lease: leading")
            .then_some(())
    });
    // The new leader acts (its first round records the provider's condition) and
    // starts from the placement in the Workload status rather than placing it afresh.
    wait_for("an event from two", &logs_both, || {
        let events = get(
            &home,
            &format!("/apis/events.k8s.io/v1/namespaces/{NS}/events"),
        );
        let events = events["items"].as_array().cloned().unwrap_or_default();
        events
            .iter()
            .any(|e| e["reportingInstance"] == "two")
            .then_some(())
    });
    let job = get(&home, &format!("{API}/workloads/job"));
    assert_eq!(job["status"]["placement"]["generation"], 1, "{job}");
    assert!(
        two.log_text()
            .contains("placement taken from the Workload status"),
        "{}",
        two.log_text()
    );
}
