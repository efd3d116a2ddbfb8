//! `lifeboat notice`, `pause`, `resume`, `evacuations` and `evacuate`: an operator's
//! hands on the daemon. Each talks to the running daemon's API when there is one (so
//! the daemon acts at once), and writes the state folder itself when none runs (the
//! daemon reads it when it starts). Approvals need a daemon: only it holds a plan.

use std::process::ExitCode;

use anyhow::{Context, bail};
use jiff::Timestamp;

use super::args::{DaemonArgs, EvacuationAction, NoticeAction};
use crate::api::client::Client;
use crate::api::routes::{EvacuationsView, NoticeRequest, PauseRequest, notice_from};
use crate::config::Config;
use crate::control::Pending;
use crate::store::{NoticeRecord, Pause, Store};

/// Where the commands' words go: the daemon's API, or its state folder.
enum Daemon {
    Api(Client),
    State(Store),
}

/// The config, and how to reach its daemon.
fn reach(args: &DaemonArgs) -> anyhow::Result<Option<(Config, Daemon)>> {
    let Some(mut config) = super::load(&args.config) else {
        return Ok(None);
    };
    if let Some(state) = &args.state {
        config.state_dir = state.clone();
    }
    let url = match &args.api {
        Some(url) => Some(url.clone()),
        None => crate::api::running_endpoint(&config.state_dir)?.map(|e| e.url),
    };
    let daemon = match url {
        Some(url) => Daemon::Api(Client::of_daemon(&config, &url)?),
        None => Daemon::State(Store::open(&config.state_dir).context(
            "no daemon's API answers for this state folder, so the command writes it itself",
        )?),
    };
    Ok(Some((config, daemon)))
}

fn print_json(value: &impl serde::Serialize) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

/// `lifeboat notice raise|list|clear`.
pub(super) async fn notice(action: NoticeAction) -> anyhow::Result<ExitCode> {
    match action {
        NoticeAction::Raise {
            daemon,
            target,
            deadline,
            reason,
        } => {
            let request = NoticeRequest {
                target,
                deadline,
                reason,
            };
            raise(&daemon, &request).await
        }
        NoticeAction::List { daemon: args } => {
            let Some((_, daemon)) = reach(&args)? else {
                return Ok(ExitCode::from(super::INVALID));
            };
            let notices: Vec<NoticeRecord> = match &daemon {
                Daemon::Api(client) => client.get("/notices").await?,
                Daemon::State(store) => store.notices(true)?,
            };
            if args.json {
                print_json(&notices)?;
            } else if notices.is_empty() {
                println!("no notice in force");
            } else {
                let now = Timestamp::now();
                let mut table =
                    crate::table::table(&["id", "target", "deadline", "left", "reason"], &[0]);
                for n in &notices {
                    table.add_row(vec![
                        n.id.to_string(),
                        n.notice.scope.to_string(),
                        n.notice
                            .deadline
                            .map_or("now (fence)".into(), |d| d.to_string()),
                        n.notice.deadline.map_or("-".into(), |d| time_left(d, now)),
                        n.notice.reason.clone(),
                    ]);
                }
                println!("{table}");
            }
            Ok(ExitCode::SUCCESS)
        }
        NoticeAction::Clear { daemon: args, id } => {
            let Some((_, daemon)) = reach(&args)? else {
                return Ok(ExitCode::from(super::INVALID));
            };
            match &daemon {
                Daemon::Api(client) => client.delete(&format!("/notices/{id}")).await?,
                Daemon::State(store) => {
                    if !store.notices(true)?.iter().any(|n| n.id == id) {
                        bail!("no notice {id} is in force");
                    }
                    store.clear_notice(id, Timestamp::now())?;
                }
            }
            println!("notice {id} cleared");
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// `lifeboat evacuate --target`: a fence, planned like any departure.
pub(super) async fn evacuate(
    args: DaemonArgs,
    target: String,
    reason: String,
) -> anyhow::Result<ExitCode> {
    let request = NoticeRequest {
        target,
        deadline: None,
        reason,
    };
    raise(&args, &request).await
}

async fn raise(args: &DaemonArgs, request: &NoticeRequest) -> anyhow::Result<ExitCode> {
    let Some((config, daemon)) = reach(args)? else {
        return Ok(ExitCode::from(super::INVALID));
    };
    let record: NoticeRecord = match &daemon {
        Daemon::Api(client) => client.post("/notices", request).await?,
        Daemon::State(store) => {
            let notice = match notice_from(&config, request) {
                Ok(notice) => notice,
                Err((field, message)) => {
                    crate::logging::error(&format!("--{field}: {message}"));
                    return Ok(ExitCode::from(super::INVALID));
                }
            };
            let raised = Timestamp::now();
            let id = store.add_notice(&notice, raised)?;
            NoticeRecord {
                id,
                notice,
                raised,
                cleared: None,
            }
        }
    };
    if args.json {
        print_json(&record)?;
    } else {
        let when = match record.notice.deadline {
            Some(deadline) => format!(
                "deadline {deadline} ({} left)",
                time_left(deadline, Timestamp::now())
            ),
            None => "to be left now".to_owned(),
        };
        println!(
            "notice {}: {} {when}{}",
            record.id,
            record.notice.scope,
            if matches!(daemon, Daemon::State(_)) {
                "; no daemon runs: it acts on it when it starts"
            } else {
                ""
            }
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// `lifeboat pause`.
pub(super) async fn pause(args: DaemonArgs, reason: String) -> anyhow::Result<ExitCode> {
    let Some((_, daemon)) = reach(&args)? else {
        return Ok(ExitCode::from(super::INVALID));
    };
    let pause: Pause = match &daemon {
        Daemon::Api(client) => client.post("/pause", &PauseRequest { reason }).await?,
        Daemon::State(store) => store.pause(&Pause {
            reason,
            since: Timestamp::now(),
        })?,
    };
    if args.json {
        print_json(&pause)?;
    } else {
        println!(
            "paused since {} ({}): no step starts until `lifeboat resume`",
            pause.since, pause.reason
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// `lifeboat resume`.
pub(super) async fn resume(args: DaemonArgs) -> anyhow::Result<ExitCode> {
    let Some((_, daemon)) = reach(&args)? else {
        return Ok(ExitCode::from(super::INVALID));
    };
    let was_paused = match &daemon {
        Daemon::Api(client) => {
            let answer: serde_json::Value = client.post("/resume", &()).await?;
            answer["was_paused"].as_bool().unwrap_or(false)
        }
        Daemon::State(store) => store.resume()?,
    };
    println!(
        "{}",
        if was_paused {
            "resumed"
        } else {
            "was not paused"
        }
    );
    Ok(ExitCode::SUCCESS)
}

/// `lifeboat evacuations [approve|reject ID]`.
pub(super) async fn evacuations(
    args: DaemonArgs,
    action: Option<EvacuationAction>,
) -> anyhow::Result<ExitCode> {
    let Some((_, daemon)) = reach(&args)? else {
        return Ok(ExitCode::from(super::INVALID));
    };
    let Some(action) = action else {
        return list_evacuations(&args, &daemon).await;
    };
    let Daemon::Api(client) = &daemon else {
        bail!("no daemon runs for this state folder: nothing waits for approval");
    };
    let (verb, id) = match &action {
        EvacuationAction::Approve { id } => ("approve", id),
        EvacuationAction::Reject { id } => ("reject", id),
    };
    let pending: Pending = client
        .post(&format!("/evacuations/{id}/{verb}"), &())
        .await?;
    if args.json {
        print_json(&pending)?;
    } else {
        println!(
            "{} {id}: {} move(s)",
            if verb == "approve" {
                "approved; it starts now"
            } else {
                "rejected"
            },
            pending.plan.moves.len()
        );
    }
    Ok(ExitCode::SUCCESS)
}

async fn list_evacuations(args: &DaemonArgs, daemon: &Daemon) -> anyhow::Result<ExitCode> {
    let view = match daemon {
        Daemon::Api(client) => client.get::<serde_json::Value>("/evacuations").await?,
        Daemon::State(store) => {
            let mut evacuations = store.evacuations()?;
            evacuations.reverse();
            serde_json::to_value(EvacuationsView {
                pending: None,
                paused: store.paused()?,
                scheduled: Vec::new(),
                evacuations,
            })?
        }
    };
    if args.json {
        print_json(&view)?;
        return Ok(ExitCode::SUCCESS);
    }
    let view: EvacuationsView =
        serde_json::from_value(view).context("reading the daemon's list of evacuations")?;
    if let Some(pause) = &view.paused {
        println!("PAUSED since {}: {}", pause.since, pause.reason);
    }
    for s in &view.scheduled {
        let when = if s.at_risk {
            format!("AT RISK: expected done {}", s.estimated_finish)
        } else {
            format!(
                "starts {}, expected done {}",
                s.start_at, s.estimated_finish
            )
        };
        println!("due by {}: {} ({when})", s.by, s.workloads.join(", "));
    }
    match &view.pending {
        Some(p) => {
            println!("waiting for approval: {} (since {})", p.id, p.since);
            for m in &p.plan.moves {
                println!(
                    "  {} {} -> {}",
                    m.workload,
                    m.from.as_deref().unwrap_or("(unplaced)"),
                    m.targets.join(" | ")
                );
            }
            println!("  approve: lifeboat evacuations -c CONFIG approve {}", p.id);
        }
        None if matches!(daemon, Daemon::State(_)) => {
            println!("no daemon runs: nothing waits for approval")
        }
        None => println!("nothing waits for approval"),
    }
    let mut table = crate::table::table(&["evacuation", "started", "finished", "moves"], &[3]);
    for ev in &view.evacuations {
        table.add_row(vec![
            ev.id.clone(),
            ev.started.to_string(),
            ev.finished.map_or("running".into(), |f| f.to_string()),
            ev.plan.moves.len().to_string(),
        ]);
    }
    if !view.evacuations.is_empty() {
        println!("{table}");
    }
    Ok(ExitCode::SUCCESS)
}

/// `23h59m`, `12m`, or `passed 5m ago`.
fn time_left(deadline: Timestamp, now: Timestamp) -> String {
    let secs = deadline.as_second() - now.as_second();
    let (sign, secs) = if secs < 0 {
        ("passed ", -secs)
    } else {
        ("", secs)
    };
    let text = match (secs / 3600, (secs % 3600) / 60) {
        (0, m) => format!("{m}m"),
        (h, m) => format!("{h}h{m:02}m"),
    };
    if sign.is_empty() {
        text
    } else {
        format!("{sign}{text} ago")
    }
}
