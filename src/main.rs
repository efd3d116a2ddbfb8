//! The `lifeboat` binary.

use std::process::ExitCode;

use clap::Parser;
use lifeboat::demo::{self, DemoOptions};

/// lifeboat keeps a service alive when a hosting vendor drops it.
#[derive(Debug, Parser)]
#[command(name = "lifeboat", version, about)]
enum Cli {
    /// Run the built-in demo HTTP service (the quickstart's workloads).
    #[command(
        after_help = "Example:\n  PORT=8080 lifeboat demo --name api --upstream db.quickstart.test \\\n      \
                            --endpoints .lifeboat/quickstart/endpoints.json"
    )]
    Demo(DemoOptions),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: starting the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli {
            Cli::Demo(opts) => demo::serve(opts).await,
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
