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
    lifeboat::logging::init(
        cli.log.as_deref().unwrap_or(default),
        default,
        cli.log_format,
    );
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            lifeboat::logging::error(&format!("starting the async runtime: {e}"));
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(lifeboat::cli::run(cli))
}
