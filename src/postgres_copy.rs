//! `lifeboat postgres`: one member of a PostgreSQL dataset, run as a workload copy the
//! way `lifeboat demo` runs the quickstart's services. A workload whose `data:` method
//! is `postgres-streaming` can use it as its command on any adapter that runs this
//! binary (local, bare metal).
//!
//! The copy learns what it is from its environment, as every copy does: `PORT` and
//! `LIFEBOAT_BIND` (where to listen), `LIFEBOAT_WORKLOAD` and `LIFEBOAT_GENERATION` (its
//! data folder, `DATA_ROOT/WORKLOAD-GENERATION`, so two generations never share one),
//! and, for a standby, `LIFEBOAT_PRIMARY` (the primary's `host:port`) and
//! `LIFEBOAT_STANDBY_NAME` (the name it streams under; default the folder's name).

use std::path::PathBuf;

use anyhow::{Context, bail};
use lifeboat_dataset_postgres::server::{self, Member};

/// The primary a standby is seeded from and streams from (`host:port`).
pub const PRIMARY_ENV: &str = "LIFEBOAT_PRIMARY";
/// The name a standby streams under (its `application_name` at the primary).
pub const STANDBY_NAME_ENV: &str = "LIFEBOAT_STANDBY_NAME";

/// `lifeboat postgres`: options of a PostgreSQL member.
#[derive(Debug, Clone, clap::Args)]
pub struct PostgresOptions {
    /// The folder that holds the members' data folders.
    #[arg(long)]
    pub data_root: PathBuf,
    /// A file holding the superuser's password.
    #[arg(long)]
    pub password_file: PathBuf,
    /// The superuser's name.
    #[arg(long, default_value = "postgres")]
    pub superuser: String,
    /// The operating-system user the server runs as when started as root.
    #[arg(long, default_value = "postgres")]
    pub os_user: String,
}

/// Becomes the member's server; returns only when that fails.
pub fn run(options: &PostgresOptions) -> anyhow::Result<std::convert::Infallible> {
    let env = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    let port: u16 = env("PORT")
        .context("PORT is not set: the provider gives every copy its port")?
        .parse()
        .context("PORT is not a port number")?;
    let workload = env("LIFEBOAT_WORKLOAD").unwrap_or_else(|| "db".to_owned());
    let generation = env(lifeboat_provider::labels::GENERATION_ENV).unwrap_or_else(|| "0".into());
    let folder = format!("{workload}-{generation}");
    let password = std::fs::read_to_string(&options.password_file)
        .with_context(|| format!("reading {}", options.password_file.display()))?
        .trim_end_matches(['\r', '\n'])
        .to_owned();
    if password.is_empty() {
        bail!("{} is empty", options.password_file.display());
    }
    let member = Member {
        data: options.data_root.join(&folder),
        listen: env("LIFEBOAT_BIND").unwrap_or_else(|| "127.0.0.1".to_owned()),
        port,
        superuser: options.superuser.clone(),
        password,
        standby_of: env(PRIMARY_ENV).map(|primary| {
            let name = env(STANDBY_NAME_ENV).unwrap_or_else(|| folder.clone());
            (primary, name)
        }),
        os_user: options.os_user.clone(),
    };
    eprintln!("lifeboat postgres: {member}");
    server::run(&member).map_err(|why| anyhow::anyhow!("{member}: {why}"))
}
