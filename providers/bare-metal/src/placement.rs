//! Which hosts get the copies of a workload: pure, so its rules are tested exhaustively.
//!
//! Rules: every copy on a different host (a host failure takes one replica, and copies
//! that share a port cannot share a host); only hosts with room in every bounded
//! dimension; hosts already powered on before cold-standby ones (waking a server costs
//! minutes and power); among those, the least loaded first, then the config order.

use lifeboat_provider::Resources;

use crate::config::HostCapacity;

/// What placement needs to know about one usable host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct HostView {
    /// Off now, would have to be powered on.
    pub powered_off: bool,
    pub capacity: HostCapacity,
    /// Copies it runs now.
    pub copies: u64,
    /// Resources those copies reserved.
    pub used: Resources,
}

impl HostView {
    /// Whether one more copy needing `need` fits.
    pub fn has_room(&self, need: Resources) -> bool {
        let fits = |limit: Option<u64>, used: u64, more: u64| {
            limit.is_none_or(|l| used.saturating_add(more) <= l)
        };
        fits(self.capacity.slots, self.copies, 1)
            && fits(
                self.capacity.cpu_millis,
                self.used.cpu_millis,
                need.cpu_millis,
            )
            && fits(
                self.capacity.memory_mib,
                self.used.memory_mib,
                need.memory_mib,
            )
    }
}

/// Picks `count` distinct hosts (indices into `hosts`) for new copies, or `None` when
/// fewer than `count` have room.
pub(crate) fn choose(hosts: &[HostView], need: Resources, count: usize) -> Option<Vec<usize>> {
    let mut candidates: Vec<usize> = (0..hosts.len())
        .filter(|&i| hosts[i].has_room(need))
        .collect();
    if candidates.len() < count {
        return None;
    }
    candidates.sort_by_key(|&i| (hosts[i].powered_off, hosts[i].copies, i));
    candidates.truncate(count);
    Some(candidates)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn host(off: bool, slots: Option<u64>, copies: u64) -> HostView {
        HostView {
            powered_off: off,
            capacity: HostCapacity {
                slots,
                cpu_millis: Some(4000),
                memory_mib: None,
            },
            copies,
            used: Resources {
                cpu_millis: copies * 1000,
                memory_mib: 0,
            },
        }
    }

    const ONE_CPU: Resources = Resources {
        cpu_millis: 1000,
        memory_mib: 128,
    };

    #[test]
    fn running_hosts_come_before_cold_standby() {
        let hosts = [
            host(true, None, 0),
            host(false, None, 2),
            host(false, None, 1),
        ];
        assert_eq!(choose(&hosts, ONE_CPU, 1), Some(vec![2]));
        assert_eq!(choose(&hosts, ONE_CPU, 2), Some(vec![2, 1]));
        assert_eq!(choose(&hosts, ONE_CPU, 3), Some(vec![2, 1, 0]));
        assert_eq!(choose(&hosts, ONE_CPU, 4), None, "one copy per host");
    }

    #[test]
    fn full_hosts_are_skipped_in_every_dimension() {
        let full_slots = host(false, Some(1), 1);
        let full_cpu = host(false, None, 4);
        let mut full_memory = host(false, None, 0);
        full_memory.capacity.memory_mib = Some(100);
        let standby = host(true, Some(2), 0);
        let hosts = [full_slots, full_cpu, full_memory, standby];
        assert_eq!(choose(&hosts, ONE_CPU, 1), Some(vec![3]));
        assert_eq!(choose(&hosts, ONE_CPU, 2), None);
    }

    fn arb_host() -> impl Strategy<Value = HostView> {
        (
            any::<bool>(),
            proptest::option::of(0u64..4),
            0u64..4,
            proptest::option::of(0u64..5000),
            0u64..5000,
        )
            .prop_map(|(off, slots, copies, cpu, used_cpu)| HostView {
                powered_off: off,
                capacity: HostCapacity {
                    slots,
                    cpu_millis: cpu,
                    memory_mib: None,
                },
                copies,
                used: Resources {
                    cpu_millis: used_cpu,
                    memory_mib: 0,
                },
            })
    }

    proptest! {
        #[test]
        fn choices_are_distinct_roomy_and_prefer_running_hosts(
            hosts in proptest::collection::vec(arb_host(), 0..8),
            cpu in 0u64..2000,
            count in 0usize..6,
        ) {
            let need = Resources { cpu_millis: cpu, memory_mib: 0 };
            let roomy = hosts.iter().filter(|h| h.has_room(need)).count();
            match choose(&hosts, need, count) {
                None => prop_assert!(roomy < count),
                Some(chosen) => {
                    prop_assert_eq!(chosen.len(), count);
                    let mut distinct = chosen.clone();
                    distinct.sort_unstable();
                    distinct.dedup();
                    prop_assert_eq!(distinct.len(), count);
                    prop_assert!(chosen.iter().all(|&i| hosts[i].has_room(need)));
                    // A powered-off host is chosen only when every running host with
                    // room is chosen too.
                    if chosen.iter().any(|&i| hosts[i].powered_off) {
                        let running_roomy = hosts.iter().enumerate()
                            .filter(|(_, h)| !h.powered_off && h.has_room(need)).count();
                        let running_chosen = chosen.iter().filter(|&&i| !hosts[i].powered_off).count();
                        prop_assert_eq!(running_roomy, running_chosen);
                    }
                }
            }
        }
    }
}
