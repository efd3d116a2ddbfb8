//! Tests of reading and validation, each asserting the exact finding (position
//! included) an operator would see. `rules` has one test per validation rule.

mod rules;

use std::path::{Path, PathBuf};

use super::*;

/// A small valid config; tests change one thing in it. Line numbers matter below.
pub(super) const BASE: &str = "\
vendors:
  - name: acme
    accounts: [prod]
  - name: self
providers:
  - name: a1
    vendor: acme
    account: prod
    adapter: {kind: sim}
  - name: s1
    vendor: self
    adapter: {kind: sim}
workloads:
  - name: db
    command: [db]
    placement: [a1, s1]
cutover: {kind: endpoints-file, path: e.json}
";

pub(super) fn base_with(from: &str, to: &str) -> String {
    assert!(BASE.contains(from), "{from:?} is not in the base config");
    BASE.replacen(from, to, 1)
}

/// The findings for `text`, one display line each.
pub(super) fn findings(text: &str) -> Vec<String> {
    match parse(text, Path::new("t.yaml")) {
        Ok(_) => Vec::new(),
        Err(error) => error.diagnostics.iter().map(|d| d.to_string()).collect(),
    }
}

#[track_caller]
pub(super) fn assert_findings(text: &str, expected: &[&str]) {
    assert_eq!(findings(text), expected, "for config:\n{text}");
}

#[test]
fn the_base_config_is_valid_and_keeps_its_defaults() {
    let config = parse(BASE, Path::new("conf/t.yaml")).unwrap();
    assert_eq!(config.state_dir, PathBuf::from("conf/.lifeboat"));
    assert_eq!(config.policy, PolicyConfig::default());
    assert_eq!(config.workloads[0].replicas, 1);
    assert_eq!(config.locate("workloads[0].placement[1]"), Some((16, 21)));
    assert_eq!(config.locate("not a path["), None);
    assert_eq!(
        config.diagnostic("cutover.path", "x").to_string(),
        "conf/t.yaml:17:39: cutover.path: x"
    );
}

#[test]
fn state_dir_is_resolved_against_the_config_folder() {
    let text = format!("{BASE}state_dir: var/state\n");
    let config = parse(&text, Path::new("/etc/lifeboat/t.yaml")).unwrap();
    assert_eq!(config.state_dir, PathBuf::from("/etc/lifeboat/var/state"));
    let text = format!("{BASE}state_dir: /srv/lifeboat\n");
    let config = parse(&text, Path::new("/etc/lifeboat/t.yaml")).unwrap();
    assert_eq!(config.state_dir, PathBuf::from("/srv/lifeboat"));
}

#[test]
fn syntax_and_type_errors_carry_position_and_path() {
    assert_findings(
        &base_with("    command: [db]", "    command: [db"),
        &[
            "t.yaml:16:14: did not find expected ',' or ']', while parsing a flow sequence at line 15 column 14",
        ],
    );
    assert_findings(
        &base_with("    command: [db]", "    replicas: many"),
        &["t.yaml:15:15: workloads[0].replicas: invalid type: string \"many\", expected u32"],
    );
    assert_findings(
        &base_with("    command: [db]", "    command: [db]\n    rto: soon"),
        &[
            "t.yaml:16:10: workloads[0].rto: invalid duration \"soon\" (expected e.g. \"10s\", \"2m\", \"1h 30m\")",
        ],
    );
    assert_findings(
        "just text",
        &["t.yaml:1:1: invalid type: string \"just text\", expected struct RawConfig"],
    );
}

#[test]
fn unknown_fields_point_at_the_key() {
    assert_findings(
        &base_with("    command: [db]", "    comand: [db]"),
        &[
            "t.yaml:15:5: workloads[0].comand: unknown field `comand`, expected one of `name`, `image`, `command`, `env`, `port`, `resources`, `replicas`, `health`, `depends_on`, `placement`, `rto`, `priority`, `public_name`, `hooks`, `data`, `extra`",
        ],
    );
    // Inside a tagged enum serde buffers the mapping; the key is still found.
    assert_findings(
        &base_with("path: e.json}", "path: e.json, pth: x}"),
        &["t.yaml:17:47: cutover.pth: unknown field `pth`, expected `path`"],
    );
    // The list of kinds depends on the cargo features compiled in.
    let text = base_with(
        "    adapter: {kind: sim}\n  - name: s1",
        "    adapter: {kind: simm}\n  - name: s1",
    );
    let findings = match crate::config::parse(&text, std::path::Path::new("t.yaml")) {
        Ok(_) => panic!("an unknown kind must be refused"),
        Err(e) => e.to_string(),
    };
    assert!(
        findings.starts_with(
            "t.yaml:9:21: providers[0].adapter.kind: unknown variant `simm`, expected"
        ) && findings.contains("`local`")
            && findings.contains("`sim`"),
        "{findings}"
    );
}

#[test]
fn missing_fields_point_at_their_mapping() {
    assert_findings(
        &base_with("    placement: [a1, s1]\n", ""),
        &["t.yaml:14:5: workloads[0]: missing field `placement`"],
    );
    assert_findings(
        &base_with(
            "{kind: endpoints-file, path: e.json}",
            "{kind: endpoints-file}",
        ),
        &["t.yaml:17:10: cutover: missing field `path`"],
    );
}

#[test]
fn load_names_the_file_it_cannot_read() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope.yaml");
    let error = load(&missing).unwrap_err();
    let shown = error.to_string();
    assert!(
        shown.starts_with(&format!(
            "{}: cannot read the config file: ",
            missing.display()
        )),
        "{shown}"
    );

    let binary = dir.path().join("bin.yaml");
    std::fs::write(&binary, b"vendors: []\nproviders: [\xff]\n").unwrap();
    assert_eq!(
        load(&binary).unwrap_err().to_string(),
        format!(
            "{}:2:13: the config file is not UTF-8 text",
            binary.display()
        )
    );

    let good = dir.path().join("good.yaml");
    std::fs::write(&good, BASE).unwrap();
    assert_eq!(load(&good).unwrap().state_dir, dir.path().join(".lifeboat"));
}

#[test]
fn lint_warns_about_single_vendor_placements_and_idle_providers() {
    let text = base_with("[a1, s1]", "[a1]").replace("  - name: s1\n", "  - name: self\n");
    let config = parse(&text, Path::new("t.yaml")).unwrap();
    let shown: Vec<String> = lint(&config).iter().map(|d| d.to_string()).collect();
    assert_eq!(
        shown,
        [
            "t.yaml:10:11: providers[1].name: no workload lists provider \"self\" in its placement; it is never used",
            "t.yaml:10:11: providers[1].name: provider \"self\" has the name of a vendor: `--lose self` means the vendor, not this provider",
            "t.yaml:16:16: workloads[0].placement: every provider in the placement of \"db\" is at vendor \"acme\": it would be stranded if vendor \"acme\" drops us",
        ]
    );
    assert!(lint(&parse(BASE, Path::new("t.yaml")).unwrap()).is_empty());
}

#[test]
fn enum_and_duplicate_key_errors_point_at_the_offending_node() {
    assert_findings(
        &format!("{BASE}policy: {{mode: fast}}\n"),
        &[
            "t.yaml:18:16: policy.mode: unknown variant `fast`, expected one of `auto`, `confirm`, `observe`",
        ],
    );
    assert_findings(
        &base_with(
            "    command: [db]\n",
            "    command: [db]\n    health: {type: grpc}\n",
        ),
        &[
            "t.yaml:16:20: workloads[0].health.type: unknown variant `grpc`, expected `http` or `tcp`",
        ],
    );
    assert_findings(
        &base_with(
            "    command: [db]\n",
            "    command: [db]\n    health: {type: http}\n",
        ),
        &["t.yaml:16:13: workloads[0].health: missing field `path`"],
    );
    assert_findings(
        &format!("{BASE}cutover: {{kind: endpoints-file, path: x}}\n"),
        &["t.yaml:18:1: cutover: duplicate field `cutover`"],
    );
    // Inside a tagged enum the field is not known, so the tagged mapping is shown.
    assert_findings(
        &base_with(
            "{kind: endpoints-file, path: e.json}",
            "{kind: exec, command: [x], timeout: forever}",
        ),
        &[
            "t.yaml:17:10: cutover: invalid duration \"forever\" (expected e.g. \"10s\", \"2m\", \"1h 30m\")",
        ],
    );
    assert_findings(
        &format!("{BASE}---\na: 1\n"),
        &["t.yaml: deserializing from YAML containing more than one document is not supported"],
    );
}
