//! `lifeboat status`: what the state folder says, read without the writer's lock so it
//! works while the daemon runs.

use std::path::Path;
use std::process::ExitCode;

use serde::Serialize;

use crate::dataset::DatasetState;
use crate::model::Placement;
use crate::store::{
    ConditionRecord, DaemonRecord, DrillRecord, DrillRun, JournalEntry, NoticeRecord, Pause, Store,
};
use crate::table;
use crate::watch::{CopyWatch, Seen};

/// Everything `status` shows, also as JSON.
#[derive(Debug, Serialize)]
struct Status {
    /// The daemon of this state folder, when one runs.
    daemon: Option<Daemon>,
    /// The daemon that ran here last (this one, when one runs): pid, start, last round.
    last_daemon: Option<DaemonRecord>,
    /// The kill switch, when thrown.
    paused: Option<Pause>,
    /// Notices and fences in force.
    notices: Vec<NoticeRecord>,
    providers: Vec<ConditionRecord>,
    placements: Vec<Placement>,
    /// The daemon's watch over each placed workload's copy: its last health check and
    /// the replacements it made.
    copies: std::collections::BTreeMap<String, CopyWatch>,
    /// Each dataset: primary, standby, lag, and since when it has been unprotected.
    datasets: std::collections::BTreeMap<String, DatasetState>,
    in_flight: Vec<InFlight>,
    orphans: usize,
    /// Results of the daemon's scheduled drills, oldest first.
    drills: Vec<DrillRecord>,
    /// Every drill recorded in the drill state folder (CLI and scheduled), oldest
    /// first; one not `cleaned` may have left copies (or runs now).
    drill_runs: Vec<DrillRun>,
}

/// The process holding the state folder, and its API.
#[derive(Debug, Serialize)]
struct Daemon {
    pid: String,
    api: Option<String>,
}

/// The last journal line of each move of an unfinished evacuation.
#[derive(Debug, Serialize)]
struct InFlight {
    evacuation: String,
    last: JournalEntry,
}

pub(super) fn show(state: &Path, json: bool) -> anyhow::Result<ExitCode> {
    let store = Store::open_read_only(state)?;
    let mut in_flight = Vec::new();
    for evacuation in store.unfinished_evacuations()? {
        let journal = store.journal(&evacuation.id)?;
        let mut last: std::collections::BTreeMap<String, JournalEntry> = Default::default();
        for entry in journal {
            last.insert(entry.workload.clone(), entry);
        }
        in_flight.extend(last.into_values().map(|last| InFlight {
            evacuation: evacuation.id.clone(),
            last,
        }));
    }
    let daemon = crate::store::writer_pid(state)?.map(|pid| Daemon {
        pid,
        api: crate::api::running_endpoint(state)
            .ok()
            .flatten()
            .map(|e| e.url),
    });
    let status = Status {
        daemon,
        last_daemon: store.daemon()?,
        copies: store.copy_watches()?,
        datasets: store.datasets()?,
        paused: store.paused()?,
        notices: store.notices(true)?,
        providers: store.conditions()?.into_values().collect(),
        placements: store.placements()?.into_values().collect(),
        in_flight,
        orphans: store.orphans()?.len(),
        drills: store.drills()?,
        drill_runs: drill_runs(state)?,
    };
    if json {
        println!("{}", serde_json::to_string_pretty(&status)?);
        return Ok(ExitCode::SUCCESS);
    }
    let rounds = match &status.last_daemon {
        Some(DaemonRecord {
            started,
            last_round,
            ..
        }) => format!(
            ", started {started}, last round {}",
            last_round.map_or("none yet".to_owned(), |r| r.to_string())
        ),
        None => String::new(),
    };
    match &status.daemon {
        Some(Daemon {
            pid,
            api: Some(api),
        }) => println!("daemon: running, pid {pid}, API {api}{rounds}"),
        // A drill holds the state folder too, without an API.
        Some(Daemon { pid, api: None }) => {
            println!("daemon: none; pid {pid} holds the state folder")
        }
        None => {
            println!("daemon: NOT RUNNING (nothing watches the providers or the workloads)");
            if let Some(last) = &status.last_daemon {
                println!("  the last one was pid {}{rounds}", last.pid);
            }
        }
    }
    if let Some(pause) = &status.paused {
        println!(
            "PAUSED since {}: {} (`lifeboat resume` lifts it)",
            pause.since, pause.reason
        );
    }
    for n in &status.notices {
        let deadline = n
            .notice
            .deadline
            .map_or("now (fence)".to_owned(), |d| d.to_string());
        println!(
            "notice {}: {} by {deadline}: {}",
            n.id, n.notice.scope, n.notice.reason
        );
    }
    println!("providers:");
    if status.providers.is_empty() {
        println!("  (not probed yet)");
    } else {
        let mut t = table::table(&["provider", "condition", "since"], &[]);
        for p in &status.providers {
            t.add_row(vec![
                p.provider.clone(),
                p.condition.to_string(),
                p.at.to_string(),
            ]);
        }
        print!("{}", table::indented(&t, "  "));
    }
    println!("workloads:");
    if status.placements.is_empty() {
        println!("  (none placed)");
    } else {
        let mut t = table::table(
            &["workload", "provider", "generation", "endpoint", "health"],
            &[2],
        );
        for p in &status.placements {
            let endpoint = p
                .deployment
                .as_ref()
                .and_then(|d| d.endpoint.as_ref())
                .map(ToString::to_string)
                .unwrap_or_else(|| "-".into());
            t.add_row(vec![
                p.workload.clone(),
                p.provider.clone(),
                p.generation.0.to_string(),
                endpoint,
                health(status.copies.get(&p.workload), p),
            ]);
        }
        print!("{}", table::indented(&t, "  "));
    }
    if !status.datasets.is_empty() {
        println!("data:");
        let mut t = table::table(
            &["workload", "primary", "standby", "lag", "rpo", "state"],
            &[3, 4],
        );
        for d in status.datasets.values() {
            let member = |provider: Option<&str>, generation: Option<u64>| match provider {
                Some(p) => format!("{p} (g{})", generation.unwrap_or(0)),
                None => "-".into(),
            };
            let lag = d.lag.as_ref().map_or("-".to_owned(), |l| {
                if d.snapshot.is_some() {
                    return format!("{:.1}s (snapshot)", l.seconds);
                }
                format!(
                    "{:.1}s, {} B{}",
                    l.seconds,
                    l.bytes,
                    if l.synchronous { ", sync" } else { "" }
                )
            });
            let state = match (d.alert(), &d.unprotected_since) {
                (None, _) => "ok".to_owned(),
                (Some(alert), Some(since)) => format!("ALERT since {since}: {alert}"),
                (Some(alert), None) => format!("ALERT: {alert}"),
            };
            t.add_row(vec![
                d.workload.clone(),
                member(
                    d.primary.as_ref().map(|p| p.provider.as_str()),
                    d.primary.as_ref().map(|p| p.generation.0),
                ),
                member(
                    d.standby.as_ref().map(|s| s.provider.as_str()),
                    d.standby.as_ref().map(|s| s.deployment.generation.0),
                ),
                lag,
                format!("{}ms", d.rpo_ms),
                state,
            ]);
        }
        print!("{}", table::indented(&t, "  "));
    }
    if !status.in_flight.is_empty() {
        println!("in flight:");
        let mut t = table::table(
            &[
                "workload",
                "step",
                "status",
                "target",
                "attempt",
                "evacuation",
            ],
            &[4],
        );
        for f in &status.in_flight {
            t.add_row(vec![
                f.last.workload.clone(),
                format!("{:?}", f.last.step),
                format!("{:?}", f.last.status),
                f.last.target.clone(),
                f.last.attempt.to_string(),
                f.evacuation.clone(),
            ]);
        }
        print!("{}", table::indented(&t, "  "));
    }
    if !status.drills.is_empty() {
        println!("scheduled drills (latest first):");
        let mut t = table::table(&["drill", "started", "outcome"], &[]);
        for d in status.drills.iter().rev().take(5) {
            let field = |k: &str| d.record[k].as_str().unwrap_or("-").to_owned();
            t.add_row(vec![
                field("schedule"),
                field("started_at"),
                field("outcome"),
            ]);
        }
        print!("{}", table::indented(&t, "  "));
    }
    for run in status.drill_runs.iter().filter(|r| r.cleaned.is_none()) {
        println!(
            "drill {} ({} mode, pid {}) is running or left copies: `lifeboat drill --cleanup` \
             removes what it left",
            run.id, run.mode, run.pid
        );
    }
    if status.orphans > 0 {
        println!(
            "orphans: {} copies wait to be retired when their provider answers",
            status.orphans
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// The last health check of `placement`'s copy, and the replacements made.
fn health(watch: Option<&CopyWatch>, placement: &Placement) -> String {
    let Some(watch) =
        watch.filter(|w| w.provider == placement.provider && w.generation == placement.generation)
    else {
        return "-".into();
    };
    let mut text = match (&watch.last, watch.unhealthy_since) {
        (None, _) => "not checked yet".to_owned(),
        (Some(last), Some(since)) => {
            let detail = last.seen.detail().unwrap_or_default();
            format!("UNHEALTHY since {since}: {detail} (checked {})", last.at)
        }
        (Some(last), None) => match &last.seen {
            Seen::Unknown { detail } => format!("unknown at {}: {detail}", last.at),
            _ => format!("healthy at {}", last.at),
        },
    };
    if let Some(latest) = watch.replacements.last() {
        text.push_str(&format!(
            "; replaced {}× (latest {latest})",
            watch.replacements.len()
        ));
    }
    text
}

/// The drill runs recorded below `state`, if any drill ever ran there.
fn drill_runs(state: &Path) -> anyhow::Result<Vec<DrillRun>> {
    let dir = state.join(crate::drill::cleanup::STATE_SUBDIR);
    if !dir.join(crate::store::DB_FILE).exists() {
        return Ok(Vec::new());
    }
    Store::open_read_only(&dir)?.drill_runs()
}
