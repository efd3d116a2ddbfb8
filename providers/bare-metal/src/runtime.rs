//! The shell scripts that start, stop and list workload copies on a host, one flavour
//! per runtime. Pure text generation, so every script is unit-tested without a host.
//!
//! Every copy has a folder `STATE_DIR/<workload>-g<generation>-<owner>/` (`<owner>` is
//! the [`Owner::discriminator`]) holding a one-line `meta` file whatever the runtime:
//! tab-separated workload, generation, resources, port and health check, then the
//! owner's labels as `key=value` fields. Listing the folders is how lifeboat finds its
//! copies after a crash; the metadata is how it accounts capacity, checks health and
//! tells owners apart without the controller's records, so the host itself is the label
//! store (no runtime has labels for everything: a process has none). The runtime's own
//! object (process group, unit, container) is named `lifeboat-<folder>`, so a repeated
//! deploy finds it, and a drill's copy of a (workload, generation) never shares a name
//! with production's.
//!
//! Copies made before owners existed have a folder `<workload>-g<generation>` and no
//! label fields; they are still listed, inspected and retired (as unowned), never made.

use std::collections::BTreeMap;

use lifeboat_provider::{Generation, HealthCheck, Owner, Resources, Run};

use crate::config::Runtime;

/// The name of the marker file, in the state folder, that says lifeboat powered the host
/// on (so `standby: power-off` may power it off again). It lives on the host so a
/// controller restart does not forget it.
pub(crate) const POWER_MARKER: &str = ".powered-on-by-lifeboat";

/// One copy to start.
#[derive(Debug, Clone)]
pub(crate) struct Start<'a> {
    pub workload: &'a str,
    pub generation: Generation,
    pub run: &'a Run,
    /// Complete environment, `PORT` and `LIFEBOAT_GENERATION` included.
    pub env: BTreeMap<String, String>,
    pub resources: Resources,
    pub port: Option<u16>,
    pub health: Option<&'a HealthCheck>,
    /// Who the copy is for; written into its metadata and names.
    pub owner: &'a Owner,
}

/// One copy found on a host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Listed {
    /// Its folder's name, which (with the hosts) is the deployment handle.
    pub folder: String,
    pub workload: String,
    pub generation: Generation,
    pub resources: Resources,
    pub port: Option<u16>,
    pub health: Option<HealthCheck>,
    /// As its metadata says; `None` for a copy made before owners existed.
    pub owner: Option<Owner>,
    pub running: bool,
}

/// The folder name of a copy. The discriminator is hex (no `g`) after the generation's
/// digits, so no two (workload, generation, owner) share a folder, and none shares one
/// with an unowned copy's `<workload>-g<generation>`.
pub(crate) fn dir_name(workload: &str, generation: Generation, owner: Option<&Owner>) -> String {
    match owner {
        Some(owner) => format!("{workload}-g{generation}-{}", owner.discriminator()),
        None => format!("{workload}-g{generation}"),
    }
}

/// Whether `folder` is a name [`dir_name`] gives a copy of (workload, generation), for
/// some owner or none. Folders come back in handles, which the controller stores and
/// anyone could forge: only such a name may reach a script's `rm -rf "$base/$n"`.
pub(crate) fn valid_folder(workload: &str, generation: Generation, folder: &str) -> bool {
    let unowned = dir_name(workload, generation, None);
    match folder.strip_prefix(unowned.as_str()) {
        Some("") => true,
        Some(rest) => rest.strip_prefix('-').is_some_and(|d| {
            d.len() == 8
                && d.bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        }),
        None => false,
    }
}

/// The runtime object's name of a copy.
pub(crate) fn unit_name(workload: &str, generation: Generation, owner: Option<&Owner>) -> String {
    format!("lifeboat-{}", dir_name(workload, generation, owner))
}

/// The label fields of a copy's `meta` line (after the positional ones), exactly as
/// [`start_script`] writes them. The scripts compare them as a string to tell whether a
/// folder is the owner's: its name proves nothing, since a handle (which names the
/// folder) can come with any owner, and the discriminator in it is only a hash.
pub(crate) fn owner_fields(owner: Option<&Owner>) -> String {
    owner
        .map(|o| {
            o.labels()
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join("\t")
        })
        .unwrap_or_default()
}

/// Checks that an owner's ids are label-safe, so they cannot break the tab-separated
/// `meta` line (or a container label) they are written into.
pub(crate) fn check_owner(owner: &Owner) -> Result<(), String> {
    Owner::check_id(&owner.installation).map_err(|m| format!("owner installation id {m}"))?;
    if let Some(drill) = &owner.drill {
        Owner::check_id(drill).map_err(|m| format!("owner drill id {m}"))?;
    }
    Ok(())
}

/// The shell test that is true when folder `$d` holds a copy of someone other than
/// `owner` (its `meta` carries other label fields). A folder without `meta` (a start
/// that died before writing it) is nobody else's.
fn foreign_test(owner: Option<&Owner>) -> String {
    format!(
        "[ -f \"$d/meta\" ] && [ \"$(cut -f7- \"$d/meta\")\" != {} ]",
        quote(&owner_fields(owner))
    )
}

/// Single-quotes `s` for a POSIX shell.
pub(crate) fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// The shell expression of the state folder: `~/x` becomes `"$HOME"/'x'`.
fn base_expr(state_dir: &str) -> String {
    match state_dir.strip_prefix("~/") {
        Some(rest) => format!("\"$HOME\"/{}", quote(rest)),
        None if state_dir == "~" => "\"$HOME\"".into(),
        None => quote(state_dir),
    }
}

/// A name the runtimes and shells accept without surprises (a DNS label).
pub(crate) fn valid_workload_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 63
        && name.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

/// An environment variable name a shell and `env` accept.
pub(crate) fn valid_env_name(name: &str) -> bool {
    name.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// The health check's field of the `meta` line: the contract's one-line form
/// ([`HealthCheck`]'s `Display`), or `-` for none.
fn health_field(health: Option<&HealthCheck>) -> Result<String, String> {
    match health {
        None => Ok("-".into()),
        // White space would split the tab-separated line, and no HTTP request line can
        // carry it anyway.
        Some(HealthCheck::Http { path })
            if path.chars().any(|c| c.is_whitespace() || c.is_control()) =>
        {
            Err(format!(
                "health check path {path:?} must not contain white space"
            ))
        }
        Some(check) => Ok(check.to_string()),
    }
}

/// The preamble every script shares: strict mode, the state folder and how to ask the
/// runtime whether copy `$n` runs (as a shell function `alive`).
fn preamble(runtime: Runtime, state_dir: &str) -> String {
    let alive = match runtime {
        Runtime::Process => {
            // A zombie still answers kill -0; /proc tells it apart.
            r#"alive() { [ -f "$base/$1/pid" ] && p=$(cat "$base/$1/pid") && kill -0 "$p" 2>/dev/null && ! grep -q '^State:.*Z' "/proc/$p/status" 2>/dev/null; }"#.to_owned()
        }
        Runtime::Systemd => r#"U=; [ "$(id -u)" = 0 ] || U=--user
alive() { systemctl $U is-active --quiet "lifeboat-$1"; }"#
            .to_owned(),
        Runtime::Podman | Runtime::Docker => format!(
            r#"R={}
alive() {{ [ "$($R inspect -f '{{{{.State.Running}}}}' "lifeboat-$1" 2>/dev/null)" = true ]; }}"#,
            runtime.as_str()
        ),
    };
    format!("set -e\nbase={}\n{alive}\n", base_expr(state_dir))
}

/// The script that starts a copy unless it already runs. Prints `existing` or `started`.
pub(crate) fn start_script(
    runtime: Runtime,
    state_dir: &str,
    copy: &Start<'_>,
) -> Result<String, String> {
    if !valid_workload_name(copy.workload) {
        return Err(format!(
            "workload name {:?} must be a DNS label (a-z, 0-9, '-')",
            copy.workload
        ));
    }
    if let Some(bad) = copy.env.keys().find(|k| !valid_env_name(k)) {
        return Err(format!("environment variable name {bad:?} is not valid"));
    }
    check_owner(copy.owner)?;
    let owner = Some(copy.owner);
    let n = dir_name(copy.workload, copy.generation, owner);
    let unit = unit_name(copy.workload, copy.generation, owner);
    let meta = format!(
        "{}\t{}\t{}\t{}\t{}\t{}\t{}",
        copy.workload,
        copy.generation,
        copy.resources.cpu_millis,
        copy.resources.memory_mib,
        copy.port.map_or("-".into(), |p| p.to_string()),
        health_field(copy.health)?,
        owner_fields(owner)
    );
    let mut s = preamble(runtime, state_dir);
    s += &format!("n={}\nd=\"$base/$n\"\nmkdir -p \"$d\"\n", quote(&n));
    // Two owners whose discriminators collide would share the folder: refuse rather
    // than report the other owner's running copy as this one's, or overwrite its meta.
    s += &format!(
        "if {}; then echo \"copy folder $n holds another owner's copy\" >&2; exit 3; fi\n",
        foreign_test(owner)
    );
    s += "if alive \"$n\"; then echo existing; exit 0; fi\n";
    // Written aside and renamed: a listing that read `meta` between the truncation and
    // the write would get an empty line, drop the copy and see its room as free (a
    // restarted copy, unlike a new one, holds no reservation while it starts).
    s += &format!(
        "printf '%s\\n' {} > \"$d/meta.new\"\nmv -f \"$d/meta.new\" \"$d/meta\"\ncd \"$d\"\n",
        quote(&meta)
    );
    let envs = |prefix: &str| -> String {
        copy.env
            .iter()
            .map(|(k, v)| format!(" {prefix}{}", quote(&format!("{k}={v}"))))
            .collect()
    };
    match (runtime, copy.run) {
        (Runtime::Process, Run::Command { command })
        | (Runtime::Systemd, Run::Command { command })
            if command.is_empty() =>
        {
            return Err("the workload's command is empty".into());
        }
        (Runtime::Process, Run::Command { command }) => {
            let argv: Vec<String> = command.iter().map(|a| quote(a)).collect();
            // setsid gives the copy its own process group (the pid is its id), so stop
            // can signal the whole tree; nohup and the redirections detach it from the
            // SSH session that started it.
            s += &format!(
                "env{} setsid nohup {} > \"$d/log\" 2>&1 < /dev/null &\necho $! > \"$d/pid\"\necho started\n",
                envs(""),
                argv.join(" ")
            );
        }
        (Runtime::Systemd, Run::Command { command }) => {
            let argv: Vec<String> = command.iter().map(|a| quote(a)).collect();
            let mut props = String::new();
            if copy.resources.cpu_millis > 0 {
                props += &format!(" -p CPUQuota={}%", copy.resources.cpu_millis.div_ceil(10));
            }
            if copy.resources.memory_mib > 0 {
                props += &format!(" -p MemoryMax={}M", copy.resources.memory_mib);
            }
            // A unit has no labels; its description names the owner for whoever reads
            // `systemctl status` (lifeboat itself reads the meta file).
            let description = format!(
                "lifeboat {} generation {} of {}",
                copy.workload, copy.generation, copy.owner
            );
            s += &format!(
                "systemctl $U reset-failed {u} >/dev/null 2>&1 || true\nsystemd-run $U --quiet --collect --unit {u} --description {} -p WorkingDirectory=\"$d\"{props}{} -- {} >/dev/null\necho started\n",
                quote(&description),
                envs("--setenv="),
                argv.join(" "),
                u = quote(&unit),
            );
        }
        (Runtime::Podman | Runtime::Docker, Run::Image { image, command }) => {
            let mut args = format!(
                "--name {} --network host --label {} --label {} --label {}",
                quote(&unit),
                quote(&format!(
                    "{}={}",
                    lifeboat_provider::labels::WORKLOAD,
                    copy.workload
                )),
                quote(&format!(
                    "{}={}",
                    lifeboat_provider::labels::GENERATION,
                    copy.generation
                )),
                quote(&format!("{}=true", lifeboat_provider::labels::MANAGED)),
            );
            for (key, value) in copy.owner.labels() {
                args += &format!(" --label {}", quote(&format!("{key}={value}")));
            }
            if copy.resources.cpu_millis > 0 {
                args += &format!(
                    " --cpus {}.{:03}",
                    copy.resources.cpu_millis / 1000,
                    copy.resources.cpu_millis % 1000
                );
            }
            if copy.resources.memory_mib > 0 {
                args += &format!(" --memory {}m", copy.resources.memory_mib);
            }
            let (entry, rest) = match command.split_first() {
                Some((first, rest)) => (format!(" --entrypoint {}", quote(first)), rest),
                None => (String::new(), &[][..]),
            };
            let rest: String = rest.iter().map(|a| format!(" {}", quote(a))).collect();
            s += &format!(
                "$R rm -f {u} >/dev/null 2>&1 || true\n$R run -d {args}{}{entry} {}{rest} >/dev/null\necho started\n",
                envs("-e "),
                quote(image),
                u = quote(&unit),
            );
        }
        (Runtime::Podman | Runtime::Docker, Run::Command { .. }) => {
            return Err(format!(
                "runtime {} runs container images; the workload has only a command",
                runtime.as_str()
            ));
        }
        (Runtime::Process | Runtime::Systemd, Run::Image { .. }) => {
            return Err(format!(
                "runtime {} runs commands; the workload has only an image",
                runtime.as_str()
            ));
        }
    }
    Ok(s)
}

/// The script that stops and removes the copy in `folder` (a name [`valid_folder`]
/// accepts) when it is `owner`'s, a no-op when it is gone. A folder whose metadata names
/// another owner is left alone and `foreign` printed.
/// It then prints `remaining=N` (copies left on the host, whoever owns them) and, when
/// `release` is set and nothing is left, removes the power-on marker and prints
/// `release` if it was there.
pub(crate) fn stop_script(
    runtime: Runtime,
    state_dir: &str,
    folder: &str,
    owner: Option<&Owner>,
    release: bool,
) -> String {
    let n = folder;
    let mut s = preamble(runtime, state_dir);
    s += &format!("n={}\nd=\"$base/$n\"\n", quote(n));
    s += &format!("if {}; then\n  echo foreign\nelse\n", foreign_test(owner));
    match runtime {
        Runtime::Process => {
            // TERM to the whole group, a few seconds' grace, then KILL.
            s += r#"if [ -f "$d/pid" ]; then
  p=$(cat "$d/pid")
  kill -TERM -- "-$p" 2>/dev/null || kill -TERM "$p" 2>/dev/null || true
  i=0
  while alive "$n" && [ $i -lt 50 ]; do sleep 0.2 2>/dev/null || sleep 1; i=$((i+1)); done
  kill -KILL -- "-$p" 2>/dev/null || true
fi
"#;
        }
        Runtime::Systemd => s += "systemctl $U stop \"lifeboat-$n\" >/dev/null 2>&1 || true\n",
        Runtime::Podman | Runtime::Docker => {
            s += "$R rm -f \"lifeboat-$n\" >/dev/null 2>&1 || true\n"
        }
    }
    s += "rm -rf \"$d\"\nfi\nleft=0\nfor m in \"$base\"/*/meta; do [ -f \"$m\" ] && left=$((left+1)); done\necho \"remaining=$left\"\n";
    if release {
        s += &format!(
            "if [ \"$left\" = 0 ] && [ -f \"$base/{POWER_MARKER}\" ]; then rm -f \"$base/{POWER_MARKER}\"; echo release; fi\n"
        );
    }
    s
}

/// The script that lists every copy on the host, every owner's, one tab-separated line
/// each: the folder's name, the `meta` fields, then `running` or `stopped`. Callers pick an owner's
/// copies from the listing; capacity and power decisions need all of them.
pub(crate) fn list_script(runtime: Runtime, state_dir: &str) -> String {
    let mut s = preamble(runtime, state_dir);
    s += r#"for m in "$base"/*/meta; do
  [ -f "$m" ] || continue
  n=$(basename "$(dirname "$m")")
  if alive "$n"; then st=running; else st=stopped; fi
  printf '%s\t%s\t%s\n' "$n" "$(head -n 1 "$m")" "$st"
done
"#;
    s
}

/// The script that records that lifeboat powered the host on (and proves SSH works).
pub(crate) fn mark_powered_on_script(state_dir: &str) -> String {
    format!(
        "set -e\nbase={}\nmkdir -p \"$base\"\ntouch \"$base/{POWER_MARKER}\"\n",
        base_expr(state_dir)
    )
}

/// Parses [`list_script`]'s output; malformed lines (a hand-edited meta file) are skipped.
pub(crate) fn parse_list(stdout: &str) -> Vec<Listed> {
    stdout.lines().filter_map(parse_line).collect()
}

fn parse_line(line: &str) -> Option<Listed> {
    let f: Vec<&str> = line.split('\t').collect();
    let [
        folder,
        workload,
        generation,
        cpu,
        mem,
        port,
        health,
        labels @ ..,
        state,
    ] = f.as_slice()
    else {
        return None;
    };
    let labels = labels
        .iter()
        .map(|l| l.split_once('='))
        .collect::<Option<BTreeMap<&str, &str>>>()?;
    let owner = Owner::from_labels(|k| labels.get(k).copied());
    let health = match *health {
        "-" => None,
        h => Some(h.parse::<HealthCheck>().ok()?),
    };
    Some(Listed {
        folder: (*folder).to_owned(),
        workload: (*workload).to_owned(),
        generation: Generation(generation.parse().ok()?),
        resources: Resources {
            cpu_millis: cpu.parse().ok()?,
            memory_mib: mem.parse().ok()?,
        },
        port: match *port {
            "-" => None,
            p => Some(p.parse().ok()?),
        },
        health,
        owner,
        running: match *state {
            "running" => true,
            "stopped" => false,
            _ => return None,
        },
    })
}

#[cfg(test)]
#[path = "runtime_tests.rs"]
mod tests;
