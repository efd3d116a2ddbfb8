//! What a live drill may not do: run a second controller beside a daemon, or move real
//! traffic without being told to in so many words.
//!
//! A live drill cuts traffic over to its own copies and back. With only `local` and
//! `sim` providers and an endpoints-file cutover (or DNS servers on loopback) that is a
//! rehearsal on this machine;
//! with a cloud, a cluster, a rack, or a DNS/exec cutover it moves the traffic of real
//! clients, so it needs `--move-production-traffic`. Beside a running daemon it would
//! be a second controller over the same names, so it refuses outright.

use crate::config::{AdapterConfig, Config, CutoverConfig};
use crate::store;

/// Why a live drill of `config` must not start, or `None` when it may.
/// `moves_production_traffic` is the user's explicit consent to a real cutover.
pub fn live_refusal(config: &Config, moves_production_traffic: bool) -> Option<String> {
    match store::writer_pid(&config.state_dir) {
        Ok(Some(pid)) => {
            return Some(format!(
                "a lifeboat daemon (pid {pid}) runs on {}: a live drill beside it would be a \
                 second controller over the same traffic. Run `--mode shadow` (drill copies \
                 only, production untouched), or stop the daemon first",
                config.state_dir.display()
            ));
        }
        Ok(None) => {}
        Err(e) => return Some(format!("cannot tell whether a daemon runs: {e:#}")),
    }
    if moves_production_traffic {
        return None;
    }
    let real = real_parts(config);
    (!real.is_empty()).then(|| {
        format!(
            "a live drill of {} cuts real traffic over ({}); pass --move-production-traffic \
             to do it, or use --mode shadow to verify copies without moving traffic",
            config.source.display(),
            real.join(", ")
        )
    })
}

/// The parts of `config` a live drill would act on for real: providers that are not
/// on this machine (or simulated), and a cutover other clients follow.
fn real_parts(config: &Config) -> Vec<String> {
    let mut parts: Vec<String> = config
        .providers
        .iter()
        .filter(|p| !matches!(p.adapter, AdapterConfig::Local(_) | AdapterConfig::Sim(_)))
        .map(|p| format!("provider {} ({})", p.name, p.adapter.kind()))
        .collect();
    match &config.cutover {
        CutoverConfig::EndpointsFile { .. } => {}
        CutoverConfig::Exec { .. } => parts.push("the exec cutover".into()),
        // A zone served only on loopback answers no client but this machine's.
        CutoverConfig::Dns(dns) if dns.servers.iter().all(|s| s.0.ip().is_loopback()) => {}
        CutoverConfig::Dns(dns) => parts.push(format!("DNS records in {}", dns.zone)),
    }
    parts
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn config(adapter: &str, cutover: &str) -> Config {
        let yaml = format!(
            "vendors: [{{name: a}}, {{name: b}}]
providers:
  - {{name: here, vendor: a, adapter: {{kind: local, ports: '20000-20009'}}}}
  - {{name: there, vendor: b, adapter: {adapter}}}
workloads:
  - {{name: web, command: [lifeboat, demo], placement: [here, there]}}
cutover: {cutover}
"
        );
        crate::config::parse(&yaml, Path::new("/nonexistent/lifeboat.yaml")).unwrap()
    }

    #[test]
    fn a_drill_on_this_machine_needs_no_consent() {
        let c = config(
            "{kind: sim}",
            "{kind: endpoints-file, path: endpoints.json}",
        );
        assert_eq!(live_refusal(&c, false), None);
    }

    #[test]
    fn real_traffic_needs_the_flag_and_names_what_moves() {
        let c = config("{kind: sim}", "{kind: exec, command: [./switch.sh]}");
        let refusal = live_refusal(&c, false).unwrap();
        assert!(refusal.contains("exec cutover"), "{refusal}");
        assert!(refusal.contains("--move-production-traffic"), "{refusal}");
        assert_eq!(live_refusal(&c, true), None);
    }

    #[test]
    fn a_running_daemon_refuses_even_with_the_flag() {
        let dir = tempfile::tempdir().unwrap();
        let mut c = config(
            "{kind: sim}",
            "{kind: endpoints-file, path: endpoints.json}",
        );
        c.state_dir = dir.path().to_owned();
        let daemon = store::Store::open(dir.path()).unwrap();
        let refusal = live_refusal(&c, true).unwrap();
        assert!(
            refusal.contains(&std::process::id().to_string()),
            "{refusal}"
        );
        drop(daemon);
        assert_eq!(live_refusal(&c, true), None);
    }
}
