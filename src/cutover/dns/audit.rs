//! The classic trap of DNS cutover: the zone is hosted at the very vendor being left, so
//! losing that vendor takes the means of moving traffic with it. A pure check over the
//! validated config; `lifeboat validate` prints what it returns.

use crate::config::{Config, CutoverConfig};
use crate::model::Account;

/// Warnings about where the DNS that the cutover updates is hosted: at a vendor that also
/// runs providers (named with the workloads placed there), or at an unknown vendor
/// (`hosted_by` unset). Empty when the cutover is not DNS or the DNS host runs no workloads.
pub fn hosting_warnings(config: &Config) -> Vec<String> {
    let CutoverConfig::Dns(dns) = &config.cutover else {
        return Vec::new();
    };
    let Some(hosted_by) = dns.hosted_by.as_deref() else {
        return vec![format!(
            "cutover.hosted_by is not set: lifeboat cannot tell whether the DNS servers of \
             zone {} run at a vendor that also runs workloads (losing that vendor would take \
             DNS with it); name the vendor that hosts them",
            dns.zone
        )];
    };
    // An account names its vendor: deplatforming acts on the whole vendor.
    let vendor = match hosted_by.parse::<Account>() {
        Ok(account) => account.vendor,
        Err(_) => hosted_by.to_owned(),
    };
    let providers: Vec<&str> = config
        .providers
        .iter()
        // Case-blind, so `AWS` in one place and `aws` in another still match.
        .filter(|p| p.vendor.eq_ignore_ascii_case(&vendor))
        .map(|p| p.name.as_str())
        .collect();
    if providers.is_empty() {
        return Vec::new();
    }
    let workloads: Vec<&str> = config
        .workloads
        .iter()
        .filter(|w| w.placement.iter().any(|p| providers.contains(&p.as_str())))
        .map(|w| w.name.as_str())
        .collect();
    let runs = if workloads.is_empty() {
        String::new()
    } else {
        format!(" for workloads {}", workloads.join(", "))
    };
    vec![format!(
        "DNS for zone {} is hosted at vendor {vendor}, which also runs providers {}{runs}: \
         losing {vendor} would take DNS with it, and no cutover could move traffic away; \
         host the zone (or a secondary that lifeboat updates through) at a vendor that runs \
         no workloads",
        dns.zone,
        providers.join(", ")
    )]
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn config(cutover: &str) -> Config {
        let yaml = format!(
            r#"
vendors: [{{name: aws, accounts: [main]}}, {{name: hetzner}}, {{name: ns1}}]
providers:
  - {{name: eu, vendor: aws, account: main, adapter: {{kind: sim}}}}
  - {{name: metal, vendor: hetzner, adapter: {{kind: sim}}}}
workloads:
  - {{name: api, command: [x], placement: [eu, metal]}}
  - {{name: db, command: [x], placement: [metal]}}
cutover:
{cutover}
"#
        );
        crate::config::parse(&yaml, std::path::Path::new("lifeboat.yaml")).unwrap()
    }

    fn dns(hosted_by: Option<&str>) -> Config {
        let hosted = hosted_by
            .map(|h| format!("  hosted_by: {h}\n"))
            .unwrap_or_default();
        config(&format!(
            "  kind: dns\n  zone: example.com\n  servers: [192.0.2.53]\n{hosted}  \
             tsig: {{name: k, algorithm: hmac-sha256, secret_env: K}}"
        ))
    }

    #[test]
    fn dns_at_a_workload_vendor_is_named_with_its_workloads() {
        let w = hosting_warnings(&dns(Some("aws")));
        assert_eq!(w.len(), 1);
        assert!(w[0].contains("vendor aws"), "{}", w[0]);
        assert!(w[0].contains("providers eu"), "{}", w[0]);
        assert!(w[0].contains("workloads api"), "{}", w[0]);
        assert!(!w[0].contains("db"), "{}", w[0]);
        let by_account = hosting_warnings(&dns(Some("aws/main")));
        assert_eq!(by_account, w);
        assert_eq!(hosting_warnings(&dns(Some("AWS"))).len(), 1);
    }

    #[test]
    fn dns_elsewhere_is_quiet_and_unknown_hosting_is_flagged() {
        assert!(hosting_warnings(&dns(Some("ns1"))).is_empty());
        assert!(hosting_warnings(&dns(Some("cloudflare"))).is_empty());
        let unknown = hosting_warnings(&dns(None));
        assert_eq!(unknown.len(), 1);
        assert!(
            unknown[0].contains("hosted_by is not set"),
            "{}",
            unknown[0]
        );
    }

    #[test]
    fn other_cutovers_have_nothing_to_say() {
        let c = config("  kind: endpoints-file\n  path: endpoints.json");
        assert!(hosting_warnings(&c).is_empty());
    }

    proptest! {
        #[test]
        fn a_warning_appears_exactly_when_the_host_runs_providers(host in "[a-z]{1,8}") {
            let w = hosting_warnings(&dns(Some(&host)));
            let runs = host == "aws" || host == "hetzner";
            prop_assert_eq!(w.len(), usize::from(runs));
        }
    }
}
