//! The DNS cutover against a real BIND 9: every switch is an RFC 2136 UPDATE signed with
//! TSIG, and every outcome is checked with `dig`, independently of lifeboat's own reads.
//! Each test starts its own servers (fresh zone, fresh key) and stops them on return.

use std::path::Path;

use lifeboat::config::{DnsConfig, WorkloadConfig};
use lifeboat::cutover::dns::Dns;
use lifeboat::cutover::{Cutover, CutoverRequest};
use lifeboat_provider::{Endpoint, Generation};
use lifeboat_testkit::bind::{Bind, TsigKey, ZONE, free_dns_port};

const APP: &str = "app.example.test";

fn key(algorithm: &str) -> TsigKey {
    TsigKey::generate("lifeboat-test", algorithm).expect("tsig-keygen (tests/peers/install.sh)")
}

/// A primary holding `app A 192.0.2.1`.
fn primary(key: &TsigKey) -> Bind {
    Bind::primary(ZONE, key, &["app 300 IN A 192.0.2.1"], free_dns_port(), &[])
        .expect("starting BIND (tests/peers/install.sh installs it)")
}

/// The backend for `servers`, with `key`'s secret in a file (as an operator would).
fn backend(servers: &[&Bind], key: &TsigKey, zone: &str, extra: &str) -> (Dns, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    key.write_secret(&dir.path().join("tsig.secret")).unwrap();
    let list: Vec<String> = servers
        .iter()
        .map(|b| format!("\"{}\"", b.addr()))
        .collect();
    let yaml = format!(
        "zone: {zone}\nservers: [{}]\nttl: 42s\ntimeout: 2s\n\
         tsig: {{name: {}, algorithm: {}, secret_file: tsig.secret}}\n{extra}",
        list.join(", "),
        key.name,
        key.algorithm
    );
    let settings: DnsConfig = serde_yaml::from_str(&yaml).unwrap();
    let app: WorkloadConfig = serde_yaml::from_str(&format!(
        "{{name: app, command: [x], placement: [p], port: 8080, public_name: app.{zone}}}"
    ))
    .unwrap();
    let dns = Dns::new(&settings, &[app], dir.path(), |_| None).unwrap();
    (dns, dir)
}

fn request(old: Option<&str>, new: &str) -> CutoverRequest {
    let endpoint = |host: &str| Endpoint {
        host: host.to_owned(),
        port: 8080,
    };
    CutoverRequest {
        workload: "app".into(),
        public_name: APP.into(),
        old: old.map(endpoint),
        new: endpoint(new),
        generation: Generation(2),
    }
}

#[tokio::test]
async fn a_cutover_changes_the_record_and_the_soa_serial() {
    let key = key("hmac-sha256");
    let bind = primary(&key);
    let (dns, _dir) = backend(&[&bind], &key, ZONE, "");
    let serial_before = bind.serial().unwrap();

    let outcome = dns
        .switch_detailed(&request(Some("192.0.2.1"), "192.0.2.2"))
        .await
        .unwrap();

    assert_eq!(bind.dig(APP, "A").unwrap(), ["192.0.2.2"]);
    let serial_after = bind.serial().unwrap();
    assert!(
        serial_after > serial_before,
        "{serial_before} -> {serial_after}"
    );
    assert_eq!(outcome.serial, serial_after);
    assert!(!outcome.already_done);
    let full = bind.dig(APP, "A").unwrap();
    assert_eq!(full.len(), 1, "the old address is gone: {full:?}");
}

#[tokio::test]
async fn repeating_a_switch_succeeds_without_a_second_change() {
    let key = key("hmac-sha256");
    let bind = primary(&key);
    let (dns, _dir) = backend(&[&bind], &key, ZONE, "");
    let req = request(Some("192.0.2.1"), "192.0.2.2");
    let first = dns.switch_detailed(&req).await.unwrap();
    let again = dns.switch_detailed(&req).await.unwrap();
    assert!(again.already_done);
    assert_eq!(
        again.serial, first.serial,
        "nothing was written the second time"
    );
    assert_eq!(bind.dig(APP, "A").unwrap(), ["192.0.2.2"]);
}

#[tokio::test]
async fn a_first_placement_creates_the_record_and_a_name_type_change_works() {
    let key = key("hmac-sha256");
    let bind = Bind::primary(ZONE, &key, &[], free_dns_port(), &[]).unwrap();
    let (dns, _dir) = backend(&[&bind], &key, ZONE, "");
    dns.switch(&request(None, "192.0.2.5")).await.unwrap();
    assert_eq!(bind.dig(APP, "A").unwrap(), ["192.0.2.5"]);

    // auto type: a host name becomes a CNAME, replacing the A record atomically.
    dns.switch(&request(Some("192.0.2.5"), "lb.elsewhere.test"))
        .await
        .unwrap();
    assert_eq!(bind.dig(APP, "CNAME").unwrap(), ["lb.elsewhere.test."]);
    assert_eq!(bind.dig(APP, "A").unwrap(), ["lb.elsewhere.test."]);
}

#[tokio::test]
async fn a_wrong_tsig_key_fails_clearly_and_leaves_the_record() {
    let key = key("hmac-sha256");
    let bind = primary(&key);
    let serial = bind.serial().unwrap();
    let mut forged = self::key("hmac-sha256");
    forged.name = key.name.clone();
    let (dns, _dir) = backend(&[&bind], &forged, ZONE, "");

    let err = dns
        .switch(&request(Some("192.0.2.1"), "192.0.2.2"))
        .await
        .unwrap_err();
    let text = format!("{err:#}");
    assert!(text.contains("TSIG key rejected"), "{text}");
    assert!(text.contains("old record is unchanged"), "{text}");
    assert!(
        !text.contains(&forged.secret) && !text.contains(&key.secret),
        "{text}"
    );
    assert_eq!(bind.dig(APP, "A").unwrap(), ["192.0.2.1"]);
    assert_eq!(bind.serial().unwrap(), serial);

    // A key the server does not know at all is rejected the same way.
    let stranger = TsigKey::generate("stranger", "hmac-sha256").unwrap();
    let (dns, _dir) = backend(&[&bind], &stranger, ZONE, "");
    let err = dns
        .switch(&request(Some("192.0.2.1"), "192.0.2.2"))
        .await
        .unwrap_err();
    assert!(format!("{err:#}").contains("TSIG key rejected"), "{err:#}");
    assert_eq!(bind.dig(APP, "A").unwrap(), ["192.0.2.1"]);
}

#[tokio::test]
async fn a_record_changed_behind_lifeboats_back_is_not_overwritten() {
    let key = key("hmac-sha256");
    let bind = primary(&key);
    bind.nsupdate(
        &key,
        "update delete app.example.test A\nupdate add app.example.test 300 A 198.51.100.7",
    )
    .unwrap();
    let (dns, _dir) = backend(&[&bind], &key, ZONE, "");

    let err = dns
        .switch(&request(Some("192.0.2.1"), "192.0.2.2"))
        .await
        .unwrap_err();
    let text = format!("{err:#}");
    assert!(
        text.contains("changed behind lifeboat's back: expected A 192.0.2.1, found A 198.51.100.7"),
        "{text}"
    );
    // Classified, so the executor gives up at once instead of retrying as `Internal`.
    assert_eq!(err.class, lifeboat_provider::ErrorClass::InvalidRequest);
    assert_eq!(bind.dig(APP, "A").unwrap(), ["198.51.100.7"]);

    // A first placement refuses to take over a record lifeboat never wrote.
    let err = dns.switch(&request(None, "192.0.2.2")).await.unwrap_err();
    assert!(
        format!("{err:#}").contains("expected no A record, found A 198.51.100.7"),
        "{err:#}"
    );
}

#[tokio::test]
async fn an_update_the_server_refuses_names_the_rcode() {
    let key = key("hmac-sha256");
    let bind = primary(&key);
    // The server is not authoritative for this zone.
    let (dns, _dir) = backend(&[&bind], &key, "other.test", "");
    let mut req = request(Some("192.0.2.1"), "192.0.2.2");
    req.public_name = "app.other.test".into();
    let err = dns.switch(&req).await.unwrap_err();
    let text = format!("{err:#}");
    assert!(text.contains("NOTAUTH"), "{text}");
    assert!(text.contains("old record is unchanged"), "{text}");
}

#[tokio::test]
async fn primary_and_secondary_both_answer_before_the_switch_returns() {
    let key = key("hmac-sha256");
    let secondary_port = free_dns_port();
    let primary = Bind::primary(
        ZONE,
        &key,
        &["app 300 IN A 192.0.2.1"],
        free_dns_port(),
        &[secondary_port],
    )
    .unwrap();
    let secondary = Bind::secondary(&primary, secondary_port).unwrap();
    assert_eq!(secondary.dig(APP, "A").unwrap(), ["192.0.2.1"]);
    let (dns, _dir) = backend(&[&primary, &secondary], &key, ZONE, "");

    let outcome = dns
        .switch_detailed(&request(Some("192.0.2.1"), "192.0.2.2"))
        .await
        .unwrap();

    // No waiting here: the switch itself waited for the secondary.
    assert_eq!(primary.dig(APP, "A").unwrap(), ["192.0.2.2"]);
    assert_eq!(secondary.dig(APP, "A").unwrap(), ["192.0.2.2"]);
    assert_eq!(secondary.serial().unwrap(), outcome.serial);
}

#[tokio::test]
async fn a_secondary_that_never_catches_up_fails_the_switch_after_the_timeout() {
    let key = key("hmac-sha256");
    // No NOTIFY and a 60 s refresh: the secondary keeps the old copy.
    let primary = primary(&key);
    let secondary = Bind::secondary(&primary, free_dns_port()).unwrap();
    let (dns, _dir) = backend(
        &[&primary, &secondary],
        &key,
        ZONE,
        "propagation_timeout: 1s\n",
    );
    let err = dns
        .switch(&request(Some("192.0.2.1"), "192.0.2.2"))
        .await
        .unwrap_err();
    let text = format!("{err:#}");
    assert!(
        text.contains(&format!(
            "secondary {} still answers A 192.0.2.1",
            secondary.addr()
        )),
        "{text}"
    );
    assert_eq!(primary.dig(APP, "A").unwrap(), ["192.0.2.2"]);
}

#[tokio::test]
async fn hmac_sha512_keys_work() {
    let key = key("hmac-sha512");
    let bind = primary(&key);
    let (dns, _dir) = backend(&[&bind], &key, ZONE, "");
    dns.switch(&request(Some("192.0.2.1"), "192.0.2.3"))
        .await
        .unwrap();
    assert_eq!(bind.dig(APP, "A").unwrap(), ["192.0.2.3"]);
}

#[tokio::test]
async fn resolve_asks_the_servers_and_returns_the_endpoint_and_ttl() {
    let key = key("hmac-sha256");
    let bind = primary(&key);
    let (dns, _dir) = backend(&[&bind], &key, ZONE, "");

    let before = dns.resolve(APP).await.unwrap();
    assert_eq!(before.endpoint.unwrap().to_string(), "192.0.2.1:8080");
    assert_eq!(before.ttl.unwrap().as_secs(), 300);

    dns.switch(&request(Some("192.0.2.1"), "192.0.2.2"))
        .await
        .unwrap();
    let after = dns.resolve(APP).await.unwrap();
    assert_eq!(after.endpoint.unwrap().to_string(), "192.0.2.2:8080");
    assert_eq!(after.ttl.unwrap().as_secs(), 42, "the configured TTL");

    // A name with no record: nothing, cached for the zone's negative TTL.
    let missing = dns.resolve("nothing.example.test").await.unwrap();
    assert_eq!(missing.endpoint, None);
    assert_eq!(missing.ttl.unwrap().as_secs(), 30);
}

#[test]
fn secret_files_may_be_bind_key_files() {
    // tsig-keygen's own output is accepted as the secret file.
    let key = key("hmac-sha256");
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("k.conf"), key.clause()).unwrap();
    let settings: DnsConfig = serde_yaml::from_str(&format!(
        "zone: {ZONE}\nservers: [\"127.0.0.1\"]\n\
         tsig: {{name: {}, algorithm: hmac-sha256, secret_file: k.conf}}",
        key.name
    ))
    .unwrap();
    assert!(Dns::new(&settings, &[], Path::new(dir.path()), |_| None).is_ok());
}
