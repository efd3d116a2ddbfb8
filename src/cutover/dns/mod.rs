//! The `dns` cutover backend: RFC 2136 dynamic updates signed with TSIG, so traffic moves
//! with any server that speaks the standard (BIND, Knot, PowerDNS, many DNS hosts).
//!
//! A switch is one atomic UPDATE sent to the primary: "if the record still holds what
//! lifeboat last wrote, delete it and add the new value". The server applies all of it or
//! nothing, so a refused update leaves the old record in place, and a record someone
//! changed by hand is never overwritten silently. The switch returns only after the
//! primary answers the new value (its SOA serial is read too) and every listed secondary
//! answers it too.
//!
//! * `record`: the pure rules (record types, the UPDATE message, reading answers).
//! * `secret`: the TSIG key, read from a file or the environment, never logged.
//! * `wire`: one exchange with one server, and error messages with the RCODE.
//! * `lookup`: read-backs, the SOA serial, and resolving as a caching client would.
//! * `audit`: the warning about DNS hosted at a vendor that also runs workloads.

mod audit;
mod lookup;
mod record;
mod secret;
mod wire;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail, ensure};
use async_trait::async_trait;
use hickory_proto::op::ResponseCode;
use hickory_proto::rr::{Name, RecordType};

use crate::config::{Config, DnsConfig, RecordKind, WorkloadConfig};
use crate::cutover::{Cutover, CutoverError, CutoverRequest, Resolved};
use lifeboat_provider::ErrorClass;
use record::{RecordValue, absolute_name, show, swap_message};
use secret::Signer;

pub use audit::hosting_warnings;

/// The pause between two questions to a lagging secondary at first: a NOTIFY-driven
/// transfer usually lands within half a second, and every pause adds to the RTO.
const FAST_POLL: Duration = Duration::from_millis(100);
/// How long lifeboat asks at [`FAST_POLL`] before slowing to [`SLOW_POLL`].
const FAST_POLL_FOR: Duration = Duration::from_secs(5);
/// The pause once a secondary is clearly slow, so it is not hammered.
const SLOW_POLL: Duration = Duration::from_secs(1);

/// The RFC 2136 cutover backend. Build it with [`Dns::from_config`].
#[derive(Debug)]
pub struct Dns {
    zone: Name,
    primary: SocketAddr,
    secondaries: Vec<SocketAddr>,
    signer: Signer,
    timeout: Duration,
    propagation_timeout: Duration,
    default_record: RecordPlan,
    /// Per workload name.
    by_workload: BTreeMap<String, RecordPlan>,
    /// Per public name (absolute, lower case), for [`Cutover::resolve`].
    by_name: BTreeMap<Name, RecordPlan>,
}

/// How one workload's record is written and read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct RecordPlan {
    kind: RecordKind,
    ttl: u32,
    /// The workload's port: DNS carries no port, so resolving adds this one.
    port: Option<u16>,
}

/// What a successful switch found and left behind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SwitchOutcome {
    /// The primary's SOA serial after the switch.
    pub serial: u32,
    /// True when the record already held the new value (a repeated switch).
    pub already_done: bool,
    /// The TTL the record carries, in seconds.
    pub ttl: u32,
}

impl Dns {
    /// Builds the backend from the `cutover` section and the workloads it serves. Reads
    /// the TSIG secret now (from the process environment or a file relative to the config
    /// file), so a missing secret fails `validate`, not the first evacuation.
    pub fn from_config(settings: &DnsConfig, config: &Config) -> Result<Dns> {
        let base = config.source.parent().unwrap_or(Path::new("."));
        Dns::new(settings, &config.workloads, base, |var| {
            std::env::var(var).ok()
        })
    }

    /// [`Dns::from_config`] with the environment and base folder as parameters.
    pub fn new(
        settings: &DnsConfig,
        workloads: &[WorkloadConfig],
        base_dir: &Path,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Dns> {
        let zone = absolute_name(&settings.zone)
            .map_err(|e| anyhow!("cutover.zone: {e}"))?
            .to_lowercase();
        let (primary, secondaries) = settings
            .servers
            .split_first()
            .context("cutover.servers: list at least the primary server")?;
        ensure!(
            !settings.timeout.is_zero(),
            "cutover.timeout must be above zero"
        );
        let signer = secret::signer(&settings.tsig, base_dir, env).context("cutover.tsig")?;
        let default_record = RecordPlan {
            kind: settings.record_type,
            ttl: ttl_secs(settings.ttl).context("cutover.ttl")?,
            port: None,
        };
        let mut by_workload = BTreeMap::new();
        let mut by_name = BTreeMap::new();
        for w in workloads {
            let extra = settings.records.get(&w.name);
            let plan = RecordPlan {
                kind: extra
                    .and_then(|r| r.record_type)
                    .unwrap_or(default_record.kind),
                ttl: match extra.and_then(|r| r.ttl) {
                    Some(ttl) => {
                        ttl_secs(ttl).with_context(|| format!("cutover.records.{}.ttl", w.name))?
                    }
                    None => default_record.ttl,
                },
                port: w.port,
            };
            if let Some(public) = &w.public_name {
                let name = absolute_name(public)
                    .map_err(|e| anyhow!("workload {}: public_name: {e}", w.name))?
                    .to_lowercase();
                ensure!(
                    zone.zone_of(&name),
                    "workload {}: public_name {public} is outside the zone {zone} that \
                     cutover updates",
                    w.name
                );
                by_name.insert(name, plan);
            }
            by_workload.insert(w.name.clone(), plan);
        }
        if let Some(unknown) = settings
            .records
            .keys()
            .find(|k| !by_workload.contains_key(*k))
        {
            bail!("cutover.records.{unknown}: no workload is called {unknown:?}");
        }
        Ok(Dns {
            zone,
            primary: primary.0,
            secondaries: secondaries.iter().map(|s| s.0).collect(),
            signer,
            timeout: settings.timeout,
            propagation_timeout: settings.propagation_timeout,
            default_record,
            by_workload,
            by_name,
        })
    }

    /// The switch, with what it found: the new SOA serial and whether the record
    /// already held the new value. [`Cutover::switch`] is this without the outcome.
    pub async fn switch_detailed(&self, req: &CutoverRequest) -> Result<SwitchOutcome> {
        let plan = self
            .by_workload
            .get(&req.workload)
            .copied()
            .unwrap_or(self.default_record);
        let name = self.record_name(&req.public_name)?;
        let new = RecordValue::for_host(&req.new.host, plan.kind)
            .map_err(|e| anyhow!("cannot point {name} at {}: {e}", req.new))?;
        let old = match &req.old {
            Some(old) => Some(
                RecordValue::for_host(&old.host, plan.kind)
                    .map_err(|e| anyhow!("the old endpoint of {name}: {e}"))?,
            ),
            None => None,
        };
        if let Some(port) = plan.port.filter(|p| *p != req.new.port) {
            // DNS moves the address only: clients keep using the workload's port.
            tracing::warn!(
                workload = %req.workload,
                "the new copy serves on port {}, but clients of {name} use port {port}",
                req.new.port
            );
        }

        let message = swap_message(&self.zone, &name, plan.ttl, old.as_ref(), &new);
        let answer = wire::exchange(self.primary, message, Some(&self.signer), self.timeout)
            .await
            .map_err(|e| {
                if e.refused {
                    CutoverError::new(
                        ErrorClass::PermissionDenied,
                        format!("DNS update of {name}: {e}; the old record is unchanged"),
                    )
                } else {
                    CutoverError::new(
                        ErrorClass::Unavailable,
                        format!(
                            "DNS update of {name}: {e}; it may or may not have been applied \
                             (a retry is safe: it checks the record first)"
                        ),
                    )
                }
            })?;
        let already_done = match answer.metadata.response_code {
            ResponseCode::NoError => false,
            ResponseCode::YXRRSet | ResponseCode::NXRRSet => {
                self.explain_prerequisite(&name, old.as_ref(), &new).await?;
                true
            }
            code => {
                let class = match code {
                    ResponseCode::Refused
                    | ResponseCode::NotAuth
                    | ResponseCode::BADSIG
                    | ResponseCode::BADKEY
                    | ResponseCode::BADTIME => ErrorClass::PermissionDenied,
                    ResponseCode::NotZone | ResponseCode::FormErr | ResponseCode::NotImp => {
                        ErrorClass::InvalidRequest
                    }
                    _ => ErrorClass::Unavailable,
                };
                return Err(CutoverError::new(
                    class,
                    format!(
                        "DNS update of {name} refused by {}: {}; the old record is unchanged",
                        self.primary,
                        wire::rcode_text(code)
                    ),
                )
                .into());
            }
        };

        // The step counts as done only once the source of truth answers the new value.
        let (now, ttl) = lookup::values(self.primary, &name, new.record_type(), self.timeout)
            .await
            .with_context(|| format!("reading {name} back from the primary {}", self.primary))?;
        ensure!(
            now == [new.clone()],
            "{} accepted the update of {name} but answers {}, not {new}",
            self.primary,
            show(&now)
        );
        let serial = lookup::serial(self.primary, &self.zone, self.timeout)
            .await
            .with_context(|| {
                format!(
                    "reading the SOA serial of {} from {}",
                    self.zone, self.primary
                )
            })?;
        for secondary in &self.secondaries {
            self.await_secondary(*secondary, &name, &new, serial)
                .await?;
        }
        tracing::info!(
            workload = %req.workload,
            %name, value = %new, serial, already_done,
            "DNS cutover done on {} server(s)", 1 + self.secondaries.len()
        );
        Ok(SwitchOutcome {
            serial,
            already_done,
            ttl: if already_done { ttl } else { plan.ttl },
        })
    }

    /// A failed prerequisite: fine when the record already holds the new value (a
    /// repeated switch), else someone changed it and lifeboat must not overwrite it.
    async fn explain_prerequisite(
        &self,
        name: &Name,
        old: Option<&RecordValue>,
        new: &RecordValue,
    ) -> Result<()> {
        let mut found = Vec::new();
        for rtype in [RecordType::A, RecordType::AAAA, RecordType::CNAME] {
            let (values, _) = lookup::values(self.primary, name, rtype, self.timeout)
                .await
                .with_context(|| format!("reading {name} from {}", self.primary))?;
            found.extend(values);
        }
        let of_new_type: Vec<_> = found
            .iter()
            .filter(|v| v.record_type() == new.record_type())
            .cloned()
            .collect();
        let old_gone = old.is_none_or(|o| {
            o.record_type() == new.record_type()
                || found.iter().all(|v| v.record_type() != o.record_type())
        });
        if of_new_type == [new.clone()] && old_gone {
            return Ok(());
        }
        let expected = match old {
            Some(old) => old.to_string(),
            None => format!("no {} record", new.record_type()),
        };
        Err(CutoverError::changed(format!(
            "the record {name} was changed behind lifeboat's back: expected {expected}, found {}; \
             lifeboat did not overwrite it (fix the record or the placement, then retry)",
            show(&found)
        ))
        .into())
    }

    /// Polls one secondary until it answers `new`, up to the propagation timeout.
    async fn await_secondary(
        &self,
        server: SocketAddr,
        name: &Name,
        new: &RecordValue,
        serial: u32,
    ) -> Result<()> {
        let start = tokio::time::Instant::now();
        // A timeout too large to add means no deadline worth the name.
        let deadline = start.checked_add(self.propagation_timeout);
        loop {
            let last = match lookup::values(server, name, new.record_type(), self.timeout).await {
                Ok((values, _)) if values == [new.clone()] => return Ok(()),
                Ok((values, _)) => show(&values),
                Err(e) => format!("{e:#}"),
            };
            if deadline.is_some_and(|d| tokio::time::Instant::now() >= d) {
                bail!(
                    "the secondary {server} still answers {last} for {name} after {:?}; the \
                     primary {} already has {new} (serial {serial}), so the zone transfer is \
                     not reaching it",
                    self.propagation_timeout,
                    self.primary
                );
            }
            let pause = if start.elapsed() < FAST_POLL_FOR {
                FAST_POLL
            } else {
                SLOW_POLL
            };
            tokio::time::sleep(pause).await;
        }
    }

    /// The absolute record name of a public name, checked to lie inside the zone.
    fn record_name(&self, public_name: &str) -> Result<Name> {
        let name = absolute_name(public_name)
            .map_err(anyhow::Error::msg)?
            .to_lowercase();
        ensure!(
            self.zone.zone_of(&name),
            "{name} is outside the zone {} that the DNS cutover updates",
            self.zone
        );
        Ok(name)
    }
}

#[async_trait]
impl Cutover for Dns {
    async fn switch(&self, req: &CutoverRequest) -> Result<(), CutoverError> {
        Ok(self.switch_detailed(req).await.map(|_| ())?)
    }

    /// Asks the configured servers directly (the primary first, then the secondaries if
    /// it does not answer), never the system resolver, and returns the TTL a caching
    /// client would honour: the record's, or the zone's negative TTL when there is none.
    async fn resolve(&self, public_name: &str) -> Result<Resolved> {
        let name = self.record_name(public_name)?;
        let plan = self
            .by_name
            .get(&name)
            .copied()
            .unwrap_or(self.default_record);
        let servers = std::iter::once(self.primary).chain(self.secondaries.iter().copied());
        let mut errors = Vec::new();
        for server in servers {
            match lookup::resolve(server, &name, plan.kind, self.timeout).await {
                Ok(answer) => return lookup::into_resolved(&name, answer, plan.port),
                Err(e) => errors.push(format!("{e:#}")),
            }
        }
        bail!(
            "resolving {name}: no server answered: {}",
            errors.join("; ")
        )
    }
}

/// A TTL in whole seconds, as DNS carries it.
fn ttl_secs(ttl: Duration) -> Result<u32> {
    ensure!(
        ttl.subsec_nanos() == 0,
        "a DNS TTL is whole seconds, not {ttl:?}"
    );
    u32::try_from(ttl.as_secs())
        .ok()
        .filter(|s| *s <= i32::MAX as u32)
        .with_context(|| format!("a DNS TTL must be below 2^31 seconds, not {ttl:?}"))
}

#[cfg(test)]
mod tests;
