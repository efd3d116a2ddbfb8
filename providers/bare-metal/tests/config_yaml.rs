//! The `kind: bare-metal` settings as an operator writes them.

use std::time::Duration;

use lifeboat_provider::{ErrorClass, Op};
use lifeboat_provider_bare_metal::{BareMetalConfig, BareMetalProvider, Runtime, Standby};

const EXAMPLE: &str = r#"
standby: power-off
timeouts: { power_on: 2m, ssh_ready: 10m, connect: 10s, power_off: 5m }
hosts:
  - name: rack1-a
    ssh: 203.0.113.10:22
    user: lifeboat
    key_file: /etc/lifeboat/id_ed25519
    host_key: { known_hosts: /etc/lifeboat/known_hosts }
    capacity: { slots: 8, cpu_millis: 16000, memory_mib: 65536 }
    labels: { site: fra1 }
    runtime: systemd
  - name: rack1-standby
    ssh: 203.0.113.11
    user: lifeboat
    host_key: { known_hosts: /etc/lifeboat/known_hosts, trust_on_first_use: true }
    runtime: podman
    bmc:
      url: https://203.0.113.111
      system_id: System.Embedded.1
      credentials: { username_env: BMC_USER, password_file: /etc/lifeboat/bmc-password }
      ca_file: /etc/lifeboat/bmc-ca.pem
"#;

#[test]
fn the_documented_example_reads() {
    let config: BareMetalConfig = serde_yaml::from_str(EXAMPLE).unwrap();
    assert_eq!(config.standby, Standby::PowerOff);
    assert_eq!(config.timeouts.ssh_ready, Duration::from_secs(600));
    assert_eq!(config.hosts[0].runtime, Runtime::Systemd);
    assert_eq!(config.hosts[0].capacity.slots, Some(8));
    assert!(config.hosts[1].host_key.trust_on_first_use);
    assert_eq!(
        config.hosts[1].bmc.as_ref().unwrap().system_id,
        "System.Embedded.1"
    );
    // The CA file does not exist here, so building the provider names it.
    let e = BareMetalProvider::new("own", config)
        .err()
        .expect("missing CA file");
    assert_eq!((e.class, e.op), (ErrorClass::InvalidRequest, Op::Probe));
    assert!(e.message.contains("bmc-ca.pem"), "{e}");
}

#[test]
fn inline_secrets_and_typos_are_refused() {
    let inline_password = EXAMPLE.replace(
        "password_file: /etc/lifeboat/bmc-password",
        "password: hunter2",
    );
    assert!(serde_yaml::from_str::<BareMetalConfig>(&inline_password).is_err());
    let typo = EXAMPLE.replace("runtime: podman", "runtme: podman");
    assert!(serde_yaml::from_str::<BareMetalConfig>(&typo).is_err());
    let blind = EXAMPLE.replace("trust_on_first_use: true", "accept_any: true");
    assert!(serde_yaml::from_str::<BareMetalConfig>(&blind).is_err());
}

#[test]
fn contradictory_settings_fail_validation() {
    let base: BareMetalConfig = serde_yaml::from_str(EXAMPLE).unwrap();
    let mut both = base.clone();
    let bmc = both.hosts[1].bmc.as_mut().unwrap();
    bmc.ca_file = None;
    bmc.credentials.password_env = Some("BMC_PASSWORD".into());
    let e = BareMetalProvider::new("own", both)
        .err()
        .expect("two password sources");
    assert!(
        e.message
            .contains("exactly one of password_env and password_file"),
        "{e}"
    );

    let mut insecure_and_ca = base.clone();
    insecure_and_ca.hosts[1].bmc.as_mut().unwrap().insecure = true;
    assert!(BareMetalProvider::new("own", insecure_and_ca).is_err());

    let mut duplicate = base.clone();
    duplicate.hosts[1].name = "rack1-a".into();
    assert!(BareMetalProvider::new("own", duplicate).is_err());

    let mut comma = base;
    comma.hosts[0].name = "a,b".into();
    assert!(BareMetalProvider::new("own", comma).is_err());
}
