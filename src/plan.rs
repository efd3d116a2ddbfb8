//! Placements + inventory + departures → a [`Plan`]: for each workload that must move,
//! where to, in which order.
//!
//! # Rules
//!
//! * A workload must move when its placement is on a provider being left; a workload
//!   with no placement at all gets its first one (`from: None`). Nothing else moves:
//!   failback is never automatic, so a healthy placement stays where it is even when a
//!   preferred provider is healthy again.
//! * Targets come from the workload's `placement` list, in order, skipping any provider
//!   being left (a vendor- or account-wide departure names every provider of it, so a
//!   provider that looks healthy at a lost account is skipped too) and any provider
//!   without room: capacity (replicas, CPU, memory) against `replicas × resources` of
//!   everything placed there plus everything this plan already sends there. When the
//!   provider's last probe said how much room is free (the vendor's own count, which
//!   sees what the configuration cannot: a quota lowered, hosts gone, someone else's
//!   instances), what this plan sends there must fit in that too. The first eligible
//!   provider is reserved; the other eligible ones follow as fall-through.
//! * No candidate left → [`Stranded`], with each candidate's refusal spelled out.
//! * No move twice in one flap: a workload that moved within the quiet period stays
//!   ([`Held`]) when its provider is left only for being unreachable; an account loss, a
//!   notice or a fence moves it regardless.
//! * Waves follow `depends_on` among the workloads that move: a dependency is in a
//!   strictly earlier wave than its dependents. Moves are sorted by wave, then deadline
//!   (`None`, meaning now, first), then `priority` (higher first), then name; capacity
//!   goes to moves in that order, so the most urgent and most critical get it first.
//! * A workload whose live copy is dead ([`Observed::replace`]) is replaced: its own
//!   provider first (unless it is being left), then the rest of its placement.
//! * The new copy's generation is one above every generation the workload has had (1
//!   for a first placement).

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet};

use jiff::Timestamp;
use lifeboat_provider::{Capacity, Generation};

use crate::conditions::at_least;
use crate::config::{Config, WorkloadConfig};
use crate::model::{Departure, Held, Move, Placement, Plan, Step, Stranded};

/// Plans the moves that `departures` require (and the first placement of every
/// unplaced workload), at `now`. Pure and total: any input gives a plan, never a panic.
pub fn plan(
    config: &Config,
    placements: &[Placement],
    departures: &[Departure],
    now: Timestamp,
) -> Plan {
    plan_observed(config, placements, departures, &Observed::default(), now)
}

/// What the daemon saw beyond placements and departures, for [`plan_observed`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Observed {
    /// Workloads whose live copy is dead or failing: each gets a move at a new
    /// generation whose first target is the provider it runs on, then the other
    /// eligible providers of its placement. A workload whose provider is being left
    /// moves as [`plan`] moves it, whether listed here or not.
    pub replace: BTreeSet<String>,
    /// Free room per provider, as its last successful probe reported it
    /// (`ProbeReport::capacity`); a provider absent here is bounded by its configured
    /// capacity alone.
    pub free: BTreeMap<String, Capacity>,
    /// Workloads with data whose warm standby runs on a provider (workload → provider):
    /// a move of one tries that provider first, where its data already is.
    pub standbys: BTreeMap<String, String>,
}

/// [`plan`], with what the daemon observed: dead copies to replace, and the room the
/// vendors say is free.
pub fn plan_observed(
    config: &Config,
    placements: &[Placement],
    departures: &[Departure],
    observed: &Observed,
    now: Timestamp,
) -> Plan {
    let replace = &observed.replace;
    let leaving = leaving_by_provider(departures);
    // What this plan sends to each provider, against the free room its probe reported.
    let mut added: BTreeMap<String, Usage> = BTreeMap::new();
    let mut usage = current_usage(config, placements);
    let mut plan = Plan::default();

    // Who must move, and from where. Placements are grouped by workload once: scanning
    // them all for every workload made planning quadratic (seconds at 10,000 workloads).
    let mut by_workload: BTreeMap<&str, Vec<&Placement>> = BTreeMap::new();
    for p in placements {
        by_workload.entry(&p.workload).or_default().push(p);
    }
    let mut affected: BTreeMap<&str, Affected> = BTreeMap::new();
    for w in &config.workloads {
        let mine = by_workload.get(w.name.as_str()).into_iter().flatten();
        let newest = mine.clone().max_by_key(|p| (p.generation, p.since));
        let generation = mine
            .map(|p| p.generation)
            .max()
            .map_or(Generation(1), Generation::next);
        let Some(current) = newest else {
            affected.insert(&w.name, Affected::first(w, generation));
            continue;
        };
        let Some(dep) = leaving.get(current.provider.as_str()) else {
            if replace.contains(&w.name) {
                affected.insert(
                    &w.name,
                    Affected {
                        replacing: true,
                        ..Affected::first(w, generation).from(&current.provider)
                    },
                );
            }
            continue;
        };
        if dep.cause.is_transient() && !at_least(current.since, now, config.policy.quiet_period) {
            let until = current
                .since
                .saturating_add(config.policy.quiet_period)
                .unwrap_or(Timestamp::MAX);
            plan.held.push(Held {
                workload: w.name.clone(),
                from: current.provider.clone(),
                until,
                reason: format!(
                    "moved to {} at {}, within the quiet period; {} is only {}",
                    current.provider, current.since, current.provider, dep.reason
                ),
            });
            continue;
        }
        affected.insert(
            &w.name,
            Affected {
                deadline: dep.deadline,
                ..Affected::first(w, generation).from(&current.provider)
            },
        );
    }

    assign_waves(&mut affected);
    let mut order: Vec<Affected> = affected.into_values().collect();
    order.sort_by(|a, b| {
        let key = |x: &Affected| (x.wave, x.deadline, Reverse(x.workload.priority));
        (key(a), &a.workload.name).cmp(&(key(b), &b.workload.name))
    });

    for a in order {
        let need = Usage::of(a.workload);
        let mut eligible: Vec<String> = Vec::new();
        let mut refusals: Vec<String> = Vec::new();
        let mut seen = BTreeSet::new();
        // A replacement tries its own provider first, where the dead copy's room is
        // its own again.
        let own = a.from.as_ref().filter(|_| a.replacing);
        // Only a move has a standby to go to: a first placement makes the primary.
        let standby = (observed.standbys.get(&a.workload.name)).filter(|_| a.from.is_some());
        for name in standby.into_iter().chain(own).chain(&a.workload.placement) {
            if !seen.insert(name.as_str()) {
                continue;
            }
            let Some(provider) = config.provider(name) else {
                refusals.push(format!("{name}: not a configured provider"));
                continue;
            };
            if let Some(dep) = leaving.get(name.as_str()) {
                refusals.push(format!("{name}: being left ({})", dep.reason));
                continue;
            }
            let mut used = usage.get(name.as_str()).copied().unwrap_or_default();
            if own == Some(name) {
                used = used.minus(need);
            }
            if let Some(full) = used.refusal(need, &provider.capacity) {
                refusals.push(format!("{name}: full ({full})"));
                continue;
            }
            let sent = added.get(name.as_str()).copied().unwrap_or_default();
            if let Some(short) = observed
                .free
                .get(name.as_str())
                .and_then(|free| sent.shortfall(need, free))
            {
                refusals.push(format!("{name}: no room by its last probe ({short})"));
                continue;
            }
            eligible.push(name.clone());
        }
        let Some(first) = eligible.first() else {
            let reason = if refusals.is_empty() {
                "no placement preferences".to_owned()
            } else {
                refusals.join("; ")
            };
            plan.stranded.push(Stranded {
                workload: a.workload.name.clone(),
                from: a.from,
                reason,
            });
            continue;
        };
        for taken in [&mut usage, &mut added] {
            let slot = taken.entry(first.clone()).or_default();
            *slot = slot.plus(need);
        }
        plan.moves.push(Move {
            workload: a.workload.name.clone(),
            from: a.from,
            targets: eligible,
            generation: a.generation,
            wave: a.wave,
            deadline: a.deadline,
            priority: a.workload.priority,
            steps: Step::ALL.to_vec(),
        });
    }

    compress_waves(&mut plan.moves);
    plan.moves.sort_by(|a, b| {
        let key = |m: &Move| (m.wave, m.deadline, Reverse(m.priority));
        (key(a), &a.workload).cmp(&(key(b), &b.workload))
    });
    plan.held.sort_by(|a, b| a.workload.cmp(&b.workload));
    plan
}

/// A workload that has to move (or be placed for the first time, or replaced).
struct Affected<'a> {
    workload: &'a WorkloadConfig,
    from: Option<String>,
    generation: Generation,
    deadline: Option<Timestamp>,
    wave: u32,
    /// Its copy is dead: it may go back to its own provider.
    replacing: bool,
}

impl<'a> Affected<'a> {
    fn first(workload: &'a WorkloadConfig, generation: Generation) -> Self {
        Affected {
            workload,
            from: None,
            generation,
            deadline: None,
            wave: 0,
            replacing: false,
        }
    }

    fn from(self, provider: &str) -> Self {
        Affected {
            from: Some(provider.to_owned()),
            ..self
        }
    }
}

/// The most urgent departure of each provider being left.
fn leaving_by_provider(departures: &[Departure]) -> BTreeMap<&str, &Departure> {
    let mut out: BTreeMap<&str, &Departure> = BTreeMap::new();
    for d in departures {
        let key = (d.deadline, d.cause.is_transient());
        match out.get(d.provider.as_str()) {
            Some(e) if (e.deadline, e.cause.is_transient()) <= key => {}
            _ => {
                out.insert(&d.provider, d);
            }
        }
    }
    out
}

/// What each provider already holds, from every placement of a configured workload
/// (stale copies too: they occupy room until retired).
fn current_usage(config: &Config, placements: &[Placement]) -> BTreeMap<String, Usage> {
    // By name, first one winning as in `Config::workload`, without its linear search.
    let mut workloads: BTreeMap<&str, &WorkloadConfig> = BTreeMap::new();
    for w in &config.workloads {
        workloads.entry(&w.name).or_insert(w);
    }
    let mut usage: BTreeMap<String, Usage> = BTreeMap::new();
    for p in placements {
        if let Some(w) = workloads.get(p.workload.as_str()) {
            let slot = usage.entry(p.provider.clone()).or_default();
            *slot = slot.plus(Usage::of(w));
        }
    }
    usage
}

/// Room taken on a provider, in the dimensions of [`Capacity`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Usage {
    replicas: u64,
    cpu_millis: u64,
    memory_mib: u64,
}

impl Usage {
    /// What all replicas of a workload take.
    fn of(w: &WorkloadConfig) -> Usage {
        let n = u64::from(w.replicas);
        Usage {
            replicas: n,
            cpu_millis: n.saturating_mul(w.resources.cpu_millis),
            memory_mib: n.saturating_mul(w.resources.memory_mib),
        }
    }

    fn plus(self, o: Usage) -> Usage {
        Usage {
            replicas: self.replicas.saturating_add(o.replicas),
            cpu_millis: self.cpu_millis.saturating_add(o.cpu_millis),
            memory_mib: self.memory_mib.saturating_add(o.memory_mib),
        }
    }

    fn minus(self, o: Usage) -> Usage {
        Usage {
            replicas: self.replicas.saturating_sub(o.replicas),
            cpu_millis: self.cpu_millis.saturating_sub(o.cpu_millis),
            memory_mib: self.memory_mib.saturating_sub(o.memory_mib),
        }
    }

    /// The first dimension in which `need` more does not fit beside `self` under
    /// `cap`: (dimension, taken, needed, cap).
    fn exceeds(self, need: Usage, cap: &Capacity) -> Option<(&'static str, u64, u64, u64)> {
        [
            ("replicas", self.replicas, need.replicas, cap.replicas),
            (
                "cpu_millis",
                self.cpu_millis,
                need.cpu_millis,
                cap.cpu_millis,
            ),
            (
                "memory_mib",
                self.memory_mib,
                need.memory_mib,
                cap.memory_mib,
            ),
        ]
        .into_iter()
        .find_map(|(dim, taken, need, cap)| {
            let cap = cap?;
            (taken.saturating_add(need) > cap).then_some((dim, taken, need, cap))
        })
    }

    /// Why `need` more does not fit under the configured `cap`, or `None` when it fits.
    fn refusal(self, need: Usage, cap: &Capacity) -> Option<String> {
        self.exceeds(need, cap)
            .map(|(dim, used, need, cap)| format!("{used}/{cap} {dim} in use, {need} needed"))
    }

    /// Why `need` more does not fit beside `self` (what this plan already sends) in the
    /// room a probe reported `free`, or `None` when it fits.
    fn shortfall(self, need: Usage, free: &Capacity) -> Option<String> {
        self.exceeds(need, free).map(|(dim, sent, need, free)| {
            format!("{free} {dim} free, {sent} already planned there, {need} needed")
        })
    }
}

/// Gives each affected workload its wave: 0 without an affected dependency, else one
/// more than its latest affected dependency (Kahn's algorithm, so it stays linear). A
/// cycle cannot pass validation; if one arrives anyway its members go last, unordered,
/// rather than looping or panicking.
fn assign_waves(affected: &mut BTreeMap<&str, Affected<'_>>) {
    let names: BTreeSet<&str> = affected.keys().copied().collect();
    let mut deps: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    let mut dependents: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (&name, a) in affected.iter() {
        let mine: BTreeSet<&str> = a
            .workload
            .depends_on
            .iter()
            .map(String::as_str)
            .filter(|d| names.contains(d) && *d != name)
            .collect();
        for &d in &mine {
            dependents.entry(d).or_default().push(name);
        }
        deps.insert(name, mine);
    }
    let mut waiting: BTreeMap<&str, usize> = deps.iter().map(|(&n, d)| (n, d.len())).collect();
    let mut ready: Vec<&str> = waiting
        .iter()
        .filter(|(_, c)| **c == 0)
        .map(|(&n, _)| n)
        .collect();
    let mut wave: BTreeMap<&str, u32> = BTreeMap::new();
    while let Some(n) = ready.pop() {
        let w = deps
            .get(n)
            .into_iter()
            .flatten()
            .filter_map(|d| wave.get(d))
            .map(|w| w.saturating_add(1))
            .max()
            .unwrap_or(0);
        wave.insert(n, w);
        for &child in dependents.get(n).map(Vec::as_slice).unwrap_or(&[]) {
            if let Some(c) = waiting.get_mut(child) {
                *c = c.saturating_sub(1);
                if *c == 0 {
                    ready.push(child);
                }
            }
        }
    }
    let last = wave.values().max().map_or(0, |w| w.saturating_add(1));
    for (name, a) in affected.iter_mut() {
        a.wave = wave.get(name).copied().unwrap_or(last);
    }
}

/// Renumbers waves 0, 1, 2, ... over the moves that remain (a stranded workload may have
/// left a gap), keeping their order, so "strictly earlier" still holds.
fn compress_waves(moves: &mut [Move]) {
    let distinct: BTreeSet<u32> = moves.iter().map(|m| m.wave).collect();
    let index: BTreeMap<u32, u32> = distinct.into_iter().zip(0u32..).collect();
    for m in moves {
        m.wave = index.get(&m.wave).copied().unwrap_or(m.wave);
    }
}

#[cfg(test)]
mod tests;
