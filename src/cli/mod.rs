//! The `lifeboat` command line: parsing lives in [`args`], each subcommand in its own
//! small function here. Exit codes: 0 success, 1 an objective missed / something
//! stranded / a run failed, 2 bad input (an invalid config, an unknown name).

pub mod args;
mod operator;
mod status;

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use jiff::Timestamp;
use tokio_util::sync::CancellationToken;

pub use args::Cli;
use args::{Command, DrillArgs};

use crate::config::{self, Config, DrillConfig, DrillMode};
use crate::drill::{
    self,
    run::{DrillOptions, Interrupts},
};
use crate::model::Notice;
use crate::providers::BuildOptions;

/// Exit code for bad input.
const INVALID: u8 = 2;

/// Runs one parsed command line to its exit code. Errors are printed here, with their
/// whole context chain.
pub async fn run(cli: Cli) -> ExitCode {
    match dispatch(cli.command).await {
        Ok(code) => code,
        Err(error) => {
            crate::logging::error(&format!("{error:#}"));
            ExitCode::FAILURE
        }
    }
}

async fn dispatch(command: Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::Validate { config } => Ok(validate(&config)),
        Command::Plan { config, lose, json } => {
            let Some(config) = load(&config.path) else {
                return Ok(ExitCode::from(INVALID));
            };
            plan(&config, &lose, json)
        }
        Command::Drill(args) => drill(args).await,
        Command::Report { dir, compare } => report(&dir, compare.as_deref()),
        #[cfg(feature = "kubernetes")]
        Command::Run {
            state,
            kubernetes,
            api_listen,
            ..
        } if kubernetes.kubernetes => run_kubernetes(kubernetes, state, api_listen).await,
        #[cfg(feature = "kubernetes")]
        Command::Crds => {
            print!("{}", crate::k8s::crds::yaml()?);
            Ok(ExitCode::SUCCESS)
        }
        Command::Run {
            config,
            state,
            api_listen,
            ..
        } => {
            let Some(config) = config else {
                crate::logging::error("--config is required (or --kubernetes)");
                return Ok(ExitCode::from(INVALID));
            };
            let Some(mut config) = load(&config) else {
                return Ok(ExitCode::from(INVALID));
            };
            if let Some(state) = state {
                config.state_dir = state;
            }
            if let Some(listen) = api_listen {
                config.api.listen = listen;
            }
            let stop = stop_on_signals();
            crate::daemon::run(Arc::new(config), &BuildOptions::default(), stop).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Status {
            config,
            state,
            json,
        } => {
            let state = match (state, config) {
                (Some(state), _) => state,
                (None, Some(path)) => match load(&path) {
                    Some(config) => config.state_dir,
                    None => return Ok(ExitCode::from(INVALID)),
                },
                (None, None) => unreachable!("clap requires --config or --state"),
            };
            status::show(&state, json)
        }
        Command::Notice { action } => operator::notice(action).await,
        Command::Pause { daemon, reason } => operator::pause(daemon, reason).await,
        Command::Resume { daemon } => operator::resume(daemon).await,
        Command::Evacuations { daemon, action } => operator::evacuations(daemon, action).await,
        Command::Evacuate {
            daemon,
            target,
            reason,
        } => operator::evacuate(daemon, target, reason).await,
        Command::Demo(options) => {
            crate::demo::serve(options).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Postgres(options) => match crate::postgres_copy::run(&options).await? {},
    }
}

/// `lifeboat run --kubernetes`: the in-cluster daemon, until SIGTERM or Ctrl-C.
#[cfg(feature = "kubernetes")]
async fn run_kubernetes(
    args: args::KubernetesArgs,
    state: Option<std::path::PathBuf>,
    api_listen: Option<std::net::SocketAddr>,
) -> anyhow::Result<ExitCode> {
    let identity = args.identity.unwrap_or_else(|| {
        let host = std::fs::read_to_string("/etc/hostname").unwrap_or_default();
        format!("{}-{}", host.trim(), std::process::id())
    });
    let duration = Duration::from_secs(args.lease_duration.max(2));
    let options = crate::k8s::daemon::Options {
        kubeconfig: args.kubeconfig,
        namespace: args.namespace,
        state_dir: state.unwrap_or_else(|| "/var/lib/lifeboat".into()),
        identity,
        lease_name: args.lease_name,
        lease_duration: duration,
        // Renew a third of the way before expiry: two renewals can fail before the
        // lease is lost.
        lease_grace: duration / 3,
        api_listen: api_listen.unwrap_or(crate::config::ApiConfig::default().listen),
    };
    crate::k8s::daemon::run(options, stop_on_signals()).await?;
    Ok(ExitCode::SUCCESS)
}

/// Loads a config, printing its errors (one `file:line:col: field: message` per line)
/// and its warnings to stderr. `None` when it is invalid.
fn load(path: &std::path::Path) -> Option<Config> {
    match config::load(path) {
        Ok(config) => {
            for warning in warnings(&config) {
                crate::logging::warning(&warning);
            }
            Some(config)
        }
        Err(errors) => {
            crate::logging::error_lines(&errors.to_string());
            None
        }
    }
}

/// Every warning about a valid config: the config's own lints and the DNS-hosting
/// check.
fn warnings(config: &Config) -> Vec<String> {
    let mut out: Vec<String> = config::lint(config)
        .iter()
        .map(ToString::to_string)
        .collect();
    out.extend(
        crate::cutover::dns::hosting_warnings(config)
            .into_iter()
            .map(|w| config.diagnostic("cutover.hosted_by", w).to_string()),
    );
    out
}

fn validate(path: &std::path::Path) -> ExitCode {
    match load(path) {
        Some(config) => {
            println!(
                "{}: valid ({} vendors, {} providers, {} workloads)",
                path.display(),
                config.vendors.len(),
                config.providers.len(),
                config.workloads.len()
            );
            ExitCode::SUCCESS
        }
        None => ExitCode::from(INVALID),
    }
}

/// `lifeboat plan --lose NAME`: the pure core on a synthetic fence, against the
/// placements the workloads would have with every provider healthy.
fn plan(config: &Config, lose: &str, json: bool) -> anyhow::Result<ExitCode> {
    let Some(scope) = config.resolve_scope(lose) else {
        eprintln!(
            "error: --lose {lose:?} names no vendor, vendor/account or provider of {}",
            config.source.display()
        );
        return Ok(ExitCode::from(INVALID));
    };
    let now = Timestamp::now();
    let initial = crate::plan::plan(config, &[], &[], now);
    let placements: Vec<_> = initial
        .moves
        .iter()
        .filter_map(|m| {
            Some(crate::model::Placement {
                workload: m.workload.clone(),
                provider: m.targets.first()?.clone(),
                generation: m.generation,
                deployment: None,
                // Long ago, so the no-move-twice rule does not hold anything back.
                since: Timestamp::UNIX_EPOCH,
            })
        })
        .collect();
    let fence = Notice {
        scope,
        deadline: None,
        reason: format!("what if we lose {lose}"),
    };
    let conditions = crate::conditions::conditions(config, &Default::default(), &[fence], now);
    let decision = crate::decide::decide(config, &conditions, now);
    let plan = crate::plan::plan(config, &placements, &decision.departures, now);
    if json {
        println!("{}", serde_json::to_string_pretty(&plan)?);
    } else {
        println!("if we lose {lose} ({}):", decision.leaving());
        // One aligned table; the first word of a row says what happens to the workload.
        let mut t = crate::table::table(&["", "workload", "wave", "from -> to", "then / why"], &[]);
        for m in &plan.moves {
            t.add_row(vec![
                "move".to_owned(),
                m.workload.clone(),
                m.wave.to_string(),
                format!(
                    "{} -> {}",
                    m.from.as_deref().unwrap_or("-"),
                    m.targets.first().map(String::as_str).unwrap_or("-")
                ),
                m.targets
                    .get(1..)
                    .filter(|rest| !rest.is_empty())
                    .map(|rest| format!("then {}", rest.join(", ")))
                    .unwrap_or_default(),
            ]);
        }
        for h in &plan.held {
            let row = ["held", &h.workload, "-", "-", &h.reason];
            t.add_row(row.map(str::to_owned).to_vec());
        }
        for s in &plan.stranded {
            let row = ["STRANDED", &s.workload, "-", "-", &s.reason];
            t.add_row(row.map(str::to_owned).to_vec());
        }
        if !(plan.moves.is_empty() && plan.held.is_empty() && plan.stranded.is_empty()) {
            print!("{}", crate::table::indented(&t, "  "));
        }
        if plan.moves.is_empty() && plan.stranded.is_empty() {
            println!("  nothing runs there: nothing to move");
        }
    }
    Ok(if plan.stranded.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

async fn drill(args: DrillArgs) -> anyhow::Result<ExitCode> {
    let Some(config) = load(&args.config.path) else {
        return Ok(ExitCode::from(INVALID));
    };
    if args.cleanup {
        return drill_cleanup(&config).await;
    }
    let defaults = config.drill.clone();
    let Some(lose) = args
        .lose
        .or_else(|| defaults.as_ref().map(|d| d.lose.clone()))
    else {
        eprintln!("error: say what to lose: --lose NAME, or `drill: {{lose: NAME}}` in the config");
        return Ok(ExitCode::from(INVALID));
    };
    let d = defaults.unwrap_or(DrillConfig {
        lose: lose.clone(),
        scenario: Default::default(),
        mode: Default::default(),
        blackout: true,
    });
    let mode = args.mode.map(Into::into).unwrap_or(d.mode);
    let live = if mode == DrillMode::Live {
        match drill::guard::live(
            &config,
            args.move_production_traffic,
            args.scenario.is_some(),
        ) {
            Ok(live) => Some(live),
            Err(refusal) => {
                eprintln!("error: {refusal}");
                return Ok(ExitCode::from(INVALID));
            }
        }
    } else {
        None
    };
    let options = DrillOptions {
        lose,
        scenario: args.scenario.map(Into::into).unwrap_or(d.scenario),
        mode,
        blackout: d.blackout && !args.no_blackout,
        build: BuildOptions::default(),
        patience: drill::run::patience(&config),
        probe_every: Duration::from_millis(100),
    };
    let progress: drill::run::Progress = Arc::new(|line| eprintln!("{line}"));
    let report = match live {
        Some(drill::guard::Live::ThroughDaemon { endpoint }) => {
            let client = crate::api::client::Client::of_daemon(&config, &endpoint.url)?;
            drill::through_daemon::run(
                &config,
                options,
                client,
                endpoint.pid,
                progress,
                interrupts_on_signals(),
            )
            .await?
        }
        _ => drill::run::run(&config, options, progress, interrupts_on_signals()).await?,
    };
    println!("{}", report.summary());
    if let Some(dir) = &args.report {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let write = |name: &str, text: String| {
            let path = dir.join(name);
            std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))
        };
        write("report.json", serde_json::to_string_pretty(&report)?)?;
        write("report.xml", report.junit())?;
        write("report.html", report.html())?;
        eprintln!(
            "report written to {}/report.{{json,xml,html}}",
            dir.display()
        );
    }
    Ok(ExitCode::from(
        u8::try_from(report.exit_code()).unwrap_or(1),
    ))
}

/// `lifeboat report DIR [--compare OLD_DIR]`: report.html and report.xml again from
/// DIR/report.json, with the change of every figure since OLD_DIR's drill.
fn report(dir: &std::path::Path, compare: Option<&std::path::Path>) -> anyhow::Result<ExitCode> {
    let read = |dir: &std::path::Path| match drill::report::DrillReport::load(dir) {
        Ok(report) => Some(report),
        Err(e) => {
            eprintln!("error: {e}");
            None
        }
    };
    let Some(now) = read(dir) else {
        return Ok(ExitCode::from(INVALID));
    };
    let comparison = match compare {
        Some(old) => match read(old) {
            Some(before) => Some(drill::compare::Comparison::between(&before, &now)),
            None => return Ok(ExitCode::from(INVALID)),
        },
        None => None,
    };
    print!("{}", now.summary());
    let html = match &comparison {
        Some(c) => {
            print!("{}", c.text());
            now.html_compared(c)
        }
        None => now.html(),
    };
    for (name, text) in [("report.html", html), ("report.xml", now.junit())] {
        let path = dir.join(name);
        std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
    }
    eprintln!("report written to {}/report.{{xml,html}}", dir.display());
    Ok(ExitCode::SUCCESS)
}

/// `lifeboat drill --cleanup`: 0 when nothing of a dead drill is left, 1 otherwise.
async fn drill_cleanup(config: &Config) -> anyhow::Result<ExitCode> {
    match drill::cleanup::clean_up_dead_drills(config, &BuildOptions::default()).await? {
        None if drill::cleanup::drill_running(config) => {
            eprintln!("a drill of this config is running; it removes its own copies when it ends");
            Ok(ExitCode::FAILURE)
        }
        None => {
            println!("no drill of this config left anything behind");
            Ok(ExitCode::SUCCESS)
        }
        Some(cleanup) => {
            if cleanup.retired.is_empty() && cleanup.cleaned.is_empty() && cleanup.complete() {
                println!("no drill of this config left anything behind");
            } else {
                println!("{}", cleanup.describe());
            }
            Ok(if cleanup.complete() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
    }
}

/// A token cancelled by SIGTERM or Ctrl-C, so daemons and drills stop cleanly.
fn stop_on_signals() -> CancellationToken {
    interrupts_on_signals().stop
}

/// Tokens cancelled by the first SIGTERM or Ctrl-C (`stop`) and by a second one
/// (`abort`): a drill cleans up after the first and gives up cleaning after the second.
fn interrupts_on_signals() -> Interrupts {
    let interrupts = Interrupts::default();
    let tokens = interrupts.clone();
    tokio::spawn(async move {
        #[cfg(unix)]
        let mut term =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
        for (token, line) in [
            (&tokens.stop, "stopping (signal received)"),
            (
                &tokens.abort,
                "stopping now (second signal): not waiting for the cleanup",
            ),
        ] {
            #[cfg(unix)]
            {
                let terminated = async {
                    match term.as_mut() {
                        Some(term) => {
                            term.recv().await;
                        }
                        None => std::future::pending().await,
                    }
                };
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = terminated => {}
                }
            }
            #[cfg(not(unix))]
            let _ = tokio::signal::ctrl_c().await;
            crate::logging::say(line);
            token.cancel();
        }
    });
    interrupts
}
