//! One test per validation rule.

use super::{BASE, assert_findings, base_with, findings};
use crate::config::*;
use std::path::Path;

#[test]
fn names_must_be_unique() {
    assert_findings(
        &base_with("accounts: [prod]", "accounts: [prod, prod]"),
        &[
            "t.yaml:3:22: vendors[0].accounts[1]: duplicate account \"prod\" (first at vendors[0].accounts[0])",
        ],
    );
    assert_findings(
        &base_with("  - name: s1\n", "  - name: a1\n"),
        &[
            "t.yaml:10:11: providers[1].name: duplicate provider \"a1\" (first at providers[0].name)",
            "t.yaml:16:21: workloads[0].placement[1]: unknown provider \"s1\"",
        ],
    );
    let text = format!("{BASE}  - name: db\n    image: x\n    placement: [s1]\n");
    assert_findings(
        &text
            .replace("cutover: {kind: endpoints-file, path: e.json}\n", "")
            .replacen(
                "workloads:",
                "cutover: {kind: endpoints-file, path: e.json}\nworkloads:",
                1,
            ),
        &[
            "t.yaml:18:11: workloads[1].name: duplicate workload \"db\" (first at workloads[0].name)",
        ],
    );
}

#[test]
fn duplicate_vendors_and_public_names_are_reported() {
    let text = base_with("  - name: self\n", "  - name: acme\n");
    assert!(
        findings(&text).contains(
            &"t.yaml:4:11: vendors[1].name: duplicate vendor \"acme\" (first at vendors[0].name)"
                .to_owned()
        ),
        "{:?}",
        findings(&text)
    );
    let text = BASE.replace("cutover:", "  - name: api\n    command: [api]\n    public_name: x.test\n    placement: [s1]\ncutover:")
        .replace("    command: [db]\n", "    command: [db]\n    public_name: x.test\n");
    assert_findings(
        &text,
        &[
            "t.yaml:20:18: workloads[1].public_name: duplicate public name \"x.test\" (first at workloads[0].public_name)",
        ],
    );
}

#[test]
fn providers_reference_vendors_and_accounts() {
    assert_findings(
        &base_with("    vendor: self", "    vendor: selff"),
        &["t.yaml:11:13: providers[1].vendor: unknown vendor \"selff\""],
    );
    assert_findings(
        &base_with("    account: prod", "    account: staging"),
        &[
            "t.yaml:8:14: providers[0].account: unknown account \"staging\" at vendor \"acme\" (accounts: prod)",
        ],
    );
    assert_findings(
        &base_with(
            "    vendor: self\n",
            "    vendor: self\n    account: main\n",
        ),
        &[
            "t.yaml:12:14: providers[1].account: unknown account \"main\": vendor \"self\" lists no accounts",
        ],
    );
    // The field is absent, so the finding points at the provider's mapping.
    assert_findings(
        &base_with("    account: prod\n", ""),
        &[
            "t.yaml:6:5: providers[0].account: missing account: vendor \"acme\" has accounts (prod); name the one this provider uses",
        ],
    );
    assert_findings(
        &base_with("  - name: s1\n", "  - name: self/x\n"),
        &[
            "t.yaml:10:11: providers[1].name: provider name \"self/x\" must not contain '/'",
            "t.yaml:16:21: workloads[0].placement[1]: unknown provider \"s1\"",
        ],
    );
}

#[test]
fn workloads_need_a_good_name_and_something_to_run() {
    assert_findings(
        &base_with("  - name: db\n", "  - name: Db_1\n"),
        &[
            "t.yaml:14:11: workloads[0].name: invalid workload name \"Db_1\": use 1-63 lower-case letters, digits and '-', starting with a letter and not ending with '-'",
        ],
    );
    assert_findings(
        &base_with("    command: [db]\n", "    command: []\n"),
        &["t.yaml:14:5: workloads[0].image: a workload needs an `image` or a non-empty `command`"],
    );
    assert_eq!(
        findings(&base_with("    command: [db]\n", "    image: db:1\n")),
        Vec::<String>::new()
    );
    assert_findings(
        &base_with(
            "    command: [db]\n",
            "    command: [db]\n    replicas: 0\n    port: 0\n    rto: 0s\n",
        ),
        &[
            "t.yaml:16:15: workloads[0].replicas: replicas must be at least 1",
            "t.yaml:17:11: workloads[0].port: port must be between 1 and 65535",
            "t.yaml:18:10: workloads[0].rto: rto must be longer than 0s",
        ],
    );
    assert_findings(
        &base_with(
            "    command: [db]\n",
            "    command: [db]\n    health: {type: http, path: healthz}\n",
        ),
        &[
            "t.yaml:16:32: workloads[0].health.path: HTTP health path \"healthz\" must start with '/'",
        ],
    );
    assert_findings(
        &base_with(
            "    command: [db]\n",
            "    command: [db]\n    hooks: {before_cutover: [[]]}\n",
        ),
        &[
            "t.yaml:16:30: workloads[0].hooks.before_cutover[0]: a hook needs a program (argv form, e.g. [\"./promote.sh\", \"--now\"])",
        ],
    );
}

#[test]
fn placement_names_providers_once_each() {
    assert_findings(
        &base_with("[a1, s1]", "[]"),
        &["t.yaml:16:16: workloads[0].placement: placement must name at least one provider"],
    );
    assert_findings(
        &base_with("[a1, s1]", "[a1, b9, a1]"),
        &[
            "t.yaml:16:21: workloads[0].placement[1]: unknown provider \"b9\"",
            "t.yaml:16:25: workloads[0].placement[2]: provider \"a1\" listed twice",
        ],
    );
}

/// The base config with three workloads whose `depends_on` lists are given.
fn with_dependencies(a: &str, b: &str, c: &str) -> String {
    let workloads = format!(
        "workloads:\n  - name: a\n    command: [x]\n    placement: [s1]\n    depends_on: {a}\n  \
         - name: b\n    command: [x]\n    placement: [s1]\n    depends_on: {b}\n  \
         - name: c\n    command: [x]\n    placement: [s1]\n    depends_on: {c}\n"
    );
    base_with(
        "workloads:\n  - name: db\n    command: [db]\n    placement: [a1, s1]\n",
        &workloads,
    )
}

#[test]
fn depends_on_names_other_existing_workloads() {
    assert_findings(
        &with_dependencies("[dbb]", "[b]", "[a, a]"),
        &[
            "t.yaml:17:18: workloads[0].depends_on[0]: unknown workload \"dbb\"",
            "t.yaml:21:18: workloads[1].depends_on[0]: workload \"b\" depends on itself",
            "t.yaml:25:21: workloads[2].depends_on[1]: workload \"a\" listed twice",
        ],
    );
}

#[test]
fn dependency_cycles_are_reported_once_with_their_members() {
    assert_findings(
        &with_dependencies("[b]", "[a]", "[]"),
        &["t.yaml:21:18: workloads[1].depends_on[0]: dependency cycle: a -> b -> a"],
    );
    assert_findings(
        &with_dependencies("[c]", "[a]", "[b]"),
        &["t.yaml:21:18: workloads[1].depends_on[0]: dependency cycle: a -> c -> b -> a"],
    );
    // A diamond is not a cycle.
    assert_findings(&with_dependencies("[b, c]", "[c]", "[]"), &[]);
}

#[test]
fn policy_numbers_are_in_range() {
    let text = format!(
        "{BASE}policy:\n  confirmations: 0\n  parallelism: 0\n  per_provider_parallelism: 0\n  \
         step_attempts: 0\n  probe_interval: 2s\n  probe_timeout: 3s\n  step_timeout: 0s\n"
    );
    assert_findings(
        &text,
        &[
            "t.yaml:19:18: policy.confirmations: confirmations must be at least 1",
            "t.yaml:20:16: policy.parallelism: parallelism must be at least 1",
            "t.yaml:21:29: policy.per_provider_parallelism: per_provider_parallelism must be at least 1",
            "t.yaml:22:18: policy.step_attempts: step_attempts must be at least 1",
            "t.yaml:24:18: policy.probe_timeout: probe_timeout (3s) must not exceed probe_interval (2s)",
            "t.yaml:25:17: policy.step_timeout: step_timeout must be longer than 0s",
        ],
    );
    let text = format!("{BASE}policy: {{probe_timeout: 0s, mode: observe}}\n");
    assert_findings(
        &text,
        &["t.yaml:18:25: policy.probe_timeout: probe_timeout must be longer than 0s"],
    );
}

#[test]
fn exec_cutover_needs_a_command() {
    let text = base_with(
        "{kind: endpoints-file, path: e.json}",
        "{kind: exec, command: [], timeout: 0s}",
    );
    assert_findings(
        &text,
        &[
            "t.yaml:17:32: cutover.command: the exec cutover needs a program (argv form)",
            "t.yaml:17:45: cutover.timeout: timeout must be longer than 0s",
        ],
    );
    let text = base_with(
        "{kind: endpoints-file, path: e.json}",
        "{kind: exec, command: [./switch.sh]}",
    );
    match parse(&text, Path::new("t.yaml")).unwrap().cutover {
        CutoverConfig::Exec { timeout, .. } => {
            assert_eq!(timeout, std::time::Duration::from_secs(30))
        }
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn drill_lose_names_something_that_can_be_lost() {
    for lose in ["acme", "acme/prod", "s1"] {
        let text = format!("{BASE}drill: {{lose: {lose}}}\n");
        assert_findings(&text, &[]);
    }
    let text = format!("{BASE}drill: {{lose: acme/dev, mode: shadow}}\n");
    assert_findings(
        &text,
        &[
            "t.yaml:18:15: drill.lose: \"acme/dev\" is not a vendor, vendor/account or provider of this config",
        ],
    );
}

#[test]
fn all_problems_are_reported_together_in_file_order() {
    let text = base_with("    vendor: self", "    vendor: nobody").replace("[a1, s1]", "[a1, zz]");
    assert_findings(
        &text,
        &[
            "t.yaml:11:13: providers[1].vendor: unknown vendor \"nobody\"",
            "t.yaml:16:21: workloads[0].placement[1]: unknown provider \"zz\"",
        ],
    );
}

#[test]
fn local_providers_need_distinct_port_ranges() {
    let text = base_with(
        "    adapter: {kind: sim}\n  - name: s1",
        "    adapter: {kind: local, ports: \"100-200\"}\n  - name: s1",
    )
    .replace(
        "    adapter: {kind: sim}\n",
        "    adapter: {kind: local, ports: \"150-300\"}\n",
    );
    assert_findings(
        &text,
        &[
            "t.yaml:12:35: providers[1].adapter.ports: ports 150-300 overlap those of local provider \"a1\"",
        ],
    );
    let text = base_with(
        "    adapter: {kind: sim}\n  - name: s1",
        "    adapter: {kind: local, ports: 9-1}\n  - name: s1",
    );
    assert_findings(
        &text,
        &[
            "t.yaml:9:14: providers[0].adapter: invalid port range \"9-1\": the first port is above the last (expected FIRST-LAST, e.g. 20000-20099)",
        ],
    );
}

#[test]
fn local_providers_on_distinct_addresses_may_share_ports() {
    let two = |a: &str, b: &str| {
        base_with(
            "    adapter: {kind: sim}\n  - name: s1",
            &format!("    adapter: {{kind: local, ports: \"100-200\", bind: {a}}}\n  - name: s1"),
        )
        .replace(
            "    adapter: {kind: sim}\n",
            &format!("    adapter: {{kind: local, ports: \"150-300\", bind: {b}}}\n"),
        )
    };
    assert_findings(&two("127.0.0.2", "127.0.0.3"), &[]);
    // The unspecified address takes the port on every address.
    assert_eq!(findings(&two("127.0.0.2", "0.0.0.0")).len(), 1);
    assert_eq!(findings(&two("127.0.0.2", "127.0.0.2")).len(), 1);
}

#[test]
fn dns_switched_workloads_need_a_port() {
    let dns = "{kind: dns, zone: t.test, servers: [127.0.0.1], hosted_by: ns, \
               tsig: {name: k, algorithm: hmac-sha256, secret_env: K}}";
    let text = base_with("{kind: endpoints-file, path: e.json}", dns).replace(
        "    placement: [a1, s1]\n",
        "    placement: [a1, s1]\n    public_name: db.t.test\n",
    );
    let found = findings(&text);
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(
        found[0].contains("workloads[0].port: DNS carries no port"),
        "{found:?}"
    );
    let text = text.replace("    public_name:", "    port: 8080\n    public_name:");
    assert_findings(&text, &[]);
}

#[test]
fn webhooks_need_one_url_that_is_http_and_a_name_of_their_own() {
    let text = format!(
        "{BASE}notify:
  - {{name: chat, url: 'https://hooks.example/T/B/tok3n', events: [stranded]}}
  - {{name: chat, url_env: HOOK}}
  - {{name: none}}
  - {{name: both, url: 'https://h.example/x', url_env: HOOK}}
  - {{name: ftp, url: 'ftp://h.example/tok3n', timeout: 0s}}
"
    );
    assert_findings(
        &text,
        &[
            "t.yaml:20:12: notify[1].name: duplicate webhook \"chat\" (first at notify[0].name)",
            "t.yaml:21:12: notify[2].name: give exactly one of url, url_file and url_env",
            "t.yaml:22:12: notify[3].name: give exactly one of url, url_file and url_env",
            "t.yaml:23:22: notify[4].url: the URL's scheme is \"ftp\"; webhooks are http or https",
            "t.yaml:23:56: notify[4].timeout: must be longer than 0s",
        ],
    );
    let typo = format!("{BASE}notify:\n  - {{name: chat, url_env: H, events: [strandedd]}}\n");
    let found = findings(&typo);
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(found[0].starts_with("t.yaml:19:"), "{found:?}");
    assert!(
        found[0].contains("unknown variant `strandedd`"),
        "{found:?}"
    );
}
