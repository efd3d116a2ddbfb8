//! Drills beside a running daemon, through the real binary on the quickstart (local
//! providers: real processes): a shadow drill leaves every production copy running,
//! the daemon's placements and its endpoints file as they were; a live drill goes
//! through the daemon (it fences, the daemon moves and moves back) and refuses to be a
//! second controller; a drill killed with SIGKILL halfway leaves copies that
//! `lifeboat drill --cleanup` removes — those, and nothing else; a scheduled drill runs
//! inside the daemon and its result shows in `status --json`.

#[path = "support/cli.rs"]
mod cli;

use std::collections::BTreeMap;
use std::time::Duration;

use cli::{Copy, Lab, Lifeboat, SHORT_POLICY, placements, quickstart_yaml, wait_for};
use nix::sys::signal::Signal;
use serde_json::Value as Json;

/// Waits are for hangs, not speed: the machine is shared.
const PATIENCE: Duration = Duration::from_secs(120);

/// What production looks like: each placement (provider, generation) and each live
/// production copy (workload → pid).
#[derive(Debug, PartialEq, Eq)]
struct Production {
    placements: BTreeMap<String, (String, u64)>,
    copies: BTreeMap<String, i32>,
    endpoints: BTreeMap<String, String>,
}

fn production(lab: &Lab) -> Production {
    let placements = placements(&lab.status());
    let copies = lab
        .live_copies()
        .into_iter()
        .filter(|c| !c.drill)
        .map(|c| (c.workload, c.pid))
        .collect();
    Production {
        placements,
        copies,
        endpoints: lab.endpoints(),
    }
}

fn drill_copies(lab: &Lab) -> Vec<Copy> {
    lab.live_copies().into_iter().filter(|c| c.drill).collect()
}

/// A daemon that has placed the three quickstart workloads and probed once.
fn daemon_placed(lab: &Lab) -> (Lifeboat, Production) {
    let mut daemon = lab.start("run", &["run", "-c", lab.config_arg()]);
    let placed = wait_for(
        PATIENCE,
        "the daemon to place and serve three workloads",
        || {
            if let Some(exit) = daemon.exited() {
                panic!("the daemon ended ({exit}):\n{}", daemon.stderr_so_far());
            }
            let status = lab.status_when_ready()?;
            let placed = status["placements"].as_array()?.len() == 3;
            let probed = status["providers"].as_array()?.len() == 3;
            let p = production(lab);
            (placed && probed && p.copies.len() == 3 && p.endpoints.len() == 3).then_some(p)
        },
    );
    (daemon, placed)
}

/// Starts a shadow drill and kills it (SIGKILL) once its own copies run.
fn kill_a_shadow_drill_halfway(lab: &Lab) {
    let drill = lab.start(
        "drill",
        &["drill", "-c", lab.config_arg(), "--mode", "shadow"],
    );
    wait_for(PATIENCE, "the drill's own copies running", || {
        (drill_copies(lab).len() == 3).then_some(())
    });
    drill.signal(Signal::SIGKILL);
    let killed = drill.wait();
    assert_eq!(killed.code, None, "killed by a signal\n{}", killed.output());
}

#[test]
fn drills_beside_a_daemon_never_touch_production() {
    let lab = Lab::quickstart();
    let (mut daemon, before) = daemon_placed(&lab);

    let shadow = lab.run(&["drill", "-c", lab.config_arg(), "--mode", "shadow"]);
    assert_eq!(shadow.code, Some(0), "{}", shadow.output());
    assert!(
        shadow.stderr.contains("drill's own endpoints file"),
        "the drill says where its traffic went\n{}",
        shadow.output()
    );
    assert_eq!(production(&lab), before, "{}", shadow.output());
    assert!(drill_copies(&lab).is_empty(), "the shadow drill cleaned up");

    // A fault needs the drill's own controller, which would be a second one over the
    // same traffic.
    let faulted = lab.run(&["drill", "-c", lab.config_arg(), "--scenario", "unreachable"]);
    assert_eq!(faulted.code, Some(2), "{}", faulted.output());
    let holder = format!("daemon (pid {})", daemon.pid());
    assert!(faulted.stderr.contains(&holder), "{}", faulted.output());
    assert!(
        faulted.stderr.contains("--mode shadow"),
        "{}",
        faulted.output()
    );
    assert_eq!(production(&lab), before);

    assert!(daemon.exited().is_none(), "the daemon still runs");
    assert_eq!(production(&lab), before);
}

#[test]
fn a_live_drill_beside_a_daemon_goes_through_it_and_fails_back() {
    let lab = Lab::quickstart();
    let (mut daemon, before) = daemon_placed(&lab);
    let out = lab.path().join("report");
    let out_arg = out.to_str().unwrap();

    let live = lab.run(&["drill", "-c", lab.config_arg(), "--report", out_arg]);
    assert_eq!(live.code, Some(0), "{}", live.output());
    let through = format!("through the daemon (pid {})", daemon.pid());
    assert!(live.stderr.contains(&through), "{}", live.output());
    assert!(
        drill_copies(&lab).is_empty(),
        "the daemon's copies moved, no drill's"
    );

    let report: Json =
        serde_json::from_str(&std::fs::read_to_string(out.join("report.json")).unwrap()).unwrap();
    assert_eq!(report["mode"], "live", "{report:#}");
    assert_eq!(report["scenario"], "fence", "{report:#}");
    assert!(report["detected_after_ms"].is_u64(), "{report:#}");
    let failback = report["failback"].as_str().unwrap_or_default();
    assert!(failback.starts_with("ok"), "{report:#}");
    let workloads = report["workloads"].as_array().unwrap();
    assert_eq!(workloads.len(), 3, "{report:#}");
    for w in workloads {
        assert_eq!(w["to"], "metal-1", "{w:#}");
        assert!(
            w["rto_ms"].is_u64(),
            "the daemon's cutover was timed: {w:#}"
        );
        assert_eq!(w["met"], true, "{w:#}");
    }

    // Production ran at metal-1 and is back where it was, a new generation each, served
    // through the endpoints file; no fence is left and the daemon goes on.
    let after = production(&lab);
    assert_eq!(after.copies.len(), 3, "{after:?}");
    for (workload, (provider, generation)) in &before.placements {
        let (now_on, now_generation) = &after.placements[workload];
        assert_eq!(now_on, provider, "{workload} back home: {after:?}");
        assert!(
            now_generation > generation,
            "{workload} moved twice: {after:?}"
        );
    }
    assert_ne!(
        after.endpoints, before.endpoints,
        "traffic followed the moves"
    );
    let status = lab.status();
    assert_eq!(status["notices"], serde_json::json!([]), "{status:#}");
    assert!(daemon.exited().is_none(), "the daemon still runs");
}

#[test]
fn a_killed_drill_leaves_only_its_own_copies_and_cleanup_removes_them() {
    let lab = Lab::quickstart();
    let (daemon, before) = daemon_placed(&lab);

    kill_a_shadow_drill_halfway(&lab);
    let debris = drill_copies(&lab);
    assert!(!debris.is_empty(), "a killed drill leaves its copies");
    let status = lab.status();
    let runs = status["drill_runs"].as_array().expect("drill_runs");
    assert!(
        runs.iter().any(|r| r["cleaned"].is_null()),
        "the dead drill is shown: {status:#}"
    );

    let cleanup = lab.run(&["drill", "--cleanup", "-c", lab.config_arg()]);
    assert_eq!(cleanup.code, Some(0), "{}", cleanup.output());
    assert!(
        cleanup.stdout.contains("retired"),
        "it says what it removed\n{}",
        cleanup.output()
    );
    assert!(drill_copies(&lab).is_empty(), "{:?}", drill_copies(&lab));
    assert_eq!(production(&lab), before, "{}", cleanup.output());

    // Nothing left: a second cleanup has nothing to do.
    let again = lab.run(&["drill", "--cleanup", "-c", lab.config_arg()]);
    assert_eq!(again.code, Some(0), "{}", again.output());
    assert!(
        again
            .stdout
            .contains("no drill of this config left anything"),
        "{}",
        again.output()
    );
    drop(daemon);
}

#[test]
fn the_daemon_removes_what_a_dead_drill_left_when_it_starts() {
    let lab = Lab::quickstart();
    kill_a_shadow_drill_halfway(&lab);
    assert!(!drill_copies(&lab).is_empty());

    let (_daemon, placed) = daemon_placed(&lab);
    wait_for(PATIENCE, "the dead drill's copies gone", || {
        drill_copies(&lab).is_empty().then_some(())
    });
    assert_eq!(placed.copies.len(), 3, "production placed as usual");
}

#[test]
fn a_scheduled_drill_runs_inside_the_daemon_and_reports_in_status() {
    let mut yaml = quickstart_yaml();
    let schedule: serde_yaml::Value = serde_yaml::from_str(
        "[{name: every-few-seconds, schedule: '*/3 * * * * *', lose: acme-cloud}]",
    )
    .unwrap();
    yaml.as_mapping_mut()
        .unwrap()
        .insert("drills".into(), schedule);
    let lab = Lab::new(yaml, SHORT_POLICY);
    let (daemon, before) = daemon_placed(&lab);

    let result = wait_for(PATIENCE, "a scheduled drill's result in status", || {
        // Polled while the drill writes its own state: a status that fails once (seen
        // on a loaded machine) is asked again.
        let status = lab.status_when_ready()?;
        let drills = status["drills"].as_array()?.clone();
        drills.first().map(|d| d["record"].clone())
    });
    assert_eq!(result["schedule"], "every-few-seconds", "{result:#}");
    assert_eq!(result["outcome"], "objectives met", "{result:#}");
    assert_eq!(result["report"]["mode"], "shadow", "{result:#}");

    daemon.signal(Signal::SIGTERM);
    let stopped = daemon.wait();
    assert_eq!(stopped.code, Some(0), "{}", stopped.output());
    let after: Vec<Json> = lab.status()["drill_runs"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert!(
        after.iter().all(|r| !r["cleaned"].is_null()),
        "every scheduled drill cleaned up, also one the stop cancelled: {after:?}"
    );
    assert!(drill_copies(&lab).is_empty());
    // The production copies outlive the daemon (it stopped, it did not retire them).
    assert_eq!(
        lab.live_copies()
            .into_iter()
            .filter(|c| !c.drill)
            .map(|c| (c.workload, c.pid))
            .collect::<BTreeMap<_, _>>(),
        before.copies
    );
}
