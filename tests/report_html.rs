//! The drill report as a browser shows it: the quickstart's live drill writes
//! report.html, headless Chromium (Debian's `chromium`, installed by
//! tests/peers/install.sh) opens it, takes a screenshot and dumps the DOM it rendered,
//! and the DOM has one timeline lane per workload with its steps, a lane per provider's
//! condition, and the verdict. Also `lifeboat report DIR [--compare OLD]`: re-rendering,
//! comparing, and exit 2 with the file named on bad input.
//!
//! `LIFEBOAT_SCREENSHOT=docs/drill-report.png cargo test --test report_html` refreshes
//! the README's picture from the same run.

#[path = "support/cli.rs"]
mod cli;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use cli::{Lab, lifeboat, quickstart_yaml};
use serde_json::Value as Json;

/// How long one Chromium run may take before the test calls it hung.
const BROWSER_LIMIT: Duration = Duration::from_secs(90);

/// Runs headless Chromium with `args` on `page`; returns its stdout. Fails the test with
/// the way to install it when it is missing.
fn chromium(profile: &Path, args: &[&str], page: &Path) -> String {
    let out = profile.join("chromium.stdout");
    let spawned = Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-background-networking",
            "--hide-scrollbars",
        ])
        // Its own profile: tests running at once must not share Chromium's lock.
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(args)
        .arg(format!("file://{}", page.display()))
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out).expect("creating chromium's stdout file"))
        .stderr(Stdio::null())
        .spawn();
    let mut child = match spawned {
        Ok(child) => child,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => panic!(
            "headless Chromium is not installed (no `chromium` on PATH): run \
             tests/peers/install.sh, which installs Debian's chromium package"
        ),
        Err(e) => panic!("starting chromium: {e}"),
    };
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("waiting for chromium") {
            break status;
        }
        if started.elapsed() > BROWSER_LIMIT {
            let _ = child.kill();
            let _ = child.wait();
            panic!("chromium did not finish within {BROWSER_LIMIT:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "chromium failed: {status}");
    std::fs::read_to_string(&out).expect("reading chromium's output")
}

/// The markup of the element group that carries `data-lane="ID"`, up to its end.
fn lane<'a>(dom: &'a str, id: &str) -> &'a str {
    let start = dom
        .find(&format!("data-lane=\"{id}\""))
        .unwrap_or_else(|| panic!("no lane {id} in the rendered page"));
    let rest = &dom[start..];
    &rest[..rest.find("</g>").unwrap_or(rest.len())]
}

fn read_report(dir: &Path) -> Json {
    let text = std::fs::read_to_string(dir.join("report.json")).expect("reading report.json");
    serde_json::from_str(&text).expect("report.json is JSON")
}

#[test]
fn the_quickstart_report_shows_a_lane_per_workload_and_the_verdict_in_chromium() {
    // The quickstart's own policy, so the picture is what a user's drill shows.
    let lab = Lab::new(quickstart_yaml(), "{}");
    let out = lab.run(&["drill", "-c", lab.config_arg(), "--report", "out"]);
    assert_eq!(out.code, Some(0), "{}", out.output());
    // Progress speaks the user's words.
    assert!(
        out.stderr.contains("db: deployed on metal-1")
            && out.stderr.contains("db: traffic moved to metal-1"),
        "{}",
        out.output()
    );
    assert!(!out.stderr.contains("Done"), "{}", out.output());

    let page = lab.path().join("out/report.html");
    let profile = lab.path().join("chromium");
    std::fs::create_dir_all(&profile).unwrap();
    let shot = lab.path().join("drill-report.png");
    chromium(
        &profile,
        &[
            &format!("--screenshot={}", shot.display()),
            "--window-size=1400,1000",
        ],
        &page,
    );
    let png = std::fs::read(&shot).expect("chromium wrote the screenshot");
    assert!(
        png.starts_with(b"\x89PNG") && png.len() > 20_000,
        "the screenshot is no picture of a page ({} bytes)",
        png.len()
    );
    if let Some(keep) = std::env::var_os("LIFEBOAT_SCREENSHOT") {
        let keep = Path::new(env!("CARGO_MANIFEST_DIR")).join(PathBuf::from(keep));
        std::fs::copy(&shot, &keep).expect("keeping the screenshot");
    }

    let dom = chromium(&profile, &["--dump-dom"], &page);
    let report = read_report(&lab.path().join("out"));
    let workloads = report["workloads"].as_array().expect("workloads");
    assert_eq!(workloads.len(), 3, "{report}");
    for w in workloads {
        let name = w["name"].as_str().expect("a name");
        let lane = lane(&dom, &format!("workload:{name}"));
        for phase in ["deploy", "wait-healthy", "cutover", "retire"] {
            assert!(
                lane.contains(&format!("data-phase=\"{phase}\"")),
                "the lane of {name} shows no {phase}: {lane}"
            );
        }
        // The suspended vendor cannot retire the old copy: orphaned, not failed.
        assert!(lane.contains("data-outcome=\"orphaned\""), "{lane}");
        assert!(lane.contains("data-outage=\"down\""), "{lane}");
        assert!(lane.contains("data-mark=\"rto\""), "{lane}");
    }
    assert_eq!(
        dom.matches("data-lane=\"workload:").count(),
        3,
        "one lane per workload"
    );
    for provider in ["acme-eu", "acme-us"] {
        let lane = lane(&dom, &format!("provider:{provider}"));
        assert!(lane.contains("data-condition=\"suspended\""), "{lane}");
    }
    assert!(lane(&dom, "provider:metal-1").contains("data-condition=\"healthy\""));
    assert!(
        dom.contains(r#"id="verdict" class="met" data-verdict="met""#),
        "no verdict in the page"
    );
    assert!(dom.contains("Objectives met"));
    for legend in [
        "deploy",
        "wait healthy",
        "cutover",
        "retire",
        "down",
        "suspended",
    ] {
        assert!(
            dom.contains(&format!("data-legend=\"{legend}\"")),
            "no legend entry {legend}"
        );
    }
    assert!(dom.contains("class=\"tick\""), "no time ticks");
    assert!(!dom.contains("<script"), "the page runs no scripts");
}

/// A drill's report folder, written without running a drill.
fn report_dir(root: &Path, name: &str, rto_ms: u64) -> PathBuf {
    let dir = root.join(name);
    std::fs::create_dir_all(&dir).unwrap();
    // A report as an older lifeboat wrote it: no step spans, no conditions.
    let json = serde_json::json!({
        "scenario": "account-suspended", "mode": "live", "lost": "acme-cloud",
        "lost_providers": ["acme-eu"], "started_at": "2026-11-28T16:00:00Z",
        "detected_after_ms": 1150, "objectives_met": true, "stranded": [],
        "timeline": [{"at_ms": 1100, "workload": null, "what": "acme-eu: suspended (account suspended) since 2026-11-28T16:00:01Z"}],
        "workloads": [{
            "name": "db", "from": "acme-eu", "to": "metal-1", "healthy": true,
            "healthy_after_ms": 1200, "rto_ms": rto_ms, "downtime_ms": 1300,
            "outages": [{"start_ms": 40, "end_ms": 1340}], "rto_objective_ms": 20000,
            "met": true,
        }],
    });
    std::fs::write(dir.join("report.json"), json.to_string()).unwrap();
    dir
}

#[test]
fn lifeboat_report_re_renders_and_compares_with_an_earlier_drill() {
    let root = tempfile::tempdir().unwrap();
    let old = report_dir(root.path(), "old", 1500);
    let new = report_dir(root.path(), "new", 1300);
    let out = lifeboat(root.path(), &["report", "new"]);
    assert_eq!(out.code, Some(0), "{}", out.output());
    let html = std::fs::read_to_string(new.join("report.html")).expect("report.html");
    assert!(html.contains("data-lane=\"workload:db\""), "{html}");
    assert!(html.contains("data-lane=\"provider:acme-eu\""), "{html}");
    assert!(std::fs::read_to_string(new.join("report.xml")).is_ok_and(|x| x.contains("db rto")));

    let out = lifeboat(root.path(), &["report", "new", "--compare", "old"]);
    assert_eq!(out.code, Some(0), "{}", out.output());
    let row = out
        .stdout
        .lines()
        .find(|l| l.trim_start().starts_with("db rto"))
        .unwrap_or_else(|| panic!("no db rto row\n{}", out.output()));
    assert!(
        row.contains("1500ms") && row.contains("1300ms") && row.contains("-200ms"),
        "{row}"
    );
    assert!(out.stdout.contains("detected after"), "{}", out.output());
    let html = std::fs::read_to_string(new.join("report.html")).unwrap();
    assert!(
        html.contains(r#"<tr data-figure="db rto" class="better">"#),
        "{html}"
    );
    let _ = old;
}

#[test]
fn lifeboat_report_names_the_file_it_cannot_use_and_exits_2() {
    let root = tempfile::tempdir().unwrap();
    let out = lifeboat(root.path(), &["report", "nowhere"]);
    assert_eq!(out.code, Some(2), "{}", out.output());
    assert!(
        out.stderr.contains("nowhere/report.json"),
        "{}",
        out.output()
    );

    let broken = root.path().join("broken");
    std::fs::create_dir_all(&broken).unwrap();
    std::fs::write(broken.join("report.json"), "{\"scenario\": ").unwrap();
    let out = lifeboat(root.path(), &["report", "broken"]);
    assert_eq!(out.code, Some(2), "{}", out.output());
    assert!(
        out.stderr.contains("broken/report.json") && out.stderr.contains("not a drill report"),
        "{}",
        out.output()
    );

    report_dir(root.path(), "good", 1000);
    let out = lifeboat(root.path(), &["report", "good", "--compare", "broken"]);
    assert_eq!(out.code, Some(2), "{}", out.output());
    assert!(
        out.stderr.contains("broken/report.json"),
        "{}",
        out.output()
    );
}
