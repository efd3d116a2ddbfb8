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

/// The owner the tests' copies belong to (a static, so `Start` can borrow it).
static PROD: std::sync::LazyLock<Owner> = std::sync::LazyLock::new(|| Owner::installation("prod"));
static DRILL: std::sync::LazyLock<Owner> = std::sync::LazyLock::new(|| Owner::drill("prod", "d1"));

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
        owner: &PROD,
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
            folder: dir_name("web", Generation(3), Some(&PROD)),
            workload: "web".into(),
            generation: Generation(3),
            resources: Resources {
                cpu_millis: 250,
                memory_mib: 64
            },
            port: Some(8080),
            health: Some(health.clone()),
            owner: Some(PROD.clone()),
            running: true,
        }]
    );
    // The environment reached the process intact, quotes and all.
    let copy_dir = dir.path().join(format!("web-g3-{}", PROD.discriminator()));
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
        &dir_name("web", Generation(3), Some(&PROD)),
        Some(&PROD),
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
        &dir_name("web", Generation(1), Some(&PROD)),
        Some(&PROD),
        true,
    ));
    assert_eq!(out, "remaining=1\n");
    assert!(dir.path().join(POWER_MARKER).exists());

    // `other-g1` was made before owners existed: only an unowned reference removes it.
    let (_, out) = sh(&stop_script(
        Runtime::Process,
        state,
        &dir_name("other", Generation(1), None),
        None,
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
    let name = format!("lifeboat-web-g3-{}", PROD.discriminator());
    assert!(s.contains("R=docker"));
    assert!(s.contains(&format!("--name '{name}'")));
    assert!(s.contains("'lifeboat.dev/generation=3'"));
    assert!(s.contains("--label 'lifeboat.dev/owner=prod'"));
    assert!(
        !s.contains("lifeboat.dev/drill"),
        "production has no drill label"
    );
    assert!(s.contains("--entrypoint 'serve' 'ghcr.io/acme/api:1.4' '--fast'"));
    assert!(s.contains("--cpus 0.250 --memory 64m"));
    let command = Run::Command {
        command: vec!["/usr/bin/api".into()],
    };
    let s = start_script(Runtime::Systemd, "/srv/lb", &copy(&command, None)).unwrap();
    assert!(s.contains(&format!("--unit '{name}'")));
    assert!(s.contains("--description 'lifeboat web generation 3 of prod'"));
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
    let text = "web-g1\tweb\t1\t0\t0\t-\t-\trunning\nweb-gx\tweb\tx\t0\t0\t-\t-\trunning\njunk\n\
                api-g2\tapi\t2\t100\t10\t80\ttcp\tstopped\n\
                api-g3\tapi\t3\t0\t0\t-\t-\tnot-a-label\trunning\n";
    let listed = parse_list(text);
    assert_eq!(listed.len(), 2);
    assert_eq!(listed[1].health, Some(HealthCheck::Tcp));
    assert!(!listed[1].running);
    assert!(
        listed.iter().all(|l| l.owner.is_none()),
        "no owner labels: made before owners existed"
    );
}

#[test]
fn owner_labels_are_read_back_from_the_listing() {
    let text = "a\tweb\t1\t0\t0\t-\t-\tlifeboat.dev/owner=prod\tlifeboat.dev/drill=d1\trunning\n\
                b\tweb\t1\t0\t0\t-\t-\tlifeboat.dev/owner=prod\tlifeboat.dev/future=x\trunning\n";
    let listed = parse_list(text);
    assert_eq!(listed.len(), 2);
    assert_eq!(listed[0].owner, Some(DRILL.clone()));
    assert_eq!(
        listed[1].owner,
        Some(PROD.clone()),
        "labels it does not know are ignored"
    );
}

#[test]
fn names_keep_owners_and_unowned_copies_apart() {
    let g = Generation(3);
    let prod = dir_name("web", g, Some(&PROD));
    let drill = dir_name("web", g, Some(&DRILL));
    assert_ne!(prod, drill);
    assert_eq!(dir_name("web", g, None), "web-g3");
    assert_eq!(prod, format!("web-g3-{}", PROD.discriminator()));
    assert_eq!(
        unit_name("web", g, Some(&DRILL)),
        format!("lifeboat-{drill}")
    );
}

#[test]
fn owners_with_unsafe_ids_are_refused() {
    let command = Run::Command {
        command: vec!["true".into()],
    };
    for bad in [
        Owner::installation("a\tb"),
        Owner::installation("prod\nx"),
        Owner::drill("prod", "d=1"),
        Owner::installation(""),
    ] {
        let mut start = copy(&command, None);
        start.owner = &bad;
        assert!(
            start_script(Runtime::Process, "~/.lifeboat", &start).is_err(),
            "{bad:?}"
        );
    }
}

/// A copy of `web` generation 3 for `owner` that sleeps and binds nothing.
fn sleeper<'a>(run: &'a Run, owner: &'a Owner) -> Start<'a> {
    Start {
        port: None,
        owner,
        ..copy(run, None)
    }
}

#[test]
fn a_drill_and_production_copy_of_one_generation_share_a_host_apart() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().to_str().unwrap();
    let run = Run::Command {
        command: vec!["sleep".into(), "600".into()],
    };
    let start = |owner| start_script(Runtime::Process, state, &sleeper(&run, owner)).unwrap();
    assert_eq!(sh(&start(&PROD)), (true, "started\n".into()));
    assert_eq!(
        sh(&start(&DRILL)),
        (true, "started\n".into()),
        "the drill's start does not find production's copy"
    );
    assert_eq!(sh(&start(&DRILL)), (true, "existing\n".into()));

    let owners = |listing: &str| -> Vec<Option<Owner>> {
        let mut owners: Vec<_> = parse_list(listing)
            .into_iter()
            .filter(|l| l.running)
            .map(|l| l.owner)
            .collect();
        owners.sort();
        owners
    };
    let (_, listing) = sh(&list_script(Runtime::Process, state));
    assert_eq!(owners(&listing), [Some(PROD.clone()), Some(DRILL.clone())]);

    let stop = |folder: Option<&Owner>, owner: Option<&Owner>| {
        sh(&stop_script(
            Runtime::Process,
            state,
            &dir_name("web", Generation(3), folder),
            owner,
            true,
        ))
    };
    let stop_own = |owner| stop(owner, owner);
    // Unowned references name another folder: production's copy stays.
    assert_eq!(stop_own(None), (true, "remaining=2\n".into()));
    // A reference to production's folder with the drill as owner (a drill's cleanup
    // gone wrong) leaves it running.
    assert_eq!(
        stop(Some(&PROD), Some(&DRILL)),
        (true, "foreign\nremaining=2\n".into())
    );
    assert_eq!(stop_own(Some(&DRILL)), (true, "remaining=1\n".into()));
    let (_, listing) = sh(&list_script(Runtime::Process, state));
    assert_eq!(owners(&listing), [Some(PROD.clone())]);
    assert_eq!(stop_own(Some(&PROD)), (true, "remaining=0\n".into()));
}

#[test]
fn a_folder_whose_meta_names_another_owner_is_left_alone() {
    // What two owners with colliding discriminators would meet: the name says "mine",
    // the metadata says otherwise, and the metadata wins.
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().to_str().unwrap();
    let run = Run::Command {
        command: vec!["sleep".into(), "600".into()],
    };
    let script = start_script(Runtime::Process, state, &sleeper(&run, &PROD)).unwrap();
    assert!(sh(&script).0);
    let folder = dir.path().join(dir_name("web", Generation(3), Some(&PROD)));
    let meta = std::fs::read_to_string(folder.join("meta")).unwrap();
    assert!(meta.ends_with("\tlifeboat.dev/owner=prod\n"), "{meta:?}");
    std::fs::write(
        folder.join("meta"),
        meta.replace("owner=prod", "owner=someone-else"),
    )
    .unwrap();

    let (ok, _) = sh(&script);
    assert!(!ok, "a start refuses a folder of another owner");
    let (ok, out) = sh(&stop_script(
        Runtime::Process,
        state,
        &dir_name("web", Generation(3), Some(&PROD)),
        Some(&PROD),
        true,
    ));
    assert!(ok);
    assert_eq!(out, "foreign\nremaining=1\n");
    let pid: i32 = std::fs::read_to_string(folder.join("pid"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(
        std::fs::read_to_string(format!("/proc/{pid}/status"))
            .is_ok_and(|s| !s.contains("State:\tZ")),
        "the other owner's process still runs"
    );
    let _ = Command::new("kill")
        .args(["-KILL", "--", &format!("-{pid}")])
        .status();
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
