//! `lifeboat drill` on the quickstart, driven through the real binary: the live drill
//! passes with every workload healthy on the surviving vendor and its downtime measured,
//! writes its three reports and leaves no process behind; a shadow drill moves no
//! traffic; an objective nobody can meet fails the drill; Ctrl-C cleans up.

#[path = "support/cli.rs"]
mod cli;

use std::path::Path;
use std::time::Duration;

use cli::{BIN, Lab, SHORT_POLICY, quickstart_yaml, wait_for};
use nix::sys::signal::Signal;
use serde_json::Value as Json;

/// The surviving vendor's only provider in the quickstart.
const SURVIVOR: &str = "metal-1";

fn read_report(dir: &Path) -> Json {
    let path = dir.join("report.json");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    serde_json::from_str(&text).expect("report.json is JSON")
}

/// Nothing the drill started still runs: no recorded process alive, no port of any
/// provider's range answering.
fn assert_cleaned_up(lab: &Lab) {
    let live = lab.live_copies();
    assert!(live.is_empty(), "copies left running: {live:?}");
    let open = lab.open_ports();
    assert!(open.is_empty(), "ports still answering: {open:?}");
}

#[test]
fn the_quickstart_drill_moves_everything_to_the_survivor_and_cleans_up() {
    let lab = Lab::quickstart();
    let out = lab.run(&["drill", "-c", lab.config_arg(), "--report", "out"]);
    assert_eq!(out.code, Some(0), "{}", out.output());
    assert!(out.stdout.contains("objectives: met"), "{}", out.output());

    let report = read_report(&lab.path().join("out"));
    assert_eq!(report["scenario"], "account-suspended", "{report}");
    assert_eq!(report["lost"], "acme-cloud", "{report}");
    assert_eq!(report["objectives_met"], true, "{report}");
    assert!(report["detected_after_ms"].is_u64(), "{report}");
    let workloads = report["workloads"].as_array().expect("workloads");
    let mut names: Vec<&str> = workloads
        .iter()
        .filter_map(|w| w["name"].as_str())
        .collect();
    names.sort_unstable();
    assert_eq!(names, ["api", "db", "web"], "{report}");
    for w in workloads {
        assert!(
            w["from"].as_str().is_some_and(|f| f.starts_with("acme-")),
            "{w}"
        );
        assert_eq!(w["to"], SURVIVOR, "{w}");
        assert_eq!(w["healthy"], true, "{w}");
        assert!(w["rto_ms"].is_u64(), "{w}");
        // The blackout stops the old copies, so the prober sees a real outage.
        assert!(
            w["downtime_ms"].as_u64().is_some_and(|d| d > 0),
            "downtime not measured: {w}"
        );
    }
    assert!(
        report["failback"]
            .as_str()
            .is_some_and(|f| f.starts_with("ok")),
        "{report}"
    );
    for file in ["report.xml", "report.html"] {
        let path = lab.path().join("out").join(file);
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
        assert!(text.contains("db"), "{file} does not mention the workloads");
    }
    let junit = std::fs::read_to_string(lab.path().join("out/report.xml")).unwrap();
    assert!(junit.contains("<testsuite"), "{junit}");
    assert_cleaned_up(&lab);
}

#[test]
fn a_shadow_drill_verifies_copies_on_the_survivor_and_moves_no_traffic() {
    let lab = Lab::quickstart();
    let out = lab.run(&[
        "drill",
        "-c",
        lab.config_arg(),
        "--mode",
        "shadow",
        "--report",
        "out",
    ]);
    assert_eq!(out.code, Some(0), "{}", out.output());
    let report = read_report(&lab.path().join("out"));
    assert_eq!(report["mode"], "shadow", "{report}");
    assert_eq!(report["objectives_met"], true, "{report}");
    assert!(report["detected_after_ms"].is_u64(), "{report}");
    let workloads = report["workloads"].as_array().expect("workloads");
    assert_eq!(workloads.len(), 3, "every workload is verified: {report}");
    for w in workloads {
        assert_eq!(w["to"], SURVIVOR, "{w}");
        assert_eq!(w["healthy"], true, "{w}");
        assert!(w["rto_ms"].is_null(), "no cutover in shadow mode: {w}");
    }
    assert!(
        report["failback"].is_null(),
        "nothing to fail back: {report}"
    );

    // Production's endpoints file is never written: the drill's traffic went through
    // a file of its own, and never left the drill's copies on acme-cloud.
    assert!(
        lab.endpoints().is_empty(),
        "production traffic moved: {:?}",
        lab.endpoints()
    );
    let own = lab.state.join("drill/endpoints.json");
    let endpoints: std::collections::BTreeMap<String, String> =
        serde_json::from_str(&std::fs::read_to_string(&own).expect("the drill's endpoints"))
            .expect("JSON");
    assert_eq!(endpoints.len(), 3, "{endpoints:?}");
    for (name, endpoint) in &endpoints {
        let port: u16 = endpoint.rsplit(':').next().unwrap().parse().unwrap();
        let provider = lab.provider_of_port(port);
        assert!(
            provider.is_some_and(|p| p.starts_with("acme-")),
            "{name} points at {endpoint} ({provider:?})"
        );
    }
    assert_cleaned_up(&lab);
}

#[test]
fn a_drill_that_misses_its_objective_exits_1() {
    let mut yaml = quickstart_yaml();
    for workload in yaml["workloads"].as_sequence_mut().unwrap() {
        workload
            .as_mapping_mut()
            .unwrap()
            .insert("rto".into(), "1ms".into());
    }
    let lab = Lab::new(yaml, SHORT_POLICY);
    let out = lab.run(&["drill", "-c", lab.config_arg(), "--report", "out"]);
    assert_eq!(out.code, Some(1), "{}", out.output());
    let report = read_report(&lab.path().join("out"));
    assert_eq!(report["objectives_met"], false, "{report}");
    let workloads = report["workloads"].as_array().expect("workloads");
    assert!(
        workloads.iter().all(|w| w["met"] == false),
        "no workload moves within 1 ms: {report}"
    );
    // The pipeline's view: one failing JUnit case per workload that missed its RTO.
    let junit = std::fs::read_to_string(lab.path().join("out/report.xml")).expect("report.xml");
    assert!(junit.contains("failures=\"3\""), "{junit}");
    for name in ["db", "api", "web"] {
        let case = junit
            .split("<testcase ")
            .find(|c| c.starts_with(&format!("name=\"{name} rto\"")))
            .unwrap_or_else(|| panic!("no JUnit case for {name}: {junit}"));
        assert!(case.contains("<failure"), "{name} does not fail: {junit}");
        assert!(case.contains("objective 1ms"), "{name}: {junit}");
    }
    // Missing the objective is no excuse to leave copies behind.
    assert_cleaned_up(&lab);
}

#[test]
fn a_drill_interrupted_with_ctrl_c_cleans_up_what_it_started() {
    // Copies at the survivor take two seconds to answer, so the evacuation is surely in
    // flight when the drill reports the detection.
    let mut yaml = quickstart_yaml();
    for workload in yaml["workloads"].as_sequence_mut().unwrap() {
        let command: Vec<String> = workload["command"]
            .as_sequence()
            .unwrap()
            .iter()
            .map(|a| a.as_str().unwrap().to_owned())
            .collect();
        let args = command[1..].join(" ");
        let slow = vec![
            "sh".to_owned(),
            "-c".to_owned(),
            format!("sleep 2; exec \"$0\" {args}"),
            BIN.clone(),
        ];
        workload
            .as_mapping_mut()
            .unwrap()
            .insert("command".into(), serde_yaml::to_value(slow).unwrap());
    }
    let lab = Lab::new(yaml, SHORT_POLICY);
    let drill = lab.start("drill", &["drill", "-c", lab.config_arg()]);
    // Detected, and the new copies started at the survivor (the blackout has stopped
    // the old ones): interrupt the evacuation there.
    wait_for(
        Duration::from_secs(120),
        "copies starting at the survivor",
        || {
            let detected = drill.stderr_so_far().contains("detected");
            let moving = lab.live_copies().iter().any(|c| c.provider == SURVIVOR);
            (detected && moving).then_some(())
        },
    );
    drill.signal(Signal::SIGINT);
    let out = drill.wait();
    assert_eq!(out.code, Some(1), "{}", out.output());
    assert!(out.stderr.contains("interrupted"), "{}", out.output());
    assert_cleaned_up(&lab);
}
