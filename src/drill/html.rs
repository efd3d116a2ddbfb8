//! The drill report as one self-contained HTML page: the verdict first, the figures,
//! then a timeline that shows where the time went (a lane per provider's condition, a
//! lane per workload with its steps coloured and the prober's outages under them, time
//! ticks and a legend), the event log, and optionally the change since an earlier drill.
//!
//! The geometry is computed here, in plain Rust; the askama template (checked at compile
//! time, escaping everything) only lays it out. The chart is inline SVG styled by the
//! page's own CSS: nothing is fetched, so the file can be mailed or archived by CI.
//!
//! Stable hooks for tests and scripts: `#verdict` (`data-verdict="met|missed"`),
//! `#timeline`, lanes as `<g data-lane="provider:NAME">` / `<g data-lane="workload:NAME">`,
//! step spans with `data-phase`, `data-target` and `data-outcome`, outages with
//! `data-outage`, `#figures`, `#events`, `#compare`.

use askama::Template;

use super::chart::{Chart, chart};
use super::compare::{Comparison, Trend};
use super::report::{
    DrillReport, WorkloadOutcome, conditions_from_timeline, fmt_ms, ms, phases_text,
};

/// The page for `report`, with the comparison section when one is given.
pub(super) fn render(report: &DrillReport, comparison: Option<&Comparison>) -> String {
    let page = Page::new(report, comparison);
    // Writing into a String cannot fail; a template value's Display never does either,
    // but a page that says so beats a panic.
    page.render()
        .unwrap_or_else(|e| format!("<!doctype html><p>the report could not be rendered: {e}</p>"))
}

#[derive(Template)]
#[template(path = "report.html")]
struct Page {
    lost: String,
    lost_providers: String,
    scenario: String,
    mode: String,
    started_at: String,
    detected: String,
    verdict: Verdict,
    rows: Vec<FigureRow>,
    stranded: Vec<(String, String)>,
    ttl_note: Option<String>,
    failback: Option<String>,
    any_rpo: bool,
    chart: Chart,
    legend: Vec<LegendGroup>,
    events: Vec<EventRow>,
    compare: Option<CompareView>,
}

struct Verdict {
    met: bool,
    headline: String,
    facts: Vec<String>,
    problems: Vec<String>,
}

struct FigureRow {
    name: String,
    met: bool,
    from: String,
    to: String,
    healthy: String,
    phases: String,
    rto: String,
    dns_ttl: String,
    downtime: String,
    rpo: String,
    objective: String,
    result: String,
}

struct EventRow {
    at: String,
    at_ms: u64,
    who: String,
    what: String,
}

struct CompareView {
    before_started_at: String,
    before_verdict: &'static str,
    now_verdict: &'static str,
    rows: Vec<CompareRow>,
}

struct CompareRow {
    label: String,
    before: String,
    now: String,
    change: String,
    trend: &'static str,
}

struct LegendGroup {
    title: &'static str,
    items: Vec<(&'static str, &'static str, &'static str)>,
}
impl Page {
    fn new(r: &DrillReport, comparison: Option<&Comparison>) -> Page {
        let conditions = if r.conditions.is_empty() {
            conditions_from_timeline(&r.timeline)
        } else {
            r.conditions.clone()
        };
        Page {
            lost: r.lost.clone(),
            lost_providers: r.lost_providers.join(", "),
            scenario: r.scenario.clone(),
            mode: r.mode.clone(),
            started_at: readable_time(&r.started_at),
            detected: ms(r.detected_after_ms),
            verdict: verdict(r),
            rows: r.workloads.iter().map(figure_row).collect(),
            stranded: r
                .stranded
                .iter()
                .map(|s| (s.name.clone(), s.reason.clone()))
                .collect(),
            ttl_note: r.ttl_note(),
            failback: r.failback.clone(),
            any_rpo: r.workloads.iter().any(|w| w.rpo_ms.is_some()),
            chart: chart(r, &conditions),
            legend: legend(),
            events: r
                .timeline
                .iter()
                .map(|e| EventRow {
                    at: fmt_ms(e.at_ms),
                    at_ms: e.at_ms,
                    who: e.workload.clone().unwrap_or_else(|| "drill".into()),
                    what: e.what.clone(),
                })
                .collect(),
            compare: comparison.map(compare_view),
        }
    }
}

fn verdict(r: &DrillReport) -> Verdict {
    let shadow = r.mode == "shadow";
    let total = r.workloads.len() + r.stranded.len();
    let ok = r.workloads.iter().filter(|w| w.met).count();
    let mut facts = vec![if shadow {
        format!(
            "{ok} of {total} workloads healthy at their target in time (shadow: no traffic moved)"
        )
    } else {
        format!("{ok} of {total} workloads cut over within their objective")
    }];
    facts.push(match r.detected_after_ms {
        Some(d) => format!("detected after {}", fmt_ms(d)),
        None => "never detected".to_owned(),
    });
    if let Some(f) = &r.failback {
        facts.push(format!("failback {f}"));
    }
    let mut problems: Vec<String> = r
        .workloads
        .iter()
        .filter(|w| !w.met)
        .map(|w| format!("{}: {}", w.name, w.problem.as_deref().unwrap_or("missed")))
        .collect();
    problems.extend(
        r.stranded
            .iter()
            .map(|s| format!("{}: stranded: {}", s.name, s.reason)),
    );
    Verdict {
        met: r.objectives_met,
        headline: if r.objectives_met {
            "Objectives met".into()
        } else {
            "Objectives missed".into()
        },
        facts,
        problems,
    }
}

fn figure_row(w: &WorkloadOutcome) -> FigureRow {
    FigureRow {
        name: w.name.clone(),
        met: w.met,
        from: w.from.clone().unwrap_or_else(|| "-".into()),
        to: w.to.clone().unwrap_or_else(|| "-".into()),
        healthy: ms(w.healthy_after_ms),
        phases: phases_text(&w.phases),
        rto: ms(w.rto_ms),
        dns_ttl: ms(w.dns_ttl_ms),
        downtime: ms(w.downtime_ms),
        rpo: ms(w.rpo_ms),
        objective: ms(w.rto_objective_ms),
        result: if w.met {
            "ok".into()
        } else {
            w.problem.clone().unwrap_or_else(|| "missed".into())
        },
    }
}

fn compare_view(c: &Comparison) -> CompareView {
    let verdict = |met: bool| if met { "met" } else { "missed" };
    CompareView {
        before_started_at: readable_time(&c.before_started_at),
        before_verdict: verdict(c.before_met),
        now_verdict: verdict(c.now_met),
        rows: c
            .rows
            .iter()
            .map(|r| CompareRow {
                label: r.label(),
                before: ms(r.before_ms),
                now: ms(r.now_ms),
                change: r.change(),
                trend: match r.trend() {
                    Trend::Better => "better",
                    Trend::Worse => "worse",
                    Trend::Same => "same",
                    Trend::Incomparable => "incomparable",
                },
            })
            .collect(),
    }
}

/// Legend entries: (CSS class of the swatch, name, what it means).
fn legend() -> Vec<LegendGroup> {
    vec![
        LegendGroup {
            title: "Workload steps",
            items: vec![
                ("phase-deploy", "deploy", "start the copy on the target"),
                (
                    "phase-power-on",
                    "power-on",
                    "part of deploy: a cold server booting (timed by the adapter)",
                ),
                (
                    "phase-wait-healthy",
                    "wait healthy",
                    "until the copy passes its health check",
                ),
                (
                    "phase-hooks",
                    "hooks",
                    "before/after-cutover hooks (e.g. promote a replica)",
                ),
                ("phase-cutover", "cutover", "traffic moved to the new copy"),
                ("phase-retire", "retire", "the old copy stopped"),
                (
                    "outcome-failed",
                    "failed attempt",
                    "retried, or the target given up",
                ),
                (
                    "outcome-orphaned",
                    "orphaned",
                    "source unreachable: retired when it returns",
                ),
            ],
        },
        LegendGroup {
            title: "Prober (public endpoint)",
            items: vec![
                ("prober-up", "up", "the prober's requests succeeded"),
                ("outage", "down", "the prober's requests failed"),
            ],
        },
        LegendGroup {
            title: "Provider condition",
            items: vec![
                ("cond-healthy", "healthy", "probes pass"),
                ("cond-degraded", "degraded", "answers, badly"),
                (
                    "cond-failing",
                    "failing",
                    "not answering, within the grace period",
                ),
                ("cond-unreachable", "unreachable", "not answering: left"),
                ("cond-suspended", "suspended", "account lost: left"),
                ("cond-noticed", "noticed", "the vendor gave notice"),
                ("cond-fenced", "fenced", "left by an operator or a drill"),
                ("cond-unknown", "not yet probed", ""),
            ],
        },
        LegendGroup {
            title: "Markers",
            items: vec![
                (
                    "mark-detected",
                    "detected",
                    "the controller decided to leave",
                ),
                (
                    "mark-rto",
                    "RTO",
                    "traffic on the new copy (with the DNS TTL, if any)",
                ),
                (
                    "mark-objective",
                    "objective",
                    "the workload's RTO objective",
                ),
            ],
        },
    ]
}

/// An RFC 3339 time to the second, in UTC (`2026-11-28 16:00:00 UTC`); other text as
/// it is, since an old or hand-edited report may hold anything there.
fn readable_time(text: &str) -> String {
    text.parse::<jiff::Timestamp>()
        .map(|t| t.strftime("%Y-%m-%d %H:%M:%S UTC").to_string())
        .unwrap_or_else(|_| text.to_owned())
}
#[cfg(test)]
#[path = "html_tests.rs"]
mod tests;
