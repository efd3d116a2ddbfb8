//! Building the backend from config: what it accepts and the errors it gives. The
//! exchanges with a real server are tested in `tests/dns_cutover.rs` against BIND.

use super::*;
use crate::config::{DnsConfig, WorkloadConfig};

const SECRET: &str = "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0ISE=";

fn settings(extra: &str) -> DnsConfig {
    let yaml = format!(
        "zone: Example.COM\nservers: [\"127.0.0.1:5300\", \"127.0.0.2\"]\n\
         tsig: {{name: k, algorithm: hmac-sha512, secret_env: K}}\n{extra}"
    );
    serde_yaml::from_str(&yaml).unwrap()
}

fn workload(name: &str, public: Option<&str>, port: Option<u16>) -> WorkloadConfig {
    let yaml = format!("{{name: {name}, command: [x], placement: [p]}}");
    let mut w: WorkloadConfig = serde_yaml::from_str(&yaml).unwrap();
    w.public_name = public.map(str::to_owned);
    w.port = port;
    w
}

fn build(settings: &DnsConfig, workloads: &[WorkloadConfig]) -> Result<Dns> {
    Dns::new(settings, workloads, Path::new("."), |v| {
        (v == "K").then(|| SECRET.to_owned())
    })
}

#[test]
fn servers_split_into_primary_and_secondaries() {
    let dns = build(&settings(""), &[]).unwrap();
    assert_eq!(dns.primary.to_string(), "127.0.0.1:5300");
    assert_eq!(dns.secondaries.len(), 1);
    assert_eq!(dns.secondaries[0].to_string(), "127.0.0.2:53");
    assert_eq!(dns.zone.to_ascii(), "example.com.");
    assert_eq!(dns.default_record.ttl, 60);
}

#[test]
fn overrides_apply_per_workload_and_names_are_case_blind() {
    let s = settings("ttl: 2m\nrecords:\n  api: {type: CNAME, ttl: 5s}\n");
    let ws = [
        workload("api", Some("API.example.com"), Some(443)),
        workload("web", Some("www.example.com."), None),
    ];
    let dns = build(&s, &ws).unwrap();
    let api = dns.by_workload["api"];
    assert_eq!(
        (api.kind, api.ttl, api.port),
        (RecordKind::Cname, 5, Some(443))
    );
    assert_eq!(dns.by_workload["web"].ttl, 120);
    let by_name = dns.by_name[&absolute_name("api.example.com").unwrap()];
    assert_eq!(by_name, api);
}

#[test]
fn config_mistakes_are_named() {
    let cases: [(DnsConfig, Vec<WorkloadConfig>, &str); 5] = [
        (
            settings("records: {ghost: {ttl: 5s}}"),
            vec![],
            "cutover.records.ghost",
        ),
        (
            settings(""),
            vec![workload("api", Some("api.other.org"), None)],
            "outside the zone",
        ),
        (settings("ttl: 1500ms"), vec![], "whole seconds"),
        (settings("timeout: 0s"), vec![], "timeout"),
        (
            DnsConfig {
                servers: vec![],
                ..settings("")
            },
            vec![],
            "primary",
        ),
    ];
    for (s, ws, want) in cases {
        let err = format!("{:#}", build(&s, &ws).unwrap_err());
        assert!(err.contains(want), "{want:?} not in {err:?}");
    }
}

#[test]
fn a_missing_secret_fails_at_build_time_without_the_value() {
    let err = Dns::new(&settings(""), &[], Path::new("."), |_| None).unwrap_err();
    let text = format!("{err:#}");
    assert!(
        text.contains("cutover.tsig") && text.contains('K'),
        "{text}"
    );
}

#[test]
fn debug_output_hides_the_secret() {
    let dns = build(&settings(""), &[]).unwrap();
    let text = format!("{dns:?}");
    assert!(!text.contains(SECRET), "{text}");
    assert!(text.contains("Signer(k (hmac-sha512))"), "{text}");
}

#[test]
fn ttls_are_whole_seconds_below_2_pow_31() {
    assert_eq!(ttl_secs(Duration::from_secs(0)).unwrap(), 0);
    assert_eq!(ttl_secs(Duration::from_secs(86400)).unwrap(), 86400);
    assert!(ttl_secs(Duration::from_millis(10)).is_err());
    assert!(ttl_secs(Duration::from_secs(1 << 31)).is_err());
}

#[tokio::test]
async fn switching_a_name_outside_the_zone_sends_nothing() {
    let dns = build(&settings(""), &[]).unwrap();
    let req = CutoverRequest {
        workload: "api".into(),
        public_name: "api.other.org".into(),
        old: None,
        new: lifeboat_provider::Endpoint {
            host: "192.0.2.1".into(),
            port: 80,
        },
        generation: Default::default(),
    };
    let err = dns.switch(&req).await.unwrap_err();
    assert!(err.to_string().contains("outside the zone"), "{err}");
}

#[tokio::test]
async fn an_unanswered_update_says_it_may_have_been_applied() {
    // Nothing listens on this port: the update gets no answer.
    let port = lifeboat_testkit::bind::free_dns_port();
    let s = settings("timeout: 300ms\n");
    let s = DnsConfig {
        servers: vec![format!("127.0.0.1:{port}").parse().unwrap()],
        ..s
    };
    let dns = build(&s, &[]).unwrap();
    let req = CutoverRequest {
        workload: "api".into(),
        public_name: "api.example.com".into(),
        old: None,
        new: lifeboat_provider::Endpoint {
            host: "192.0.2.1".into(),
            port: 80,
        },
        generation: Default::default(),
    };
    let err = format!("{:#}", dns.switch(&req).await.unwrap_err());
    assert!(err.contains("may or may not have been applied"), "{err}");
    assert!(!err.contains("unchanged"), "{err}");
}

#[test]
fn the_cutover_section_reads_kind_dns_and_rejects_unknown_fields() {
    use crate::config::CutoverConfig;
    let ok = "kind: dns\nzone: example.com\nservers: [192.0.2.53]\n\
              tsig: {name: k, algorithm: hmac-sha256, secret_env: K}";
    assert!(matches!(
        serde_yaml::from_str::<CutoverConfig>(ok).unwrap(),
        CutoverConfig::Dns(_)
    ));
    let typo = format!("{ok}\nzoen: example.org");
    let err = serde_yaml::from_str::<CutoverConfig>(&typo).unwrap_err();
    assert!(err.to_string().contains("zoen"), "{err}");
}
