//! Tests of the user-data renderer: the rendered script is run by a real `/bin/sh`
//! with stand-ins for docker and systemd-run that record the arguments they get.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use lifeboat_provider::{Generation, Owner, Resources, WorkloadSpec};

use super::*;

fn request(run: Run, env: &[(&str, &str)], port: Option<u16>) -> DeployRequest {
    DeployRequest {
        workload: WorkloadSpec {
            name: "api".into(),
            run,
            env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            port,
            resources: Resources::default(),
            replicas: 1,
            health: None,
            extra: BTreeMap::new(),
        },
        generation: Generation(7),
        owner: Owner::installation("test"),
    }
}

/// Runs `script` with `fake` on PATH as a recorder; returns the recorded argv lines.
fn run_with_fake(script: &str, fake: &str) -> Vec<String> {
    let dir = tempfile::tempdir().unwrap();
    let record = dir.path().join("argv");
    let stub = dir.path().join(fake);
    std::fs::write(
        &stub,
        format!(
            "#!/bin/sh\nfor a in \"$@\"; do printf '%s\\n' \"$a\" >> '{}'; done\n",
            record.display()
        ),
    )
    .unwrap();
    chmod_x(&stub);
    let out = Command::new("/bin/sh")
        .arg("-c")
        .arg(script)
        .env("PATH", format!("{}:/usr/bin:/bin", dir.path().display()))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::read_to_string(record)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect()
}

fn chmod_x(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

fn s(v: &[&str]) -> Vec<String> {
    v.iter().map(|x| x.to_string()).collect()
}

#[test]
fn image_runs_through_docker_with_env_port_and_generation() {
    let req = request(
        Run::Image {
            image: "ghcr.io/acme/api:1.4".into(),
            command: s(&["/srv/api", "--listen", "0.0.0.0:8080"]),
        },
        &[("GREETING", "it's a $HOME `test`")],
        Some(8080),
    );
    let script = render_user_data(&req).unwrap();
    assert!(script.starts_with("#!/bin/sh\n"));
    let argv = run_with_fake(&script, "docker");
    assert_eq!(
        argv,
        s(&[
            "run",
            "--detach",
            "--restart=always",
            "--network=host",
            "--name",
            "lifeboat-api-g7",
            "--env",
            "GREETING=it's a $HOME `test`",
            "--env",
            "LIFEBOAT_GENERATION=7",
            "--env",
            "PORT=8080",
            "--entrypoint",
            "/srv/api",
            "ghcr.io/acme/api:1.4",
            "--listen",
            "0.0.0.0:8080",
        ])
    );
}

#[test]
fn podman_is_used_when_docker_is_missing() {
    let req = request(
        Run::Image {
            image: "busybox".into(),
            command: vec![],
        },
        &[],
        None,
    );
    let argv = run_with_fake(&render_user_data(&req).unwrap(), "podman");
    assert_eq!(argv.last().map(String::as_str), Some("busybox"));
    assert!(argv.contains(&"LIFEBOAT_GENERATION=7".to_string()));
    assert!(!argv.contains(&"--entrypoint".to_string()));
}

#[test]
fn command_runs_under_systemd_with_its_env() {
    let req = request(
        Run::Command {
            command: s(&["/usr/bin/python3", "-m", "http.server", "9000"]),
        },
        &[("PORT", "9000"), ("MODE", "a b")],
        Some(8080),
    );
    let argv = run_with_fake(&render_user_data(&req).unwrap(), "systemd-run");
    assert_eq!(
        argv,
        s(&[
            "--unit=lifeboat-api-g7",
            "--property=Restart=always",
            "--setenv=LIFEBOAT_GENERATION=7",
            "--setenv=MODE=a b",
            // The workload's own PORT wins over the declared port.
            "--setenv=PORT=9000",
            "--",
            "/usr/bin/python3",
            "-m",
            "http.server",
            "9000",
        ])
    );
}

#[test]
fn bad_workloads_are_refused_with_a_reason() {
    let bad_env = request(
        Run::Command {
            command: s(&["true"]),
        },
        &[("NOT-VALID", "x")],
        None,
    );
    assert!(
        render_user_data(&bad_env)
            .unwrap_err()
            .contains("NOT-VALID")
    );
    let empty = request(Run::Command { command: vec![] }, &[], None);
    assert!(render_user_data(&empty).unwrap_err().contains("empty"));
    let huge = request(
        Run::Command {
            command: s(&["true"]),
        },
        &[("BIG", &"x".repeat(MAX_USER_DATA))],
        None,
    );
    assert!(render_user_data(&huge).unwrap_err().contains("16384"));
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(48))]
    #[test]
    fn quoting_gives_back_exactly_the_input(text in "[^\u{0}]{0,40}") {
        let out = Command::new("/bin/sh")
            .arg("-c")
            .arg(format!("printf %s {}", sh_quote(&text)))
            .output()
            .unwrap();
        proptest::prop_assert_eq!(String::from_utf8_lossy(&out.stdout), text);
    }
}
