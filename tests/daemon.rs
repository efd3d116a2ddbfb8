//! `lifeboat run`, the daemon, driven through the real binary: it places the workloads,
//! `status` shows them while it runs, a second daemon on the same state refuses, SIGTERM
//! stops it cleanly, and a SIGKILL in the middle of an evacuation is finished by the
//! next start with exactly one live copy of each workload.

#[path = "support/cli.rs"]
mod cli;

use std::time::Duration;

use cli::{BIN, Lab, SHORT_POLICY, listening, placements, wait_for};
use nix::sys::signal::Signal;

/// Waits are for hangs, not speed: the machine is shared.
const PATIENCE: Duration = Duration::from_secs(120);

#[test]
fn run_places_shows_status_refuses_a_second_daemon_and_stops_on_sigterm() {
    let lab = Lab::quickstart();
    let daemon = lab.start("run", &["run", "-c", lab.config_arg()]);

    let status = wait_for(PATIENCE, "the daemon to place three workloads", || {
        let status = lab.status_when_ready()?;
        (placements(&status).len() == 3).then_some(status)
    });
    let placed = placements(&status);
    for workload in ["db", "api", "web"] {
        let (provider, generation) = &placed[workload];
        assert!(provider.starts_with("acme-"), "{workload}: {placed:?}");
        assert_eq!(*generation, 1, "{workload}: {placed:?}");
    }
    // Every workload answers on its provider's ports, and nothing else runs.
    let copies = wait_for(PATIENCE, "three live copies", || {
        let live = lab.live_copies();
        (live.len() == 3 && live.iter().all(|c| listening(c.port))).then_some(live)
    });
    for copy in &copies {
        assert_eq!(
            lab.provider_of_port(copy.port),
            Some(placed[&copy.workload].0.as_str()),
            "{copy:?}"
        );
    }
    let providers = wait_for(PATIENCE, "the first probe round in the status", || {
        let status = lab.status();
        let providers = status["providers"].as_array()?.clone();
        (providers.len() == 3).then_some(providers)
    });
    assert!(
        providers
            .iter()
            .all(|p| p["condition"]["condition"] == "healthy"),
        "{providers:?}"
    );

    // One writer per state folder: a second daemon says why it will not start.
    let second = lab.run(&["run", "-c", lab.config_arg()]);
    assert_ne!(second.code, Some(0), "{}", second.output());
    let holder = format!("another lifeboat process (pid {}) holds", daemon.pid());
    assert!(
        second.stderr.contains(&holder),
        "no clear refusal naming the running daemon\n{}",
        second.output()
    );

    daemon.signal(Signal::SIGTERM);
    let stopped = daemon.wait();
    assert_eq!(stopped.code, Some(0), "{}", stopped.output());
    assert!(stopped.stderr.contains("stopped"), "{}", stopped.output());
    // The daemon stops; the service it keeps alive does not.
    assert_eq!(lab.live_copies().len(), 3);

    // With the first one gone, a new daemon takes the state over and finds its copies.
    let again = lab.start("run-again", &["run", "-c", lab.config_arg()]);
    wait_for(PATIENCE, "the new daemon to probe", || {
        again
            .stderr_so_far()
            .contains("lifeboat started")
            .then_some(())
    });
    again.signal(Signal::SIGTERM);
    let stopped = again.wait();
    assert_eq!(stopped.code, Some(0), "{}", stopped.output());
    assert_eq!(placements(&lab.status()), placed);
    assert_eq!(lab.live_copies().len(), 3, "no copy was started twice");
}

/// Gives every workload of `yaml` the command `command(name)`.
fn set_commands(yaml: &mut serde_yaml::Value, command: impl Fn(&str) -> serde_yaml::Value) {
    for workload in yaml["workloads"].as_sequence_mut().unwrap() {
        let name = workload["name"].as_str().unwrap().to_owned();
        workload
            .as_mapping_mut()
            .unwrap()
            .insert("command".into(), command(&name));
    }
}

/// A two-vendor config whose source is simulated and gets its account suspended three
/// seconds after the daemon starts; the target runs real processes that take two
/// seconds to become healthy, so the evacuation is in flight long enough to be killed.
fn crash_lab() -> Lab {
    let slow_demo = |name: &str| {
        serde_yaml::to_value(vec![
            "sh".to_owned(),
            "-c".to_owned(),
            format!("sleep 2; exec \"$0\" demo --name {name}"),
            BIN.clone(),
        ])
        .unwrap()
    };
    let mut yaml: serde_yaml::Value = serde_yaml::from_str(
        "
vendors:
  - name: cloud
    accounts: [prod]
  - name: metal
providers:
  - name: cloud-1
    vendor: cloud
    account: prod
    capacity: { replicas: 10 }
    adapter:
      kind: sim
      faults:
        - { from: 3s, class: account-suspended }
  - name: metal-1
    vendor: metal
    capacity: { replicas: 10 }
    adapter: { kind: local, ports: 1-2 }
workloads:
  - name: db
    health: { type: http, path: /healthz }
    placement: [cloud-1, metal-1]
    public_name: db.crash.test
  - name: api
    health: { type: http, path: /healthz }
    depends_on: [db]
    placement: [cloud-1, metal-1]
    public_name: api.crash.test
cutover: { kind: endpoints-file, path: endpoints.json }
",
    )
    .unwrap();
    set_commands(&mut yaml, slow_demo);
    Lab::new(yaml, SHORT_POLICY)
}

#[test]
fn a_daemon_killed_mid_evacuation_is_finished_by_the_next_with_one_copy_each() {
    let lab = crash_lab();
    let first = lab.start("run-1", &["run", "-c", lab.config_arg()]);

    // Placed on the simulated cloud first (it is everyone's first choice).
    wait_for(PATIENCE, "the workloads on cloud-1", || {
        let placed = placements(&lab.status_when_ready()?);
        (placed.len() == 2 && placed.values().all(|(p, _)| p == "cloud-1")).then_some(())
    });
    // Then the account is suspended and the evacuation starts; kill the daemon once a
    // copy is deployed at metal-1 but before it is healthy (it sleeps two seconds).
    let in_flight = wait_for(PATIENCE, "a move in flight to metal-1", || {
        let status = lab.status();
        let moving = status["in_flight"].as_array()?.iter().any(|f| {
            f["last"]["target"] == "metal-1"
                && matches!(f["last"]["step"].as_str(), Some("deploy" | "wait_healthy"))
        });
        moving.then_some(status)
    });
    first.signal(Signal::SIGKILL);
    let killed = first.wait();
    assert_eq!(killed.code, None, "killed by a signal\n{}", killed.output());
    // The kill came before any cutover: the workloads still count as on cloud-1.
    let before = placements(&in_flight);
    assert!(
        before.values().any(|(p, _)| p == "cloud-1"),
        "the evacuation finished before the kill: {in_flight}"
    );

    let second = lab.start("run-2", &["run", "-c", lab.config_arg()]);
    let after = wait_for(PATIENCE, "the evacuation to finish on metal-1", || {
        let status = lab.status();
        let placed = placements(&status);
        let done = placed.len() == 2
            && placed.values().all(|(p, _)| p == "metal-1")
            && status["in_flight"].as_array().is_some_and(Vec::is_empty);
        done.then_some(placed)
    });
    for (workload, (_, generation)) in &after {
        let (_, old) = &before[workload];
        assert!(generation > old, "{workload}: {before:?} -> {after:?}");
    }

    // Exactly one live copy of each workload, at the placement's generation, answering
    // on its port; and the endpoints file points at it.
    let copies = wait_for(PATIENCE, "one live copy per workload", || {
        let live = lab.live_copies();
        (live.len() == 2).then_some(live)
    });
    let endpoints = lab.endpoints();
    for copy in &copies {
        let (provider, generation) = &after[&copy.workload];
        assert_eq!(&copy.provider, provider, "{copy:?}");
        assert_eq!(copy.generation, *generation, "{copy:?}");
        assert!(listening(copy.port), "{copy:?} does not answer");
        let public = format!("{}.crash.test", copy.workload);
        assert_eq!(
            endpoints.get(&public),
            Some(&format!("127.0.0.1:{}", copy.port)),
            "{endpoints:?}"
        );
    }
    let mut workloads: Vec<&str> = copies.iter().map(|c| c.workload.as_str()).collect();
    workloads.sort_unstable();
    assert_eq!(workloads, ["api", "db"]);
    assert_eq!(lab.records().len(), 2, "no stale record left behind");

    // Still exactly one each a few probe rounds later (the restarted simulated cloud
    // gets suspended again from its own t = 3 s, with nothing left to move).
    std::thread::sleep(Duration::from_secs(4));
    assert_eq!(lab.live_copies().len(), 2);
    assert_eq!(placements(&lab.status()), after);

    second.signal(Signal::SIGTERM);
    let stopped = second.wait();
    assert_eq!(stopped.code, Some(0), "{}", stopped.output());
}

/// Vendor `cloud` is lost; while its workloads move to `backup`, `backup` is lost too.
/// The daemon goes on probing during the evacuation, sees the second loss within its
/// confirmations, gives up the copies still starting at `backup` and moves them to
/// `metal` instead: nothing serves from either lost vendor, nothing is left behind.
#[test]
fn a_second_vendor_lost_mid_evacuation_is_seen_and_its_moves_fall_through() {
    let mut yaml: serde_yaml::Value = serde_yaml::from_str(
        "
vendors:
  - name: cloud
  - name: backup
  - name: metal
providers:
  - name: cloud-1
    vendor: cloud
    capacity: { replicas: 10 }
    adapter:
      kind: sim
      faults:
        - { from: 3s, class: account-suspended, ops: [probe, deploy] }
  - name: backup-1
    vendor: backup
    capacity: { replicas: 10 }
    adapter:
      kind: sim
      # Its copies take a minute to start: the move is surely under way when it goes.
      healthy_after: 60s
      faults:
        - { from: 8s, class: account-suspended, ops: [probe, deploy] }
  - name: metal-1
    vendor: metal
    capacity: { replicas: 10 }
    adapter: { kind: local, ports: 1-2 }
workloads:
  - name: db
    health: { type: http, path: /healthz }
    placement: [cloud-1, backup-1, metal-1]
    public_name: db.second.test
  - name: api
    health: { type: http, path: /healthz }
    depends_on: [db]
    placement: [cloud-1, backup-1, metal-1]
    public_name: api.second.test
cutover: { kind: endpoints-file, path: endpoints.json }
",
    )
    .unwrap();
    set_commands(&mut yaml, |name| {
        serde_yaml::to_value([BIN.as_str(), "demo", "--name", name]).unwrap()
    });
    let lab = Lab::new(yaml, SHORT_POLICY);
    let daemon = lab.start("run", &["run", "-c", lab.config_arg()]);

    let placed = wait_for(PATIENCE, "both workloads on metal-1", || {
        let status = lab.status_when_ready()?;
        let placed = placements(&status);
        let done = placed.len() == 2
            && placed.values().all(|(p, _)| p == "metal-1")
            && status["in_flight"].as_array().is_some_and(Vec::is_empty);
        done.then_some(status)
    });
    let log = daemon.stderr_so_far();
    // The moves went to backup-1 first and were given up there because it was lost,
    // not because they timed out.
    assert!(
        log.contains("backup-1 is being left now"),
        "the evacuation did not fall through from backup-1\n{log}"
    );
    assert_eq!(placed["orphans"], 0, "{placed}");
    let providers = placed["providers"].as_array().unwrap();
    for lost in ["cloud-1", "backup-1"] {
        let condition = providers
            .iter()
            .find(|p| p["provider"] == lost)
            .map(|p| p["condition"]["condition"].clone());
        assert_eq!(condition, Some("suspended".into()), "{lost}: {placed}");
    }
    let copies = wait_for(PATIENCE, "one live copy per workload", || {
        let live = lab.live_copies();
        (live.len() == 2 && live.iter().all(|c| listening(c.port))).then_some(live)
    });
    assert!(copies.iter().all(|c| c.provider == "metal-1"), "{copies:?}");
}

/// The quickstart with a policy that replaces an unhealthy copy after `replace_after`.
fn watch_lab(replace_after: &str, edit: impl FnOnce(&mut serde_yaml::Value)) -> Lab {
    let mut yaml = cli::quickstart_yaml();
    edit(&mut yaml);
    Lab::new(
        yaml,
        &format!(
            "{{probe_interval: 250ms, probe_timeout: 250ms, confirmations: 2, step_timeout: 20s, \
             step_attempts: 3, replace_after: {replace_after}, max_replacements: 2}}"
        ),
    )
}

#[test]
fn a_copy_killed_by_hand_is_replaced_on_its_provider_and_its_dependents_reach_it() {
    // The provider's probe reports the dead process lost: replaced at once, not after
    // an hour's grace (the grace is for copies that run but fail their check).
    let lab = watch_lab("1h", |_| {});
    let daemon = lab.start("run", &["run", "-c", lab.config_arg()]);
    let placed = wait_for(PATIENCE, "three placements", || {
        let placed = placements(&lab.status_when_ready()?);
        (placed.len() == 3).then_some(placed)
    });
    let (provider, generation) = placed["api"].clone();
    let api = (lab.live_copies().into_iter())
        .find(|c| c.workload == "api")
        .expect("api's copy runs");
    api.kill();

    let (now_on, now_generation) = wait_for(PATIENCE, "api replaced", || {
        let placed = placements(&lab.status());
        let api = placed.get("api")?.clone();
        (api.1 > generation).then_some(api)
    });
    assert_eq!(
        now_on, provider,
        "a replacement tries the copy's own provider first"
    );
    assert_eq!(now_generation, generation + 1);
    // web reaches the new api through the cutover, and api its db.
    let web = lab.endpoints()["www.quickstart.test"].clone();
    let answer: serde_json::Value = wait_for(PATIENCE, "web to reach the new api", || {
        let answer: serde_json::Value = serde_json::from_str(&cli::http_get(&web)?).ok()?;
        let upstream = &answer["upstream"];
        (upstream["reachable"] == true
            && upstream["answered_by"]
                .as_str()?
                .contains(&format!("{now_generation}")))
        .then_some(answer)
    });
    assert_eq!(answer["name"], "web", "{answer}");
    let live: Vec<_> = lab
        .live_copies()
        .into_iter()
        .filter(|c| c.workload == "api")
        .collect();
    assert_eq!(live.len(), 1, "one copy of api: {live:?}");
    assert_eq!(live[0].generation, now_generation);

    // status tells what happened, in words and in JSON.
    let text = wait_for(PATIENCE, "status to show the replacement", || {
        let out = lab.run(&["status", "--state", lab.state_arg()]);
        (out.stdout.contains("replaced 1×") && out.stdout.contains("healthy at"))
            .then_some(out.stdout)
    });
    assert!(
        text.contains(&format!("daemon: running, pid {}", daemon.pid())),
        "{text}"
    );
    assert!(text.contains("last round 20"), "{text}");
    let status = lab.status();
    assert_eq!(
        status["copies"]["api"]["last"]["health"], "healthy",
        "{status}"
    );
    assert_eq!(
        status["copies"]["db"]["replacements"],
        serde_json::json!([])
    );
    let log = daemon.stderr_so_far();
    assert!(
        log.contains("the provider reports the workload's copy lost"),
        "{log}"
    );
    assert!(
        log.contains("replacing the workload's unhealthy copy"),
        "{log}"
    );

    daemon.signal(Signal::SIGTERM);
    assert_eq!(daemon.wait().code, Some(0));
    let out = lab.run(&["status", "--state", lab.state_arg()]);
    assert!(
        out.stdout.contains("daemon: NOT RUNNING"),
        "{}",
        out.output()
    );
    assert!(
        out.stdout.contains("the last one was pid"),
        "{}",
        out.output()
    );
}

#[test]
fn a_copy_that_keeps_dying_is_replaced_no_more_often_than_the_limit_and_reported() {
    // `web` serves for two seconds, then exits: every copy of it dies.
    let lab = watch_lab("1s", |yaml| {
        let web = (yaml["workloads"].as_sequence_mut().unwrap().iter_mut())
            .find(|w| w["name"] == "web")
            .unwrap();
        web["command"] = serde_yaml::to_value(vec![
            "sh".to_owned(),
            "-c".to_owned(),
            "exec timeout 2 \"$0\" demo --name web".to_owned(),
            BIN.clone(),
        ])
        .unwrap();
    });
    let daemon = lab.start("run", &["run", "-c", lab.config_arg()]);
    wait_for(PATIENCE, "the limit to be reached and reported", || {
        daemon
            .stderr_so_far()
            .contains("replaced too often already")
            .then_some(())
    });
    wait_for(PATIENCE, "the second replacement in place", || {
        (placements(&lab.status())["web"].1 == 3).then_some(())
    });
    // Held back from here: a few more rounds change nothing.
    std::thread::sleep(Duration::from_secs(3));
    let status = lab.status();
    assert_eq!(placements(&status)["web"].1, 3);
    assert_eq!(
        status["copies"]["web"]["replacements"]
            .as_array()
            .map(Vec::len),
        Some(2),
        "{status}"
    );
    assert!(
        status["copies"]["web"]["unhealthy_since"].is_string(),
        "{status}"
    );
    // The others were never touched.
    assert_eq!(placements(&status)["api"].1, 1);
    assert_eq!(placements(&status)["db"].1, 1);
    daemon.signal(Signal::SIGTERM);
    assert_eq!(daemon.wait().code, Some(0));
}
