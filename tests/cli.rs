//! The commands that only read a config, driven through the real `lifeboat` binary:
//! `validate` (errors as `file:line:col: field: message`, exit 2) and `plan --lose`
//! (every move and nothing stranded on the quickstart; the stranded workloads and a
//! non-zero exit when the surviving vendor is too small; JSON; unknown names).

#[path = "support/cli.rs"]
mod cli;

use cli::{lifeboat, quickstart_path};
use serde_json::Value as Json;

/// A folder holding `lifeboat.yaml` with `text` in it.
fn config_dir(text: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("lifeboat.yaml"), text).unwrap();
    dir
}

fn quickstart_text() -> String {
    std::fs::read_to_string(quickstart_path()).unwrap()
}

/// The 1-based line of the first line of `text` that contains `needle`.
fn line_of(text: &str, needle: &str) -> usize {
    text.lines()
        .position(|l| l.contains(needle))
        .unwrap_or_else(|| panic!("{needle:?} not in the config"))
        + 1
}

#[test]
fn validate_accepts_the_quickstart() {
    let dir = tempfile::tempdir().unwrap();
    let quickstart = quickstart_path();
    let out = lifeboat(dir.path(), &["validate", quickstart.to_str().unwrap()]);
    assert_eq!(out.code, Some(0), "{}", out.output());
    assert!(out.stdout.contains("valid"), "{}", out.output());
}

#[test]
fn validate_names_file_line_column_and_field_of_a_dangling_reference() {
    let text = quickstart_text().replace("depends_on: [db]", "depends_on: [dbb]");
    let dir = config_dir(&text);
    let out = lifeboat(dir.path(), &["validate", "lifeboat.yaml"]);
    assert_eq!(out.code, Some(2), "{}", out.output());
    let line = line_of(&text, "depends_on: [dbb]");
    // `    depends_on: [` is 17 characters: the name starts in column 18.
    let expected =
        format!("lifeboat.yaml:{line}:18: workloads[1].depends_on[0]: unknown workload \"dbb\"");
    assert!(
        out.stderr.lines().any(|l| l == expected),
        "expected the line {expected:?}\n{}",
        out.output()
    );
    assert!(out.stdout.is_empty(), "{}", out.output());
}

#[test]
fn validate_reports_type_errors_with_their_position_and_exits_2() {
    // (what to break, the line it is on afterwards, the field the error names)
    let cases = [
        (
            ("probe_interval: 1s", "probe_interval: soon"),
            "policy.probe_interval",
        ),
        (
            ("public_name: api", "publik_name: api"),
            "workloads[1].publik_name",
        ),
    ];
    for ((from, to), field) in cases {
        let text = quickstart_text().replace(from, to);
        let dir = config_dir(&text);
        let out = lifeboat(dir.path(), &["validate", "lifeboat.yaml"]);
        assert_eq!(out.code, Some(2), "{to}\n{}", out.output());
        let line = line_of(&text, to);
        let error = out
            .stderr
            .lines()
            .find(|l| l.starts_with(&format!("lifeboat.yaml:{line}:")))
            .unwrap_or_else(|| panic!("no error on line {line} for {to:?}\n{}", out.output()));
        // file:line:col: field: message, with a column and a message.
        let parts: Vec<&str> = error.splitn(5, ':').collect();
        assert_eq!(parts.len(), 5, "{error}");
        assert!(parts[2].parse::<u32>().is_ok_and(|c| c > 0), "{error}");
        assert_eq!(parts[3].trim(), field, "{error}");
        assert!(!parts[4].trim().is_empty(), "{error}");
    }
}

#[test]
fn validate_of_a_missing_file_exits_2_and_says_which() {
    let dir = tempfile::tempdir().unwrap();
    let out = lifeboat(dir.path(), &["validate", "nowhere.yaml"]);
    assert_eq!(out.code, Some(2), "{}", out.output());
    assert!(out.stderr.contains("nowhere.yaml"), "{}", out.output());
}

#[test]
fn plan_on_the_quickstart_moves_every_workload_and_strands_none() {
    let dir = tempfile::tempdir().unwrap();
    let quickstart = quickstart_path();
    let config = quickstart.to_str().unwrap();
    let out = lifeboat(dir.path(), &["plan", "-c", config, "--lose", "acme-cloud"]);
    assert_eq!(out.code, Some(0), "{}", out.output());
    for workload in ["db", "api", "web"] {
        assert!(
            out.stdout.lines().any(|l| l.contains("move")
                && l.split_whitespace().any(|w| w == workload)
                && l.contains("-> metal-1")),
            "no move of {workload} to metal-1\n{}",
            out.output()
        );
    }
    assert!(!out.stdout.contains("STRANDED"), "{}", out.output());

    // The same plan as JSON: the moves in dependency order, nothing stranded.
    let out = lifeboat(
        dir.path(),
        &["plan", "-c", config, "--lose", "acme-cloud", "--json"],
    );
    assert_eq!(out.code, Some(0), "{}", out.output());
    let plan: Json = serde_json::from_str(&out.stdout).expect("plan --json prints JSON");
    let moves = plan["moves"].as_array().expect("moves");
    let wave = |name: &str| {
        let m = moves
            .iter()
            .find(|m| m["workload"] == name)
            .unwrap_or_else(|| panic!("no move of {name}: {plan}"));
        assert_eq!(m["targets"][0], "metal-1", "{m}");
        assert!(
            m["from"].as_str().is_some_and(|f| f.starts_with("acme-")),
            "{m}"
        );
        m["wave"].as_u64().expect("a wave number")
    };
    assert!(
        wave("db") < wave("api") && wave("api") < wave("web"),
        "{plan}"
    );
    assert_eq!(plan["stranded"].as_array().map(Vec::len), Some(0), "{plan}");
}

#[test]
fn plan_lists_the_stranded_workloads_when_the_survivor_is_too_small() {
    // metal-1 holds 4 replicas in the quickstart; with 1, only db fits.
    let text = quickstart_text().replace("capacity: { replicas: 4 }", "capacity: { replicas: 1 }");
    assert_ne!(
        text,
        quickstart_text(),
        "the quickstart's metal-1 capacity moved"
    );
    let dir = config_dir(&text);
    let out = lifeboat(
        dir.path(),
        &["plan", "-c", "lifeboat.yaml", "--lose", "acme-cloud"],
    );
    assert_eq!(out.code, Some(1), "{}", out.output());
    let stranded: Vec<&str> = out
        .stdout
        .lines()
        .filter(|l| l.trim_start().starts_with("STRANDED"))
        .filter_map(|l| l.split_whitespace().nth(1))
        .collect();
    assert_eq!(stranded.len(), 2, "{}", out.output());
    assert!(
        out.stdout
            .lines()
            .any(|l| l.contains("move") && l.contains("-> metal-1")),
        "what fits still moves\n{}",
        out.output()
    );

    let out = lifeboat(
        dir.path(),
        &[
            "plan",
            "-c",
            "lifeboat.yaml",
            "--lose",
            "acme-cloud",
            "--json",
        ],
    );
    assert_eq!(out.code, Some(1), "{}", out.output());
    let plan: Json = serde_json::from_str(&out.stdout).expect("plan --json prints JSON");
    let mut in_json: Vec<&str> = plan["stranded"]
        .as_array()
        .expect("stranded")
        .iter()
        .filter_map(|s| s["workload"].as_str())
        .collect();
    in_json.sort_unstable();
    let mut in_text = stranded.clone();
    in_text.sort_unstable();
    assert_eq!(in_json, in_text, "{plan}");
}

#[test]
fn plan_of_an_unknown_name_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let quickstart = quickstart_path();
    let out = lifeboat(
        dir.path(),
        &[
            "plan",
            "-c",
            quickstart.to_str().unwrap(),
            "--lose",
            "nobody",
        ],
    );
    assert_eq!(out.code, Some(2), "{}", out.output());
    assert!(out.stderr.contains("nobody"), "{}", out.output());
}

#[test]
fn plan_of_an_invalid_config_exits_2() {
    let text = quickstart_text().replace("placement: [acme-us,", "placement: [acme-uz,");
    let dir = config_dir(&text);
    let out = lifeboat(
        dir.path(),
        &["plan", "-c", "lifeboat.yaml", "--lose", "acme-cloud"],
    );
    assert_eq!(out.code, Some(2), "{}", out.output());
    assert!(out.stderr.contains("acme-uz"), "{}", out.output());
}

#[test]
fn validate_refuses_a_dataset_that_could_not_survive_its_vendor_and_exits_2() {
    let stateful =
        std::fs::read_to_string(quickstart_path().with_file_name("quickstart-postgres.yaml"))
            .unwrap();
    // An rpo of zero without synchronous replication, and a standby at the primary's own
    // vendor: both found when the file is read, each at its line.
    let text = stateful.replace("rpo: 5s", "rpo: 0s").replace(
        "      # No `standby:` list",
        "      standby: [acme-us]\n      # No `standby:` list",
    );
    let dir = config_dir(&text);
    std::fs::write(
        dir.path().join("quickstart-postgres.password"),
        "not-a-real-one\n",
    )
    .unwrap();
    let out = lifeboat(dir.path(), &["validate", "lifeboat.yaml"]);
    assert_eq!(out.code, Some(2), "{}", out.output());
    let rpo = line_of(&text, "      rpo: 0s");
    let standby = line_of(&text, "standby: [acme-us]");
    let lines: Vec<&str> = out.stderr.lines().collect();
    assert!(
        lines.iter().any(|l| l.starts_with(&format!(
            "lifeboat.yaml:{rpo}:12: workloads[0].data.rpo: an rpo of 0s needs `synchronous: true`"
        ))),
        "{}",
        out.output()
    );
    assert!(
        lines.iter().any(|l| l.starts_with(&format!(
            "lifeboat.yaml:{standby}:17: workloads[0].data.standby[0]: acme-us is at acme-cloud"
        ))),
        "{}",
        out.output()
    );
}
