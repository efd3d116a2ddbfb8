//! What changed between two drills of the same setup: every figure of the earlier
//! report next to the later one's, so a team sees whether a change (a smaller image, a
//! shorter TTL, a warm standby) made the failover faster or slower. Pure.

use serde::Serialize;

use super::report::{DrillReport, WorkloadOutcome, fmt_ms, ms};
use crate::table;

/// Reads one figure of a workload.
type Figure = fn(&WorkloadOutcome) -> Option<u64>;

/// Every figure of two reports, side by side.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Comparison {
    /// When the earlier drill started.
    pub before_started_at: String,
    /// Whether the earlier drill met its objectives.
    pub before_met: bool,
    /// Whether the later one did.
    pub now_met: bool,
    /// One row per figure, drill-wide first, then per workload in the later report's
    /// order (workloads only in the earlier report last).
    pub rows: Vec<FigureChange>,
}

/// One figure before and now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FigureChange {
    /// The workload, or `None` for a drill-wide figure.
    pub workload: Option<String>,
    /// The figure: `detected after`, `healthy`, `rto`, `downtime`, `rpo`.
    pub figure: &'static str,
    /// In the earlier drill, in ms (`None`: not measured, or no such workload).
    pub before_ms: Option<u64>,
    /// In this drill, in ms.
    pub now_ms: Option<u64>,
}

/// Whether a figure got better: every figure is a duration, so shorter is better.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Trend {
    /// Shorter now.
    Better,
    /// Longer now.
    Worse,
    /// The same.
    Same,
    /// Measured in one drill only.
    Incomparable,
}

impl FigureChange {
    /// Which way the figure moved.
    pub fn trend(&self) -> Trend {
        match (self.before_ms, self.now_ms) {
            (Some(b), Some(n)) if n < b => Trend::Better,
            (Some(b), Some(n)) if n > b => Trend::Worse,
            (Some(_), Some(_)) => Trend::Same,
            _ => Trend::Incomparable,
        }
    }

    /// The change as text: `+120ms`, `-1.5s`, `±0`, `new`, `gone`, or `-` when neither
    /// drill measured it.
    pub fn change(&self) -> String {
        match (self.before_ms, self.now_ms) {
            (Some(b), Some(n)) if n > b => format!("+{}", fmt_ms(n - b)),
            (Some(b), Some(n)) if b > n => format!("-{}", fmt_ms(b - n)),
            (Some(_), Some(_)) => "±0".to_owned(),
            (None, Some(_)) => "new".to_owned(),
            (Some(_), None) => "gone".to_owned(),
            (None, None) => "-".to_owned(),
        }
    }

    /// What the row is about: `detected after`, or `api rto`.
    pub fn label(&self) -> String {
        match &self.workload {
            Some(w) => format!("{w} {}", self.figure),
            None => self.figure.to_owned(),
        }
    }
}

impl Comparison {
    /// The figures of `before` (an earlier drill) and `now`, row by row.
    pub fn between(before: &DrillReport, now: &DrillReport) -> Comparison {
        let mut rows = vec![FigureChange {
            workload: None,
            figure: "detected after",
            before_ms: before.detected_after_ms,
            now_ms: now.detected_after_ms,
        }];
        let find = |r: &DrillReport, name: &str| -> Option<WorkloadOutcome> {
            r.workloads.iter().find(|w| w.name == name).cloned()
        };
        let mut names: Vec<&str> = now.workloads.iter().map(|w| w.name.as_str()).collect();
        for w in &before.workloads {
            if !names.contains(&w.name.as_str()) {
                names.push(&w.name);
            }
        }
        for name in names {
            let (b, n) = (find(before, name), find(now, name));
            let figures: [(&'static str, Figure); 4] = [
                ("healthy", |w| w.healthy_after_ms),
                ("rto", |w| w.rto_ms),
                ("downtime", |w| w.downtime_ms),
                ("rpo", |w| w.rpo_ms),
            ];
            for (figure, get) in figures {
                let (before_ms, now_ms) = (b.as_ref().and_then(get), n.as_ref().and_then(get));
                // An RPO nobody reported in either drill is no figure worth a row.
                if figure == "rpo" && before_ms.is_none() && now_ms.is_none() {
                    continue;
                }
                rows.push(FigureChange {
                    workload: Some(name.to_owned()),
                    figure,
                    before_ms,
                    now_ms,
                });
            }
        }
        Comparison {
            before_started_at: before.started_at.clone(),
            before_met: before.objectives_met,
            now_met: now.objectives_met,
            rows,
        }
    }

    /// The comparison for the terminal: an aligned table and the verdicts.
    pub fn text(&self) -> String {
        let mut t = table::table(&["figure", "before", "now", "change"], &[1, 2, 3]);
        for r in &self.rows {
            t.add_row(vec![r.label(), ms(r.before_ms), ms(r.now_ms), r.change()]);
        }
        let verdict = |met: bool| if met { "met" } else { "MISSED" };
        format!(
            "since the drill of {}:\n{}  objectives: {} before, {} now\n",
            self.before_started_at,
            table::indented(&t, "  "),
            verdict(self.before_met),
            verdict(self.now_met)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(detected: Option<u64>, workloads: &[(&str, Option<u64>)]) -> DrillReport {
        let json = serde_json::json!({
            "scenario": "account-suspended", "mode": "live", "lost": "acme",
            "started_at": "2026-11-28T16:00:00Z", "detected_after_ms": detected,
            "objectives_met": true,
            "workloads": workloads.iter().map(|(name, rto)| serde_json::json!({
                "name": name, "from": "acme-eu", "to": "metal-1", "healthy": true,
                "healthy_after_ms": rto.map(|r| r.saturating_sub(100)), "rto_ms": rto,
                "downtime_ms": 900, "rto_objective_ms": null, "met": true,
            })).collect::<Vec<_>>(),
        });
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn every_figure_is_compared_and_shorter_is_better() {
        let before = report(Some(1200), &[("db", Some(3000)), ("old", Some(10))]);
        let now = report(Some(1000), &[("db", Some(3500)), ("api", Some(2000))]);
        let c = Comparison::between(&before, &now);
        let row = |label: &str| c.rows.iter().find(|r| r.label() == label).unwrap();
        assert_eq!(row("detected after").change(), "-200ms");
        assert_eq!(row("detected after").trend(), Trend::Better);
        assert_eq!(row("db rto").change(), "+500ms");
        assert_eq!(row("db rto").trend(), Trend::Worse);
        assert_eq!(row("db downtime").change(), "±0");
        assert_eq!(row("api rto").change(), "new");
        assert_eq!(row("old rto").change(), "gone");
        assert!(c.rows.iter().all(|r| r.figure != "rpo"), "no RPO reported");
        let text = c.text();
        assert!(text.contains("db rto") && text.contains("+500ms"), "{text}");
        assert!(
            text.starts_with("since the drill of 2026-11-28T16:00:00Z"),
            "{text}"
        );
    }

    #[test]
    fn two_empty_reports_compare_without_panicking() {
        let c = Comparison::between(&report(None, &[]), &report(None, &[]));
        assert_eq!(c.rows.len(), 1);
        assert_eq!(c.rows[0].change(), "-");
    }
}
