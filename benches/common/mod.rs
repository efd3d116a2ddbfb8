//! Generated `lifeboat.yaml` fleets for the benchmarks, read back through
//! `lifeboat::config::parse` (the public API), so the benchmarks see exactly what a user
//! with a file this large would get.
//!
//! The shape is deterministic: workloads come in groups of five, a "database" and four
//! workloads that depend on it (so plans have dependency waves). Group `g` runs on
//! vendor `g % home_vendors`, on a provider of it chosen round-robin, and lists three
//! fall-back providers at other vendors, rotating so that a vendor's workloads spread
//! over every other vendor when it is left. Declared capacity is a multiple of the average load, so with
//! little headroom a vendor-wide departure fills first choices and spills to later ones.

// Each bench target compiles this module on its own and uses a different part of it.
#![allow(dead_code)]

use std::fmt::Write as _;
use std::path::Path;

use lifeboat::config::Config;

/// The shape of a generated fleet.
#[derive(Debug, Clone)]
pub struct Fleet {
    /// Vendors `v0`, `v1`, ...
    pub vendors: usize,
    /// Providers `vN-pK` per vendor.
    pub providers_per_vendor: usize,
    /// Workloads `w00000`, ...
    pub workloads: usize,
    /// Workloads start on vendors `v0` to `v{home_vendors - 1}` only.
    pub home_vendors: usize,
    /// The `adapter:` of every provider, as a YAML flow mapping.
    pub adapter: String,
    /// Declared capacity in replicas per provider, as a multiple of the average load
    /// (`None`: unbounded).
    pub headroom: Option<f64>,
    /// Extra top-level YAML (`policy:`, `state_dir:`), appended verbatim.
    pub tail: String,
    /// The `cutover:` section, as a YAML flow mapping.
    pub cutover: String,
}

impl Fleet {
    /// A fleet of `workloads` over `vendors × providers_per_vendor` simulated providers
    /// without latency, an endpoints-file cutover and default policy.
    pub fn new(vendors: usize, providers_per_vendor: usize, workloads: usize) -> Fleet {
        Fleet {
            vendors,
            providers_per_vendor,
            workloads,
            home_vendors: vendors,
            adapter: "{ kind: sim }".to_owned(),
            headroom: Some(1.3),
            tail: String::new(),
            cutover: "{ kind: endpoints-file, path: endpoints.json }".to_owned(),
        }
    }

    /// The provider that is workload `i`'s home (its first placement).
    pub fn home(&self, i: usize) -> String {
        self.placement(i).swap_remove(0)
    }

    /// Workload `i`'s placement preferences: home first, then three providers at other
    /// vendors (fewer when there are fewer than two vendors).
    pub fn placement(&self, i: usize) -> Vec<String> {
        let homes = self.home_vendors.clamp(1, self.vendors.max(1));
        // A database and its four dependents share their home and their fall-backs.
        let group = i / 5;
        let round = group / homes;
        let (v, k) = (group % homes, round % self.providers_per_vendor.max(1));
        let mut out = vec![provider_name(v, k)];
        let others = self.vendors.saturating_sub(1);
        for j in 0..others.min(3) {
            let vendor = (v + 1 + (round + j) % others) % self.vendors;
            let index = (k + j) % self.providers_per_vendor;
            out.push(provider_name(vendor, index));
        }
        out
    }

    /// Replicas of workload `i` (1 to 3).
    pub fn replicas(i: usize) -> usize {
        i % 3 + 1
    }

    /// The YAML text of the whole file.
    pub fn yaml(&self) -> String {
        let providers = self.vendors * self.providers_per_vendor;
        let total_replicas: usize = (0..self.workloads).map(Fleet::replicas).sum();
        let capacity = self.headroom.map(|h| {
            let average = total_replicas as f64 / providers.max(1) as f64;
            (average * h).ceil() as u64
        });
        let mut y = String::with_capacity(300 * self.workloads + 200 * providers);
        y.push_str("vendors:\n");
        for v in 0..self.vendors {
            let _ = writeln!(y, "  - name: v{v}\n    accounts: [main, spare]");
        }
        y.push_str("\nproviders:\n");
        for v in 0..self.vendors {
            for k in 0..self.providers_per_vendor {
                let account = if k % 4 == 3 { "spare" } else { "main" };
                let _ = writeln!(
                    y,
                    "  - name: {}\n    vendor: v{v}\n    account: {account}\n    \
                     labels: {{ region: r{k} }}",
                    provider_name(v, k)
                );
                if let Some(replicas) = capacity {
                    let _ = writeln!(
                        y,
                        "    capacity: {{ replicas: {replicas}, cpu_millis: {}, memory_mib: {} }}",
                        replicas * 250,
                        replicas * 256
                    );
                }
                let _ = writeln!(y, "    adapter: {}", self.adapter);
            }
        }
        y.push_str("\nworkloads:\n");
        for i in 0..self.workloads {
            let name = workload_name(i);
            let _ = writeln!(
                y,
                "  - name: {name}\n    image: registry.example/app-{}:1.{}\n    port: 8080\n    \
                 replicas: {}\n    resources: {{ cpu_millis: 250, memory_mib: 256 }}\n    \
                 health: {{ type: http, path: /healthz }}",
                i % 17,
                i % 5,
                Fleet::replicas(i)
            );
            if i % 5 != 0 {
                let _ = writeln!(y, "    depends_on: [{}]", workload_name(i - i % 5));
            }
            let _ = writeln!(
                y,
                "    placement: [{}]\n    rto: 2m\n    public_name: {name}.svc.example",
                self.placement(i).join(", ")
            );
        }
        let _ = writeln!(y, "\ncutover: {}", self.cutover);
        y.push_str(&self.tail);
        y
    }

    /// The fleet read and validated as a user's file at `source` would be.
    pub fn config(&self, source: &Path) -> Config {
        let text = self.yaml();
        match lifeboat::config::parse(&text, source) {
            Ok(config) => config,
            // The generator is wrong, not the code under measurement: say where.
            Err(error) => panic!("the generated fleet does not validate:\n{error}"),
        }
    }
}

/// `vN-pK`.
pub fn provider_name(vendor: usize, index: usize) -> String {
    format!("v{vendor}-p{index}")
}

/// `w00042`.
pub fn workload_name(i: usize) -> String {
    format!("w{i:05}")
}

/// Peak resident memory of this process so far (`VmHWM`), in KiB, where `/proc` has it.
pub fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Resets the peak resident memory to the current one (Linux ≥ 4.0), so the next
/// [`peak_rss_kib`] measures one run alone. False where the kernel refuses.
pub fn reset_peak_rss() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

/// True when the benchmark binary runs as a test (`cargo test --benches`, or
/// `cargo bench -- --test`): criterion then runs every benchmark once, and the
/// expensive ones shrink so that check stays quick.
pub fn test_mode() -> bool {
    let args: Vec<String> = std::env::args().collect();
    !args.iter().any(|a| a == "--bench") || args.iter().any(|a| a == "--test")
}

/// A positive count from the environment variable `name`, else `default`.
pub fn env_count(name: &str, default: usize) -> usize {
    match std::env::var(name).map(|v| v.parse::<usize>()) {
        Ok(Ok(n)) if n > 0 => n,
        _ => default,
    }
}
