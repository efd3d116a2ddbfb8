//! What a live drill may not do: run a second controller beside a daemon, or move real
//! traffic without being told to in so many words.
//!
//! A live drill cuts traffic over to its own copies and back. With only `local` and
//! `sim` providers and an endpoints-file cutover (or DNS servers on loopback) that is a
//! rehearsal on this machine;
//! with a cloud, a cluster, a rack, or a DNS/exec cutover it moves the traffic of real
//! clients, so it needs `--move-production-traffic`. Beside a running daemon it must not
//! be a second controller over the same names: it goes through the daemon's API instead
//! (see [`super::through_daemon`]), with the same consent.

use crate::api::Endpoint;
use crate::config::{AdapterConfig, Config, CutoverConfig};
use crate::store;

/// Who runs a live drill.
#[derive(Debug)]
pub enum Live {
    /// The drill's own controller, over its own copies: no daemon runs.
    OnItsOwn,
    /// The running daemon, asked through its API: the drill fences, the daemon moves.
    ThroughDaemon {
        /// Where its API answers, and its process.
        endpoint: Endpoint,
    },
}

/// How a live drill of `config` runs, or why it must not start.
/// `moves_production_traffic` is the user's explicit consent to a real cutover;
/// `scenario_given` says the user asked for a fault, which only the drill's own
/// controller can inject.
pub fn live(
    config: &Config,
    moves_production_traffic: bool,
    scenario_given: bool,
) -> Result<Live, String> {
    let live = match store::writer_pid(&config.state_dir) {
        Ok(Some(pid)) => {
            let endpoint = match crate::api::running_endpoint(&config.state_dir) {
                Ok(Some(endpoint)) => endpoint,
                Ok(None) => {
                    return Err(format!(
                        "a lifeboat daemon (pid {pid}) holds {} but serves no API to drill                          through: a live drill beside it would be a second controller over                          the same traffic. Run `--mode shadow` (drill copies only, production                          untouched), or stop the daemon first",
                        config.state_dir.display()
                    ));
                }
                Err(e) => return Err(format!("cannot reach the daemon (pid {pid}): {e:#}")),
            };
            if scenario_given {
                return Err(format!(
                    "a lifeboat daemon (pid {pid}) runs on {}: a live drill beside it fences                      the vendor through the daemon, whose adapters it cannot fault; drop                      --scenario, run `--mode shadow`, or stop the daemon to drill a fault",
                    config.state_dir.display()
                ));
            }
            Live::ThroughDaemon { endpoint }
        }
        Ok(None) => Live::OnItsOwn,
        Err(e) => return Err(format!("cannot tell whether a daemon runs: {e:#}")),
    };
    if moves_production_traffic {
        return Ok(live);
    }
    let real = real_parts(config);
    if real.is_empty() {
        return Ok(live);
    }
    Err(format!(
        "a live drill of {} cuts real traffic over ({}); pass --move-production-traffic \
         to do it, or use --mode shadow to verify copies without moving traffic",
        config.source.display(),
        real.join(", ")
    ))
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
        assert!(matches!(live(&c, false, true), Ok(Live::OnItsOwn)));
    }

    #[test]
    fn real_traffic_needs_the_flag_and_names_what_moves() {
        let c = config("{kind: sim}", "{kind: exec, command: [./switch.sh]}");
        let refusal = live(&c, false, false).unwrap_err();
        assert!(refusal.contains("exec cutover"), "{refusal}");
        assert!(refusal.contains("--move-production-traffic"), "{refusal}");
        assert!(matches!(live(&c, true, false), Ok(Live::OnItsOwn)));
    }

    #[test]
    fn a_running_daemon_without_an_api_refuses_even_with_the_flag() {
        let dir = tempfile::tempdir().unwrap();
        let mut c = config(
            "{kind: sim}",
            "{kind: endpoints-file, path: endpoints.json}",
        );
        c.state_dir = dir.path().to_owned();
        let daemon = store::Store::open(dir.path()).unwrap();
        let refusal = live(&c, true, false).unwrap_err();
        assert!(
            refusal.contains(&std::process::id().to_string()),
            "{refusal}"
        );
        assert!(refusal.contains("no API"), "{refusal}");
        drop(daemon);
        assert!(matches!(live(&c, true, false), Ok(Live::OnItsOwn)));
    }
}
