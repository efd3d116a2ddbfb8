//! The timeline of the drill report, as geometry for the page's inline SVG: where each
//! lane sits, and where each step, condition and outage starts and ends on the time axis.
//! Pure: the page template only draws what this computes.

use super::report::{ConditionChange, DrillReport, SpanOutcome, WorkloadOutcome, fmt_ms};

/// The SVG timeline, in the coordinates of its `viewBox`.
pub(super) struct Chart {
    pub(super) width: f64,
    pub(super) height: f64,
    pub(super) x0: f64,
    pub(super) x1: f64,
    pub(super) top: f64,
    pub(super) bottom: f64,
    pub(super) ticks: Vec<Tick>,
    pub(super) detected: Option<Tick>,
    pub(super) sections: Vec<(f64, &'static str)>,
    pub(super) lanes: Vec<Lane>,
}

pub(super) struct Tick {
    pub(super) x: f64,
    pub(super) label: String,
}

pub(super) struct Lane {
    pub(super) id: String,
    pub(super) kind: &'static str,
    pub(super) name: String,
    pub(super) note: String,
    pub(super) y: f64,
    pub(super) height: f64,
    pub(super) bars: Vec<Bar>,
    pub(super) marks: Vec<Mark>,
}

/// A rectangle on a lane: a step attempt, a condition, a prober window.
pub(super) struct Bar {
    pub(super) x: f64,
    pub(super) y: f64,
    pub(super) w: f64,
    pub(super) h: f64,
    pub(super) class: String,
    pub(super) title: String,
    pub(super) phase: Option<String>,
    pub(super) target: Option<String>,
    pub(super) outcome: Option<&'static str>,
    pub(super) condition: Option<String>,
    pub(super) outage: bool,
    /// Text drawn inside the bar, when it is wide enough to hold it.
    pub(super) label: Option<String>,
}

/// A vertical line on a lane: the cutover (RTO), the objective, the healthy moment.
pub(super) struct Mark {
    pub(super) x: f64,
    pub(super) y1: f64,
    pub(super) y2: f64,
    pub(super) kind: &'static str,
    pub(super) title: String,
}

const WIDTH: f64 = 1320.0;
const X0: f64 = 210.0;
const X1: f64 = WIDTH - 30.0;
const TOP: f64 = 46.0;
const SECTION: f64 = 26.0;
const PROVIDER_LANE: f64 = 26.0;
const WORKLOAD_LANE: f64 = 46.0;
/// Narrower spans would vanish on a long drill; every step stays visible.
const MIN_BAR: f64 = 3.0;

/// One decimal is finer than a pixel; fewer digits keep the page small.
fn px(v: f64) -> f64 {
    (v * 10.0).round() / 10.0
}

/// A tick step of 1, 2 or 5 × 10ⁿ ms giving at most ten ticks up to `max`.
fn tick_step(max: u64) -> u64 {
    let mut unit = 1u64;
    loop {
        for f in [1, 2, 5] {
            let step = unit.saturating_mul(f);
            if max / step <= 10 || step == u64::MAX {
                return step.max(1);
            }
        }
        unit = unit.saturating_mul(10);
    }
}

fn tick_label(t: u64, step: u64, end: u64) -> String {
    match (end <= 1000, step.is_multiple_of(1000)) {
        (true, _) => format!("{t}ms"),
        (false, true) => format!("{}s", t / 1000),
        (false, false) => format!("{:.1}s", t as f64 / 1000.0),
    }
}

/// The last moment the chart shows: everything recorded, rounded up to a tick.
fn chart_end(r: &DrillReport, conditions: &[ConditionChange]) -> (u64, u64) {
    let latest = r
        .timeline
        .iter()
        .map(|e| e.at_ms)
        .chain(conditions.iter().map(|c| c.at_ms))
        .chain(r.detected_after_ms)
        .chain(r.workloads.iter().flat_map(|w| {
            w.outages
                .iter()
                .map(|o| o.end_ms)
                .chain(w.steps.iter().map(|s| s.end_ms))
                .chain(w.rto_ms)
                .chain(w.healthy_after_ms)
        }))
        .max()
        .unwrap_or(0)
        .max(1000);
    let step = tick_step(latest);
    (latest.div_ceil(step).saturating_mul(step), step)
}

pub(super) fn chart(r: &DrillReport, conditions: &[ConditionChange]) -> Chart {
    let (end, step) = chart_end(r, conditions);
    let x = |t: u64| px(X0 + (X1 - X0) * (t.min(end) as f64) / (end as f64));
    let ticks = (0..=end / step)
        .map(|i| {
            let t = i * step;
            Tick {
                x: x(t),
                label: tick_label(t, step, end),
            }
        })
        .collect();
    let mut y = TOP;
    let mut sections = Vec::new();
    let mut lanes = Vec::new();

    let providers = provider_names(r, conditions);
    if !providers.is_empty() {
        sections.push((px(y + 17.0), "Provider condition"));
        y += SECTION;
        for name in providers {
            lanes.push(provider_lane(&name, conditions, y, end, &x));
            y += PROVIDER_LANE;
        }
    }
    sections.push((px(y + 17.0), "Workloads: steps, and the prober below"));
    y += SECTION;
    for w in &r.workloads {
        lanes.push(workload_lane(w, y, end, &x));
        y += WORKLOAD_LANE;
    }
    for s in &r.stranded {
        lanes.push(Lane {
            id: format!("workload:{}", s.name),
            kind: "workload stranded",
            name: s.name.clone(),
            note: "stranded".into(),
            y,
            height: WORKLOAD_LANE,
            bars: vec![Bar {
                title: format!("stranded: {}", s.reason),
                ..bar(X0, y + 6.0, X1 - X0, 22.0, "stranded".into())
            }],
            marks: Vec::new(),
        });
        y += WORKLOAD_LANE;
    }
    let bottom = y + 4.0;
    Chart {
        width: WIDTH,
        height: px(bottom + 34.0),
        x0: X0,
        x1: X1,
        top: TOP,
        bottom: px(bottom),
        ticks,
        detected: r.detected_after_ms.map(|d| Tick {
            x: x(d),
            label: format!("detected {}", fmt_ms(d)),
        }),
        sections,
        lanes,
    }
}

fn bar(x: f64, y: f64, w: f64, h: f64, class: String) -> Bar {
    Bar {
        x: px(x),
        y: px(y),
        w: px(w.max(0.0)),
        h,
        class,
        title: String::new(),
        phase: None,
        target: None,
        outcome: None,
        condition: None,
        outage: false,
        label: None,
    }
}

/// The lost providers first (in the report's order), then every other provider the
/// report mentions, by name.
fn provider_names(r: &DrillReport, conditions: &[ConditionChange]) -> Vec<String> {
    let mut names: Vec<String> = r.lost_providers.clone();
    let mut others: Vec<String> = conditions
        .iter()
        .map(|c| c.provider.clone())
        .chain(
            r.workloads
                .iter()
                .flat_map(|w| w.from.iter().chain(w.to.iter()).cloned()),
        )
        .filter(|n| !names.contains(n))
        .collect();
    others.sort();
    others.dedup();
    names.extend(others);
    names
}

fn provider_lane(
    name: &str,
    conditions: &[ConditionChange],
    y: f64,
    end: u64,
    x: &impl Fn(u64) -> f64,
) -> Lane {
    let mut mine: Vec<&ConditionChange> =
        conditions.iter().filter(|c| c.provider == name).collect();
    mine.sort_by_key(|c| c.at_ms);
    let (top, h) = (y + 5.0, 16.0);
    let mut bars = Vec::new();
    let first = mine.first().map_or(end, |c| c.at_ms);
    if first > 0 {
        bars.push(Bar {
            title: format!("{name}: no condition seen yet"),
            condition: Some("unknown".into()),
            ..bar(x(0), top, x(first) - x(0), h, "cond cond-unknown".into())
        });
    }
    for (i, c) in mine.iter().enumerate() {
        let until = mine.get(i + 1).map_or(end, |n| n.at_ms);
        bars.push(Bar {
            title: format!("{name}: {} (from {})", c.detail, fmt_ms(c.at_ms)),
            condition: Some(c.condition.clone()),
            ..bar(
                x(c.at_ms),
                top,
                x(until) - x(c.at_ms),
                h,
                format!("cond cond-{}", c.condition),
            )
        });
    }
    let note = mine
        .last()
        .map(|c| c.condition.clone())
        .unwrap_or_else(|| "no condition recorded".into());
    Lane {
        id: format!("provider:{name}"),
        kind: "provider",
        name: name.to_owned(),
        note,
        y,
        height: PROVIDER_LANE,
        bars,
        marks: Vec::new(),
    }
}

/// The colour family of a step: both hook steps are "hooks".
fn category(phase: &str) -> &str {
    match phase {
        "before-cutover" | "after-cutover" => "hooks",
        other => other,
    }
}

fn workload_lane(w: &WorkloadOutcome, y: f64, end: u64, x: &impl Fn(u64) -> f64) -> Lane {
    let (steps_top, steps_h) = (y + 4.0, 22.0);
    let (probe_top, probe_h) = (y + 30.0, 9.0);
    let mut bars = Vec::new();
    for s in &w.steps {
        let outcome = match s.outcome {
            SpanOutcome::Done => "done",
            SpanOutcome::Failed => "failed",
            SpanOutcome::Orphaned => "orphaned",
            SpanOutcome::Unfinished => "unfinished",
        };
        let took = s.end_ms.saturating_sub(s.start_ms);
        let width = (x(s.end_ms) - x(s.start_ms)).max(MIN_BAR);
        let text = format!("{} {}", s.phase, fmt_ms(took));
        // About 6.5 units per character at the page's 11px.
        let label = (width >= 6.5 * text.len() as f64 + 8.0).then_some(text);
        bars.push(Bar {
            label,
            title: format!(
                "{} on {}: {}–{} ({}), {outcome}",
                s.phase,
                s.target,
                fmt_ms(s.start_ms),
                fmt_ms(s.end_ms),
                fmt_ms(took)
            ),
            phase: Some(s.phase.clone()),
            target: Some(s.target.clone()),
            outcome: Some(outcome),
            ..bar(
                x(s.start_ms),
                steps_top,
                width,
                steps_h,
                format!("step phase-{} outcome-{outcome}", category(&s.phase)),
            )
        });
    }
    // The adapter's timed phases (power-on) happen inside the deploy that landed.
    let landed = w.steps.iter().rev().find(|s| {
        s.phase == "deploy" && s.outcome == SpanOutcome::Done && Some(&s.target) == w.to.as_ref()
    });
    if let Some(deploy) = landed {
        let mut at = deploy.start_ms;
        for p in &w.phases {
            let until = at.saturating_add(p.ms).min(deploy.end_ms);
            bars.push(Bar {
                title: format!(
                    "{} on {}: {} (timed by the adapter)",
                    p.name,
                    deploy.target,
                    fmt_ms(p.ms)
                ),
                phase: Some(p.name.clone()),
                target: Some(deploy.target.clone()),
                outcome: Some("done"),
                ..bar(
                    x(at),
                    steps_top + 4.0,
                    (x(until) - x(at)).max(MIN_BAR),
                    steps_h - 8.0,
                    format!("step phase-{}", p.name),
                )
            });
            at = until;
        }
    }
    match w.downtime_ms {
        Some(_) => bars.push(Bar {
            title: format!("{}: the prober saw it up", w.name),
            ..bar(x(0), probe_top, x(end) - x(0), probe_h, "prober-up".into())
        }),
        None => bars.push(Bar {
            title: format!("{}: not probed (no public name)", w.name),
            ..bar(
                x(0),
                probe_top,
                x(end) - x(0),
                probe_h,
                "prober-none".into(),
            )
        }),
    }
    for o in &w.outages {
        bars.push(Bar {
            title: format!(
                "{} down {}–{} ({})",
                w.name,
                fmt_ms(o.start_ms),
                fmt_ms(o.end_ms),
                fmt_ms(o.end_ms.saturating_sub(o.start_ms))
            ),
            outage: true,
            ..bar(
                x(o.start_ms),
                probe_top,
                (x(o.end_ms) - x(o.start_ms)).max(1.0),
                probe_h,
                "outage".into(),
            )
        });
    }
    let mut marks = Vec::new();
    let (y1, y2) = (px(y + 1.0), px(y + WORKLOAD_LANE - 4.0));
    if w.steps.is_empty()
        && let Some(h) = w.healthy_after_ms
    {
        marks.push(Mark {
            x: x(h),
            y1,
            y2,
            kind: "healthy",
            title: format!("healthy at {}", fmt_ms(h)),
        });
    }
    if let Some(rto) = w.rto_ms {
        let what = if w.dns_ttl_ms.is_some() {
            "cut over + DNS TTL"
        } else {
            "cut over"
        };
        marks.push(Mark {
            x: x(rto),
            y1,
            y2,
            kind: "rto",
            title: format!("{what} at {} (RTO)", fmt_ms(rto)),
        });
    }
    if let Some(o) = w.rto_objective_ms.filter(|&o| o <= end) {
        marks.push(Mark {
            x: x(o),
            y1,
            y2,
            kind: "objective",
            title: format!("objective {}", fmt_ms(o)),
        });
    }
    let mut note = Vec::new();
    if let Some(rto) = w.rto_ms {
        note.push(format!("rto {}", fmt_ms(rto)));
    } else if let Some(h) = w.healthy_after_ms {
        note.push(format!("healthy {}", fmt_ms(h)));
    }
    if let Some(d) = w.downtime_ms {
        note.push(format!("down {}", fmt_ms(d)));
    }
    Lane {
        id: format!("workload:{}", w.name),
        kind: if w.met {
            "workload met"
        } else {
            "workload missed"
        },
        name: w.name.clone(),
        note: note.join(" · "),
        y,
        height: WORKLOAD_LANE,
        bars,
        marks,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_are_round_numbers() {
        assert_eq!(tick_step(1000), 100);
        assert_eq!(tick_step(1310), 200);
        assert_eq!(tick_step(20_000), 2000);
        assert_eq!(tick_step(0), 1);
        assert!(tick_step(u64::MAX) > 0);
        assert_eq!(tick_label(1500, 500, 3000), "1.5s");
        assert_eq!(tick_label(2000, 1000, 9000), "2s");
        assert_eq!(tick_label(200, 100, 1000), "200ms");
    }
}
