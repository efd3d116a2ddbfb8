use super::*;
use proptest::prelude::*;
use std::process::Command;

fn sh(script: &str) -> (bool, String) {
    let out = Command::new("sh")
        .arg("-c")
        .arg(script)
        .output()
        .expect("sh runs");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

fn copy<'a>(run: &'a Run, health: Option<&'a HealthCheck>) -> Start<'a> {
    Start {
        workload: "web",
        generation: Generation(3),
        run,
        env: BTreeMap::from([
            ("LIFEBOAT_GENERATION".into(), "3".into()),
            ("GREETING".into(), "it's here".into()),
        ]),
        resources: Resources {
            cpu_millis: 250,
            memory_mib: 64,
        },
        port: Some(8080),
        health,
    }
}

#[test]
fn a_process_copy_starts_once_lists_and_stops() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().to_str().unwrap();
    let run = Run::Command {
        command: vec![
            "sh".into(),
            "-c".into(),
            "echo \"$GREETING\" > out; exec sleep 600".into(),
        ],
    };
    let health = HealthCheck::Http {
        path: "/healthz".into(),
    };
    let script = start_script(Runtime::Process, state, &copy(&run, Some(&health))).unwrap();

    assert_eq!(sh(&script), (true, "started\n".into()));
    assert_eq!(
        sh(&script),
        (true, "existing\n".into()),
        "a second start finds the first"
    );

    let (ok, listing) = sh(&list_script(Runtime::Process, state));
    assert!(ok);
    let listed = parse_list(&listing);
    assert_eq!(
        listed,
        [Listed {
            workload: "web".into(),
            generation: Generation(3),
            resources: Resources {
                cpu_millis: 250,
                memory_mib: 64
            },
            port: Some(8080),
            health: Some(health.clone()),
            running: true,
        }]
    );
    // The environment reached the process intact, quotes and all.
    let copy_dir = dir.path().join("web-g3");
    let pid: i32 = std::fs::read_to_string(copy_dir.join("pid"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let mut greeting = String::new();
    for _ in 0..100 {
        greeting = std::fs::read_to_string(copy_dir.join("out")).unwrap_or_default();
        if !greeting.is_empty() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert_eq!(greeting, "it's here\n");

    let (ok, out) = sh(&stop_script(
        Runtime::Process,
        state,
        "web",
        Generation(3),
        true,
    ));
    assert!(ok);
    assert_eq!(out, "remaining=0\n");
    assert!(!copy_dir.exists());
    // Gone, or a zombie waiting for whoever adopted it.
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    assert!(
        status.is_empty()
            || status
                .lines()
                .any(|l| l.starts_with("State:") && l.contains('Z')),
        "{status}"
    );
    assert_eq!(
        sh(&list_script(Runtime::Process, state)),
        (true, String::new())
    );
}

#[test]
fn stop_releases_the_power_marker_only_when_the_host_is_empty() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().to_str().unwrap();
    assert!(sh(&mark_powered_on_script(state)).0);
    std::fs::create_dir_all(dir.path().join("other-g1")).unwrap();
    std::fs::write(dir.path().join("other-g1/meta"), "other\t1\t0\t0\t-\t-\n").unwrap();

    let (_, out) = sh(&stop_script(
        Runtime::Process,
        state,
        "web",
        Generation(1),
        true,
    ));
    assert_eq!(out, "remaining=1\n");
    assert!(dir.path().join(POWER_MARKER).exists());

    let (_, out) = sh(&stop_script(
        Runtime::Process,
        state,
        "other",
        Generation(1),
        true,
    ));
    assert_eq!(out, "remaining=0\nrelease\n");
    assert!(!dir.path().join(POWER_MARKER).exists());
}

#[test]
fn runtimes_refuse_what_they_cannot_run() {
    let image = Run::Image {
        image: "nginx".into(),
        command: vec![],
    };
    let command = Run::Command {
        command: vec!["true".into()],
    };
    assert!(start_script(Runtime::Process, "~/.lifeboat", &copy(&image, None)).is_err());
    assert!(start_script(Runtime::Systemd, "~/.lifeboat", &copy(&image, None)).is_err());
    assert!(start_script(Runtime::Docker, "~/.lifeboat", &copy(&command, None)).is_err());
    assert!(start_script(Runtime::Podman, "~/.lifeboat", &copy(&image, None)).is_ok());
    let empty = Run::Command { command: vec![] };
    assert!(start_script(Runtime::Process, "~/.lifeboat", &copy(&empty, None)).is_err());
    let mut bad = copy(&command, None);
    bad.env.insert("NOT-VALID".into(), "x".into());
    assert!(start_script(Runtime::Process, "~/.lifeboat", &bad).is_err());
    let spaced = HealthCheck::Http {
        path: "/a b".into(),
    };
    assert!(
        start_script(
            Runtime::Process,
            "~/.lifeboat",
            &copy(&command, Some(&spaced))
        )
        .is_err()
    );
}

#[test]
fn container_and_unit_scripts_name_the_copy_and_carry_labels() {
    let image = Run::Image {
        image: "ghcr.io/acme/api:1.4".into(),
        command: vec!["serve".into(), "--fast".into()],
    };
    let s = start_script(Runtime::Docker, "~/.lifeboat", &copy(&image, None)).unwrap();
    assert!(s.contains("R=docker"));
    assert!(s.contains("--name 'lifeboat-web-g3'"));
    assert!(s.contains("'lifeboat.dev/generation=3'"));
    assert!(s.contains("--entrypoint 'serve' 'ghcr.io/acme/api:1.4' '--fast'"));
    assert!(s.contains("--cpus 0.250 --memory 64m"));
    let command = Run::Command {
        command: vec!["/usr/bin/api".into()],
    };
    let s = start_script(Runtime::Systemd, "/srv/lb", &copy(&command, None)).unwrap();
    assert!(s.contains("--unit 'lifeboat-web-g3'"));
    assert!(s.contains("-p CPUQuota=25% -p MemoryMax=64M"));
    assert!(s.contains("base='/srv/lb'"));
}

#[test]
fn home_relative_state_dirs_expand_on_the_host() {
    assert_eq!(base_expr("~/.lifeboat"), "\"$HOME\"/'.lifeboat'");
    assert_eq!(base_expr("/var/lib/lb"), "'/var/lib/lb'");
}

#[test]
fn malformed_listing_lines_are_skipped() {
    let text = "web\t1\t0\t0\t-\t-\trunning\nweb\tx\t0\t0\t-\t-\trunning\njunk\napi\t2\t100\t10\t80\ttcp\tstopped\n";
    let listed = parse_list(text);
    assert_eq!(listed.len(), 2);
    assert_eq!(listed[1].health, Some(HealthCheck::Tcp));
    assert!(!listed[1].running);
}

proptest! {
    #[test]
    fn quoting_survives_the_shell(s in "[^\u{0}]{0,40}") {
        let (ok, out) = sh(&format!("printf '%s' {}", quote(&s)));
        prop_assert!(ok);
        prop_assert_eq!(out, s);
    }

    #[test]
    fn workload_names_that_pass_are_shell_and_unit_safe(name in "[ -~]{0,70}") {
        if valid_workload_name(&name) {
            prop_assert!(name.len() <= 63);
            prop_assert!(name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'));
        }
    }
}
