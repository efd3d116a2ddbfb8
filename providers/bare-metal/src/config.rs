//! The settings of a `kind: bare-metal` provider, as read from `lifeboat.yaml`.
//!
//! Secrets never live in this file: BMC credentials name an environment variable or a
//! file, and SSH uses a key file or the agent. Every struct rejects unknown fields so a
//! typo is reported with its line and column instead of being silently ignored.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Settings of a `kind: bare-metal` provider: a pool of hosts reached over SSH, some of
/// them possibly kept powered off as cold standby behind a Redfish BMC.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BareMetalConfig {
    /// The hosts of the pool, in order of preference when several have room.
    pub hosts: Vec<HostConfig>,
    /// What happens to a host that lifeboat powered on once it runs nothing any more.
    #[serde(default)]
    pub standby: Standby,
    /// How long to wait for hosts to come up.
    #[serde(default)]
    pub timeouts: Timeouts,
}

/// One server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HostConfig {
    /// Unique name within the provider; appears in deployment handles (so no commas).
    pub name: String,
    /// SSH address, `HOST:PORT` or `HOST` (port 22).
    pub ssh: String,
    /// The login user.
    pub user: String,
    /// Private key file (OpenSSH format, unencrypted). Without it, the keys of the
    /// running ssh-agent (`SSH_AUTH_SOCK`) are tried.
    #[serde(default)]
    pub key_file: Option<PathBuf>,
    /// Which host keys are trusted.
    pub host_key: HostKeyPolicy,
    /// How much the host holds; unset dimensions are unbounded.
    #[serde(default)]
    pub capacity: HostCapacity,
    /// Free-form labels (rack, site, ...), for humans and reports.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// How workloads run on this host.
    #[serde(default)]
    pub runtime: Runtime,
    /// Where clients reach the host's workloads; the SSH host when unset.
    #[serde(default)]
    pub address: Option<String>,
    /// Folder on the host for lifeboat's bookkeeping (pid files, logs, metadata).
    /// `~/.lifeboat` when unset; a leading `~/` means the login user's home.
    #[serde(default)]
    pub state_dir: Option<String>,
    /// The host's BMC, for cold standby. Without it the host is assumed always on.
    #[serde(default)]
    pub bmc: Option<BmcConfig>,
}

/// Which SSH host keys are trusted. There is no "accept anything" setting: an unknown
/// key is refused unless trust-on-first-use is asked for, and a changed key is always
/// refused.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HostKeyPolicy {
    /// An OpenSSH `known_hosts` file (plain or hashed entries, `[host]:port` form for
    /// non-standard ports).
    pub known_hosts: PathBuf,
    /// Record the key of a host that is not in `known_hosts` yet, on first contact.
    #[serde(default)]
    pub trust_on_first_use: bool,
}

/// How much one host holds. `None` means unbounded in that dimension.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HostCapacity {
    /// Workload copies it runs at most.
    #[serde(default)]
    pub slots: Option<u64>,
    /// CPU in millicores.
    #[serde(default)]
    pub cpu_millis: Option<u64>,
    /// Memory in MiB.
    #[serde(default)]
    pub memory_mib: Option<u64>,
}

/// How a workload copy runs on a host. Every runtime names the copy after the workload
/// and the generation, so a repeated deploy finds it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Runtime {
    /// A supervised background process (setsid + nohup, pid file): works on any host
    /// with a POSIX shell. Runs commands only.
    #[default]
    Process,
    /// A transient systemd unit (`systemd-run --unit lifeboat-...`). Runs commands only.
    /// As root it is a system unit; otherwise a user unit, which needs
    /// `loginctl enable-linger USER` on the host to outlive the SSH session.
    Systemd,
    /// A podman container from the workload's image. Host networking, so the workload
    /// listens on `$PORT` of the host itself, as with the other runtimes.
    Podman,
    /// A docker container from the workload's image, host networking like `podman`.
    /// The login user must be allowed to use the docker socket.
    Docker,
}

impl Runtime {
    /// The name used in configs and messages.
    pub fn as_str(self) -> &'static str {
        match self {
            Runtime::Process => "process",
            Runtime::Systemd => "systemd",
            Runtime::Podman => "podman",
            Runtime::Docker => "docker",
        }
    }
}

/// A Redfish BMC (iDRAC, iLO, XClarity, OpenBMC, ...) that powers the host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BmcConfig {
    /// Base URL, e.g. `https://10.0.0.5` (the service root is `URL/redfish/v1`).
    pub url: String,
    /// The `ComputerSystem` id under `/redfish/v1/Systems/`.
    pub system_id: String,
    /// Where the credentials come from.
    pub credentials: BmcCredentials,
    /// A PEM CA bundle that signs the BMC's certificate (BMCs mostly have their own).
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// Skip TLS verification. Only when set explicitly; never the default.
    #[serde(default)]
    pub insecure: bool,
}

/// BMC credentials, read at each use (so a rotation needs no restart). Each of user
/// name and password comes from exactly one of an environment variable or a file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BmcCredentials {
    /// Environment variable holding the user name.
    #[serde(default)]
    pub username_env: Option<String>,
    /// File holding the user name (trailing newline ignored).
    #[serde(default)]
    pub username_file: Option<PathBuf>,
    /// Environment variable holding the password.
    #[serde(default)]
    pub password_env: Option<String>,
    /// File holding the password (trailing newline ignored).
    #[serde(default)]
    pub password_file: Option<PathBuf>,
}

/// What happens to a host that lifeboat powered on, once it runs nothing any more.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Standby {
    /// Leave it on (faster next time, costs power).
    #[default]
    Keep,
    /// Power it back off through its BMC. Hosts that were on before lifeboat touched
    /// them are never powered off.
    PowerOff,
}

/// Waiting limits for hosts coming up and going down.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Timeouts {
    /// From the Redfish `On` request until `PowerState` reads `On`.
    #[serde(with = "duration")]
    pub power_on: Duration,
    /// From `PowerState: On` until SSH accepts our login (boot time).
    #[serde(with = "duration")]
    pub ssh_ready: Duration,
    /// One SSH or Redfish connection attempt. (Workload health checks have the
    /// contract's own deadline, `lifeboat_provider::health::DEFAULT_TIMEOUT`.)
    #[serde(with = "duration")]
    pub connect: Duration,
    /// From `GracefulShutdown` until `PowerState` reads `Off`; then `ForceOff`.
    #[serde(with = "duration")]
    pub power_off: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            power_on: Duration::from_secs(120),
            ssh_ready: Duration::from_secs(600),
            connect: Duration::from_secs(10),
            power_off: Duration::from_secs(300),
        }
    }
}

/// Friendly durations (`10s`, `2m`, `1h 30m`), the same syntax as the rest of
/// `lifeboat.yaml`.
mod duration {
    use super::*;

    pub fn parse(text: &str) -> Result<Duration, String> {
        let signed: jiff::SignedDuration = text
            .trim()
            .parse()
            .map_err(|_| format!("invalid duration {text:?} (expected e.g. \"10s\", \"2m\")"))?;
        Duration::try_from(signed).map_err(|_| format!("duration {text:?} must not be negative"))
    }

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        let signed = jiff::SignedDuration::try_from(*d).unwrap_or(jiff::SignedDuration::MAX);
        s.serialize_str(&format!("{signed:#}"))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        parse(&String::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}

/// A host's SSH address split into host and port.
pub(crate) fn split_address(address: &str) -> Option<(String, u16)> {
    let address = address.trim();
    if let Some(rest) = address.strip_prefix('[') {
        // `[v6]:port` or `[v6]`
        let (host, tail) = rest.split_once(']')?;
        let port = match tail.strip_prefix(':') {
            Some(p) => p.parse().ok()?,
            None if tail.is_empty() => 22,
            None => return None,
        };
        return (!host.is_empty()).then(|| (host.to_owned(), port));
    }
    match address.rsplit_once(':') {
        Some((host, port)) if !host.contains(':') => {
            let port = port.parse().ok()?;
            (!host.is_empty()).then(|| (host.to_owned(), port))
        }
        // A bare IPv6 address has several colons and no port.
        Some(_) => Some((address.to_owned(), 22)),
        None => (!address.is_empty()).then(|| (address.to_owned(), 22)),
    }
}

/// Checks what serde cannot: unique host names usable in handles, parsable addresses,
/// exactly one source per credential, and TLS settings that do not contradict.
pub(crate) fn validate(config: &BareMetalConfig) -> Result<(), String> {
    if config.hosts.is_empty() {
        return Err("a bare-metal provider needs at least one host".into());
    }
    let mut seen = std::collections::BTreeSet::new();
    for host in &config.hosts {
        let name = &host.name;
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        {
            return Err(format!(
                "host name {name:?} must be letters, digits, '-', '_' or '.'"
            ));
        }
        if !seen.insert(name.as_str()) {
            return Err(format!("host name {name:?} appears twice"));
        }
        if split_address(&host.ssh).is_none() {
            return Err(format!(
                "host {name}: ssh address {:?} is not HOST or HOST:PORT",
                host.ssh
            ));
        }
        if host.user.is_empty() {
            return Err(format!("host {name}: user must not be empty"));
        }
        if let Some(bmc) = &host.bmc {
            if !(bmc.url.starts_with("https://") || bmc.url.starts_with("http://")) {
                return Err(format!(
                    "host {name}: bmc url must start with https:// or http://"
                ));
            }
            if bmc.system_id.is_empty() || bmc.system_id.contains('/') {
                return Err(format!(
                    "host {name}: bmc system_id must be one path segment"
                ));
            }
            if bmc.insecure && bmc.ca_file.is_some() {
                return Err(format!(
                    "host {name}: bmc has both ca_file and insecure: true"
                ));
            }
            let c = &bmc.credentials;
            if c.username_env.is_some() == c.username_file.is_some() {
                return Err(format!(
                    "host {name}: bmc credentials need exactly one of username_env and username_file"
                ));
            }
            if c.password_env.is_some() == c.password_file.is_some() {
                return Err(format!(
                    "host {name}: bmc credentials need exactly one of password_env and password_file"
                ));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_split_into_host_and_port() {
        let cases = [
            ("10.0.0.5:2222", Some(("10.0.0.5", 2222))),
            ("node-a", Some(("node-a", 22))),
            ("[::1]:2200", Some(("::1", 2200))),
            ("[::1]", Some(("::1", 22))),
            ("fe80::1", Some(("fe80::1", 22))),
            ("host:notaport", None),
            (":22", None),
            ("", None),
            ("[]:22", None),
        ];
        for (input, want) in cases {
            let got = split_address(input);
            assert_eq!(
                got,
                want.map(|(h, p)| (h.to_owned(), p)),
                "split_address({input:?})"
            );
        }
    }

    #[test]
    fn durations_read_friendly_strings_and_refuse_negatives() {
        assert_eq!(duration::parse("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(duration::parse("2m"), Ok(Duration::from_secs(120)));
        assert!(duration::parse("-5s").is_err());
        assert!(duration::parse("soon").is_err());
    }
}
