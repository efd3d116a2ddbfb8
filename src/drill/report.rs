//! What a drill measured, and the four ways it is shown: a terminal summary, JSON (for
//! scripts), JUnit XML (for pipelines: one test case per workload objective) and a
//! self-contained HTML page with a timeline chart.
//!
//! Building the report is pure: the drill collects timings, this module only renders.
//! The HTML page lives in [`super::html`], the comparison of two drills in
//! [`super::compare`].
//!
//! Reports are read back (`lifeboat report DIR`), also ones an older lifeboat wrote: every
//! field added later has a serde default.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use super::compare::Comparison;
use crate::model::Condition;
use crate::table;

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
    #[serde(default)]
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
    #[serde(default)]
    pub stranded: Vec<StrandedOutcome>,
    /// Whether the failback at the end of a live drill succeeded, and what it said.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failback: Option<String>,
    /// Everything that happened, in order, for the timeline chart.
    #[serde(default)]
    pub timeline: Vec<TimelineEvent>,
    /// Each provider's condition as the controller saw it change, in order: the
    /// provider lanes of the timeline. Empty in reports written before it was kept (the
    /// page then reads the changes from `timeline`).
    #[serde(default)]
    pub conditions: Vec<ConditionChange>,
    /// What each dataset's move kept and lost, measured by the drill's writer.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub data: Vec<DataOutcome>,
}

/// What one dataset's move kept and lost: the drill's writer committed numbered rows at
/// the primary throughout, and the new primary was asked which it has.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DataOutcome {
    /// The workload whose data it is.
    pub workload: String,
    /// The replication method.
    pub method: String,
    /// Whether commits waited for the standby.
    pub synchronous: bool,
    /// The last row the old primary acknowledged before the move.
    pub last_acknowledged: u64,
    /// How many of the acknowledged rows the new primary has (`None`: it could not be
    /// asked).
    pub rows_present: Option<u64>,
    /// Acknowledged rows the new primary lacks.
    pub rows_lost: u64,
    /// The recovery point: from the last row kept to the last acknowledged one.
    pub rpo_ms: u64,
    /// The `rpo` objective.
    pub rpo_objective_ms: u64,
    /// Commits refused while the primary moved (tried again, not lost).
    pub refused: u64,
    /// How many of the acknowledged rows the primary has after the failback (every one
    /// the new primary had should be there); `None` without a failback.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after_failback: Option<u64>,
    /// From the fault until a standby streamed again (at the next vendor); `None` when
    /// none could while the lost providers were gone (see `unprotected`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unprotected_ms: Option<u64>,
    /// Why the dataset stayed unprotected after the move, when it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unprotected: Option<String>,
    /// A snapshot dataset: the last snapshot shipped before the fault, the one its
    /// new copy was restored from when the old primary no longer answered (the rows
    /// fields are then zero: no writer measures a method lifeboat knows only by hooks).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapshot: Option<String>,
    /// Within the objective, and nothing missing after the failback.
    pub met: bool,
    /// Why not, for humans.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
}

impl DataOutcome {
    /// One line: `data db: 1,204 rows acknowledged, 0 lost, rpo 0ms (objective 5000ms)`.
    pub fn summary(&self) -> String {
        if let Some(id) = &self.snapshot {
            let verdict = match (&self.met, &self.problem) {
                (true, _) => "ok".to_owned(),
                (false, Some(p)) => format!("MISSED: {p}"),
                (false, None) => "MISSED".to_owned(),
            };
            return format!(
                "data {}: snapshot {id}, taken {} before the fault, rpo {} (objective {}) {verdict}",
                self.workload,
                ms(Some(self.rpo_ms)),
                ms(Some(self.rpo_ms)),
                ms(Some(self.rpo_objective_ms)),
            );
        }
        let mut line = format!(
            "data {}: {} rows acknowledged, {} lost, rpo {} (objective {}, {})",
            self.workload,
            self.last_acknowledged,
            self.rows_lost,
            ms(Some(self.rpo_ms)),
            ms(Some(self.rpo_objective_ms)),
            if self.synchronous {
                "synchronous"
            } else {
                "asynchronous"
            },
        );
        match (self.unprotected_ms, &self.unprotected) {
            (Some(ms), _) => {
                line.push_str(&format!("; protected again after {}", self::ms(Some(ms))))
            }
            (None, Some(why)) => line.push_str(&format!("; unprotected: {why}")),
            (None, None) => {}
        }
        if let Some(rows) = self.after_failback {
            line.push_str(&format!("; {rows} rows at the primary after the failback"));
        }
        match (&self.met, &self.problem) {
            (true, _) => line.push_str(" ok"),
            (false, Some(p)) => line.push_str(&format!(" MISSED: {p}")),
            (false, None) => line.push_str(" MISSED"),
        }
        line
    }
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
    #[serde(default)]
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
    /// The steps of the move as the executor journaled them, one span per attempt, in
    /// order: where the time between the fault and the cutover went. Empty in reports
    /// written before spans were kept.
    #[serde(default)]
    pub steps: Vec<StepSpan>,
    /// The recovery point: how much recent data the move lost, as the workload's data
    /// hook reported it. `None` when nothing reported one (never guessed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rpo_ms: Option<u64>,
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
pub(crate) fn phases_text(phases: &[Phase]) -> String {
    if phases.is_empty() {
        return "-".to_owned();
    }
    phases
        .iter()
        .map(|p| format!("{} {}", p.name, ms(Some(p.ms))))
        .collect::<Vec<_>>()
        .join(", ")
}

/// One attempt of one step of a move, relative to fault injection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepSpan {
    /// The step: `deploy`, `wait-healthy`, `before-cutover`, `cutover`, `after-cutover`
    /// or `retire` (see [`step_phase`]).
    pub phase: String,
    /// The provider the move was working on.
    pub target: String,
    /// When the attempt started, in ms after fault injection.
    pub start_ms: u64,
    /// When it ended (the drill's last moment when it never did).
    pub end_ms: u64,
    /// How it ended.
    pub outcome: SpanOutcome,
}

/// How one step attempt ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SpanOutcome {
    /// It succeeded.
    Done,
    /// It failed (another attempt, or another target, may follow).
    Failed,
    /// The old copy could not be retired (its vendor is gone): recorded as an orphan
    /// and retired when it answers again. Expected when a vendor drops you.
    Orphaned,
    /// No end was seen before the drill stopped looking.
    Unfinished,
}

/// The report's name for a step (kebab-case, as the page's `data-phase` shows it).
pub fn step_phase(step: crate::model::Step) -> &'static str {
    use crate::model::Step;
    match step {
        Step::Deploy => "deploy",
        Step::WaitHealthy => "wait-healthy",
        Step::BeforeCutover => "before-cutover",
        Step::Cutover => "cutover",
        Step::AfterCutover => "after-cutover",
        Step::RetireSource => "retire",
    }
}

/// A provider's condition changing, as the controller derived it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConditionChange {
    /// Milliseconds after fault injection.
    pub at_ms: u64,
    /// The provider.
    pub provider: String,
    /// The condition's kind: `healthy`, `degraded`, `failing`, `unreachable`,
    /// `suspended`, `noticed` or `fenced`.
    pub condition: String,
    /// The whole description (`suspended (account suspended) since ...`).
    pub detail: String,
}

/// The condition changes among `timeline`'s drill-wide events (`acme-eu: suspended
/// (...)`), in order. For reports that carry no structured `conditions`, and for the
/// drill itself, which logs the changes as timeline lines.
pub fn conditions_from_timeline(timeline: &[TimelineEvent]) -> Vec<ConditionChange> {
    timeline
        .iter()
        .filter(|e| e.workload.is_none())
        .filter_map(|e| {
            let (provider, detail) = e.what.split_once(": ")?;
            if provider.is_empty() || provider.contains(char::is_whitespace) {
                return None;
            }
            let kind = detail
                .split(|c: char| !c.is_ascii_alphabetic())
                .next()
                .filter(|k| Condition::KINDS.contains(k))?;
            Some(ConditionChange {
                at_ms: e.at_ms,
                provider: provider.to_owned(),
                condition: kind.to_owned(),
                detail: detail.to_owned(),
            })
        })
        .collect()
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

/// Why a saved report could not be read back; every message names the file.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The file is missing or unreadable.
    #[error("{}: cannot read it: {source} (is {} a folder written by `lifeboat drill --report`?)", path.display(), path.parent().map_or_else(|| ".".into(), |p| p.display().to_string()))]
    Read {
        /// The file.
        path: std::path::PathBuf,
        /// What the file system said.
        source: std::io::Error,
    },
    /// The file is not a drill report (broken JSON, or a field of the wrong type).
    #[error("{}: not a drill report: {source}", path.display())]
    Parse {
        /// The file.
        path: std::path::PathBuf,
        /// Where and why parsing failed (line and column).
        source: serde_json::Error,
    },
}

impl DrillReport {
    /// The file name a drill writes its report under, in its `--report` folder.
    pub const FILE: &'static str = "report.json";

    /// Reads `dir/report.json` back, also one an older lifeboat wrote (fields added
    /// since have defaults).
    pub fn load(dir: &std::path::Path) -> Result<DrillReport, LoadError> {
        let path = dir.join(Self::FILE);
        let text = std::fs::read_to_string(&path).map_err(|source| LoadError::Read {
            path: path.clone(),
            source,
        })?;
        serde_json::from_str(&text).map_err(|source| LoadError::Parse { path, source })
    }

    /// The exit code a CLI should return: 0 when every objective was met.
    pub fn exit_code(&self) -> i32 {
        if self.objectives_met { 0 } else { 1 }
    }

    /// A short, human summary for the terminal: the figures of every workload in an
    /// aligned table, then the verdict.
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
        if !self.workloads.is_empty() {
            out.push_str(&table::indented(&self.figures_table(), "  "));
        }
        if let Some(note) = self.ttl_note() {
            let _ = writeln!(out, "  {note}");
        }
        for s in &self.stranded {
            let _ = writeln!(out, "  STRANDED {}: {}", s.name, s.reason);
        }
        for d in &self.data {
            let _ = writeln!(out, "  {}", d.summary());
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

    /// One row per workload. The `of which` (adapter-timed phases) and `rpo` columns
    /// appear only when some workload has a figure for them.
    fn figures_table(&self) -> comfy_table::Table {
        let with_phases = self.workloads.iter().any(|w| !w.phases.is_empty());
        let with_rpo = self.workloads.iter().any(|w| w.rpo_ms.is_some());
        let mut header = vec!["workload", "from", "to", "healthy"];
        if with_phases {
            header.push("of which");
        }
        header.extend(["rto", "downtime"]);
        if with_rpo {
            header.push("rpo");
        }
        header.extend(["objective", "result"]);
        let right: Vec<usize> = (3..header.len() - 1)
            .filter(|&i| header[i] != "of which")
            .collect();
        let mut t = table::table(&header, &right);
        for w in &self.workloads {
            let mut row = vec![
                w.name.clone(),
                w.from.clone().unwrap_or_else(|| "-".into()),
                w.to.clone().unwrap_or_else(|| "-".into()),
                ms(w.healthy_after_ms),
            ];
            if with_phases {
                row.push(phases_text(&w.phases));
            }
            row.extend([ms(w.rto_ms), ms(w.downtime_ms)]);
            if with_rpo {
                row.push(ms(w.rpo_ms));
            }
            row.push(ms(w.rto_objective_ms));
            row.push(match (&w.met, &w.problem) {
                (true, _) => "ok".to_owned(),
                (false, Some(p)) => format!("MISSED: {p}"),
                (false, None) => "MISSED".to_owned(),
            });
            t.add_row(row);
        }
        t
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
        for d in &self.data {
            let status = if d.met {
                TestCaseStatus::success()
            } else {
                let mut s = TestCaseStatus::non_success(NonSuccessKind::Failure);
                s.set_message(d.summary());
                s
            };
            let mut case = TestCase::new(format!("{} rpo", d.workload), status);
            case.set_classname("lifeboat.drill");
            case.set_time(std::time::Duration::from_millis(d.rpo_ms));
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

    /// A self-contained HTML page (no scripts, no fetched assets): the verdict, the
    /// figures, an SVG timeline with a lane per provider's condition and per workload's
    /// steps and outages, and the event log.
    pub fn html(&self) -> String {
        super::html::render(self, None)
    }

    /// The same page with a section on what changed since an earlier drill.
    pub fn html_compared(&self, comparison: &Comparison) -> String {
        super::html::render(self, Some(comparison))
    }
}

/// A figure, or `-` when there is none.
pub(crate) fn ms(value: Option<u64>) -> String {
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

#[cfg(test)]
#[path = "report_tests.rs"]
mod tests;
