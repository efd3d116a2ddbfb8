//! The stateful quickstart (`examples/quickstart-postgres.yaml`) through the real
//! binary, against real PostgreSQL servers on loopback: in a drill, the standby lifeboat
//! keeps at own-metal is promoted when acme-cloud's account is suspended, the drill's
//! writer measures what the move lost, the failback brings every row back to acme-eu,
//! and an old primary that is still running is fenced before a write can reach it; under
//! the daemon, a standby that falls behind its rpo raises the alert in `status`.

#[path = "support/cli.rs"]
mod cli;
#[macro_use]
#[path = "support/postgres.rs"]
mod pg;

use std::time::Duration;

use cli::{Lab, SHORT_POLICY, lifeboat, wait_for};
use lifeboat_testkit::postgres::psql;
use lifeboat_testkit::repo_root;
use serde_json::Value as Json;
use serde_yaml::Value as Yaml;

/// A lab around the stateful quickstart; `data` is merged over db's `data:` block and
/// `drill` over the `drill:` section.
fn lab(data: &str, drill: &str) -> Lab {
    let text = std::fs::read_to_string(repo_root().join("examples/quickstart-postgres.yaml"))
        .expect("reading the stateful quickstart");
    let mut yaml: Yaml = serde_yaml::from_str(&text).expect("the stateful quickstart parses");
    let password = pg::password_file();
    let db = &mut yaml["workloads"][0];
    assert_eq!(db["name"], "db");
    db["command"][3] = password.clone();
    db["data"]["credentials"]["password_file"] = password;
    merge(&mut db["data"], data);
    merge(&mut yaml["drill"], drill);
    let lab = Lab::new(yaml, SHORT_POLICY);
    pg::open_to_postgres(&lab);
    lab
}

fn merge(target: &mut Yaml, overrides: &str) {
    let overrides: Yaml = serde_yaml::from_str(overrides).expect("the override parses");
    let (Some(target), Some(overrides)) = (target.as_mapping_mut(), overrides.as_mapping()) else {
        return;
    };
    for (k, v) in overrides {
        target.insert(k.clone(), v.clone());
    }
}

fn report(lab: &Lab) -> Json {
    let text = std::fs::read_to_string(lab.path().join("out/report.json")).expect("report.json");
    serde_json::from_str(&text).expect("report.json is JSON")
}

#[test]
fn the_stateful_drill_promotes_the_standby_measures_what_was_lost_and_brings_every_row_back() {
    require_postgres!();
    let lab = lab("{}", "{}");
    let out = lab.run(&["drill", "-c", lab.config_arg(), "--report", "out"]);
    assert_eq!(out.code, Some(0), "{}", out.output());
    assert!(
        out.stderr.contains("db's standby streams on metal-1"),
        "the drill waits for a streaming standby first: {}",
        out.output()
    );
    let report = report(&lab);
    let data = &report["data"][0];
    assert_eq!(data["workload"], "db", "{report}");
    assert_eq!(data["synchronous"], false, "{data}");
    let acknowledged = data["last_acknowledged"].as_u64().expect("a row count");
    // How many rows a second the writer gets through depends on the machine; that it
    // wrote before the fault and kept trying while the primary was gone does not.
    assert!(acknowledged > 0, "the writer wrote: {data}");
    assert!(
        data["refused"].as_u64().unwrap() > 0,
        "the writer kept on: {data}"
    );
    let lost = data["rows_lost"].as_u64().expect("rows lost, measured");
    let present = data["rows_present"]
        .as_u64()
        .expect("rows at the new primary");
    assert_eq!(present + lost, acknowledged, "{data}");
    assert!(data["rpo_ms"].is_u64(), "{data}");
    assert_eq!(data["rpo_objective_ms"], 5000, "{data}");
    assert_eq!(data["met"], true, "{data}");
    // The failback seeded acme-eu from metal-1 before moving back: every row kept by
    // the move is at the original side again.
    let back = data["after_failback"]
        .as_u64()
        .expect("rows after the failback");
    assert!(back >= present, "{data}");
    let db = (report["workloads"].as_array().unwrap().iter())
        .find(|w| w["name"] == "db")
        .unwrap();
    assert_eq!(db["to"], "metal-1", "{db}");
    assert_eq!(db["rpo_ms"], data["rpo_ms"], "{db}");
    // Two vendors: with acme-cloud lost, no standby can stream anywhere else.
    assert!(data["unprotected_ms"].is_null(), "{data}");
    let why = data["unprotected"].as_str().unwrap_or_default();
    assert!(why.contains("until the failback"), "{data}");
    let junit = std::fs::read_to_string(lab.path().join("out/report.xml")).unwrap();
    assert!(junit.contains("db rpo"), "{junit}");
    // Every member's process and data folder went with the drill.
    let live = lab.live_copies();
    assert!(live.is_empty(), "copies left running: {live:?}");
}

#[test]
fn with_a_third_vendor_a_new_standby_streams_there_after_the_move_and_the_report_says_when() {
    require_postgres!();
    let lab = lab("{}", "{}");
    let mut yaml: Yaml =
        serde_yaml::from_str(&std::fs::read_to_string(&lab.config).unwrap()).unwrap();
    let spare = cli::port_range(20);
    let provider = format!(
        "{{name: spare-1, vendor: spare-metal, capacity: {{replicas: 6}}, \
         adapter: {{kind: local, ports: '{}-{}'}}}}",
        spare.0, spare.1
    );
    (yaml["vendors"].as_sequence_mut().unwrap())
        .push(serde_yaml::from_str("{name: spare-metal}").unwrap());
    (yaml["providers"].as_sequence_mut().unwrap()).push(serde_yaml::from_str(&provider).unwrap());
    (yaml["workloads"][0]["placement"].as_sequence_mut().unwrap()).push("spare-1".into());
    std::fs::write(&lab.config, serde_yaml::to_string(&yaml).unwrap()).unwrap();

    let out = lab.run(&["drill", "-c", lab.config_arg(), "--report", "out"]);
    assert_eq!(out.code, Some(0), "{}", out.output());
    let data = &report(&lab)["data"][0];
    let protected = data["unprotected_ms"].as_u64().expect("protected again");
    assert!(protected > 0, "{data}");
    assert!(data["unprotected"].is_null(), "{data}");
    assert!(
        out.stdout.contains("protected again after"),
        "{}",
        out.output()
    );
    let live = lab.live_copies();
    assert!(live.is_empty(), "copies left running: {live:?}");
}

#[test]
fn with_synchronous_replication_no_acknowledged_row_is_lost() {
    require_postgres!();
    let lab = lab("{rpo: 0s, synchronous: true}", "{}");
    let out = lab.run(&["drill", "-c", lab.config_arg(), "--report", "out"]);
    assert_eq!(out.code, Some(0), "{}", out.output());
    assert!(
        out.stderr.contains("bytes behind, synchronous)"),
        "the standby is synchronous before the fault: {}",
        out.output()
    );
    let data = &report(&lab)["data"][0];
    assert!(data["last_acknowledged"].as_u64().unwrap() > 0, "{data}");
    assert!(data["refused"].as_u64().unwrap() > 0, "{data}");
    assert_eq!(data["rows_lost"], 0, "{data}");
    assert_eq!(data["rpo_ms"], 0, "{data}");
    assert_eq!(data["met"], true, "{data}");
}

#[test]
fn an_old_primary_still_running_at_the_lost_vendor_takes_no_write_after_the_move() {
    require_postgres!();
    // No blackout: the suspended vendor's copies keep running, as after a suspension of
    // the account's API alone, so the old primary still answers.
    let lab = lab("{}", "{blackout: false}");
    let drill = lab.start(
        "drill",
        &["drill", "-c", lab.config_arg(), "--report", "out"],
    );
    // The writer's figures are printed once the move is done, before the failback.
    wait_for(Duration::from_secs(170), "the move to end", || {
        drill.stderr_so_far().contains("data db:").then_some(())
    });
    let old = (lab.records().into_iter())
        .find(|c| c.workload == "db" && c.generation == 1 && c.alive())
        .expect("the old primary still runs");
    assert_eq!(old.provider, "acme-eu", "{old:?}");
    let refused = psql(
        old.port,
        &pg::password(),
        "CREATE TABLE split_brain (n int)",
    )
    .expect_err("a write at the old primary must fail");
    let why = format!("{refused:#}");
    assert!(
        why.contains("read-only") || why.contains("not permitted to log in"),
        "{why}"
    );
    let out = drill.wait();
    assert_eq!(out.code, Some(0), "{}", out.output());
    let data = &report(&lab)["data"][0];
    // The old primary answered: its writes were stopped before the promotion and the
    // standby caught up with it, so nothing acknowledged was lost.
    assert_eq!(data["rows_lost"], 0, "{data}");
}

#[test]
fn a_standby_behind_its_rpo_raises_the_alert_in_status_until_it_catches_up() {
    require_postgres!();
    let lab = lab("{rpo: 1s}", "{}");
    let _daemon = lab.start("run", &["run", "-c", lab.config_arg()]);
    let streaming = |status: &Json| -> Option<(u16, u16)> {
        let db = &status["datasets"]["db"];
        db["lag"].as_object()?;
        let port = |member: &Json| member["endpoint"]["port"].as_u64()?.try_into().ok();
        Some((port(&db["primary"])?, port(&db["standby"]["deployment"])?))
    };
    let (primary, standby) = wait_for(Duration::from_secs(120), "a streaming standby", || {
        lab.status_when_ready().as_ref().and_then(streaming)
    });
    let secret = pg::password();
    // The standby stops replaying while the primary goes on writing: its lag grows.
    psql(standby, &secret, "SELECT pg_wal_replay_pause()").expect("pausing the replay");
    psql(primary, &secret, "CREATE TABLE ticks (at timestamptz)").expect("a table");
    let text_status = || lifeboat(lab.path(), &["status", "--state", lab.state_arg()]).stdout;
    let alert = wait_for(Duration::from_secs(120), "the rpo alert", || {
        psql(primary, &secret, "INSERT INTO ticks VALUES (now())").ok()?;
        let text = text_status();
        text.lines()
            .find(|l| l.contains("ALERT") && l.contains("over its rpo of 1000 ms"))
            .map(str::to_owned)
    });
    assert!(alert.trim_start().starts_with("db "), "{alert}");
    let status = lab.status();
    let lag = status["datasets"]["db"]["lag"]["seconds"].as_f64().unwrap();
    assert!(lag > 1.0, "{status}");

    psql(standby, &secret, "SELECT pg_wal_replay_resume()").expect("resuming the replay");
    wait_for(Duration::from_secs(120), "the alert to clear", || {
        psql(primary, &secret, "INSERT INTO ticks VALUES (now())").ok()?;
        let text = text_status();
        let line = text
            .lines()
            .find(|l| l.trim_start().starts_with("db ") && l.contains("1000ms"))?;
        line.trim_end().ends_with("ok").then_some(())
    });
}

/// Whether the member at `port` takes a write (a primary, not fenced).
fn writable(port: u16, secret: &str) -> bool {
    psql(
        port,
        secret,
        "CREATE TABLE IF NOT EXISTS writable_probe (n int); INSERT INTO writable_probe VALUES (1)",
    )
    .is_ok()
}

#[test]
fn a_daemon_killed_during_the_promotion_ends_with_exactly_one_writable_primary() {
    require_postgres!();
    let lab = lab("{}", "{}");
    // A hook after the promotion holds the step open, so the kill lands inside it.
    let mut yaml: Yaml =
        serde_yaml::from_str(&std::fs::read_to_string(&lab.config).unwrap()).unwrap();
    yaml["workloads"][0]["hooks"] =
        serde_yaml::from_str("{before_cutover: [[sleep, '4']]}").unwrap();
    std::fs::write(&lab.config, serde_yaml::to_string(&yaml).unwrap()).unwrap();
    let secret = pg::password();

    let daemon = lab.start("run", &["run", "-c", lab.config_arg()]);
    let standby = wait_for(Duration::from_secs(120), "a streaming standby", || {
        let status = lab.status_when_ready()?;
        let db = &status["datasets"]["db"];
        db["lag"].as_object()?;
        db["standby"]["deployment"]["endpoint"]["port"].as_u64()
    });
    let standby = u16::try_from(standby).unwrap();
    pg::notice_for_acme_cloud(&lab);
    wait_for(Duration::from_secs(120), "the standby promoted", || {
        psql(standby, &secret, "SELECT pg_is_in_recovery()")
            .ok()
            .filter(|r| r == "f")
    });
    daemon.signal(nix::sys::signal::Signal::SIGKILL);
    let _ = daemon.wait();

    let _again = lab.start("run-again", &["run", "-c", lab.config_arg()]);
    wait_for(Duration::from_secs(120), "db moved to metal-1", || {
        let status = lab.status_when_ready()?;
        let placed = cli::placements(&status);
        let moved = placed.get("db").is_some_and(|(p, _)| p == "metal-1");
        let settled = status["in_flight"].as_array().is_some_and(Vec::is_empty);
        (moved && settled).then_some(())
    });
    let members: Vec<_> = (lab.live_copies().into_iter())
        .filter(|c| c.workload == "db" && !c.drill)
        .collect();
    // The old primary's provider still answers (a notice, not a suspension), so the
    // finished move retired it; whatever runs, one member alone takes writes.
    assert!(
        members.iter().all(|c| c.generation == 2),
        "only the promoted member is left: {members:?}"
    );
    let writable: Vec<u16> = (members.iter())
        .map(|c| c.port)
        .filter(|port| writable(*port, &secret))
        .collect();
    assert_eq!(
        writable,
        [standby],
        "exactly one writable primary: {members:?}"
    );
}

#[test]
fn a_standby_deploy_that_hangs_never_holds_the_probing_up() {
    require_postgres!();
    let lab = lab("{}", "{}");
    // metal-1, where db's standby goes, never answers a deploy (a black-holed call):
    // the standby's deploy hangs up to the hour of its step timeout.
    let mut yaml: Yaml =
        serde_yaml::from_str(&std::fs::read_to_string(&lab.config).unwrap()).unwrap();
    let metal = (yaml["providers"].as_sequence_mut().unwrap().iter_mut())
        .find(|p| p["name"] == "metal-1")
        .unwrap();
    metal["adapter"] =
        serde_yaml::from_str("{kind: sim, faults: [{class: timeout, ops: [deploy]}]}").unwrap();
    yaml["policy"]["step_timeout"] = "1h".into();
    std::fs::write(&lab.config, serde_yaml::to_string(&yaml).unwrap()).unwrap();

    let _daemon = lab.start("run", &["run", "-c", lab.config_arg()]);
    wait_for(Duration::from_secs(120), "db placed on acme-eu", || {
        let placed = cli::placements(&lab.status_when_ready()?);
        (placed.get("db")?.0 == "acme-eu").then_some(())
    });
    std::thread::sleep(Duration::from_secs(2));
    let last_round = |status: &Json| status["last_daemon"]["last_round"].clone();
    let before = last_round(&lab.status());
    wait_for(Duration::from_secs(30), "a round after it", || {
        (last_round(&lab.status()) != before).then_some(())
    });
    let status = lab.status();
    assert!(status["datasets"]["db"]["standby"].is_null(), "{status}");
}
