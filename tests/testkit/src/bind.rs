//! BIND 9 as a real DNS peer: a primary that accepts TSIG-signed dynamic updates, and
//! secondaries that follow it by zone transfer. Each server runs in the foreground
//! (`named -g`) on 127.0.0.1 and a port free for both UDP and TCP, in its own temporary
//! folder with a fresh zone file, and stops when dropped.
//!
//! The tools of `bind9-dnsutils` give tests an independent view: [`Bind::dig`] reads a
//! record without going through lifeboat, [`Bind::nsupdate`] changes one behind its back.
//! Installed by `tests/peers/install.d/bind.sh`.

use std::io::Write;
use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{Context, Result, bail};

use crate::{Peer, system_bin};

/// The zone every test server holds unless told otherwise.
pub const ZONE: &str = "example.test";

/// How long a server may take to load its zone (named starts in well under a second
/// here; the margin is for a loaded machine).
const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// A port on 127.0.0.1 free for both TCP and UDP a moment ago (DNS listens on both).
pub fn free_dns_port() -> u16 {
    loop {
        let tcp = TcpListener::bind("127.0.0.1:0").expect("binding 127.0.0.1:0");
        let port = tcp
            .local_addr()
            .expect("a bound socket has an address")
            .port();
        if UdpSocket::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

/// A TSIG key made fresh for one test run by `tsig-keygen`.
#[derive(Clone)]
pub struct TsigKey {
    /// The key's name.
    pub name: String,
    /// `hmac-sha256`, `hmac-sha512`, ...
    pub algorithm: String,
    /// The base64 secret.
    pub secret: String,
}

impl std::fmt::Debug for TsigKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "TsigKey({} {})", self.name, self.algorithm)
    }
}

impl TsigKey {
    /// Generates a key with BIND's own tool.
    pub fn generate(name: &str, algorithm: &str) -> Result<TsigKey> {
        let keygen = system_bin("/usr/sbin/tsig-keygen", "bind9")?;
        let out = Command::new(keygen)
            .args(["-a", algorithm, name])
            .output()
            .context("running tsig-keygen")?;
        if !out.status.success() {
            bail!(
                "tsig-keygen failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let text = String::from_utf8(out.stdout)?;
        let secret = text
            .split("secret \"")
            .nth(1)
            .and_then(|rest| rest.split('"').next())
            .context("tsig-keygen printed no secret")?;
        Ok(TsigKey {
            name: name.to_owned(),
            algorithm: algorithm.to_owned(),
            secret: secret.to_owned(),
        })
    }

    /// The key as a BIND `key` clause (also the format of a key file).
    pub fn clause(&self) -> String {
        format!(
            "key \"{}\" {{ algorithm {}; secret \"{}\"; }};\n",
            self.name, self.algorithm, self.secret
        )
    }

    /// Writes the bare base64 secret to `path` (what a `secret_file` holds).
    pub fn write_secret(&self, path: &std::path::Path) -> Result<()> {
        std::fs::write(path, format!("{}\n", self.secret))
            .with_context(|| format!("writing {}", path.display()))
    }
}

/// One running `named`.
pub struct Bind {
    peer: Peer,
    port: u16,
    /// The zone it serves.
    pub zone: String,
    /// The key it accepts for updates and transfers.
    pub key: TsigKey,
}

impl Bind {
    /// Starts a primary for `zone` with a fresh zone file (SOA serial 1, NS, `ns1`, plus
    /// `records` in zone-file syntax), granting `key` updates of every name in the zone
    /// and zone transfers, and notifying secondaries at `notify_ports` of each change.
    pub fn primary(
        zone: &str,
        key: &TsigKey,
        records: &[&str],
        port: u16,
        notify_ports: &[u16],
    ) -> Result<Bind> {
        let dir = Peer::prepare_dir()?;
        let zone_file = format!(
            "$TTL 300\n\
             @ IN SOA ns1.{zone}. hostmaster.{zone}. ( 1 60 30 86400 30 )\n\
             @ IN NS ns1.{zone}.\n\
             ns1 IN A 127.0.0.1\n{}\n",
            records.join("\n")
        );
        std::fs::write(dir.path().join(format!("{zone}.zone")), zone_file)?;
        let notify = if notify_ports.is_empty() {
            "notify no;".to_owned()
        } else {
            let targets: String = notify_ports
                .iter()
                .map(|p| format!("127.0.0.1 port {p}; "))
                .collect();
            // notify-delay 0: tell secondaries at once (BIND waits 5 s by default).
            format!("notify explicit; notify-delay 0; also-notify {{ {targets}}};")
        };
        let zone_clause = format!(
            "zone \"{zone}\" {{\n  type primary;\n  file \"{zone}.zone\";\n  \
             update-policy {{ grant {name} zonesub ANY; }};\n  \
             allow-transfer {{ key {name}; }};\n  {notify}\n}};\n",
            name = key.name
        );
        Bind::start("named-primary", dir, zone, key, port, &zone_clause)
    }

    /// Starts a secondary that transfers `primary`'s zone (signed with its key) and
    /// answers once it holds a copy.
    pub fn secondary(primary: &Bind, port: u16) -> Result<Bind> {
        let dir = Peer::prepare_dir()?;
        let zone = &primary.zone;
        let zone_clause = format!(
            "zone \"{zone}\" {{\n  type secondary;\n  file \"{zone}.db\";\n  \
             primaries {{ 127.0.0.1 port {} key {}; }};\n  notify no;\n}};\n",
            primary.port, primary.key.name
        );
        Bind::start(
            "named-secondary",
            dir,
            zone,
            &primary.key,
            port,
            &zone_clause,
        )
    }

    fn start(
        name: &str,
        dir: tempfile::TempDir,
        zone: &str,
        key: &TsigKey,
        port: u16,
        zone_clause: &str,
    ) -> Result<Bind> {
        let named = system_bin("/usr/sbin/named", "bind9")?;
        let d = dir.path().display();
        let conf = format!(
            "options {{\n  directory \"{d}\";\n  pid-file \"{d}/named.pid\";\n  \
             session-keyfile \"{d}/session.key\";\n  managed-keys-directory \"{d}\";\n  \
             listen-on port {port} {{ 127.0.0.1; }};\n  listen-on-v6 {{ none; }};\n  \
             recursion no;\n  dnssec-validation no;\n  allow-query {{ any; }};\n}};\n\
             controls {{ }};\n{}{zone_clause}",
            key.clause()
        );
        let conf_path: PathBuf = dir.path().join("named.conf");
        std::fs::write(&conf_path, conf)?;
        let mut command = Command::new(named);
        // -g: foreground, logs to stderr; -n 1: one worker thread (2-core machines).
        command.arg("-g").args(["-n", "1", "-c"]).arg(&conf_path);
        let peer = Peer::start(name, dir, command)?;
        let mut bind = Bind {
            peer,
            port,
            zone: zone.to_owned(),
            key: key.clone(),
        };
        let probe = BindProbe {
            port,
            zone: zone.to_owned(),
        };
        bind.peer
            .wait_until(READY_TIMEOUT, || probe.serial().is_ok())?;
        Ok(bind)
    }

    /// Where it listens (UDP and TCP).
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The answers to `NAME TYPE` as `dig +short` prints them (an independent read).
    pub fn dig(&self, name: &str, rtype: &str) -> Result<Vec<String>> {
        dig(self.port, name, rtype)
    }

    /// The zone's current SOA serial.
    pub fn serial(&self) -> Result<u32> {
        BindProbe {
            port: self.port,
            zone: self.zone.clone(),
        }
        .serial()
    }

    /// Runs `nsupdate` against this server, signed with `key`, with `commands` between
    /// the `server`/`zone` lines and `send` (e.g. `update delete app.example.test A`).
    pub fn nsupdate(&self, key: &TsigKey, commands: &str) -> Result<()> {
        let nsupdate = system_bin("/usr/bin/nsupdate", "bind9-dnsutils")?;
        // The key goes in a file, so it shows in no process list.
        let key_file = self.peer.path().join(format!("nsupdate-{}.key", key.name));
        std::fs::write(&key_file, key.clause())?;
        let mut child = Command::new(nsupdate)
            .arg("-k")
            .arg(&key_file)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .context("starting nsupdate")?;
        let script = format!(
            "server 127.0.0.1 {}\nzone {}\n{commands}\nsend\n",
            self.port, self.zone
        );
        child
            .stdin
            .take()
            .context("nsupdate stdin")?
            .write_all(script.as_bytes())?;
        let out = child.wait_with_output()?;
        if !out.status.success() {
            bail!(
                "nsupdate failed: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(())
    }

    /// named's log so far.
    pub fn log(&self) -> String {
        self.peer.log_text()
    }

    /// The server's private folder.
    pub fn path(&self) -> &std::path::Path {
        self.peer.path()
    }
}

/// What the readiness check needs, apart from the running peer.
struct BindProbe {
    port: u16,
    zone: String,
}

impl BindProbe {
    fn serial(&self) -> Result<u32> {
        let soa = dig(self.port, &self.zone, "SOA")?;
        let line = soa.first().context("no SOA answer yet")?;
        line.split_whitespace()
            .nth(2)
            .and_then(|s| s.parse().ok())
            .with_context(|| format!("unexpected SOA answer {line:?}"))
    }
}

fn dig(port: u16, name: &str, rtype: &str) -> Result<Vec<String>> {
    let dig = system_bin("/usr/bin/dig", "bind9-dnsutils")?;
    let out = Command::new(dig)
        .args([
            "+short",
            "+norecurse",
            "+time=2",
            "+tries=1",
            "@127.0.0.1",
            "-p",
        ])
        .arg(port.to_string())
        .args([name, rtype])
        .output()
        .context("running dig")?;
    let text = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() || text.contains(";;") {
        bail!("dig {name} {rtype} on port {port} failed: {text}");
    }
    Ok(text.lines().map(str::to_owned).collect())
}
