//! The operator's intents in a cluster, as annotations on the Policy the daemon reads:
//! the kill switch and approvals, which `lifeboat pause` and `lifeboat evacuations
//! approve` give a standalone daemon through its API.
//!
//! ```text
//! kubectl annotate policy default lifeboat.dev/pause='vendor call at 14:00'
//! kubectl annotate policy default lifeboat.dev/pause-                 # resume
//! kubectl annotate policy default lifeboat.dev/approve=pe-20261203-101500-1a2b
//! kubectl annotate policy default lifeboat.dev/reject=pe-20261203-101500-1a2b
//! ```
//!
//! Annotations, not the spec: changing them changes no configuration, so they take
//! effect at the next round without a reload, and GitOps tools that own the spec leave
//! them alone.

use super::resources::Policy;

/// Throws the kill switch while set; its value is the reason.
pub const PAUSE: &str = "lifeboat.dev/pause";
/// Starts the pending evacuation with this id (`policy.mode: confirm`).
pub const APPROVE: &str = "lifeboat.dev/approve";
/// Drops the pending evacuation with this id.
pub const REJECT: &str = "lifeboat.dev/reject";

/// What the annotations ask for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Intents {
    /// Paused, with this reason.
    pub pause: Option<String>,
    /// The evacuation to approve.
    pub approve: Option<String>,
    /// The evacuation to reject.
    pub reject: Option<String>,
}

/// The intents on `policy` (none without one). An empty pause reason still pauses.
pub fn read(policy: Option<&Policy>) -> Intents {
    let Some(annotations) = policy.and_then(|p| p.metadata.annotations.as_ref()) else {
        return Intents::default();
    };
    let get = |key: &str| annotations.get(key).map(|v| v.trim().to_owned());
    Intents {
        pause: get(PAUSE).map(|reason| {
            if reason.is_empty() {
                format!("paused by the {PAUSE} annotation")
            } else {
                reason
            }
        }),
        approve: get(APPROVE).filter(|id| !id.is_empty()),
        reject: get(REJECT).filter(|id| !id.is_empty()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::k8s::resources::PolicySpec;

    fn annotated(pairs: &[(&str, &str)]) -> Policy {
        let mut policy = Policy::new("default", PolicySpec::default());
        policy.metadata.annotations = Some(
            (pairs.iter())
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        );
        policy
    }

    #[test]
    fn annotations_read_as_intents() {
        assert_eq!(read(None), Intents::default());
        let policy = annotated(&[
            (PAUSE, ""),
            (APPROVE, " pe-1 "),
            (REJECT, ""),
            ("other", "x"),
        ]);
        assert_eq!(
            read(Some(&policy)),
            Intents {
                pause: Some("paused by the lifeboat.dev/pause annotation".into()),
                approve: Some("pe-1".into()),
                reject: None,
            }
        );
        let policy = annotated(&[(PAUSE, "vendor call")]);
        assert_eq!(read(Some(&policy)).pause.as_deref(), Some("vendor call"));
    }
}
