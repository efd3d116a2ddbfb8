//! Cutover: making clients reach the new copy of a workload. A trait, so the endpoints
//! file, the exec hook and RFC 2136 DNS are interchangeable.

pub mod dns;

use std::time::Duration;

use async_trait::async_trait;
use lifeboat_provider::{Endpoint, Generation};

/// One traffic switch: point `public_name` at `new`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CutoverRequest {
    /// The workload being moved.
    pub workload: String,
    /// The name clients use.
    pub public_name: String,
    /// What lifeboat last pointed the name at (`None` on a first placement).
    pub old: Option<Endpoint>,
    /// The new copy.
    pub new: Endpoint,
    /// The generation of the new copy.
    pub generation: Generation,
}

/// What a client resolving a public name would get.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    /// The endpoint, if the name points anywhere.
    pub endpoint: Option<Endpoint>,
    /// How long a client may cache the answer (the DNS TTL); `None` when not cached.
    pub ttl: Option<Duration>,
}

/// A way to move traffic.
#[async_trait]
pub trait Cutover: Send + Sync {
    /// Points `req.public_name` at `req.new` and returns once the change is in effect
    /// at the source of truth. Idempotent: repeating a switch that already happened
    /// succeeds. Refuses (with an error) when the name no longer points at `req.old`,
    /// so a concurrent manual change is never overwritten silently.
    async fn switch(&self, req: &CutoverRequest) -> anyhow::Result<()>;

    /// Resolves `public_name` the way a client would (read the file, query DNS).
    async fn resolve(&self, public_name: &str) -> anyhow::Result<Resolved>;
}
