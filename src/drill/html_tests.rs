use super::*;
use crate::drill::report::{Phase, SpanOutcome, StepSpan, StrandedOutcome, TimelineEvent, Window};

fn span(phase: &str, start_ms: u64, end_ms: u64, outcome: SpanOutcome) -> StepSpan {
    StepSpan {
        phase: phase.into(),
        target: "metal-1".into(),
        start_ms,
        end_ms,
        outcome,
    }
}

fn event(at_ms: u64, workload: Option<&str>, what: &str) -> TimelineEvent {
    TimelineEvent {
        at_ms,
        workload: workload.map(Into::into),
        what: what.into(),
    }
}

fn report() -> DrillReport {
    let workload = |name: &str| WorkloadOutcome {
        name: name.into(),
        from: Some("acme-eu".into()),
        to: Some("metal-1".into()),
        healthy: true,
        healthy_after_ms: Some(1230),
        rto_ms: Some(1300),
        downtime_ms: Some(1250),
        outages: vec![Window {
            start_ms: 50,
            end_ms: 1300,
        }],
        rto_objective_ms: Some(20_000),
        dns_ttl_ms: None,
        phases: vec![],
        steps: vec![
            span("deploy", 1150, 1190, SpanOutcome::Done),
            span("wait-healthy", 1190, 1230, SpanOutcome::Done),
            span("cutover", 1250, 1300, SpanOutcome::Done),
            span("retire", 1300, 1310, SpanOutcome::Orphaned),
        ],
        rpo_ms: None,
        met: true,
        problem: None,
    };
    DrillReport {
        scenario: "account-suspended".into(),
        mode: "live".into(),
        lost: "acme-cloud".into(),
        lost_providers: vec!["acme-eu".into()],
        started_at: "2026-11-28T16:00:00Z".into(),
        detected_after_ms: Some(1150),
        objectives_met: true,
        workloads: vec![workload("db"), workload("api")],
        stranded: vec![],
        failback: Some("ok: 2 workloads moved back".into()),
        timeline: vec![
            event(0, None, "fault injected: account-suspended on acme-eu"),
            event(3, None, "metal-1: healthy"),
            event(3, None, "acme-eu: failing since 2026-11-28T16:00:00Z"),
            event(
                1100,
                None,
                "acme-eu: suspended (account suspended) since 2026-11-28T16:00:01Z",
            ),
            event(1150, None, "detected"),
            event(1300, Some("db"), "db: traffic moved to metal-1"),
        ],
        conditions: vec![],
        data: vec![],
    }
}

/// The text of the element that starts at the first occurrence of `marker`, up to the
/// end of its lane group.
fn lane<'a>(html: &'a str, id: &str) -> &'a str {
    let start = html
        .find(&format!("data-lane=\"{id}\""))
        .unwrap_or_else(|| panic!("no lane {id}"));
    let rest = &html[start..];
    &rest[..rest.find("</g>").unwrap_or(rest.len())]
}

#[test]
fn every_workload_has_a_lane_with_its_phases() {
    let html = report().html();
    for name in ["db", "api"] {
        let lane = lane(&html, &format!("workload:{name}"));
        for phase in ["deploy", "wait-healthy", "cutover", "retire"] {
            assert!(
                lane.contains(&format!("data-phase=\"{phase}\"")),
                "{name} lacks {phase}: {lane}"
            );
        }
        assert!(lane.contains("data-outage=\"down\""), "{lane}");
        assert!(lane.contains("data-outcome=\"orphaned\""), "{lane}");
        assert!(lane.contains("data-mark=\"rto\""), "{lane}");
    }
}

#[test]
fn providers_get_condition_lanes_from_the_timeline() {
    let html = report().html();
    let lost = lane(&html, "provider:acme-eu");
    assert!(lost.contains("data-condition=\"failing\""), "{lost}");
    assert!(lost.contains("data-condition=\"suspended\""), "{lost}");
    let survivor = lane(&html, "provider:metal-1");
    assert!(
        survivor.contains("data-condition=\"healthy\""),
        "{survivor}"
    );
    // The lost provider comes first.
    assert!(html.find("provider:acme-eu") < html.find("provider:metal-1"));
}

#[test]
fn the_verdict_is_prominent_and_says_what_was_missed() {
    let html = report().html();
    assert!(
        html.contains(r#"id="verdict" class="met" data-verdict="met""#),
        "{html}"
    );
    assert!(html.contains("Objectives met"));
    let mut missed = report();
    missed.objectives_met = false;
    missed.workloads[1].met = false;
    missed.workloads[1].problem = Some("took 1.3s > objective 1ms".into());
    let html = missed.html();
    assert!(html.contains(r#"data-verdict="missed""#), "{html}");
    // askama escapes `>` as a numeric reference.
    assert!(
        html.contains("api: took 1.3s &#62; objective 1ms"),
        "{html}"
    );
    assert!(html.contains("<title>lifeboat drill: lost acme-cloud: objectives missed</title>"));
}

#[test]
fn the_chart_has_ticks_a_legend_the_detection_and_the_event_log() {
    let html = report().html();
    // 1310ms of drill: ticks every 200ms up to 1.4s.
    for tick in ["0.0s", "0.2s", "1.4s"] {
        assert!(
            html.contains(&format!("data-tick=\"{tick}\"")),
            "no tick {tick}"
        );
    }
    for entry in [
        "deploy",
        "wait healthy",
        "hooks",
        "cutover",
        "retire",
        "down",
        "suspended",
    ] {
        assert!(
            html.contains(&format!("data-legend=\"{entry}\"")),
            "no legend {entry}"
        );
    }
    assert!(html.contains("detected 1150ms"));
    assert!(html.contains(r#"<tr data-at-ms="1300"><td>1300ms</td><td>db</td><td>db: traffic moved to metal-1</td></tr>"#), "{html}");
    assert!(html.contains(r#"id="rpo-note""#));
}

#[test]
fn power_on_is_drawn_inside_the_deploy_that_landed() {
    let mut r = report();
    r.workloads[0].phases = vec![Phase {
        name: "power-on".into(),
        ms: 30,
    }];
    let html = r.html();
    let db = lane(&html, "workload:db");
    assert!(db.contains("data-phase=\"power-on\""), "{db}");
    assert!(!lane(&html, "workload:api").contains("power-on"));
    assert!(html.contains("<td>power-on 30ms</td>"));
}

#[test]
fn nothing_panics_on_an_empty_or_old_report() {
    let mut empty = report();
    empty.workloads.clear();
    empty.timeline.clear();
    empty.lost_providers.clear();
    empty.detected_after_ms = None;
    let html = empty.html();
    assert!(html.contains("id=\"verdict\"") && html.contains("data-tick=\"0ms\""));

    let mut old = report();
    for w in &mut old.workloads {
        w.steps.clear();
    }
    old.stranded.push(StrandedOutcome {
        name: "cache".into(),
        reason: "no capacity left".into(),
    });
    let html = old.html();
    assert!(lane(&html, "workload:db").contains("data-mark=\"rto\""));
    assert!(lane(&html, "workload:cache").contains("stranded: no capacity left"));

    let mut huge = report();
    huge.workloads[0].steps[0].end_ms = u64::MAX;
    huge.workloads[0].rto_ms = Some(u64::MAX);
    let _ = huge.html();
}

#[test]
fn a_comparison_shows_every_figure_and_which_way_it_went() {
    let now = report();
    let mut before = report();
    before.detected_after_ms = Some(2150);
    before.workloads[0].rto_ms = Some(1000);
    let html = now.html_compared(&Comparison::between(&before, &now));
    assert!(
        html.contains(r#"<tr data-figure="detected after" class="better">"#),
        "{html}"
    );
    assert!(
        html.contains(r#"<tr data-figure="db rto" class="worse">"#),
        "{html}"
    );
    assert!(html.contains("<td class=\"change\">+300ms</td>"), "{html}");
    assert!(!report().html().contains("id=\"compare\""));
}
