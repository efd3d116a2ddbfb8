//! Shared set-up of the EC2 end-to-end tests: moto's EC2 server with the fault proxy in
//! front of it, a copy of `examples/ec2-to-local.yaml` pointed at them, and the built
//! `lifeboat` binary run as a daemon or a drill with credentials from the standard AWS
//! environment variables. Everything a test starts is stopped when its guard drops,
//! the workloads the binary started included, also when the test fails.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use aws_config::{BehaviorVersion, Region};
use aws_credential_types::Credentials;
use lifeboat::config::AdapterConfig;
use lifeboat::providers::{BuildOptions, build_one};
use lifeboat_provider::{DeploymentRef, Provider};
use lifeboat_provider_aws_ec2::{Ec2Config, Ec2Provider};
use lifeboat_testkit::moto::{AMI, Moto, Proxy, REGION};
use serde_json::Value;

/// The example every test runs.
pub const EXAMPLE: &str = "examples/ec2-to-local.yaml";
/// Its EC2 provider and its escape.
pub const EC2: &str = "aws-eu";
/// The local provider of the example.
pub const LOCAL: &str = "here";
/// The example's workloads, in name order.
pub const WORKLOADS: [&str; 2] = ["api", "web"];

/// The credentials the spawned binaries get through the environment.
pub const ACCESS_KEY: &str = "AKIDLIFEBOATENDTOEND";
/// Long and unusual, so a match in a log is a leak and nothing else.
pub const SECRET: &str = "lifeboatE2E/K7MDENG/bPxRfiCYsecretKEY0123456789";
/// A session token, for the test that sets one.
pub const SESSION_TOKEN: &str = "FwoGZXIvYXdzElifeboatE2EsessionTOKEN9876543210";

/// How long a test waits for the daemon to reach a state before it gives up. Generous:
/// the machine is shared and moto is slow on its first calls.
pub const PATIENCE: Duration = Duration::from_secs(240);

/// moto and the fault proxy in front of it.
pub struct Aws {
    /// moto's EC2 server.
    pub moto: Moto,
    /// mitmproxy with the fault addon, forwarding to moto.
    pub proxy: Proxy,
}

impl Aws {
    /// Starts both and warms moto up (its first EC2 call loads the backend, ~2 s).
    pub async fn start() -> Result<Aws> {
        let moto = Moto::start()?;
        let proxy = Proxy::start(moto.port)?;
        let aws = Aws { moto, proxy };
        let mut warm = adapter_config(&aws.proxy.url());
        warm.operation_timeout = Some(Duration::from_secs(60));
        ec2(warm).await?.probe().await.context("warming moto up")?;
        Ok(aws)
    }

    /// An adapter straight to moto (no proxy), with the test's credentials: the test's
    /// own view of what runs in the account.
    pub async fn direct(&self) -> Result<Ec2Provider> {
        let mut config = adapter_config(&self.moto.url());
        config.operation_timeout = Some(Duration::from_secs(30));
        ec2(config).await
    }

    /// The instances lifeboat manages in moto now (pending, running, stopping, stopped),
    /// of every owner the state folder `state` knows (the daemon, each drill).
    pub async fn managed(&self, state: &Path) -> Result<Vec<DeploymentRef>> {
        let direct = self.direct().await?;
        let mut all = Vec::new();
        for owner in lifeboat::installation::known_owners(state)? {
            all.extend(direct.list_managed(owner.as_ref()).await?);
        }
        Ok(all)
    }
}

/// The EC2 adapter settings the tests use against `endpoint`.
pub fn adapter_config(endpoint: &str) -> Ec2Config {
    let mut config = Ec2Config::new(REGION, AMI, "t3.small");
    config.endpoint_url = Some(endpoint.to_owned());
    config
}

/// An adapter with the test's credentials, given in code rather than the environment
/// (tests share one process; the environment is the spawned binaries' way).
pub async fn ec2(config: Ec2Config) -> Result<Ec2Provider> {
    let sdk = aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new(REGION))
        .credentials_provider(Credentials::new(ACCESS_KEY, SECRET, None, None, "tests"))
        .load()
        .await;
    Ok(Ec2Provider::with_sdk_config("ec2-e2e", config, &sdk)?)
}

/// How the copy of the example is changed for a test.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Policy {
    /// The example's own policy (10 s probes, 2 min grace).
    AsWritten,
    /// Probes every 3 s and short steps, so a daemon test ends in seconds.
    Fast,
}

/// A temporary folder with a copy of the example pointed at `endpoint`: moto's AMI and
/// region, a free port range, the endpoints file and the state inside the folder.
pub struct Setup {
    /// The folder (removed on drop).
    pub dir: tempfile::TempDir,
    /// The config file in it.
    pub config: PathBuf,
    /// The state folder the config names.
    pub state: PathBuf,
    /// The endpoints file the config names.
    pub endpoints: PathBuf,
}

impl Setup {
    /// Writes the copy.
    pub fn new(endpoint: &str, policy: Policy) -> Result<Setup> {
        let dir = tempfile::Builder::new()
            .prefix("lifeboat-ec2-e2e-")
            .tempdir()?;
        let example = lifeboat_testkit::repo_root().join(EXAMPLE);
        let text = std::fs::read_to_string(&example)
            .with_context(|| format!("reading {}", example.display()))?;
        let mut yaml: serde_yaml::Value = serde_yaml::from_str(&text)?;
        let state = dir.path().join("state");
        let endpoints = dir.path().join("endpoints.json");
        let first = lifeboat_testkit::free_port().min(u16::MAX - 40);

        let providers = yaml["providers"]
            .as_sequence_mut()
            .context("the example has providers")?;
        for provider in providers {
            let adapter = &mut provider["adapter"];
            match adapter["kind"].as_str() {
                Some("aws-ec2") => {
                    adapter["endpoint_url"] = endpoint.into();
                    adapter["region"] = REGION.into();
                    adapter["image_id"] = AMI.into();
                    if policy == Policy::Fast {
                        // Under the shortened probe timeout, as the example's is.
                        adapter["operation_timeout"] = "2500ms".into();
                    }
                }
                Some("local") => adapter["ports"] = format!("{first}-{}", first + 39).into(),
                other => bail!("unexpected adapter kind {other:?} in the example"),
            }
        }
        // Fixed workload ports move into the free range too (the local provider may
        // insist on a workload's own port).
        let workloads = yaml["workloads"]
            .as_sequence_mut()
            .context("the example has workloads")?;
        for (i, workload) in workloads.iter_mut().enumerate() {
            // A drill's prober requests every public name, and while a workload runs on
            // EC2 its name points at a moto instance address, which is not on this
            // machine. Test traffic stays on loopback, so these tests measure the moves,
            // not the downtime.
            if let Some(m) = workload.as_mapping_mut() {
                m.remove("public_name");
            }
            if workload.get("port").is_some() {
                let port = first + u16::try_from(i).unwrap_or(0);
                workload["port"] = port.into();
            }
        }
        yaml["cutover"]["path"] = endpoints.to_string_lossy().as_ref().into();
        yaml["state_dir"] = state.to_string_lossy().as_ref().into();
        if policy == Policy::Fast {
            let p = &mut yaml["policy"];
            p["probe_interval"] = "3s".into();
            p["probe_timeout"] = "3s".into();
            p["unreachable_grace"] = "10s".into();
            p["step_timeout"] = "30s".into();
        }
        let config = dir.path().join("lifeboat.yaml");
        std::fs::write(&config, serde_yaml::to_string(&yaml)?)?;
        Ok(Setup {
            dir,
            config,
            state,
            endpoints,
        })
    }

    /// The validated config, as the binary reads it.
    pub fn load(&self) -> Result<lifeboat::config::Config> {
        lifeboat::config::load(&self.config).map_err(|e| anyhow::anyhow!("{e}"))
    }
}

/// The `lifeboat` binary with the environment the tests give it: credentials from the
/// standard AWS variables only (no profile files, no instance metadata), and nothing
/// of the machine's own AWS settings.
pub fn lifeboat(session_token: bool) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_lifeboat"));
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("AWS_") {
            command.env_remove(&key);
        }
    }
    command
        .env("AWS_ACCESS_KEY_ID", ACCESS_KEY)
        .env("AWS_SECRET_ACCESS_KEY", SECRET)
        .env("AWS_CONFIG_FILE", "/nonexistent/lifeboat-e2e")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/lifeboat-e2e")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("NO_PROXY", "127.0.0.1,localhost")
        .env_remove("LIFEBOAT_LOG")
        // Concurrent tests each run a daemon: each API gets a port of its own.
        .env("LIFEBOAT_API_LISTEN", "127.0.0.1:0")
        .stdin(Stdio::null());
    if session_token {
        command.env("AWS_SESSION_TOKEN", SESSION_TOKEN);
    }
    command
}

/// `lifeboat status --json` for a state folder; `None` while there is no state yet.
pub fn status(state: &Path) -> Option<Value> {
    let out = Command::new(env!("CARGO_BIN_EXE_lifeboat"))
        .args(["status", "--json", "--state"])
        .arg(state)
        .stdin(Stdio::null())
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    serde_json::from_slice(&out.stdout).ok()
}

/// The provider of each placed workload, as `status --json` shows it.
pub fn placed_on(status: &Value) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = status["placements"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|p| {
            Some((
                p["workload"].as_str()?.to_owned(),
                p["provider"].as_str()?.to_owned(),
            ))
        })
        .collect();
    out.sort();
    out
}

/// Whether every workload of the example is placed on `provider`.
pub fn all_on(status: &Value, provider: &str) -> bool {
    let placed = placed_on(status);
    placed.len() == WORKLOADS.len()
        && placed
            .iter()
            .zip(WORKLOADS)
            .all(|((w, p), want)| w == want && p == provider)
}

/// The condition `status --json` shows for `provider` (`healthy`, `suspended`, ...).
pub fn condition_of(status: &Value, provider: &str) -> Option<String> {
    status["providers"]
        .as_array()?
        .iter()
        .find(|p| p["provider"] == provider)
        .and_then(|p| p["condition"]["condition"].as_str())
        .map(str::to_owned)
}

/// A running binary (daemon or drill), its stderr captured to a file. Dropping it
/// stops it (SIGTERM, then SIGKILL) and retires every local copy its state folder
/// records, so no workload outlives the test.
pub struct Running {
    child: Option<Child>,
    log: PathBuf,
    state: PathBuf,
    config: PathBuf,
}

impl Running {
    /// Starts `lifeboat ARGS` for `setup`; stderr goes to `DIR/NAME.log`.
    pub fn start(setup: &Setup, name: &str, mut command: Command) -> Result<Running> {
        let log = setup.dir.path().join(format!("{name}.log"));
        let err = std::fs::File::create(&log)?;
        let out = std::fs::File::create(setup.dir.path().join(format!("{name}.out")))?;
        let child = command
            .stdout(out)
            .stderr(err)
            .spawn()
            .context("starting lifeboat")?;
        Ok(Running {
            child: Some(child),
            log,
            state: setup.state.clone(),
            config: setup.config.clone(),
        })
    }

    /// Starts `lifeboat run` on `setup`'s config with the log filter `log`.
    pub fn daemon(setup: &Setup, log: &str, session_token: bool) -> Result<Running> {
        let mut command = lifeboat(session_token);
        command.args(["run", "--log", log, "-c"]).arg(&setup.config);
        Running::start(setup, "daemon", command)
    }

    /// The captured stderr so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Polls `status --json` until `done` holds; fails with the log after [`PATIENCE`]
    /// or when the process exits first.
    pub fn wait_for(&mut self, what: &str, done: impl Fn(&Value) -> bool) -> Result<Value> {
        let start = Instant::now();
        let mut last = None;
        loop {
            if let Some(status) = status(&self.state) {
                if done(&status) {
                    return Ok(status);
                }
                last = Some(status);
            }
            if let Some(child) = &mut self.child
                && let Some(exit) = child.try_wait()?
            {
                bail!(
                    "lifeboat exited ({exit}) before {what}; last status {last:#?}\n{}",
                    self.log_text()
                );
            }
            if start.elapsed() > PATIENCE {
                bail!(
                    "not {what} after {PATIENCE:?}; last status {last:#?}\n{}",
                    self.log_text()
                );
            }
            std::thread::sleep(Duration::from_millis(300));
        }
    }

    /// Waits for the process to exit on its own, killing it after `patience`.
    pub fn wait(&mut self, patience: Duration) -> Result<ExitStatus> {
        let child = self.child.as_mut().context("already stopped")?;
        let start = Instant::now();
        loop {
            if let Some(exit) = child.try_wait()? {
                self.child = None;
                return Ok(exit);
            }
            if start.elapsed() > patience {
                bail!(
                    "lifeboat still running after {patience:?}\n{}",
                    self.log_text()
                );
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Stops it the way an operator does (SIGTERM), killing it if it does not exit
    /// within 30 s. Returns how it exited.
    pub fn stop(&mut self) -> Option<ExitStatus> {
        let mut child = self.child.take()?;
        if let Ok(pid) = i32::try_from(child.id()) {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGTERM,
            );
        }
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(30) {
            if let Ok(Some(exit)) = child.try_wait() {
                return Some(exit);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = child.kill();
        child.wait().ok()
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.stop();
        // The local copies run in their own process groups and outlive lifeboat on
        // purpose; retire them through the adapter that started them. A thread of its
        // own, because the test may be dropping this inside an async runtime.
        let (config, state) = (self.config.clone(), self.state.clone());
        let cleaner = std::thread::spawn(move || retire_local_copies(&config, &state));
        if let Ok(Err(e)) = cleaner.join() {
            eprintln!("cleaning up local copies: {e:#}");
        }
    }
}

/// Retires every copy the local providers of `config` record, under the daemon's state
/// folder and the drill's.
pub fn retire_local_copies(config: &Path, state: &Path) -> Result<()> {
    let config = lifeboat::config::load(config).map_err(|e| anyhow::anyhow!("{e}"))?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        for dir in [state.to_owned(), state.join("drill")] {
            for provider in &config.providers {
                if !matches!(provider.adapter, AdapterConfig::Local(_)) {
                    continue;
                }
                let built =
                    build_one(provider, &dir, |p| p.to_owned(), &BuildOptions::default()).await?;
                for owner in lifeboat::installation::known_owners(state)? {
                    for copy in built.list_managed(owner.as_ref()).await? {
                        built.retire(&copy).await?;
                    }
                }
            }
        }
        Ok(())
    })
}

/// The copies the local provider of the example holds under `state`.
pub async fn local_copies(setup: &Setup, state: &Path) -> Result<Vec<DeploymentRef>> {
    let config = setup.load()?;
    let provider = config
        .provider(LOCAL)
        .context("the example's local provider")?;
    let built = build_one(provider, state, |p| p.to_owned(), &BuildOptions::default()).await?;
    // `state` is the daemon's folder or the drill's below it; either way every owner
    // of the installation counts.
    let root = if state.ends_with(lifeboat::drill::cleanup::STATE_SUBDIR) {
        state.parent().unwrap_or(state)
    } else {
        state
    };
    let mut all = Vec::new();
    for owner in lifeboat::installation::known_owners(root)? {
        all.extend(built.list_managed(owner.as_ref()).await?);
    }
    Ok(all)
}

/// Fails when `text` holds the secret key or the session token.
pub fn assert_no_secret(what: &str, text: &str) {
    for secret in [SECRET, SESSION_TOKEN] {
        assert!(!text.contains(secret), "a credential leaked into {what}");
    }
}
