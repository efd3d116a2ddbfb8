use super::*;

fn report(met: bool) -> DrillReport {
    DrillReport {
        scenario: "account-suspended".into(),
        mode: "live".into(),
        lost: "acme".into(),
        lost_providers: vec!["acme-eu".into()],
        started_at: "2026-11-28T16:00:00Z".into(),
        detected_after_ms: Some(1200),
        objectives_met: met,
        workloads: vec![WorkloadOutcome {
            name: "api<1>".into(),
            from: Some("acme-eu".into()),
            to: Some("self-1".into()),
            healthy: true,
            healthy_after_ms: Some(2500),
            rto_ms: Some(3100),
            downtime_ms: Some(900),
            outages: vec![Window {
                start_ms: 1300,
                end_ms: 2200,
            }],
            rto_objective_ms: Some(30_000),
            dns_ttl_ms: None,
            phases: vec![Phase {
                name: "power-on".into(),
                ms: 1800,
            }],
            steps: vec![],
            rpo_ms: None,
            met,
            problem: (!met).then(|| "rto 3.1s > objective 3s".into()),
        }],
        stranded: vec![],
        failback: None,
        timeline: vec![TimelineEvent {
            at_ms: 0,
            workload: None,
            what: "fault injected".into(),
        }],
        conditions: vec![],
        data: vec![],
    }
}

fn data(rows_lost: u64, rpo_ms: u64, objective_ms: u64) -> DataOutcome {
    DataOutcome {
        workload: "db".into(),
        method: "postgres-streaming".into(),
        synchronous: false,
        last_acknowledged: 1200,
        rows_present: Some(1200 - rows_lost),
        rows_lost,
        rpo_ms,
        rpo_objective_ms: objective_ms,
        refused: 3,
        after_failback: Some(1200 - rows_lost),
        snapshot: None,
        unprotected_ms: None,
        unprotected: None,
        met: rpo_ms <= objective_ms,
        problem: (rpo_ms > objective_ms).then(|| format!("{rows_lost} acknowledged rows lost")),
    }
}

#[test]
fn what_a_dataset_lost_is_in_the_summary_and_a_miss_fails_its_junit_case() {
    let mut r = report(true);
    r.data = vec![data(0, 0, 5000)];
    let summary = r.summary();
    assert!(
        summary.contains(
            "data db: 1200 rows acknowledged, 0 lost, rpo 0ms (objective 5000ms, asynchronous)"
        ),
        "{summary}"
    );
    assert!(r.junit().contains("db rpo"), "{}", r.junit());
    assert!(!r.junit().contains("<failure"), "{}", r.junit());

    r.data = vec![data(40, 400, 0)];
    r.objectives_met = false;
    let junit = r.junit();
    let case = junit
        .split("<testcase")
        .find(|c| c.contains("db rpo"))
        .unwrap();
    assert!(case.contains("<failure"), "{junit}");
    assert!(case.contains("40 lost, rpo 400ms"), "{junit}");
    assert_eq!(r.exit_code(), 1);
}

#[test]
fn json_has_the_documented_fields() {
    let json = serde_json::to_value(report(true)).unwrap();
    for key in [
        "scenario",
        "lost",
        "detected_after_ms",
        "objectives_met",
        "workloads",
    ] {
        assert!(json.get(key).is_some(), "missing {key}");
    }
    for key in ["name", "from", "to", "rto_ms", "downtime_ms", "healthy"] {
        assert!(
            json["workloads"][0].get(key).is_some(),
            "missing workloads[].{key}"
        );
    }
}

#[test]
fn missed_objective_fails_the_exit_code_and_the_junit_case() {
    assert_eq!(report(true).exit_code(), 0);
    let missed = report(false);
    assert_eq!(missed.exit_code(), 1);
    let xml = missed.junit();
    assert!(xml.contains("failures=\"1\""), "{xml}");
    assert!(xml.contains("rto 3.1s &gt; objective 3s"), "{xml}");
}

#[test]
fn html_is_self_contained_and_escaped() {
    let html = report(true).html();
    assert!(html.contains("<svg"));
    assert!(html.contains("api&#60;1&#62;"), "{html}");
    assert!(!html.contains("api<1>"));
    assert!(!html.contains("<script"));
    assert!(!html.contains("http://") || html.contains("http://www.w3.org/2000/svg"));
}

#[test]
fn a_dns_ttl_is_shown_as_part_of_the_rto() {
    let plain = report(true);
    assert_eq!(plain.ttl_note(), None);
    assert!(!plain.summary().contains("TTL"));
    let mut dns = report(true);
    dns.workloads[0].dns_ttl_ms = Some(5000);
    let mut db = dns.workloads[0].clone();
    db.name = "db".into();
    dns.workloads.push(db);
    let text = dns.summary();
    assert!(text.contains("DNS TTL"), "{text}");
    assert!(text.contains("5000ms (api<1>, db)"), "{text}");
    let html = dns.html();
    assert!(html.contains("<th>DNS TTL (in RTO)</th>"), "{html}");
    assert!(html.contains("cut over + DNS TTL"), "{html}");
}

#[test]
fn an_old_report_without_the_newer_fields_still_loads() {
    let mut json = serde_json::to_value(report(true)).unwrap();
    let obj = json.as_object_mut().unwrap();
    for key in [
        "conditions",
        "timeline",
        "stranded",
        "lost_providers",
        "failback",
    ] {
        obj.remove(key);
    }
    let w = json["workloads"][0].as_object_mut().unwrap();
    for key in ["steps", "rpo_ms", "phases", "outages", "dns_ttl_ms"] {
        w.remove(key);
    }
    let old: DrillReport = serde_json::from_value(json).unwrap();
    assert!(old.timeline.is_empty() && old.workloads[0].steps.is_empty());
    assert!(old.html().contains("id=\"verdict\""));
    assert!(old.summary().contains("objectives: met"));
}

#[test]
fn condition_changes_are_read_from_the_timeline_lines() {
    let line = |at_ms, what: &str| TimelineEvent {
        at_ms,
        workload: None,
        what: what.into(),
    };
    let timeline = [
        line(0, "fault injected: account-suspended on acme-eu"),
        line(5, "metal-1: healthy"),
        line(
            9,
            "acme-eu: suspended (account suspended) since 2026-11-28T16:00:01Z",
        ),
        line(12, "detected"),
        line(13, "acme-us: what: not a condition"),
    ];
    let changes = conditions_from_timeline(&timeline);
    let got: Vec<(&str, &str, u64)> = changes
        .iter()
        .map(|c| (c.provider.as_str(), c.condition.as_str(), c.at_ms))
        .collect();
    assert_eq!(
        got,
        [("metal-1", "healthy", 5), ("acme-eu", "suspended", 9)]
    );
}

#[test]
fn summary_columns_stay_aligned_for_long_names() {
    let mut r = report(true);
    let mut long = r.workloads[0].clone();
    long.name = "a-workload-with-a-very-long-name".into();
    r.workloads.push(long);
    let text = r.summary();
    let rows: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("self-1") || l.trim_start().starts_with("workload"))
        .collect();
    assert_eq!(rows.len(), 3, "{text}");
    let at = |l: &str, what: &str| l.find(what).unwrap();
    assert_eq!(at(rows[1], "self-1"), at(rows[2], "self-1"), "{text}");
    assert_eq!(at(rows[0], "to"), at(rows[1], "self-1"), "{text}");
}

#[test]
fn summary_names_every_workload_and_the_verdict() {
    let text = report(false).summary();
    assert!(text.contains("api<1>") && text.contains("MISSED"), "{text}");
}

#[test]
fn power_on_time_is_shown_apart_in_every_form() {
    let r = report(true);
    assert!(r.summary().contains("power-on 1800ms"), "{}", r.summary());
    assert!(
        r.html().contains("<td>power-on 1800ms</td>"),
        "{}",
        r.html()
    );
    let json = serde_json::to_value(&r).unwrap();
    assert_eq!(json["workloads"][0]["phases"][0]["name"], "power-on");
    assert_eq!(json["workloads"][0]["phases"][0]["ms"], 1800);
    let mut none = r.clone();
    none.workloads[0].phases.clear();
    assert!(!none.summary().contains("of healthy"));
    assert!(none.html().contains("<td>-</td>"));
}

#[test]
fn phases_come_from_the_adapter_timings_in_milliseconds() {
    let t = lifeboat_provider::Timing {
        phase: "power-on".into(),
        duration: std::time::Duration::from_micros(6_200_900),
    };
    assert_eq!(
        Phase::from(&t),
        Phase {
            name: "power-on".into(),
            ms: 6200
        }
    );
}
