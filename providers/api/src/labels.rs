//! The tags/labels every managed resource carries, whatever the vendor calls them.
//!
//! They are how [`crate::Provider::list_managed`] finds lifeboat's resources again after
//! a crash, and how a stale copy (an older generation) is told apart from the live one.

/// The workload name.
pub const WORKLOAD: &str = "lifeboat.dev/workload";
/// The placement generation (decimal), the fencing token of the copy.
pub const GENERATION: &str = "lifeboat.dev/generation";
/// Always `"true"`: marks a resource as created by lifeboat (by some owner).
pub const MANAGED: &str = "lifeboat.dev/managed";
/// The installation that owns the resource (see [`crate::Owner`]). Absent on resources
/// made before owners existed.
pub const OWNER: &str = "lifeboat.dev/owner";
/// The drill that made the resource; absent on production copies.
pub const DRILL: &str = "lifeboat.dev/drill";
/// The environment variable that carries the generation into the workload.
pub const GENERATION_ENV: &str = "LIFEBOAT_GENERATION";
/// The environment variable naming a folder that is the copy's own: made before the
/// copy starts, kept across its restarts, and removed with the copy when it is retired
/// (a stateful member keeps its data there, so a retired member leaves nothing behind).
/// Set by adapters that can give one (the local adapter); absent elsewhere.
pub const COPY_DIR_ENV: &str = "LIFEBOAT_COPY_DIR";
