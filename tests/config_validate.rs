//! `lifeboat.yaml` as an operator meets it: the sample config with every field loads,
//! broken files give exact `file:line:col: path: message` lines, and no input, however
//! mangled, makes reading panic.

use std::path::{Path, PathBuf};
use std::time::Duration;

use lifeboat::config::{self, AdapterConfig, CutoverConfig, DrillMode, Mode, Scenario};
use lifeboat::model::Scope;
use lifeboat_provider::HealthCheck;
use proptest::prelude::*;

const FIXTURES: &str = "tests/fixtures/config";

/// Fixture paths are relative to the package root, which is where cargo runs tests, so
/// they appear in findings exactly as written here.
fn fixture(name: &str) -> PathBuf {
    Path::new(FIXTURES).join(name)
}

/// The lines `lifeboat validate` would print for a fixture.
fn findings(name: &str) -> Vec<String> {
    match config::load(&fixture(name)) {
        Ok(_) => Vec::new(),
        Err(error) => error.to_string().lines().map(str::to_owned).collect(),
    }
}

#[test]
fn the_sample_config_shows_every_field_and_loads() {
    let config = config::load(&fixture("valid.yaml")).unwrap();
    assert_eq!(config.state_dir, Path::new(FIXTURES).join(".lifeboat"));
    assert_eq!(config.vendors.len(), 2);
    assert_eq!(config.vendors[0].accounts, ["prod"]);

    let east = config.provider("acme-east").unwrap();
    assert_eq!(config.account_of(east), "acme/prod");
    assert_eq!(east.capacity.memory_mib, Some(8192));
    assert_eq!(east.labels["region"], "east");
    match &east.adapter {
        AdapterConfig::Local(local) => {
            assert_eq!((local.ports.first(), local.ports.last()), (18100, 18199))
        }
        other => panic!("expected a local adapter, got {other:?}"),
    }
    assert_eq!(
        config.account_of(config.provider("home-rack").unwrap()),
        "self/"
    );

    let names: Vec<&str> = config.workloads.iter().map(|w| w.name.as_str()).collect();
    assert_eq!(names, ["db", "api", "web"]);
    let db = config.workload("db").unwrap();
    assert_eq!(db.health, Some(HealthCheck::Tcp));
    assert_eq!(
        db.hooks.before_cutover,
        [["./scripts/promote-replica.sh", "--now"]]
    );
    assert_eq!(db.resources.memory_mib, 512);
    let api = config.workload("api").unwrap();
    assert_eq!(api.image.as_deref(), Some("registry.example.test/api:1.4"));
    assert_eq!(api.replicas, 2);
    assert_eq!(api.rto, Some(Duration::from_secs(90)));
    assert_eq!(api.depends_on, ["db"]);
    assert_eq!(
        api.health,
        Some(HealthCheck::Http {
            path: "/healthz".into()
        })
    );
    assert!(api.extra.contains_key("manifests"));
    assert_eq!(config.workload("web").unwrap().depends_on, ["api"]);

    assert_eq!(config.policy.mode, Mode::Auto);
    assert_eq!(config.policy.notice_margin, Duration::from_secs(1800));
    assert_eq!(
        config.cutover,
        CutoverConfig::EndpointsFile {
            path: "endpoints.json".into()
        }
    );
    let drill = config.drill.as_ref().unwrap();
    assert_eq!(
        (drill.scenario, drill.mode),
        (Scenario::AccountSuspended, DrillMode::Live)
    );
    assert_eq!(
        config.resolve_scope(&drill.lose),
        Some(Scope::Vendor("acme".into()))
    );

    assert_eq!(config.installation.as_deref(), Some("acme-prod"));
    assert_eq!(config.drills.len(), 1);
    assert_eq!(config.drills[0].mode, DrillMode::Shadow);

    // A sample that teaches should not trip the linter either.
    assert_eq!(config::lint(&config), []);
    assert_eq!(config.locate("workloads[2].depends_on[0]"), Some((59, 9)));
}

#[test]
fn scheduled_drills_and_the_installation_are_checked_where_they_are_written() {
    // The sample ends with its drills and installation; these replace them.
    let sample = sample();
    let head = sample.split("\ndrills:").next().unwrap();
    let text = format!(
        "{head}\ninstallation: Prod_1\ndrills:\n  - {{name: d, schedule: 'every day', lose: nowhere, mode: live}}\n"
    );
    let error = config::parse(&text, Path::new("lifeboat.yaml")).unwrap_err();
    let lines: Vec<String> = error.to_string().lines().map(str::to_owned).collect();
    for (path, says) in [
        ("installation", "lower-case letters"),
        ("drills[0].schedule", "not a cron expression"),
        ("drills[0].lose", "not a vendor"),
        ("drills[0].mode", "shadow mode"),
    ] {
        assert!(
            lines
                .iter()
                .any(|l| l.contains(&format!(" {path}: ")) && l.contains(says)),
            "{path} ({says}) in {lines:#?}"
        );
    }
}

#[test]
fn a_dangling_reference_names_file_line_column_and_path() {
    assert_eq!(
        findings("dangling.yaml"),
        [
            "tests/fixtures/config/dangling.yaml:15:7: workloads[1].depends_on[0]: unknown workload \"dbb\"",
            "tests/fixtures/config/dangling.yaml:17:23: workloads[1].placement[1]: unknown provider \"west\"",
        ]
    );
}

#[test]
fn every_mistake_in_a_file_is_reported_in_file_order() {
    assert_eq!(
        findings("many.yaml"),
        [
            "tests/fixtures/config/many.yaml:5:11: vendors[1].name: duplicate vendor \"acme\" (first at vendors[0].name)",
            "tests/fixtures/config/many.yaml:7:5: providers[0].account: missing account: vendor \"acme\" has accounts (prod); name the one this provider uses",
            "tests/fixtures/config/many.yaml:11:13: providers[1].vendor: unknown vendor \"self\"",
            "tests/fixtures/config/many.yaml:14:5: workloads[0].image: a workload needs an `image` or a non-empty `command`",
            "tests/fixtures/config/many.yaml:14:11: workloads[0].name: invalid workload name \"DB\": use 1-63 lower-case letters, digits and '-', starting with a letter and not ending with '-'",
            "tests/fixtures/config/many.yaml:15:16: workloads[0].placement: placement must name at least one provider",
            "tests/fixtures/config/many.yaml:16:15: workloads[0].replicas: replicas must be at least 1",
            "tests/fixtures/config/many.yaml:20:29: workloads[1].placement[2]: provider \"east\" listed twice",
            "tests/fixtures/config/many.yaml:23:18: workloads[2].depends_on[0]: dependency cycle: api -> web -> api",
            "tests/fixtures/config/many.yaml:27:18: policy.probe_timeout: probe_timeout (10s) must not exceed probe_interval (5s)",
            "tests/fixtures/config/many.yaml:28:16: policy.parallelism: parallelism must be at least 1",
            "tests/fixtures/config/many.yaml:31:12: cutover.command: the exec cutover needs a program (argv form)",
            "tests/fixtures/config/many.yaml:33:9: drill.lose: \"nowhere\" is not a vendor, vendor/account or provider of this config",
        ]
    );
}

#[test]
fn syntax_errors_keep_libyaml_position() {
    assert_eq!(
        findings("syntax.yaml"),
        [
            "tests/fixtures/config/syntax.yaml:7:1: did not find expected ',' or '}', while parsing a flow mapping at line 6 column 14"
        ]
    );
}

#[test]
fn an_unknown_field_inside_an_adapter_points_at_the_key() {
    assert_eq!(
        findings("unknown-field.yaml"),
        [
            "tests/fixtures/config/unknown-field.yaml:9:7: providers[0].adapter.port_range: unknown field `port_range`, expected one of `ports`, `bind`, `dir`"
        ]
    );
}

#[test]
fn a_bad_duration_points_at_the_duration() {
    assert_eq!(
        findings("bad-duration.yaml"),
        [
            "tests/fixtures/config/bad-duration.yaml:12:19: policy.probe_interval: invalid duration \"every now and then\" (expected e.g. \"10s\", \"2m\", \"1h 30m\")"
        ]
    );
}

#[test]
fn deep_nesting_is_an_error_not_a_crash() {
    for text in [
        "[".repeat(20_000),
        "a: ".repeat(10_000),
        "- ".repeat(10_000),
    ] {
        let error = config::parse(&text, Path::new("deep.yaml")).unwrap_err();
        assert!(!error.diagnostics.is_empty());
    }
}

/// Every finding has a message and, when it has a position, one inside the text; a
/// config that passes can be linted and its workloads located.
fn check_findings(text: &str) {
    let error = match config::parse(text, Path::new("fuzz.yaml")) {
        Ok(config) => {
            config::lint(&config);
            for i in 0..config.workloads.len() {
                assert!(config.locate(&format!("workloads[{i}].name")).is_some());
            }
            return;
        }
        Err(error) => error,
    };
    assert!(!error.diagnostics.is_empty());
    let lines = text.lines().count() + 1;
    for diagnostic in &error.diagnostics {
        assert!(!diagnostic.message.is_empty());
        assert!(
            diagnostic.line <= lines,
            "{diagnostic} is past the end of:\n{text}"
        );
        assert_eq!(diagnostic.line == 0, diagnostic.column == 0);
    }
}

fn sample() -> String {
    std::fs::read_to_string(fixture("valid.yaml")).unwrap()
}

/// How a valid file gets damaged.
#[derive(Debug, Clone)]
enum Damage {
    FlipByte { at: usize, to: u8 },
    Truncate { at: usize },
    DeleteLine { line: usize },
    DuplicateLine { line: usize },
}

fn damage() -> impl Strategy<Value = Damage> {
    prop_oneof![
        (any::<usize>(), any::<u8>()).prop_map(|(at, to)| Damage::FlipByte { at, to }),
        any::<usize>().prop_map(|at| Damage::Truncate { at }),
        any::<usize>().prop_map(|line| Damage::DeleteLine { line }),
        any::<usize>().prop_map(|line| Damage::DuplicateLine { line }),
    ]
}

fn apply(text: &str, damages: &[Damage]) -> String {
    let mut bytes = text.as_bytes().to_vec();
    for damage in damages {
        match *damage {
            Damage::FlipByte { at, to } if !bytes.is_empty() => {
                let at = at % bytes.len();
                bytes[at] = to;
            }
            Damage::Truncate { at } => bytes.truncate(at % (bytes.len() + 1)),
            Damage::DeleteLine { line } | Damage::DuplicateLine { line } => {
                let mut lines: Vec<Vec<u8>> =
                    bytes.split(|&b| b == b'\n').map(<[u8]>::to_vec).collect();
                let line = line % lines.len();
                if matches!(damage, Damage::DeleteLine { .. }) {
                    lines.remove(line);
                } else {
                    lines.insert(line, lines[line].clone());
                }
                bytes = lines.join(&b'\n');
            }
            Damage::FlipByte { .. } => {}
        }
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn parse_never_panics_on_arbitrary_text(text in any::<String>()) {
        check_findings(&text);
    }

    #[test]
    fn parse_never_panics_on_yaml_like_text(text in "[a-z_: \\-\\[\\]{},\\n&*!|>'\"#0-9]{0,200}") {
        check_findings(&text);
    }

    #[test]
    fn parse_never_panics_on_a_damaged_sample(damages in prop::collection::vec(damage(), 1..4)) {
        check_findings(&apply(&sample(), &damages));
    }
}

/// A config with workloads `w0..wN`, `edges[i]` listing the indices `wi` depends on.
fn with_graph(edges: &[Vec<usize>]) -> String {
    let mut text = String::from(
        "vendors: [{name: a}, {name: b}]\nproviders:\n  \
         - {name: pa, vendor: a, adapter: {kind: sim}}\n  \
         - {name: pb, vendor: b, adapter: {kind: sim}}\nworkloads:\n",
    );
    for (i, deps) in edges.iter().enumerate() {
        let deps: Vec<String> = deps.iter().map(|d| format!("w{d}")).collect();
        text += &format!(
            "  - name: w{i}\n    command: [x]\n    placement: [pa, pb]\n    depends_on: [{}]\n",
            deps.join(", ")
        );
    }
    text + "cutover: {kind: endpoints-file, path: e.json}\n"
}

/// Whether the graph has a cycle through distinct nodes (Kahn's algorithm).
fn has_cycle(edges: &[Vec<usize>]) -> bool {
    let n = edges.len();
    let mut indegree = vec![0; n];
    for (i, deps) in edges.iter().enumerate() {
        let mut seen = std::collections::BTreeSet::new();
        for &d in deps {
            if d != i && seen.insert(d) {
                indegree[d] += 1;
            }
        }
    }
    let mut ready: Vec<usize> = (0..n).filter(|&i| indegree[i] == 0).collect();
    let mut removed = 0;
    while let Some(i) = ready.pop() {
        removed += 1;
        let mut seen = std::collections::BTreeSet::new();
        for &d in &edges[i] {
            if d != i && seen.insert(d) {
                indegree[d] -= 1;
                if indegree[d] == 0 {
                    ready.push(d);
                }
            }
        }
    }
    removed < n
}

proptest! {
    #[test]
    fn cycles_are_found_exactly_when_the_graph_has_one(
        edges in (1usize..7).prop_flat_map(|n| {
            prop::collection::vec(prop::collection::vec(0..n, 0..3), n)
        })
    ) {
        let text = with_graph(&edges);
        let findings: Vec<String> = match config::parse(&text, Path::new("g.yaml")) {
            Ok(_) => Vec::new(),
            Err(error) => error.diagnostics.into_iter().map(|d| d.message).collect(),
        };
        let cycles: Vec<&String> =
            findings.iter().filter(|m| m.starts_with("dependency cycle: ")).collect();
        prop_assert_eq!(!cycles.is_empty(), has_cycle(&edges), "{:?}", findings);
        // Each reported cycle is real: every hop is an edge, and it ends where it began.
        for cycle in cycles {
            let names: Vec<usize> = cycle["dependency cycle: ".len()..]
                .split(" -> ")
                .map(|w| w[1..].parse().unwrap())
                .collect();
            prop_assert_eq!(names.first(), names.last());
            for hop in names.windows(2) {
                prop_assert!(edges[hop[0]].contains(&hop[1]), "{} is not a path", cycle);
            }
        }
    }
}
