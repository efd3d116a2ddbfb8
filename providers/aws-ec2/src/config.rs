//! Settings of a `kind: aws-ec2` provider, as written in `lifeboat.yaml`.
//!
//! Credentials are deliberately absent: they come from the standard AWS chain only
//! (environment, shared profile, web identity / IRSA, instance metadata), so a config
//! file can be shared, committed and printed without leaking a key.

use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Where the adapter reaches an instance's workload (health checks, endpoints).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AddressKind {
    /// The VPC-internal address: right when lifeboat runs in the same network.
    #[default]
    Private,
    /// The public address, falling back to the private one when there is none.
    Public,
}

/// Settings of one EC2 provider: a region, the launch settings of its instances, and
/// how long the adapter waits for AWS.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Ec2Config {
    /// AWS region, e.g. `eu-west-1`.
    pub region: String,
    /// Another EC2-compatible endpoint (moto in tests, a VPC endpoint, a partner cloud).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint_url: Option<String>,
    /// The AMI every instance boots; it needs cloud-init (and docker or podman for
    /// workloads that run an image).
    pub image_id: String,
    /// Instance type, e.g. `t3.small`.
    pub instance_type: String,
    /// The subnet to launch into (the region's default VPC when unset).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subnet_id: Option<String>,
    /// Security groups of the instances.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub security_group_ids: Vec<String>,
    /// An EC2 key pair name, for humans who need to log in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_name: Option<String>,
    /// IAM instance profile (name or ARN) the workloads run with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iam_instance_profile: Option<String>,
    /// How many instances lifeboat may run here; read from the account's
    /// `max-instances` attribute when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_instances: Option<u64>,
    /// Which instance address serves the workload.
    #[serde(default)]
    pub address: AddressKind,
    /// Longest wait for a TCP/TLS connection to the EC2 API (default 3 s).
    #[serde(
        default,
        with = "opt_duration",
        skip_serializing_if = "Option::is_none"
    )]
    pub connect_timeout: Option<Duration>,
    /// Longest wait for one API call, its retries included (default 20 s); each attempt
    /// gets an equal share, so a hung connection is retried within it. The controller
    /// puts its own, usually shorter, timeout around every call.
    #[serde(
        default,
        with = "opt_duration",
        skip_serializing_if = "Option::is_none"
    )]
    pub operation_timeout: Option<Duration>,
    /// Attempts per API call, the first included, for the SDK's adaptive retry (default
    /// 3). The controller retries whole steps on top; keep this small.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_attempts: Option<u32>,
    /// Longest wait for a workload health check on an instance (default the contract's
    /// `lifeboat_provider::health::DEFAULT_TIMEOUT`, 2 s).
    #[serde(
        default,
        with = "opt_duration",
        skip_serializing_if = "Option::is_none"
    )]
    pub health_timeout: Option<Duration>,
}

impl Ec2Config {
    /// A config with the required fields and every optional one unset.
    pub fn new(region: &str, image_id: &str, instance_type: &str) -> Ec2Config {
        Ec2Config {
            region: region.into(),
            endpoint_url: None,
            image_id: image_id.into(),
            instance_type: instance_type.into(),
            subnet_id: None,
            security_group_ids: Vec::new(),
            key_name: None,
            iam_instance_profile: None,
            max_instances: None,
            address: AddressKind::default(),
            connect_timeout: None,
            operation_timeout: None,
            max_attempts: None,
            health_timeout: None,
        }
    }

    pub(crate) fn connect_timeout(&self) -> Duration {
        self.connect_timeout.unwrap_or(Duration::from_secs(3))
    }

    pub(crate) fn operation_timeout(&self) -> Duration {
        self.operation_timeout.unwrap_or(Duration::from_secs(20))
    }

    pub(crate) fn max_attempts(&self) -> u32 {
        self.max_attempts.unwrap_or(3).max(1)
    }

    pub(crate) fn health_timeout(&self) -> Duration {
        self.health_timeout
            .unwrap_or(lifeboat_provider::health::DEFAULT_TIMEOUT)
    }

    /// Checks what serde cannot; the message names the field.
    pub fn validate(&self) -> Result<(), String> {
        let required = [
            ("region", &self.region),
            ("image_id", &self.image_id),
            ("instance_type", &self.instance_type),
        ];
        for (field, value) in required {
            if value.trim().is_empty() {
                return Err(format!("aws-ec2: `{field}` must not be empty"));
            }
        }
        if let Some(url) = &self.endpoint_url
            && !(url.starts_with("http://") || url.starts_with("https://"))
        {
            return Err(format!(
                "aws-ec2: `endpoint_url` must start with http:// or https://, got {url:?}"
            ));
        }
        if self.max_attempts == Some(0) {
            return Err("aws-ec2: `max_attempts` must be at least 1".into());
        }
        Ok(())
    }
}

/// Friendly durations (`3s`, `500ms`, `1m`), the same syntax as the rest of the config.
mod opt_duration {
    use super::*;

    pub fn serialize<S: Serializer>(value: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match value {
            Some(d) => {
                let signed =
                    jiff::SignedDuration::try_from(*d).unwrap_or(jiff::SignedDuration::MAX);
                s.serialize_str(&format!("{signed:#}"))
            }
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        let Some(text) = Option::<String>::deserialize(d)? else {
            return Ok(None);
        };
        let signed: jiff::SignedDuration = text.trim().parse().map_err(|_| {
            serde::de::Error::custom(format!(
                "invalid duration {text:?} (expected e.g. \"3s\", \"500ms\")"
            ))
        })?;
        Duration::try_from(signed).map(Some).map_err(|_| {
            serde::de::Error::custom(format!("duration {text:?} must not be negative"))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_full_config_and_round_trips() {
        let json = serde_json::json!({
            "region": "eu-west-1",
            "endpoint_url": "http://127.0.0.1:5000",
            "image_id": "ami-12345678",
            "instance_type": "t3.small",
            "subnet_id": "subnet-1",
            "security_group_ids": ["sg-1", "sg-2"],
            "key_name": "ops",
            "iam_instance_profile": "lifeboat-workload",
            "max_instances": 20,
            "address": "public",
            "connect_timeout": "1s",
            "operation_timeout": "10s",
            "max_attempts": 2,
            "health_timeout": "500ms"
        });
        let config: Ec2Config = serde_json::from_value(json.clone()).unwrap();
        assert_eq!(config.operation_timeout(), Duration::from_secs(10));
        assert_eq!(config.health_timeout(), Duration::from_millis(500));
        assert_eq!(config.address, AddressKind::Public);
        config.validate().unwrap();
        let back: Ec2Config =
            serde_json::from_value(serde_json::to_value(&config).unwrap()).unwrap();
        assert_eq!(back, config);
    }

    #[test]
    fn refuses_credentials_and_typos() {
        let json = serde_json::json!({
            "region": "eu-west-1", "image_id": "ami-1", "instance_type": "t3.micro",
            "secret_access_key": "nope"
        });
        assert!(serde_json::from_value::<Ec2Config>(json).is_err());
    }

    #[test]
    fn validation_names_the_field() {
        let mut config = Ec2Config::new("eu-west-1", "", "t3.micro");
        assert!(config.validate().unwrap_err().contains("image_id"));
        config.image_id = "ami-1".into();
        config.endpoint_url = Some("127.0.0.1:5000".into());
        assert!(config.validate().unwrap_err().contains("endpoint_url"));
        config.endpoint_url = None;
        config.max_attempts = Some(0);
        assert!(config.validate().unwrap_err().contains("max_attempts"));
    }

    /// The controller reads this struct as one variant of its `kind`-tagged adapter
    /// enum, from YAML: the tag must not count as an unknown field, and durations must
    /// be read the friendly way.
    #[test]
    fn reads_as_a_kind_tagged_yaml_variant() {
        #[derive(Debug, Deserialize)]
        #[serde(tag = "kind", rename_all = "kebab-case")]
        enum Adapter {
            AwsEc2(Ec2Config),
        }
        let yaml = "kind: aws-ec2\nregion: eu-west-1\nimage_id: ami-1\ninstance_type: t3.micro\noperation_timeout: 1m 30s\n";
        let Adapter::AwsEc2(config) = serde_yaml::from_str(yaml).unwrap();
        assert_eq!(config.operation_timeout, Some(Duration::from_secs(90)));
        let typo = format!("{yaml}max_instance: 3\n");
        let err = serde_yaml::from_str::<Adapter>(&typo)
            .unwrap_err()
            .to_string();
        assert!(err.contains("max_instance"), "{err}");
        let bad = yaml.replace("1m 30s", "soon");
        let err = serde_yaml::from_str::<Adapter>(&bad)
            .unwrap_err()
            .to_string();
        assert!(err.contains("invalid duration"), "{err}");
    }

    #[test]
    fn defaults_are_sane() {
        let config = Ec2Config::new("eu-west-1", "ami-1", "t3.micro");
        assert_eq!(config.max_attempts(), 3);
        assert!(config.connect_timeout() < config.operation_timeout());
    }
}
