//! The snapshot quickstart (`examples/quickstart-snapshot.yaml`) through the real binary,
//! against real PostgreSQL servers on loopback, with the example's real hooks (pg_dump
//! into a file store, pg_restore into the new copy): a move restores the data before
//! traffic reaches the new copy, a stale snapshot raises the alert, and a drill reports
//! the snapshot it moved from and its age.

#[path = "support/cli.rs"]
mod cli;
#[macro_use]
#[path = "support/postgres.rs"]
mod pg;

use std::time::Duration;

use cli::{Lab, SHORT_POLICY, wait_for};
use lifeboat_testkit::postgres::psql;
use lifeboat_testkit::repo_root;
use serde_json::Value as Json;
use serde_yaml::Value as Yaml;

/// A lab around the snapshot quickstart, its file store inside the lab; `data` is
/// merged over db's `data:` block. `snapshot` wraps the snapshot hook's argv (`{hook}`
/// stands for it), e.g. to make it fail on demand.
fn lab(data: &str, snapshot: Option<&str>) -> Lab {
    let text = std::fs::read_to_string(repo_root().join("examples/quickstart-snapshot.yaml"))
        .expect("reading the snapshot quickstart");
    let mut yaml: Yaml = serde_yaml::from_str(&text).expect("the snapshot quickstart parses");
    let lab = Lab::new(yaml.clone(), SHORT_POLICY);
    let abs = |p: &str| Yaml::String(repo_root().join(p).to_string_lossy().into_owned());
    let store = Yaml::String(lab.path().join("store").to_string_lossy().into_owned());
    let db = &mut yaml["workloads"][0];
    assert_eq!(db["name"], "db");
    db["command"][3] = pg::password_file();
    let d = &mut db["data"];
    d["credentials"]["password_file"] = pg::password_file();
    let hook = |name: &str| abs(&format!("examples/hooks/{name}"));
    d["snapshot"] = match snapshot {
        Some(wrapper) => {
            let script = wrapper.replace(
                "{hook}",
                &format!(
                    "{} {}",
                    hook("pg-snapshot").as_str().unwrap(),
                    store.as_str().unwrap()
                ),
            );
            serde_yaml::from_str(&format!("[/bin/sh, -c, {script:?}]")).unwrap()
        }
        None => Yaml::Sequence(vec![hook("pg-snapshot"), store.clone()]),
    };
    d["restore"] = Yaml::Sequence(vec![hook("pg-restore"), store]);
    let overrides: Yaml = serde_yaml::from_str(data).unwrap();
    for (k, v) in overrides.as_mapping().unwrap() {
        d[k.as_str().unwrap()] = v.clone();
    }
    // Lab::new placed the ports, state and endpoints in the lab: keep them, with the
    // workloads as changed here.
    let mut written: Yaml =
        serde_yaml::from_str(&std::fs::read_to_string(&lab.config).unwrap()).unwrap();
    written["workloads"] = yaml["workloads"].clone();
    std::fs::write(&lab.config, serde_yaml::to_string(&written).unwrap()).unwrap();
    pg::open_to_postgres(&lab);
    lab
}

/// db's dataset in a status, once its primary has a known endpoint and a snapshot.
fn shipped(status: &Json) -> Option<(u16, String)> {
    let db = &status["datasets"]["db"];
    let id = db["snapshot"]["id"].as_str()?.to_owned();
    let port = db["primary"]["endpoint"]["port"].as_u64()?;
    Some((u16::try_from(port).ok()?, id))
}

#[test]
fn a_moved_copy_is_restored_from_a_last_snapshot_of_a_primary_that_still_answers() {
    require_postgres!();
    // One snapshot an hour: the rows written below are in none of the scheduled ones,
    // so finding them at the new primary shows the move took a last snapshot.
    let lab = lab("{every: 1h, rpo: 2h}", None);
    let _daemon = lab.start("run", &["run", "-c", lab.config_arg()]);
    let (primary, first) = wait_for(Duration::from_secs(120), "a shipped snapshot", || {
        shipped(&lab.status_when_ready()?)
    });
    let secret = pg::password();
    psql(
        primary,
        &secret,
        "CREATE TABLE posts (n int); INSERT INTO posts SELECT generate_series(1, 250)",
    )
    .expect("writing at the primary");

    pg::notice_for_acme_cloud(&lab);
    let moved = wait_for(Duration::from_secs(120), "db moved to metal-1", || {
        let status = lab.status_when_ready()?;
        let settled = status["in_flight"].as_array().is_some_and(Vec::is_empty);
        let db = &status["datasets"]["db"]["primary"];
        let port = db["endpoint"]["port"].as_u64()?;
        (settled && db["provider"] == "metal-1").then_some(u16::try_from(port).ok()?)
    });
    let rows = psql(moved, &secret, "SELECT count(*) FROM posts").expect("the rows moved");
    assert_eq!(rows, "250");
    // The scheduled snapshot was not the one restored: the move took its own.
    let status = lab.status();
    let now = status["datasets"]["db"]["snapshot"]["id"].as_str().unwrap();
    assert_ne!(now, first, "{status}");
}

#[test]
fn a_snapshot_that_stops_shipping_raises_the_alert_in_status() {
    require_postgres!();
    let lab = lab(
        "{every: 1s, rpo: 3s}",
        Some("test -e fail && exit 1; exec {hook}"),
    );
    let _daemon = lab.start("run", &["run", "-c", lab.config_arg()]);
    wait_for(Duration::from_secs(120), "a shipped snapshot", || {
        shipped(&lab.status_when_ready()?)
    });
    // The daemon runs in the lab folder: the hook finds `fail` there.
    std::fs::write(lab.path().join("fail"), "").unwrap();
    let line = wait_for(Duration::from_secs(120), "the rpo alert", || {
        let out = lab.run(&["status", "--state", lab.state_arg()]).stdout;
        out.lines()
            .find(|l| l.contains("ALERT") && l.contains("over its rpo of 3000 ms"))
            .map(str::to_owned)
    });
    assert!(line.contains("last snapshot"), "{line}");
    assert!(line.contains("the last snapshot failed"), "{line}");
    std::fs::remove_file(lab.path().join("fail")).unwrap();
    wait_for(Duration::from_secs(120), "the alert to clear", || {
        let out = lab.run(&["status", "--state", lab.state_arg()]).stdout;
        let line =
            (out.lines()).find(|l| l.trim_start().starts_with("db ") && l.contains("3000ms"))?;
        line.trim_end().ends_with("ok").then_some(())
    });
}

#[test]
fn the_snapshot_drill_reports_the_snapshot_it_moved_from_and_its_age() {
    require_postgres!();
    let lab = lab("{}", None);
    let out = lab.run(&["drill", "-c", lab.config_arg(), "--report", "out"]);
    assert_eq!(out.code, Some(0), "{}", out.output());
    assert!(
        out.stderr.contains("db's snapshot db-"),
        "the drill waits for a shipped snapshot first: {}",
        out.output()
    );
    let text = std::fs::read_to_string(lab.path().join("out/report.json")).unwrap();
    let report: Json = serde_json::from_str(&text).unwrap();
    let data = &report["data"][0];
    assert_eq!(data["method"], "snapshot", "{data}");
    assert!(
        data["snapshot"].as_str().unwrap().starts_with("db-"),
        "{data}"
    );
    let rpo = data["rpo_ms"].as_u64().unwrap();
    assert!(rpo <= 15_000, "{data}");
    assert_eq!(data["met"], true, "{data}");
    let db = (report["workloads"].as_array().unwrap().iter())
        .find(|w| w["name"] == "db")
        .unwrap();
    assert_eq!(db["to"], "metal-1", "{db}");
    assert_eq!(db["rpo_ms"], rpo, "{db}");
    let live = lab.live_copies();
    assert!(live.is_empty(), "copies left running: {live:?}");
}
