//! What a drill measured, and the four ways it is shown: a terminal summary, JSON (for
//! scripts), JUnit XML (for pipelines: one test case per workload objective) and a
//! self-contained HTML page with a timeline chart.
//!
//! Building the report is pure: the drill collects timings, this module only renders.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

/// The outcome of one drill.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DrillReport {
    /// The fault injected (`account-suspended`, `credentials-revoked`, `unreachable`).
    pub scenario: String,
    /// `live` or `shadow`.
    pub mode: String,
    /// What was fenced: a vendor, `vendor/account` or provider name.
    pub lost: String,
    /// The providers that name covers.
    pub lost_providers: Vec<String>,
    /// Wall-clock start (RFC 3339).
    pub started_at: String,
    /// From fault injection to the controller's decision to leave, in milliseconds.
    pub detected_after_ms: Option<u64>,
    /// Every workload met its objective and nothing was stranded.
    pub objectives_met: bool,
    /// One entry per workload that had to move.
    pub workloads: Vec<WorkloadOutcome>,
    /// Workloads with nowhere to go, with the reason.
    pub stranded: Vec<StrandedOutcome>,
    /// Whether the failback at the end of a live drill succeeded, and what it said.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failback: Option<String>,
    /// Everything that happened, in order, for the timeline chart.
    pub timeline: Vec<TimelineEvent>,
}

/// What happened to one workload.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorkloadOutcome {
    /// The workload.
    pub name: String,
    /// The provider it left.
    pub from: Option<String>,
    /// The provider it landed on (`None` if it never got there).
    pub to: Option<String>,
    /// The new copy passed its health check.
    pub healthy: bool,
    /// From fault injection until the new copy was healthy.
    pub healthy_after_ms: Option<u64>,
    /// From fault injection until traffic pointed at the new copy (RTO), including the
    /// DNS TTL when the cutover is DNS (clients may hold the old answer that long).
    pub rto_ms: Option<u64>,
    /// Time the independent prober saw the public endpoint failing.
    pub downtime_ms: Option<u64>,
    /// The outage windows the prober saw, relative to fault injection.
    pub outages: Vec<Window>,
    /// The workload's RTO objective, if it has one.
    pub rto_objective_ms: Option<u64>,
    /// The DNS TTL included in `rto_ms`, when the cutover is DNS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dns_ttl_ms: Option<u64>,
    /// Parts of `healthy_after_ms` the target's adapter timed itself, e.g. `power-on`:
    /// the wait for a cold-standby server, shown apart from the workload's own start.
    #[serde(default)]
    pub phases: Vec<Phase>,
    /// Met its objective (healthy, cut over, within `rto`).
    pub met: bool,
    /// Why not, for humans.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
}

/// One timed phase of a workload's deploy (see `Provider::timings`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Phase {
    /// The phase (`power-on`).
    pub name: String,
    /// How long it took, in milliseconds.
    pub ms: u64,
}

impl From<&lifeboat_provider::Timing> for Phase {
    fn from(t: &lifeboat_provider::Timing) -> Phase {
        Phase {
            name: t.phase.clone(),
            ms: u64::try_from(t.duration.as_millis()).unwrap_or(u64::MAX),
        }
    }
}

/// The phases as one short text (`power-on 6.2s`), `-` when there are none.
fn phases_text(phases: &[Phase]) -> String {
    if phases.is_empty() {
        return "-".to_owned();
    }
    phases
        .iter()
        .map(|p| format!("{} {}", p.name, ms(Some(p.ms))))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A workload that could not move.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StrandedOutcome {
    /// The workload.
    pub name: String,
    /// Why.
    pub reason: String,
}

/// A span of time relative to fault injection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Window {
    /// Start, in ms after fault injection (negative values are clamped to 0).
    pub start_ms: u64,
    /// End, in ms after fault injection.
    pub end_ms: u64,
}

/// One point on the timeline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TimelineEvent {
    /// Milliseconds after fault injection.
    pub at_ms: u64,
    /// The workload, or `None` for drill-wide events (fault injected, detected).
    pub workload: Option<String>,
    /// What happened.
    pub what: String,
}

impl DrillReport {
    /// The exit code a CLI should return: 0 when every objective was met.
    pub fn exit_code(&self) -> i32 {
        if self.objectives_met { 0 } else { 1 }
    }

    /// A short, human summary for the terminal.
    pub fn summary(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "drill: lost {} ({}) scenario={} mode={}",
            self.lost,
            self.lost_providers.join(", "),
            self.scenario,
            self.mode
        );
        let _ = writeln!(out, "  detected after: {}", ms(self.detected_after_ms));
        let _ = writeln!(
            out,
            "  {:<16} {:<14} {:<14} {:>10} {:>10} {:>10} {:>9}  result",
            "workload", "from", "to", "healthy", "rto", "downtime", "objective"
        );
        for w in &self.workloads {
            let _ = writeln!(
                out,
                "  {:<16} {:<14} {:<14} {:>10} {:>10} {:>10} {:>9}  {}",
                w.name,
                w.from.as_deref().unwrap_or("-"),
                w.to.as_deref().unwrap_or("-"),
                ms(w.healthy_after_ms),
                ms(w.rto_ms),
                ms(w.downtime_ms),
                ms(w.rto_objective_ms),
                match (&w.met, &w.problem) {
                    (true, _) => "ok".to_owned(),
                    (false, Some(p)) => format!("MISSED: {p}"),
                    (false, None) => "MISSED".to_owned(),
                }
            );
            if !w.phases.is_empty() {
                let _ = writeln!(out, "  {:<16} of healthy: {}", "", phases_text(&w.phases));
            }
        }
        if let Some(note) = self.ttl_note() {
            let _ = writeln!(out, "  {note}");
        }
        for s in &self.stranded {
            let _ = writeln!(out, "  STRANDED {}: {}", s.name, s.reason);
        }
        if let Some(failback) = &self.failback {
            let _ = writeln!(out, "  failback: {failback}");
        }
        let _ = writeln!(
            out,
            "  objectives: {}",
            if self.objectives_met { "met" } else { "MISSED" }
        );
        out
    }

    /// The DNS TTLs inside the RTOs, grouped by value (`rto includes the DNS TTL: 5000ms
    /// (db, api)`), since a reader would otherwise take the RTO for the moment of the
    /// switch. `None` when no workload was switched by DNS.
    pub fn ttl_note(&self) -> Option<String> {
        let mut by_ttl: BTreeMap<u64, Vec<&str>> = BTreeMap::new();
        for w in &self.workloads {
            if let Some(ttl) = w.dns_ttl_ms {
                by_ttl.entry(ttl).or_default().push(&w.name);
            }
        }
        if by_ttl.is_empty() {
            return None;
        }
        let parts: Vec<String> = by_ttl
            .iter()
            .map(|(ttl, names)| format!("{} ({})", ms(Some(*ttl)), names.join(", ")))
            .collect();
        Some(format!(
            "rto includes the DNS TTL that clients may cache the old address for: {}",
            parts.join("; ")
        ))
    }

    /// JUnit XML: one test suite for the drill, one test case per workload (its RTO
    /// objective) plus one per stranded workload.
    pub fn junit(&self) -> String {
        use quick_junit::{NonSuccessKind, Report, TestCase, TestCaseStatus, TestSuite};
        let mut suite = TestSuite::new(format!("drill {} {}", self.lost, self.scenario));
        for w in &self.workloads {
            let status = if w.met {
                TestCaseStatus::success()
            } else {
                let mut s = TestCaseStatus::non_success(NonSuccessKind::Failure);
                s.set_message(
                    w.problem
                        .clone()
                        .unwrap_or_else(|| "objective missed".into()),
                );
                s
            };
            let mut case = TestCase::new(format!("{} rto", w.name), status);
            case.set_classname("lifeboat.drill");
            if let Some(rto) = w.rto_ms {
                case.set_time(std::time::Duration::from_millis(rto));
            }
            suite.add_test_case(case);
        }
        for s in &self.stranded {
            let mut status = TestCaseStatus::non_success(NonSuccessKind::Failure);
            status.set_message(format!("stranded: {}", s.reason));
            let mut case = TestCase::new(format!("{} placement", s.name), status);
            case.set_classname("lifeboat.drill");
            suite.add_test_case(case);
        }
        let mut report = Report::new("lifeboat");
        report.add_test_suite(suite);
        report
            .to_string()
            .unwrap_or_else(|e| format!("<!-- junit serialisation failed: {e} -->"))
    }

    /// A self-contained HTML page (no scripts, no external assets) with the summary table
    /// and an SVG timeline: per workload, the outage windows in red and the moments it
    /// became healthy and was cut over.
    pub fn html(&self) -> String {
        let end_ms = self
            .timeline
            .iter()
            .map(|e| e.at_ms)
            .chain(
                self.workloads
                    .iter()
                    .flat_map(|w| w.outages.iter().map(|o| o.end_ms)),
            )
            .max()
            .unwrap_or(0)
            .max(1000);
        let (left, width, row) = (160.0, 760.0, 28.0);
        let x = |t: u64| left + width * t as f64 / end_ms as f64;
        let mut svg = String::new();
        let height = row * (self.workloads.len() as f64 + 2.0);
        let _ = write!(
            svg,
            r#"<svg xmlns="http://www.w3.org/2000/svg" width="{}" height="{height}" font-family="sans-serif" font-size="12">"#,
            left + width + 20.0
        );
        if let Some(d) = self.detected_after_ms {
            let _ = write!(
                svg,
                r##"<line x1="{0}" x2="{0}" y1="0" y2="{height}" stroke="#888" stroke-dasharray="4"/><text x="{0}" y="12" fill="#555">detected</text>"##,
                x(d)
            );
        }
        for (i, w) in self.workloads.iter().enumerate() {
            let y = row * (i as f64 + 1.0);
            let _ = write!(
                svg,
                r#"<text x="4" y="{}">{}</text>"#,
                y + 16.0,
                escape(&w.name)
            );
            let _ = write!(
                svg,
                r##"<rect x="{left}" y="{}" width="{width}" height="16" fill="#dfd"/>"##,
                y + 4.0
            );
            for o in &w.outages {
                let _ = write!(
                    svg,
                    r##"<rect x="{}" y="{}" width="{}" height="16" fill="#e44"><title>down {}–{} ms</title></rect>"##,
                    x(o.start_ms),
                    y + 4.0,
                    (x(o.end_ms) - x(o.start_ms)).max(1.0),
                    o.start_ms,
                    o.end_ms
                );
            }
            let rto_label = if w.dns_ttl_ms.is_some() {
                "cut over + DNS TTL"
            } else {
                "cut over"
            };
            for (at, label, colour) in [
                (w.healthy_after_ms, "healthy", "#26a"),
                (w.rto_ms, rto_label, "#000"),
            ] {
                if let Some(at) = at {
                    let _ = write!(
                        svg,
                        r#"<line x1="{0}" x2="{0}" y1="{1}" y2="{2}" stroke="{colour}" stroke-width="2"><title>{label} at {at} ms</title></line>"#,
                        x(at),
                        y + 2.0,
                        y + 22.0
                    );
                }
            }
        }
        let _ = write!(
            svg,
            r#"<text x="{left}" y="{}">0 ms</text><text x="{}" y="{}" text-anchor="end">{end_ms} ms</text></svg>"#,
            height - 4.0,
            left + width,
            height - 4.0
        );

        let mut rows = String::new();
        for w in &self.workloads {
            let _ = write!(
                rows,
                "<tr class=\"{}\"><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                if w.met { "ok" } else { "missed" },
                escape(&w.name),
                escape(w.from.as_deref().unwrap_or("-")),
                escape(w.to.as_deref().unwrap_or("-")),
                ms(w.healthy_after_ms),
                escape(&phases_text(&w.phases)),
                ms(w.rto_ms),
                ms(w.dns_ttl_ms),
                ms(w.downtime_ms),
                ms(w.rto_objective_ms),
                if w.met {
                    "ok".to_owned()
                } else {
                    escape(w.problem.as_deref().unwrap_or("missed"))
                }
            );
        }
        for s in &self.stranded {
            let _ = write!(
                rows,
                "<tr class=\"missed\"><td>{}</td><td colspan=\"9\">stranded: {}</td></tr>",
                escape(&s.name),
                escape(&s.reason)
            );
        }
        format!(
            r#"<!doctype html><html><head><meta charset="utf-8"><title>lifeboat drill: {lost}</title>
<style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse}}td,th{{border:1px solid #ccc;padding:4px 8px;text-align:right}}td:first-child{{text-align:left}}tr.missed{{background:#fdd}}</style></head>
<body><h1>Drill: lost {lost}</h1><p>scenario <b>{scenario}</b>, mode <b>{mode}</b>, started {started}; detected after <b>{detected}</b>; objectives <b>{met}</b></p>
<table><tr><th>workload</th><th>from</th><th>to</th><th>healthy</th><th>of which</th><th>RTO</th><th>DNS TTL (in RTO)</th><th>downtime</th><th>objective</th><th>result</th></tr>{rows}</table>
<h2>Timeline</h2>{svg}</body></html>
"#,
            lost = escape(&self.lost),
            scenario = escape(&self.scenario),
            mode = escape(&self.mode),
            started = escape(&self.started_at),
            detected = ms(self.detected_after_ms),
            met = if self.objectives_met { "met" } else { "MISSED" },
        )
    }
}

fn ms(value: Option<u64>) -> String {
    value.map_or_else(|| "-".to_owned(), fmt_ms)
}

/// Milliseconds the way the drill shows them: `850ms`, or `12.3s` from ten seconds on.
pub(crate) fn fmt_ms(ms: u64) -> String {
    if ms >= 10_000 {
        format!("{:.1}s", ms as f64 / 1000.0)
    } else {
        format!("{ms}ms")
    }
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
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
        }
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
        assert!(html.contains("api&lt;1&gt;"));
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
}
