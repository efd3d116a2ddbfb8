//! The checks serde cannot make: names are unique, every reference resolves, the
//! dependency graph has no cycle, numbers are in range. Every problem is collected (not
//! just the first) with the field path it concerns.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use super::locate::FieldPath;
use super::{AdapterConfig, Config, CutoverConfig, HooksConfig, PolicyConfig, WorkloadConfig};

/// The problems found so far, each as (path, message); positions are added later.
pub(crate) type Problems = Vec<(FieldPath, String)>;

/// Runs every check on a config assembled from the raw file.
pub(crate) fn check(config: &Config) -> Problems {
    let mut problems = Problems::new();
    vendors(config, &mut problems);
    providers(config, &mut problems);
    workloads(config, &mut problems);
    cycles(&config.workloads, &mut problems);
    policy(&config.policy, &mut problems);
    cutover(config, &mut problems);
    if let Some(id) = &config.installation
        && let Err(why) = lifeboat_provider::Owner::check_id(id)
    {
        problems.push((FieldPath::root().key("installation"), why));
    }
    scheduled_drills(config, &mut problems);
    webhooks(config, &mut problems);
    if let Some(drill) = &config.drill
        && config.resolve_scope(&drill.lose).is_none()
    {
        problems.push((
            FieldPath::root().key("drill").key("lose"),
            format!(
                "{:?} is not a vendor, vendor/account or provider of this config",
                drill.lose
            ),
        ));
    }
    problems
}

/// Every scheduled drill has a unique name, a schedule that parses, a scope that
/// exists, and runs in shadow mode.
fn scheduled_drills(config: &Config, problems: &mut Problems) {
    let at = |i: usize| FieldPath::root().key("drills").index(i);
    unique(
        "scheduled drill",
        (config.drills.iter().enumerate()).map(|(i, d)| (at(i).key("name"), d.name.as_str())),
        problems,
    );
    for (i, d) in config.drills.iter().enumerate() {
        if let Err(why) = crate::schedule::Schedule::parse(&d.schedule) {
            problems.push((at(i).key("schedule"), why));
        }
        if config.resolve_scope(&d.lose).is_none() {
            problems.push((
                at(i).key("lose"),
                format!(
                    "{:?} is not a vendor, vendor/account or provider of this config",
                    d.lose
                ),
            ));
        }
        if d.mode != super::DrillMode::Shadow {
            problems.push((
                at(i).key("mode"),
                "scheduled drills run in shadow mode: a live drill inside the daemon would be \
                 a second controller over the traffic it moves"
                    .into(),
            ));
        }
    }
}

/// Every webhook has a unique name, exactly one source for its URL, an http(s) URL
/// when it is written inline, and a timeout that lets a request be made.
fn webhooks(config: &Config, problems: &mut Problems) {
    let at = |i: usize| FieldPath::root().key("notify").index(i);
    unique(
        "webhook",
        (config.notify.iter().enumerate()).map(|(i, w)| (at(i).key("name"), w.name.as_str())),
        problems,
    );
    for (i, w) in config.notify.iter().enumerate() {
        let sources = [w.url.is_some(), w.url_file.is_some(), w.url_env.is_some()];
        if sources.iter().filter(|&&set| set).count() != 1 {
            problems.push((
                at(i).key("name"),
                "give exactly one of url, url_file and url_env".into(),
            ));
        }
        // The message never repeats the URL: it may carry a token.
        if let Some(url) = &w.url
            && let Err(why) = crate::notify::check_url(url)
        {
            problems.push((at(i).key("url"), why));
        }
        if w.timeout.is_zero() {
            problems.push((at(i).key("timeout"), "must be longer than 0s".into()));
        }
    }
}

/// Flags the second and later uses of a name. `names` yields (path of the name, name).
fn unique<'a>(
    what: &str,
    names: impl IntoIterator<Item = (FieldPath, &'a str)>,
    problems: &mut Problems,
) {
    let mut first: HashMap<&str, FieldPath> = HashMap::new();
    for (path, name) in names {
        match first.get(name) {
            Some(earlier) => problems.push((
                path,
                format!("duplicate {what} {name:?} (first at {earlier})"),
            )),
            None => {
                first.insert(name, path);
            }
        }
    }
}

/// Vendor and account names end up in `--lose vendor/account`, so neither may be empty
/// or hold a `/`.
fn scope_name(what: &str, name: &str, path: FieldPath, problems: &mut Problems) {
    if name.trim().is_empty() {
        problems.push((path, format!("{what} name must not be empty")));
    } else if name.contains('/') {
        problems.push((path, format!("{what} name {name:?} must not contain '/'")));
    }
}

fn vendors(config: &Config, problems: &mut Problems) {
    let root = FieldPath::root().key("vendors");
    unique(
        "vendor",
        (config.vendors.iter().enumerate()).map(|(i, v)| (root.index(i).key("name"), &*v.name)),
        problems,
    );
    for (i, vendor) in config.vendors.iter().enumerate() {
        let at = root.index(i);
        scope_name("vendor", &vendor.name, at.key("name"), problems);
        let accounts = at.key("accounts");
        for (j, account) in vendor.accounts.iter().enumerate() {
            scope_name("account", account, accounts.index(j), problems);
        }
        unique(
            "account",
            (vendor.accounts.iter().enumerate()).map(|(j, a)| (accounts.index(j), a.as_str())),
            problems,
        );
    }
}

fn providers(config: &Config, problems: &mut Problems) {
    let root = FieldPath::root().key("providers");
    unique(
        "provider",
        (config.providers.iter().enumerate()).map(|(i, p)| (root.index(i).key("name"), &*p.name)),
        problems,
    );
    let mut local_ranges = Vec::new();
    for (i, provider) in config.providers.iter().enumerate() {
        let at = root.index(i);
        scope_name("provider", &provider.name, at.key("name"), problems);
        if let AdapterConfig::Local(local) = &provider.adapter {
            local_ranges.push((i, local.bind, (local.ports.first(), local.ports.last())));
        }
        let Some(vendor) = config.vendors.iter().find(|v| v.name == provider.vendor) else {
            problems.push((
                at.key("vendor"),
                format!("unknown vendor {:?}", provider.vendor),
            ));
            continue;
        };
        match &provider.account {
            Some(account) if !vendor.accounts.contains(account) => problems.push((
                at.key("account"),
                if vendor.accounts.is_empty() {
                    format!(
                        "unknown account {account:?}: vendor {:?} lists no accounts",
                        vendor.name
                    )
                } else {
                    format!(
                        "unknown account {account:?} at vendor {:?} (accounts: {})",
                        vendor.name,
                        vendor.accounts.join(", ")
                    )
                },
            )),
            // Without an account, a provider would escape `--lose vendor/account` and
            // the account-wide evacuation that a suspension triggers.
            None if !vendor.accounts.is_empty() => problems.push((
                at.key("account"),
                format!(
                    "missing account: vendor {:?} has accounts ({}); name the one this provider uses",
                    vendor.name,
                    vendor.accounts.join(", ")
                ),
            )),
            _ => {}
        }
    }
    overlapping_ports(config, &local_ranges, problems);
}

/// Local providers share this host, so two handing out the same port on the same
/// address would start workloads that collide. Two loopback addresses (`bind`) keep
/// their ports apart, which is how fixed-port workloads move by DNS between local
/// providers; the unspecified address (`0.0.0.0`) takes the port on every address.
fn overlapping_ports(
    config: &Config,
    ranges: &[(usize, std::net::IpAddr, (u16, u16))],
    problems: &mut Problems,
) {
    let same_address = |a: &std::net::IpAddr, b: &std::net::IpAddr| {
        a == b || a.is_unspecified() || b.is_unspecified()
    };
    for (n, &(i, bind, (first, last))) in ranges.iter().enumerate() {
        if let Some(&(j, _, _)) = ranges[..n]
            .iter()
            .find(|(_, b, (f, l))| same_address(&bind, b) && first <= *l && *f <= last)
        {
            problems.push((
                FieldPath::root()
                    .key("providers")
                    .index(i)
                    .key("adapter")
                    .key("ports"),
                format!(
                    "ports {first}-{last} overlap those of local provider {:?}",
                    config.providers[j].name
                ),
            ));
        }
    }
}

/// A workload name becomes a process label, a Kubernetes object name, a DNS label:
/// RFC 1035's label rules fit all of them.
pub(crate) fn is_dns_label(name: &str) -> bool {
    let bytes = name.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= 63
        && bytes[0].is_ascii_lowercase()
        && bytes.last() != Some(&b'-')
        && (bytes.iter()).all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
}

fn workloads(config: &Config, problems: &mut Problems) {
    let root = FieldPath::root().key("workloads");
    let all = &config.workloads;
    unique(
        "workload",
        (all.iter().enumerate()).map(|(i, w)| (root.index(i).key("name"), &*w.name)),
        problems,
    );
    unique(
        "public name",
        (all.iter().enumerate()).filter_map(|(i, w)| {
            Some((root.index(i).key("public_name"), w.public_name.as_deref()?))
        }),
        problems,
    );
    for (i, workload) in all.iter().enumerate() {
        workload_fields(config, workload, &root.index(i), problems);
    }
}

fn workload_fields(config: &Config, w: &WorkloadConfig, at: &FieldPath, problems: &mut Problems) {
    super::data::check(config, w, at, problems);
    let mut problem = |path: FieldPath, message: String| problems.push((path, message));
    if !is_dns_label(&w.name) {
        problem(
            at.key("name"),
            format!(
                "invalid workload name {:?}: use 1-63 lower-case letters, digits and '-', \
                 starting with a letter and not ending with '-'",
                w.name
            ),
        );
    }
    if w.image.is_none() && w.command.is_empty() {
        problem(
            at.key("image"),
            "a workload needs an `image` or a non-empty `command`".into(),
        );
    }
    if w.image.as_deref().is_some_and(|i| i.trim().is_empty()) {
        problem(at.key("image"), "image must not be empty".into());
    }
    if w.command.first().is_some_and(|program| program.is_empty()) {
        problem(
            at.key("command").index(0),
            "the program must not be empty".into(),
        );
    }
    if w.port == Some(0) {
        problem(at.key("port"), "port must be between 1 and 65535".into());
    }
    if w.replicas == 0 {
        problem(at.key("replicas"), "replicas must be at least 1".into());
    }
    if w.rto == Some(Duration::ZERO) {
        problem(at.key("rto"), "rto must be longer than 0s".into());
    }
    if let Some(name) = &w.public_name
        && name.trim().is_empty()
    {
        problem(
            at.key("public_name"),
            "public_name must not be empty".into(),
        );
    }
    if let Some(lifeboat_provider::HealthCheck::Http { path }) = &w.health
        && !path.starts_with('/')
    {
        problem(
            at.key("health").key("path"),
            format!("HTTP health path {path:?} must start with '/'"),
        );
    }
    hooks(&w.hooks, &at.key("hooks"), problems);

    let placement = at.key("placement");
    if w.placement.is_empty() {
        problems.push((
            placement.clone(),
            "placement must name at least one provider".into(),
        ));
    }
    let mut seen = HashSet::new();
    for (j, provider) in w.placement.iter().enumerate() {
        if config.provider(provider).is_none() {
            problems.push((placement.index(j), format!("unknown provider {provider:?}")));
        } else if !seen.insert(provider) {
            problems.push((
                placement.index(j),
                format!("provider {provider:?} listed twice"),
            ));
        }
    }

    let depends_on = at.key("depends_on");
    let mut seen = HashSet::new();
    for (j, dependency) in w.depends_on.iter().enumerate() {
        let message = if *dependency == w.name {
            format!("workload {dependency:?} depends on itself")
        } else if config.workload(dependency).is_none() {
            format!("unknown workload {dependency:?}")
        } else if !seen.insert(dependency) {
            format!("workload {dependency:?} listed twice")
        } else {
            continue;
        };
        problems.push((depends_on.index(j), message));
    }
}

fn hooks(hooks: &HooksConfig, at: &FieldPath, problems: &mut Problems) {
    for (name, commands) in [
        ("before_cutover", &hooks.before_cutover),
        ("after_cutover", &hooks.after_cutover),
    ] {
        for (i, command) in commands.iter().enumerate() {
            if command.first().is_none_or(|program| program.is_empty()) {
                problems.push((
                    at.key(name).index(i),
                    "a hook needs a program (argv form, e.g. [\"./promote.sh\", \"--now\"])".into(),
                ));
            }
        }
    }
}

/// Reports each dependency cycle once, at the edge that closes it, as `a -> b -> a`.
/// Self-dependencies and unknown names are reported elsewhere and skipped here.
fn cycles(workloads: &[WorkloadConfig], problems: &mut Problems) {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        New,
        OnStack,
        Done,
    }
    let index: HashMap<&str, usize> = (workloads.iter().enumerate())
        .map(|(i, w)| (w.name.as_str(), i))
        .collect();
    // (index in depends_on, workload it names) for each followable edge of `i`.
    let edges = |i: usize| -> std::vec::IntoIter<(usize, usize)> {
        (workloads[i].depends_on.iter().enumerate())
            .filter_map(|(j, d)| Some((j, *index.get(d.as_str())?)))
            .filter(|&(_, to)| to != i)
            .collect::<Vec<_>>()
            .into_iter()
    };
    let mut marks = vec![Mark::New; workloads.len()];
    for start in 0..workloads.len() {
        if marks[start] != Mark::New {
            continue;
        }
        // An explicit stack keeps a long dependency chain from overflowing the call
        // stack: (node, its edges not yet followed).
        let mut stack = vec![(start, edges(start))];
        marks[start] = Mark::OnStack;
        while let Some((node, pending)) = stack.last_mut() {
            let node = *node;
            match pending.next() {
                Some((edge, to)) => match marks[to] {
                    Mark::New => {
                        marks[to] = Mark::OnStack;
                        stack.push((to, edges(to)));
                    }
                    Mark::OnStack => {
                        let from = stack.iter().position(|(n, _)| *n == to).unwrap_or(0);
                        let names: Vec<&str> = (stack[from..].iter())
                            .map(|(n, _)| workloads[*n].name.as_str())
                            .chain([workloads[to].name.as_str()])
                            .collect();
                        problems.push((
                            FieldPath::root()
                                .key("workloads")
                                .index(node)
                                .key("depends_on")
                                .index(edge),
                            format!("dependency cycle: {}", names.join(" -> ")),
                        ));
                    }
                    Mark::Done => {}
                },
                None => {
                    marks[node] = Mark::Done;
                    stack.pop();
                }
            }
        }
    }
}

fn policy(policy: &PolicyConfig, problems: &mut Problems) {
    let at = FieldPath::root().key("policy");
    let counts = [
        ("confirmations", policy.confirmations as usize),
        ("parallelism", policy.parallelism),
        ("per_provider_parallelism", policy.per_provider_parallelism),
        ("step_attempts", policy.step_attempts as usize),
    ];
    for (field, value) in counts {
        if value == 0 {
            problems.push((at.key(field), format!("{field} must be at least 1")));
        }
    }
    for (field, value) in [
        ("probe_interval", policy.probe_interval),
        ("probe_timeout", policy.probe_timeout),
        ("step_timeout", policy.step_timeout),
        ("replace_after", policy.replace_after),
        ("replacement_window", policy.replacement_window),
    ] {
        if value.is_zero() {
            problems.push((at.key(field), format!("{field} must be longer than 0s")));
        }
    }
    if policy.probe_timeout > policy.probe_interval {
        problems.push((
            at.key("probe_timeout"),
            format!(
                "probe_timeout ({}) must not exceed probe_interval ({})",
                super::duration::format(policy.probe_timeout),
                super::duration::format(policy.probe_interval)
            ),
        ));
    }
}

fn cutover(config: &Config, problems: &mut Problems) {
    let at = FieldPath::root().key("cutover");
    match &config.cutover {
        CutoverConfig::EndpointsFile { path } => {
            if path.as_os_str().is_empty() {
                problems.push((at.key("path"), "path must not be empty".into()));
            }
        }
        CutoverConfig::Exec {
            command, timeout, ..
        } => {
            if command.first().is_none_or(|program| program.is_empty()) {
                problems.push((
                    at.key("command"),
                    "the exec cutover needs a program (argv form)".into(),
                ));
            }
            if timeout.is_zero() {
                problems.push((at.key("timeout"), "timeout must be longer than 0s".into()));
            }
        }
        CutoverConfig::Dns(dns) => dns_cutover(config, dns, &at, problems),
    }
}

/// What can be checked of the DNS backend without talking to its servers; the secret
/// itself is read (and checked) when the backend is built.
fn dns_cutover(config: &Config, dns: &super::DnsConfig, at: &FieldPath, problems: &mut Problems) {
    if dns.servers.is_empty() {
        problems.push((at.key("servers"), "list at least the primary server".into()));
    }
    match (&dns.tsig.secret_file, &dns.tsig.secret_env) {
        (Some(_), Some(_)) | (None, None) => problems.push((
            at.key("tsig"),
            "give exactly one of secret_file and secret_env (never the secret itself)".into(),
        )),
        _ => {}
    }
    if dns.ttl.subsec_nanos() != 0 {
        problems.push((at.key("ttl"), "a DNS TTL is whole seconds".into()));
    }
    for name in dns.records.keys() {
        if config.workload(name).is_none() {
            problems.push((
                at.key("records").key(name),
                format!("unknown workload {name:?}"),
            ));
        }
    }
    let zone = dns.zone.trim_end_matches('.').to_ascii_lowercase();
    for (i, w) in config.workloads.iter().enumerate() {
        if let Some(public) = &w.public_name {
            if w.port.is_none() {
                // DNS names an address only: without a port no client could connect.
                problems.push((
                    FieldPath::root().key("workloads").index(i).key("port"),
                    format!("DNS carries no port: set the port clients of {public:?} connect to"),
                ));
            }
            let name = public.trim_end_matches('.').to_ascii_lowercase();
            if name != zone && !name.ends_with(&format!(".{zone}")) {
                problems.push((
                    FieldPath::root()
                        .key("workloads")
                        .index(i)
                        .key("public_name"),
                    format!("{public:?} is outside the DNS zone {:?}", dns.zone),
                ));
            }
        }
    }
}
