//! The local provider against real processes: python3's http.server and small shell
//! commands, started, checked, found again and stopped on this host.

use std::collections::BTreeMap;
use std::net::TcpListener;
use std::path::Path;
use std::time::{Duration, Instant};

use lifeboat_provider::{
    DeployRequest, DeploymentRef, DeploymentState, ErrorClass, Generation, HealthCheck, Owner,
    Provider, Resources, Run, WorkloadSpec, conformance,
};
use lifeboat_provider_local::{LocalConfig, LocalProvider, PortRange};
use lifeboat_testkit::free_port;

/// A temporary provider folder that, when dropped, kills every process group recorded
/// in it, so a failing test leaves nothing running.
struct Folder(tempfile::TempDir);

impl Folder {
    fn new() -> Folder {
        Folder(tempfile::tempdir().unwrap())
    }

    fn path(&self) -> &Path {
        self.0.path()
    }
}

impl Drop for Folder {
    fn drop(&mut self) {
        let Ok(entries) = std::fs::read_dir(self.path().join("here")) else {
            return;
        };
        for entry in entries.flatten() {
            let Ok(text) = std::fs::read_to_string(entry.path()) else {
                continue;
            };
            let pid = serde_json::from_str::<serde_json::Value>(&text)
                .ok()
                .and_then(|v| v["pid"].as_i64());
            if let Some(pid) = pid.and_then(|p| i32::try_from(p).ok()) {
                let _ = nix::sys::signal::killpg(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
        }
    }
}

fn provider(dir: &Path, ports: PortRange) -> LocalProvider {
    let config = LocalConfig {
        ports,
        bind: [127, 0, 0, 1].into(),
        dir: None,
    };
    LocalProvider::new("here", config, dir)
        .unwrap()
        .with_stop_grace(Duration::from_millis(500))
}

/// A range of `n` ports starting at one the OS just said was free (the provider skips
/// any neighbour that turns out to be taken).
fn ports(n: u16) -> PortRange {
    let first = free_port();
    PortRange::new(first, first.saturating_add(n - 1)).unwrap()
}

fn request(
    name: &str,
    generation: u64,
    command: &[&str],
    health: Option<HealthCheck>,
) -> DeployRequest {
    DeployRequest {
        workload: WorkloadSpec {
            name: name.into(),
            run: Run::Command {
                command: command.iter().map(|s| s.to_string()).collect(),
            },
            env: BTreeMap::from([("GREETING".into(), "hello".into())]),
            port: None,
            resources: Resources::default(),
            replicas: 1,
            health,
            extra: BTreeMap::new(),
        },
        generation: Generation(generation),
        owner: owner(),
    }
}

fn owner() -> Owner {
    Owner::installation("test")
}

/// An HTTP server on `$PORT` that first prints what it was given.
fn web(name: &str, generation: u64) -> DeployRequest {
    request(
        name,
        generation,
        &[
            "sh",
            "-c",
            "echo \"gen=$LIFEBOAT_GENERATION wl=$LIFEBOAT_WORKLOAD port=$PORT greeting=$GREETING\"; \
             exec python3 -m http.server --bind 127.0.0.1 \"$PORT\"",
        ],
        Some(HealthCheck::Http { path: "/".into() }),
    )
}

/// Polls `inspect` until `done` holds (a readiness wait, not a timing assertion).
async fn wait_for(
    p: &LocalProvider,
    dep: &DeploymentRef,
    done: impl Fn(&DeploymentState) -> bool,
) -> DeploymentState {
    let start = Instant::now();
    loop {
        let state = p.inspect(dep).await.unwrap();
        if done(&state) {
            return state;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "still {state:?} after a minute"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn healthy(s: &DeploymentState) -> bool {
    matches!(s, DeploymentState::Healthy { .. })
}

fn pid_alive(pid: &str) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| {
            !s.rsplit(')')
                .next()
                .unwrap_or("")
                .trim_start()
                .starts_with('Z')
        })
        .unwrap_or(false)
}

fn pgrp_of(pid: &str) -> String {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let fields: Vec<&str> = stat
        .rsplit(')')
        .next()
        .unwrap()
        .split_whitespace()
        .collect();
    fields[2].to_owned()
}

fn recorded_pid(p: &LocalProvider, handle: &str) -> String {
    let text = std::fs::read_to_string(p.dir().join(format!("{handle}.json"))).unwrap();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    v["pid"].to_string()
}

#[tokio::test]
async fn deploy_becomes_healthy_and_retire_stops_it() {
    let dir = Folder::new();
    let p = provider(dir.path(), ports(5));
    let dep = p.deploy(&web("web", 3)).await.unwrap();
    assert_eq!(
        (dep.workload.as_str(), dep.generation),
        ("web", Generation(3))
    );
    let endpoint = dep.endpoint.clone().unwrap();
    let state = wait_for(&p, &dep, healthy).await;
    assert_eq!(
        state,
        DeploymentState::Healthy {
            endpoint: endpoint.clone()
        }
    );

    let log = std::fs::read_to_string(p.dir().join(format!("{}.log", dep.handle))).unwrap();
    assert!(
        log.contains(&format!(
            "gen=3 wl=web port={} greeting=hello",
            endpoint.port
        )),
        "{log}"
    );
    let pid = recorded_pid(&p, &dep.handle);
    assert!(pid_alive(&pid));

    p.retire(&dep).await.unwrap();
    assert!(!pid_alive(&pid), "process {pid} survived retire");
    assert_eq!(p.inspect(&dep).await.unwrap(), DeploymentState::Gone);
    assert!(p.list_managed(Some(&owner())).await.unwrap().is_empty());
    // The port is free again once retire returned.
    TcpListener::bind(("127.0.0.1", endpoint.port)).unwrap();
    // Retiring twice is fine.
    p.retire(&dep).await.unwrap();
}

#[tokio::test]
async fn deploying_twice_yields_one_copy() {
    let dir = Folder::new();
    let p = provider(dir.path(), ports(5));
    let first = p.deploy(&web("api", 1)).await.unwrap();
    let second = p.deploy(&web("api", 1)).await.unwrap();
    assert_eq!(first, second);
    assert_eq!(
        p.list_managed(Some(&owner())).await.unwrap(),
        vec![first.clone()]
    );
    // Another generation is another copy, on another port.
    let next = p.deploy(&web("api", 2)).await.unwrap();
    assert_ne!(next.handle, first.handle);
    assert_ne!(next.endpoint, first.endpoint);
    assert_eq!(p.list_managed(Some(&owner())).await.unwrap().len(), 2);
    for dep in [first, next] {
        wait_for(&p, &dep, healthy).await;
        p.retire(&dep).await.unwrap();
    }
}

#[tokio::test]
async fn a_new_provider_over_the_same_folder_finds_the_copies() {
    let dir = Folder::new();
    let range = ports(5);
    let first = provider(dir.path(), range);
    let dep = first.deploy(&web("db", 7)).await.unwrap();
    wait_for(&first, &dep, healthy).await;
    let pid = recorded_pid(&first, &dep.handle);
    // The copy leads its own process group, so a signal aimed at the controller's group
    // (Ctrl-C in its terminal, a supervisor killing the group) does not reach it.
    assert_eq!(pgrp_of(&pid), pid);
    assert_ne!(pgrp_of(&std::process::id().to_string()), pid);
    // The controller goes away; its copy must not.
    drop(first);
    assert!(pid_alive(&pid));

    let second = provider(dir.path(), range);
    assert_eq!(
        second.list_managed(Some(&owner())).await.unwrap(),
        vec![dep.clone()]
    );
    assert!(healthy(&second.inspect(&dep).await.unwrap()));
    // Deploying the same generation again adopts the running copy.
    assert_eq!(second.deploy(&web("db", 7)).await.unwrap(), dep);
    second.retire(&dep).await.unwrap();
    assert!(!pid_alive(&pid));
    assert!(
        second
            .list_managed(Some(&owner()))
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn a_dead_copy_is_failed_with_its_exit_status_and_log() {
    let dir = Folder::new();
    let range = ports(3);
    let p = provider(dir.path(), range);
    let req = request(
        "crash",
        1,
        &["sh", "-c", "echo 'boom: no database' >&2; exit 3"],
        None,
    );
    let dep = p.deploy(&req).await.unwrap();
    let state = wait_for(&p, &dep, |s| matches!(s, DeploymentState::Failed { .. })).await;
    let DeploymentState::Failed { reason } = state else {
        unreachable!()
    };
    assert!(reason.contains("exited with status 3"), "{reason}");
    assert!(reason.contains("boom: no database"), "{reason}");

    // It is still listed (so it can be fenced) and the probe reports it lost.
    assert_eq!(
        p.list_managed(Some(&owner())).await.unwrap(),
        vec![dep.clone()]
    );
    assert_eq!(p.probe().await.unwrap().lost, vec![dep.clone()]);

    // A controller that did not start it cannot know the status, but still has the log.
    let other = provider(dir.path(), range);
    let DeploymentState::Failed { reason } = other.inspect(&dep).await.unwrap() else {
        panic!("expected Failed");
    };
    assert!(reason.contains("exit status is unknown"), "{reason}");
    assert!(reason.contains("boom: no database"), "{reason}");
    p.retire(&dep).await.unwrap();
    assert_eq!(other.inspect(&dep).await.unwrap(), DeploymentState::Gone);
}

#[tokio::test]
async fn a_stubborn_group_is_killed_after_the_grace_period() {
    let dir = Folder::new();
    let p = provider(dir.path(), ports(3));
    // The shell ignores SIGTERM and keeps starting children in its group.
    let req = request(
        "stubborn",
        1,
        &["sh", "-c", "trap '' TERM; while :; do sleep 0.2; done"],
        Some(HealthCheck::Tcp),
    );
    let dep = p.deploy(&req).await.unwrap();
    let pid = recorded_pid(&p, &dep.handle);
    // It listens on nothing, so it runs but never becomes healthy.
    let state = p.inspect(&dep).await.unwrap();
    assert!(
        matches!(state, DeploymentState::Running { .. }),
        "{state:?}"
    );
    p.retire(&dep).await.unwrap();
    assert!(!pid_alive(&pid));
    let group: Vec<String> = std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.parse::<u32>().is_ok())
        .filter(|n| {
            std::fs::read_to_string(format!("/proc/{n}/stat")).is_ok_and(|s| {
                let f: Vec<&str> = s.rsplit(')').next().unwrap().split_whitespace().collect();
                f.get(2) == Some(&pid.as_str()) && f[0] != "Z"
            })
        })
        .collect();
    assert!(group.is_empty(), "left in group {pid}: {group:?}");
}

#[tokio::test]
async fn no_free_port_is_capacity_exhausted() {
    let dir = Folder::new();
    // A port held by someone else is not handed out.
    let held = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = held.local_addr().unwrap().port();
    let p = provider(dir.path(), PortRange::new(port, port).unwrap());
    let e = p.deploy(&web("web", 1)).await.unwrap_err();
    assert_eq!(e.class, ErrorClass::CapacityExhausted, "{e}");
    let report = p.probe().await.unwrap();
    assert!(report.degraded.is_some_and(|d| d.contains("no free port")));
    assert_eq!(report.capacity.unwrap().replicas, Some(0));
    drop(held);

    // Nor is one that a running copy already has.
    assert_eq!(p.probe().await.unwrap().capacity.unwrap().replicas, Some(1));
    let dep = p.deploy(&web("web", 1)).await.unwrap();
    let e = p.deploy(&web("api", 1)).await.unwrap_err();
    assert_eq!(e.class, ErrorClass::CapacityExhausted, "{e}");
    assert!(e.to_string().contains(&format!("{port}-{port}")), "{e}");
    p.retire(&dep).await.unwrap();
}

#[tokio::test]
async fn what_cannot_run_here_is_an_invalid_request() {
    let dir = Folder::new();
    let p = provider(dir.path(), ports(3));
    let mut image = web("web", 1);
    image.workload.run = Run::Image {
        image: "ghcr.io/acme/web:1".into(),
        command: vec![],
    };
    let missing = request("web", 1, &["/nonexistent/program"], None);
    let mut replicas = web("web", 1);
    replicas.workload.replicas = 3;
    let bad_name = request("../etc", 1, &["true"], None);
    for (req, says) in [
        (image, "no container runtime"),
        (missing, "/nonexistent/program"),
        (replicas, "3 replicas"),
        (bad_name, "workload name"),
    ] {
        let e = p.deploy(&req).await.unwrap_err();
        assert_eq!(e.class, ErrorClass::InvalidRequest, "{e}");
        assert!(e.to_string().contains(says), "{e}");
    }
    assert!(p.list_managed(Some(&owner())).await.unwrap().is_empty());
    let report = p.probe().await.unwrap();
    assert_eq!(report.degraded, None);
    assert!(report.lost.is_empty());
}

#[tokio::test]
async fn a_workload_with_a_fixed_port_gets_exactly_that_port_on_the_bind_address() {
    let dir = Folder::new();
    let range = ports(5);
    let fixed = range.first() + 3;
    // Its own loopback address, as a DNS-switched provider has: an A record names the
    // address, and the port stays the workload's.
    let config = LocalConfig {
        ports: range,
        bind: [127, 0, 0, 2].into(),
        dir: None,
    };
    let p = LocalProvider::new("here", config, dir.path())
        .unwrap()
        .with_stop_grace(Duration::from_millis(500));
    let mut req = request(
        "web",
        1,
        &[
            "sh",
            "-c",
            "exec python3 -m http.server --bind \"$LIFEBOAT_BIND\" \"$PORT\"",
        ],
        Some(HealthCheck::Tcp),
    );
    req.workload.port = Some(fixed);
    let dep = p.deploy(&req).await.unwrap();
    let state = wait_for(&p, &dep, healthy).await;
    let DeploymentState::Healthy { endpoint } = state else {
        unreachable!()
    };
    assert_eq!(endpoint.to_string(), format!("127.0.0.2:{fixed}"));

    // A second copy cannot share the port: the provider says it is full, not "invalid".
    let mut again = req.clone();
    again.generation = Generation(2);
    let e = p.deploy(&again).await.unwrap_err();
    assert_eq!(e.class, ErrorClass::CapacityExhausted, "{e}");
    assert!(e.to_string().contains("taken"), "{e}");

    // A port outside the range is a request this provider cannot serve.
    let mut outside = req.clone();
    outside.workload.port = Some(range.last() + 1);
    outside.workload.name = "other".into();
    let e = p.deploy(&outside).await.unwrap_err();
    assert_eq!(e.class, ErrorClass::InvalidRequest, "{e}");
    assert!(e.to_string().contains("outside"), "{e}");

    p.retire(&dep).await.unwrap();
    assert!(p.list_managed(Some(&owner())).await.unwrap().is_empty());
}

#[tokio::test]
async fn conformance() {
    let folder = Folder::new();
    let p = provider(folder.path(), ports(20));
    let mut fixture = conformance::Fixture::new(web("web", 1).workload, "test");
    fixture.healthy_within = Some(Duration::from_secs(20));
    fixture.invalid = Some(WorkloadSpec {
        run: Run::Image {
            image: "ghcr.io/acme/web:1".into(),
            command: Vec::new(),
        },
        ..web("web", 1).workload
    });
    let report = conformance::run(&p, &fixture).await;
    assert!(report.passed(), "{report}");
}

/// A record written before owners existed is listed as unowned, never as an owner's,
/// and a drill's retire of a forged reference leaves it running.
#[tokio::test]
async fn copies_from_before_owners_are_listed_as_unowned() {
    let folder = Folder::new();
    let p = provider(folder.path(), ports(5));
    let dep = p.deploy(&web("old", 1)).await.unwrap();
    let file = p.dir().join(format!("{}.json", dep.handle));
    let mut record: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    record.as_object_mut().unwrap().remove("owner");
    std::fs::write(&file, record.to_string()).unwrap();

    assert!(p.list_managed(Some(&owner())).await.unwrap().is_empty());
    let unowned = p.list_managed(None).await.unwrap();
    assert_eq!(unowned.len(), 1);
    assert_eq!(unowned[0].owner, None);
    let forged = DeploymentRef {
        owner: Some(Owner::drill("test", "d1")),
        ..unowned[0].clone()
    };
    p.retire(&forged).await.unwrap();
    assert!(
        file.exists(),
        "a drill's retire removed a copy it did not own"
    );
    p.retire(&unowned[0]).await.unwrap();
    assert!(p.list_managed(None).await.unwrap().is_empty());
}
