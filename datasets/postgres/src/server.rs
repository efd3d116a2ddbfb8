//! A member of a PostgreSQL dataset as a workload copy: what `lifeboat postgres` runs.
//!
//! The copy's first start makes its data folder — `initdb` for a primary, or
//! `pg_basebackup -R` from the primary for a standby, which then streams under its own
//! `application_name` — and every start then runs the server ([`prepare`] gives its
//! command; `lifeboat postgres` runs it and turns a stop into a fast shutdown). PostgreSQL refuses
//! to run as root: started as root, every program runs as the `postgres` user (or the
//! one named), which gets the data folder.
//!
//! Passwords are read from a file and handed to PostgreSQL's programs through a file
//! or the environment, never on a command line (`ps` shows those).

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;

/// What one member is.
#[derive(Clone, PartialEq, Eq)]
pub struct Member {
    /// Its data folder.
    pub data: PathBuf,
    /// The address and port it listens on.
    pub listen: String,
    /// Its port.
    pub port: u16,
    /// The superuser's name.
    pub superuser: String,
    /// The superuser's password.
    pub password: String,
    /// For a standby: the primary's `host:port` and the name it streams under.
    pub standby_of: Option<(String, String)>,
    /// The operating-system user the server runs as when started as root.
    pub os_user: String,
}

/// Never shows the password.
impl std::fmt::Debug for Member {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Member")
            .field("data", &self.data)
            .field("listen", &self.listen)
            .field("port", &self.port)
            .field("superuser", &self.superuser)
            .field("password", &"***")
            .field("standby_of", &self.standby_of)
            .field("os_user", &self.os_user)
            .finish()
    }
}

impl std::fmt::Display for Member {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.standby_of {
            Some((primary, name)) => {
                write!(f, "standby {name} of {primary} in {}", self.data.display())
            }
            None => write!(f, "primary in {}", self.data.display()),
        }
    }
}

/// Makes the data folder on the first start and returns the server's command (as the
/// server's user when started as root), for the caller to run and stop.
pub fn prepare(member: &Member) -> Result<Command, String> {
    let bin = super::server_programs()?;
    let user = RunAs::of(&member.os_user)?;
    if !member.data.join("PG_VERSION").exists() {
        make(member, &bin, &user)?;
    }
    configure(member)?;
    let mut server = Command::new(bin.join("postgres"));
    server.arg("-D").arg(&member.data);
    user.apply(&mut server);
    Ok(server)
}

/// `initdb` (a primary) or `pg_basebackup` (a standby) into the empty data folder.
fn make(member: &Member, bin: &Path, user: &RunAs) -> Result<(), String> {
    let parent = member.data.parent().unwrap_or(Path::new("/"));
    std::fs::create_dir_all(parent).map_err(|e| format!("creating {}: {e}", parent.display()))?;
    user.own(parent)?;
    match &member.standby_of {
        None => {
            std::fs::create_dir_all(&member.data)
                .map_err(|e| format!("creating {}: {e}", member.data.display()))?;
            user.own(&member.data)?;
            let pwfile = parent.join(format!(
                ".pwfile-{}",
                member
                    .data
                    .file_name()
                    .and_then(|n| n.to_str())
                    .unwrap_or("db")
            ));
            write_private(&pwfile, &member.password)?;
            user.own(&pwfile)?;
            let mut initdb = Command::new(bin.join("initdb"));
            initdb
                .arg("-D")
                .arg(&member.data)
                .args(["-U", &member.superuser])
                .args(["--auth-local=scram-sha-256", "--auth-host=scram-sha-256"])
                .arg("--pwfile")
                .arg(&pwfile);
            user.apply(&mut initdb);
            let made = output(initdb, "initdb");
            let _ = std::fs::remove_file(&pwfile);
            made?;
        }
        Some((primary, name)) => {
            let (host, port) = primary
                .rsplit_once(':')
                .ok_or_else(|| format!("the primary {primary:?} is not host:port"))?;
            let conninfo = format!(
                "host={host} port={port} user={} application_name={name}",
                member.superuser
            );
            let mut backup = Command::new(bin.join("pg_basebackup"));
            backup
                .args(["-d", &conninfo])
                .arg("-D")
                .arg(&member.data)
                .args(["-R", "-X", "stream", "-c", "fast"])
                .env("PGPASSWORD", &member.password);
            user.apply(&mut backup);
            output(backup, "pg_basebackup")?;
        }
    }
    Ok(())
}

/// Where it listens (TCP only), and who may connect: anyone on the server's networks with the
/// password (replication included, so a standby can be seeded from it and stream).
fn configure(member: &Member) -> Result<(), String> {
    let conf = member.data.join("postgresql.conf");
    let text =
        std::fs::read_to_string(&conf).map_err(|e| format!("reading {}: {e}", conf.display()))?;
    let marker = "# lifeboat: the copy's own settings";
    let base = text.split(marker).next().unwrap_or_default().trim_end();
    // TCP only: everything (lifeboat, pg_basebackup, clients) connects over the network,
    // and a socket path inside a deep data folder passes the 107-byte limit.
    let settings = format!(
        "{base}\n\n{marker}\nlisten_addresses = '{}'\nport = {}\nunix_socket_directories = ''\n",
        member.listen, member.port,
    );
    std::fs::write(&conf, settings).map_err(|e| format!("writing {}: {e}", conf.display()))?;
    let hba = member.data.join("pg_hba.conf");
    let text =
        std::fs::read_to_string(&hba).map_err(|e| format!("reading {}: {e}", hba.display()))?;
    let rules = "host all all samenet scram-sha-256\nhost replication all samenet scram-sha-256\n";
    if !text.contains(rules) {
        std::fs::write(&hba, format!("{text}\n# lifeboat\n{rules}"))
            .map_err(|e| format!("writing {}: {e}", hba.display()))?;
    }
    Ok(())
}

/// Who the programs run as: unchanged, or the server's user when started as root.
struct RunAs(Option<(u32, u32)>);

impl RunAs {
    fn of(os_user: &str) -> Result<RunAs, String> {
        if !nix::unistd::Uid::effective().is_root() {
            return Ok(RunAs(None));
        }
        match nix::unistd::User::from_name(os_user) {
            Ok(Some(user)) => Ok(RunAs(Some((user.uid.as_raw(), user.gid.as_raw())))),
            Ok(None) => Err(format!(
                "PostgreSQL refuses to run as root and there is no user {os_user:?} to run it \
                 as (Debian's postgresql package creates `postgres`)"
            )),
            Err(e) => Err(format!("looking up the user {os_user:?}: {e}")),
        }
    }

    fn apply(&self, command: &mut Command) {
        if let Some((uid, gid)) = self.0 {
            command.uid(uid).gid(gid);
        }
    }

    fn own(&self, path: &Path) -> Result<(), String> {
        match self.0 {
            Some((uid, gid)) => std::os::unix::fs::chown(path, Some(uid), Some(gid))
                .map_err(|e| format!("handing {} to the server's user: {e}", path.display())),
            None => Ok(()),
        }
    }
}

fn write_private(path: &Path, text: &str) -> Result<(), String> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| format!("writing {}: {e}", path.display()))?;
    file.write_all(text.as_bytes())
        .map_err(|e| format!("writing {}: {e}", path.display()))
}

fn output(mut command: Command, what: &str) -> Result<(), String> {
    let out = command
        .current_dir("/")
        .output()
        .map_err(|e| format!("running {what}: {e}"))?;
    if out.status.success() {
        return Ok(());
    }
    Err(format!(
        "{what} failed: {}{}",
        String::from_utf8_lossy(&out.stdout).trim(),
        String::from_utf8_lossy(&out.stderr).trim()
    ))
}
