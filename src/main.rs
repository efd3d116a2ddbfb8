//! The `lifeboat` binary: parse the command line, set up logging and the runtime, hand
//! over to [`lifeboat::cli`].

use std::process::ExitCode;

use clap::Parser;
use lifeboat::cli::Cli;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let default = match cli.command {
        lifeboat::cli::args::Command::Run { .. } => "info",
        // A drill speaks through its progress display; log lines would interleave with
        // it, so they show only when `--log` asks for them.
        lifeboat::cli::args::Command::Drill(_) => "off",
        _ => "warn",
    };
    let filter = tracing_subscriber::EnvFilter::try_new(cli.log.as_deref().unwrap_or(default))
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: starting the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(lifeboat::cli::run(cli))
}
