//! Who made a managed resource: the installation, and for a drill's copies the drill.
//!
//! lifeboat acts only on what it owns. Every resource an adapter creates carries its
//! [`Owner`] in the labels of [`crate::labels`]; `deploy`'s idempotency lookup,
//! `list_managed` and every retire the controller derives from them see the resources of
//! one owner only, so a drill, a second installation or a test run against the same
//! account can never adopt or destroy another's copies.

use std::fmt;

use serde::{Deserialize, Serialize};

/// The owner of a managed resource.
///
/// Both ids are label-safe (see [`Owner::check_id`]): they go into Kubernetes labels and
/// EC2 tags unchanged.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
pub struct Owner {
    /// The installation: one lifeboat deployment with its own state (`installation:` in
    /// `lifeboat.yaml`, generated once and kept in the state folder, or derived from the
    /// namespace in a cluster).
    pub installation: String,
    /// The drill that made the copy; `None` for the installation's production copies.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drill: Option<String>,
}

impl Owner {
    /// The production owner of an installation.
    pub fn installation(id: impl Into<String>) -> Owner {
        Owner {
            installation: id.into(),
            drill: None,
        }
    }

    /// The owner of the copies one drill of `installation` makes.
    pub fn drill(installation: impl Into<String>, drill: impl Into<String>) -> Owner {
        Owner {
            installation: installation.into(),
            drill: Some(drill.into()),
        }
    }

    /// Whether this owner is a drill (whose copies are never production's).
    pub fn is_drill(&self) -> bool {
        self.drill.is_some()
    }

    /// The installation's production owner, for a drill owner the installation it
    /// belongs to.
    pub fn production(&self) -> Owner {
        Owner::installation(self.installation.clone())
    }

    /// Eight hex digits that tell owners apart in resource names (a Kubernetes object
    /// name, a process record, an EC2 client token), where the ids themselves would be
    /// too long. Stable across versions: it is part of names already created.
    pub fn discriminator(&self) -> String {
        let mut bytes = self.installation.as_bytes().to_vec();
        if let Some(drill) = &self.drill {
            bytes.push(b'/');
            bytes.extend_from_slice(drill.as_bytes());
        }
        format!("{:08x}", crate::types::fnv1a(&bytes) as u32)
    }

    /// The labels/tags that mark a resource as this owner's: [`crate::labels::OWNER`]
    /// always, [`crate::labels::DRILL`] for a drill's copies.
    pub fn labels(&self) -> Vec<(&'static str, String)> {
        let mut labels = vec![(crate::labels::OWNER, self.installation.clone())];
        if let Some(drill) = &self.drill {
            labels.push((crate::labels::DRILL, drill.clone()));
        }
        labels
    }

    /// Reads an owner back from a resource's labels (`get` looks one up by key). `None`
    /// when the resource has no owner label: it was made before owners existed.
    pub fn from_labels<'a>(get: impl Fn(&str) -> Option<&'a str>) -> Option<Owner> {
        let installation = get(crate::labels::OWNER)?;
        Some(Owner {
            installation: installation.to_owned(),
            drill: get(crate::labels::DRILL).map(str::to_owned),
        })
    }

    /// Whether a resource whose labels say `found` belongs to `wanted` (as
    /// [`crate::Provider::list_managed`] is asked): the same owner exactly, or both
    /// unowned. A drill never matches its installation's production copies, nor the
    /// other way round.
    pub fn matches(found: Option<&Owner>, wanted: Option<&Owner>) -> bool {
        found == wanted
    }

    /// Checks an installation or drill id: 1–63 characters of `[a-z0-9-]`, starting
    /// and ending with a letter or digit, so it is a valid Kubernetes label value, EC2
    /// tag value and file-name part everywhere.
    pub fn check_id(id: &str) -> Result<(), String> {
        let ok_chars = id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if id.is_empty() || id.len() > 63 {
            return Err(format!("{id:?} must be 1-63 characters long"));
        }
        if !ok_chars {
            return Err(format!(
                "{id:?} may hold only lower-case letters, digits and '-'"
            ));
        }
        if id.starts_with('-') || id.ends_with('-') {
            return Err(format!("{id:?} must start and end with a letter or digit"));
        }
        Ok(())
    }
}

impl fmt::Display for Owner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.drill {
            Some(drill) => write!(f, "{} (drill {drill})", self.installation),
            None => f.write_str(&self.installation),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    #[test]
    fn labels_round_trip_and_unlabelled_means_unowned() {
        for owner in [Owner::installation("prod-1"), Owner::drill("prod-1", "d42")] {
            let labels: BTreeMap<&str, String> = owner.labels().into_iter().collect();
            let back = Owner::from_labels(|k| labels.get(k).map(String::as_str));
            assert_eq!(back, Some(owner));
        }
        assert_eq!(Owner::from_labels(|_| None), None);
    }

    #[test]
    fn a_drill_never_matches_its_installation() {
        let prod = Owner::installation("prod-1");
        let drill = Owner::drill("prod-1", "d42");
        assert!(!Owner::matches(Some(&prod), Some(&drill)));
        assert!(!Owner::matches(Some(&drill), Some(&prod)));
        assert!(!Owner::matches(None, Some(&prod)));
        assert!(Owner::matches(None, None));
        assert_ne!(prod.discriminator(), drill.discriminator());
        assert_eq!(drill.production(), prod);
    }

    #[test]
    fn ids_are_label_safe() {
        assert!(Owner::check_id("prod-eu-1").is_ok());
        for bad in ["", "-a", "a-", "Prod", "a_b", "a.b", &"a".repeat(64)] {
            assert!(Owner::check_id(bad).is_err(), "{bad:?}");
        }
    }
}
