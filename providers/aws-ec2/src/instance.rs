//! Reading an EC2 instance as lifeboat sees it: its tags, its owner, the address and
//! endpoint its workload is reached at. Pure functions over the SDK's `Instance`, shared
//! by `deploy`, `inspect`, `list`, `probe` and `retire`, so none of those operation
//! modules needs another's internals (and none imports another in a circle).

use aws_sdk_ec2::types::Instance;
use lifeboat_provider::{Endpoint, HealthCheck, Owner, labels};

use crate::config::AddressKind;
use crate::tags;

/// The value of tag `key` on `instance`, if it has it.
pub(crate) fn tag_value<'a>(instance: &'a Instance, key: &str) -> Option<&'a str> {
    instance
        .tags()
        .iter()
        .find(|t| t.key() == Some(key))
        .and_then(|t| t.value())
}

/// The workload's port, from the tag `deploy` wrote.
pub(crate) fn port_of(instance: &Instance) -> Option<u16> {
    tag_value(instance, tags::PORT).and_then(|p| p.parse().ok())
}

/// The workload's health check, from the tag `deploy` wrote (the contract's one-line
/// form); `None` without the tag, or when it holds something else (edited by hand).
pub(crate) fn health_of(instance: &Instance) -> Option<HealthCheck> {
    tag_value(instance, tags::HEALTH).and_then(|h| h.parse().ok())
}

/// The owner an instance's tags name; `None` when it has no owner tag (launched before
/// owners existed).
pub(crate) fn owner_of(instance: &Instance) -> Option<Owner> {
    Owner::from_labels(|key| tag_value(instance, key))
}

/// Whether `instance` is a managed instance of exactly `owner` (`None`: of no owner), by
/// its tags as they are now. A drill's instance is never production's, nor the other
/// way round, and an instance lifeboat did not launch belongs to no owner at all.
pub(crate) fn belongs_to(instance: &Instance, owner: Option<&Owner>) -> bool {
    tag_value(instance, labels::MANAGED) == Some("true")
        && Owner::matches(owner_of(instance).as_ref(), owner)
}

/// The address the workload is reached at, as configured (private, or public with the
/// private one as fallback).
pub(crate) fn address_of(instance: &Instance, kind: AddressKind) -> Option<String> {
    let private = instance.private_ip_address().filter(|a| !a.is_empty());
    let public = instance.public_ip_address().filter(|a| !a.is_empty());
    match kind {
        AddressKind::Private => private,
        AddressKind::Public => public.or(private),
    }
    .map(str::to_owned)
}

/// The workload endpoint of an instance, when it has an address and the workload a port.
pub(crate) fn endpoint_of(
    instance: &Instance,
    kind: AddressKind,
    port: Option<u16>,
) -> Option<Endpoint> {
    Some(Endpoint {
        host: address_of(instance, kind)?,
        port: port?,
    })
}

#[cfg(test)]
mod tests {
    use aws_sdk_ec2::types::Tag;

    use super::*;

    fn addressed(private: Option<&str>, public: Option<&str>) -> Instance {
        Instance::builder()
            .set_private_ip_address(private.map(Into::into))
            .set_public_ip_address(public.map(Into::into))
            .build()
    }

    fn tagged(tags: &[(&str, &str)]) -> Instance {
        let tags = tags
            .iter()
            .map(|(k, v)| Tag::builder().key(*k).value(*v).build())
            .collect();
        Instance::builder().set_tags(Some(tags)).build()
    }

    fn managed(owner: Option<&Owner>) -> Instance {
        let mut tags = vec![(labels::MANAGED, "true".to_owned())];
        tags.extend(owner.map(Owner::labels).unwrap_or_default());
        let tags: Vec<(&str, &str)> = tags.iter().map(|(k, v)| (*k, v.as_str())).collect();
        tagged(&tags)
    }

    #[test]
    fn address_follows_the_configured_kind() {
        let both = addressed(Some("10.0.0.5"), Some("203.0.113.9"));
        assert_eq!(
            address_of(&both, AddressKind::Private).as_deref(),
            Some("10.0.0.5")
        );
        assert_eq!(
            address_of(&both, AddressKind::Public).as_deref(),
            Some("203.0.113.9")
        );
        let private_only = addressed(Some("10.0.0.5"), None);
        assert_eq!(
            address_of(&private_only, AddressKind::Public).as_deref(),
            Some("10.0.0.5")
        );
        assert_eq!(
            address_of(&addressed(None, None), AddressKind::Public),
            None
        );
        assert_eq!(endpoint_of(&both, AddressKind::Private, None), None);
        assert_eq!(
            endpoint_of(&both, AddressKind::Private, Some(8080)),
            Some(Endpoint {
                host: "10.0.0.5".into(),
                port: 8080
            })
        );
    }

    #[test]
    fn the_tags_deploy_writes_read_back() {
        let instance = tagged(&[(tags::PORT, "8080"), (tags::HEALTH, "http:/healthz")]);
        assert_eq!(port_of(&instance), Some(8080));
        assert_eq!(
            health_of(&instance),
            Some(HealthCheck::Http {
                path: "/healthz".into()
            })
        );
        assert_eq!(
            health_of(&tagged(&[(tags::HEALTH, "tcp")])),
            Some(HealthCheck::Tcp)
        );
        // A tag edited into something else means "no check", not a guess.
        assert_eq!(health_of(&tagged(&[(tags::HEALTH, "grpc")])), None);
        assert_eq!(port_of(&tagged(&[(tags::PORT, "http")])), None);
    }

    #[test]
    fn an_instance_belongs_to_exactly_its_owner() {
        let prod = Owner::installation("prod-1");
        let drill = Owner::drill("prod-1", "d42");
        let other = Owner::installation("prod-2");
        let owners = [None, Some(&prod), Some(&drill), Some(&other)];
        for found in owners {
            let instance = managed(found);
            assert_eq!(owner_of(&instance).as_ref(), found);
            for wanted in owners {
                assert_eq!(
                    belongs_to(&instance, wanted),
                    found == wanted,
                    "tagged {found:?}, asked for {wanted:?}"
                );
            }
        }
    }

    #[test]
    fn instances_lifeboat_did_not_launch_belong_to_no_owner() {
        let prod = Owner::installation("prod-1");
        let owner_tags = prod.labels();
        let owner_only: Vec<(&str, &str)> =
            owner_tags.iter().map(|(k, v)| (*k, v.as_str())).collect();
        for unmanaged in [tagged(&[]), tagged(&owner_only)] {
            assert!(!belongs_to(&unmanaged, None));
            assert!(!belongs_to(&unmanaged, Some(&prod)));
        }
    }
}
