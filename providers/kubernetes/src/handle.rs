//! Names of the objects lifeboat creates, and the deployment handle that lists them.
//!
//! A handle is the list of objects one deployment consists of, each as
//! `apiVersion/Kind/namespace/name` (namespace empty for cluster-scoped objects), joined
//! by `,`; for example `apps/v1/Deployment/prod/api-g3,v1/Service/prod/api-g3`. It needs
//! no state on lifeboat's side: `inspect` and `retire` find every object again from it.

use std::fmt;

use lifeboat_provider::{Generation, Owner};

/// One Kubernetes object, by its identity.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ObjectKey {
    /// `v1`, `apps/v1`, `example.com/v1beta1`.
    pub api_version: String,
    /// `Deployment`, `Service`, ...
    pub kind: String,
    /// The namespace; `None` for cluster-scoped objects.
    pub namespace: Option<String>,
    /// The object name.
    pub name: String,
}

impl fmt::Display for ObjectKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}/{}/{}/{}",
            self.api_version,
            self.kind,
            self.namespace.as_deref().unwrap_or(""),
            self.name
        )
    }
}

/// Encodes the objects of one deployment as a handle.
pub fn encode(keys: &[ObjectKey]) -> String {
    keys.iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

/// Reads a handle back; `None` when it was not made by [`encode`].
pub fn decode(handle: &str) -> Option<Vec<ObjectKey>> {
    if handle.is_empty() {
        return None;
    }
    handle
        .split(',')
        .map(|entry| {
            // Names, namespaces and kinds hold no `/`; the apiVersion may (`apps/v1`).
            let mut parts = entry.rsplitn(4, '/');
            let name = parts.next()?;
            let namespace = parts.next()?;
            let kind = parts.next()?;
            let api_version = parts.next()?;
            if name.is_empty() || kind.is_empty() || api_version.is_empty() {
                return None;
            }
            Some(ObjectKey {
                api_version: api_version.to_owned(),
                kind: kind.to_owned(),
                namespace: (!namespace.is_empty()).then(|| namespace.to_owned()),
                name: name.to_owned(),
            })
        })
        .collect()
}

/// The longest name a Service may have (an RFC 1035 label).
const MAX_NAME: usize = 63;

/// The name of one owner's Deployment and Service of a generation:
/// `<workload>-g<generation>-<owner discriminator>`, so two generations coexist during
/// make-before-break, and a drill's copy and production's copy (or two installations'
/// copies) of the same generation can share a namespace without one being mistaken for
/// the other's. Names too long for a Service are cut and made unique again with a hash
/// of the full workload name.
pub fn object_name(workload: &str, generation: Generation, owner: &Owner) -> String {
    let owner = owner.discriminator();
    let name = format!("{workload}-g{generation}-{owner}");
    if name.len() <= MAX_NAME {
        return name;
    }
    let tail = format!(
        "-{:08x}-g{generation}-{owner}",
        fnv1a32(workload.as_bytes())
    );
    let mut head: String = workload.chars().take(MAX_NAME - tail.len()).collect();
    // A label must not end in `-` before the hash's own `-`.
    while head.ends_with('-') {
        head.pop();
    }
    head + &tail
}

fn fnv1a32(bytes: &[u8]) -> u32 {
    bytes.iter().fold(0x811c_9dc5, |h, b| {
        (h ^ u32::from(*b)).wrapping_mul(0x0100_0193)
    })
}

/// Why a workload name cannot name Kubernetes objects, if it cannot: it must be an RFC
/// 1035 label (Service names are), lower-case letters, digits and `-`, starting with a
/// letter, at most 63 characters (it is also a label value).
pub fn invalid_workload_name(name: &str) -> Option<String> {
    let ok_chars = name
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    let starts = name.bytes().next().is_some_and(|b| b.is_ascii_lowercase());
    let ends = name.bytes().last().is_some_and(|b| b != b'-');
    if name.len() <= MAX_NAME && ok_chars && starts && ends {
        None
    } else {
        Some(format!(
            "workload name {name:?} cannot name Kubernetes objects: use at most 63 lower-case \
             letters, digits and '-', starting with a letter and not ending with '-'"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn key(api_version: &str, kind: &str, namespace: Option<&str>, name: &str) -> ObjectKey {
        ObjectKey {
            api_version: api_version.into(),
            kind: kind.into(),
            namespace: namespace.map(Into::into),
            name: name.into(),
        }
    }

    #[test]
    fn handles_read_back_with_groups_and_cluster_scope() {
        let keys = vec![
            key("apps/v1", "Deployment", Some("prod"), "api-g3"),
            key("v1", "Service", Some("prod"), "api-g3"),
            key(
                "rbac.authorization.k8s.io/v1",
                "ClusterRole",
                None,
                "api-reader",
            ),
        ];
        let handle = encode(&keys);
        assert_eq!(
            handle,
            "apps/v1/Deployment/prod/api-g3,v1/Service/prod/api-g3,rbac.authorization.k8s.io/v1/ClusterRole//api-reader"
        );
        assert_eq!(decode(&handle), Some(keys));
        assert_eq!(decode("i-0123456789"), None);
        assert_eq!(decode(""), None);
    }

    #[test]
    fn names_carry_the_generation_and_the_owner() {
        let prod = Owner::installation("prod-1");
        let drill = Owner::drill("prod-1", "d42");
        // Pinned: names of objects already in clusters must not change between versions.
        assert_eq!(object_name("api", Generation(3), &prod), "api-g3-700c1b9e");
        assert_ne!(
            object_name("api", Generation(3), &prod),
            object_name("api", Generation(4), &prod)
        );
        assert_ne!(
            object_name("api", Generation(3), &prod),
            object_name("api", Generation(3), &drill)
        );
    }

    #[test]
    fn workload_names_are_checked_like_service_names() {
        assert_eq!(invalid_workload_name("api-2"), None);
        for bad in ["", "Api", "2api", "api-", "api_x", &"a".repeat(64)] {
            assert!(invalid_workload_name(bad).is_some(), "{bad:?}");
        }
    }

    proptest! {
        #[test]
        fn object_names_fit_a_service_and_stay_distinct(
            workload in "[a-z][a-z0-9-]{0,61}[a-z0-9]",
            other in "[a-z][a-z0-9-]{0,61}[a-z0-9]",
            generation in any::<u64>(),
            installation in "[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?",
            drill in proptest::option::of("[a-z0-9]{1,63}"),
        ) {
            let owner = Owner { installation, drill };
            let name = object_name(&workload, Generation(generation), &owner);
            prop_assert!(name.len() <= MAX_NAME, "{}", name);
            prop_assert!(invalid_workload_name(&name).is_none(), "{}", name);
            let tail = format!("-g{generation}-{}", owner.discriminator());
            prop_assert!(name.ends_with(&tail));
            if other != workload {
                prop_assert_ne!(&name, &object_name(&other, Generation(generation), &owner));
            }
            let production = owner.production();
            if production != owner {
                prop_assert_ne!(name, object_name(&workload, Generation(generation), &production));
            }
        }

        #[test]
        fn any_handle_reads_back(
            keys in proptest::collection::vec(
                ("(v1|apps/v1|[a-z]{1,8}\\.io/v1beta1)", "[A-Z][a-zA-Z]{0,12}",
                 proptest::option::of("[a-z0-9-]{1,20}"), "[a-z0-9.-]{1,40}"),
                1..5,
            )
        ) {
            let keys: Vec<ObjectKey> = keys
                .into_iter()
                .map(|(a, k, ns, n)| ObjectKey { api_version: a, kind: k, namespace: ns, name: n })
                .collect();
            prop_assert_eq!(decode(&encode(&keys)), Some(keys));
        }
    }
}
