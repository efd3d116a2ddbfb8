//! `lifeboat postgres`: one member of a PostgreSQL dataset, run as a workload copy the
//! way `lifeboat demo` runs the quickstart's services. A workload whose `data:` method
//! is `postgres-streaming` can use it as its command on any adapter that runs this
//! binary (local, bare metal).
//!
//! The copy learns what it is from its environment, as every copy does: `PORT` and
//! `LIFEBOAT_BIND` (where to listen), `LIFEBOAT_MEMBER` (its data folder,
//! `DATA_ROOT/MEMBER`, so two generations or two owners never share one; default
//! `WORKLOAD-GENERATION` from `LIFEBOAT_WORKLOAD` and `LIFEBOAT_GENERATION`), and, for
//! a standby, `LIFEBOAT_PRIMARY` (the primary's `host:port`) and
//! `LIFEBOAT_STANDBY_NAME` (the name it streams under; default `WORKLOAD-GENERATION`).

use std::path::PathBuf;

use anyhow::{Context, bail};
use lifeboat_dataset_postgres::server::{self, Member};

pub use lifeboat_dataset::{MEMBER_ENV, PRIMARY_ENV, STANDBY_NAME_ENV};

/// `lifeboat postgres`: options of a PostgreSQL member.
#[derive(Debug, Clone, clap::Args)]
pub struct PostgresOptions {
    /// The folder that holds the members' data folders. Default: the copy's own folder
    /// (`LIFEBOAT_COPY_DIR`, which the local adapter gives every copy and removes when
    /// the copy is retired, so a retired member leaves no data behind).
    #[arg(long)]
    pub data_root: Option<PathBuf>,
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
pub async fn run(options: &PostgresOptions) -> anyhow::Result<std::convert::Infallible> {
    let env = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    let port: u16 = env("PORT")
        .context("PORT is not set: the provider gives every copy its port")?
        .parse()
        .context("PORT is not a port number")?;
    let workload = env("LIFEBOAT_WORKLOAD").unwrap_or_else(|| "db".to_owned());
    let generation = env(lifeboat_provider::labels::GENERATION_ENV).unwrap_or_else(|| "0".into());
    let folder =
        env(lifeboat_dataset::MEMBER_ENV).unwrap_or_else(|| format!("{workload}-{generation}"));
    let password = std::fs::read_to_string(&options.password_file)
        .with_context(|| format!("reading {}", options.password_file.display()))?
        .trim_end_matches(['\r', '\n'])
        .to_owned();
    if password.is_empty() {
        bail!("{} is empty", options.password_file.display());
    }
    // The server's programs run from other folders (and as another user): a relative
    // root would mean something else to them.
    let root = match (
        &options.data_root,
        env(lifeboat_provider::labels::COPY_DIR_ENV),
    ) {
        (Some(root), _) => root.clone(),
        (None, Some(dir)) => PathBuf::from(dir),
        (None, None) => bail!(
            "no --data-root, and the provider gives this copy no folder of its own \
             ({} is not set)",
            lifeboat_provider::labels::COPY_DIR_ENV
        ),
    };
    let root =
        std::path::absolute(&root).with_context(|| format!("the data root {}", root.display()))?;
    let member = Member {
        data: root.join(&folder),
        listen: env("LIFEBOAT_BIND").unwrap_or_else(|| "127.0.0.1".to_owned()),
        port,
        superuser: options.superuser.clone(),
        password,
        standby_of: env(PRIMARY_ENV).map(|primary| {
            let name = env(STANDBY_NAME_ENV).unwrap_or_else(|| format!("{workload}-{generation}"));
            (primary, name)
        }),
        os_user: options.os_user.clone(),
    };
    eprintln!("lifeboat postgres: {member}");
    // Listening before the server starts: a stop that came in between would otherwise
    // end this process and leave the server to a smart shutdown.
    let mut stops = Stops::listen().context("listening for stop signals")?;
    let command = server::prepare(&member).map_err(|why| anyhow::anyhow!("{member}: {why}"))?;
    let mut server = tokio::process::Command::from(command)
        .spawn()
        .with_context(|| format!("{member}: starting postgres"))?;
    let pid = server.id().map(|id| nix::unistd::Pid::from_raw(id as i32));
    loop {
        tokio::select! {
            exited = server.wait() => {
                let status = exited.context("waiting for postgres")?;
                std::process::exit(status.code().unwrap_or(1));
            }
            signal = stops.next() => {
                // PostgreSQL answers SIGTERM with a smart shutdown, which waits for every
                // client to leave: a copy being retired would hang until its grace ran
                // out. A stop is a fast shutdown (SIGINT) instead, as the PostgreSQL
                // container images' STOPSIGNAL is; SIGQUIT goes on as it is.
                if let Some(pid) = pid {
                    let _ = nix::sys::signal::kill(pid, signal);
                }
            }
        }
    }
}

/// The signals that stop a member, as the signal to pass on to the server.
struct Stops {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
    quit: tokio::signal::unix::Signal,
}

impl Stops {
    fn listen() -> std::io::Result<Stops> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(Stops {
            term: signal(SignalKind::terminate())?,
            int: signal(SignalKind::interrupt())?,
            quit: signal(SignalKind::quit())?,
        })
    }

    async fn next(&mut self) -> nix::sys::signal::Signal {
        use nix::sys::signal::Signal;
        tokio::select! {
            _ = self.term.recv() => Signal::SIGINT,
            _ = self.int.recv() => Signal::SIGINT,
            _ = self.quit.recv() => Signal::SIGQUIT,
        }
    }
}
