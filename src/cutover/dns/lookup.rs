//! Reading records from one server: the read-back after an update, the SOA serial, the
//! secondaries' progress, and resolving a public name the way a caching client would.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{Result, bail};
use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::{Name, RData, RecordType};
use lifeboat_provider::Endpoint;

use super::record::{RecordValue, values_in};
use super::wire;
use crate::config::RecordKind;
use crate::cutover::Resolved;

/// Longest CNAME chain followed inside one answer (resolvers use about this many).
const MAX_CHAIN: usize = 8;

/// Asks `server`, accepting NOERROR and NXDOMAIN (an answer either way) and failing on
/// any other RCODE (a secondary that has not loaded the zone answers SERVFAIL).
async fn ask(
    server: SocketAddr,
    name: &Name,
    rtype: RecordType,
    timeout: Duration,
) -> Result<Message> {
    let answer = wire::query(server, name, rtype, timeout).await?;
    match answer.metadata.response_code {
        ResponseCode::NoError | ResponseCode::NXDomain => Ok(answer),
        code => bail!(
            "{server} answered {} to {name} {rtype}",
            wire::rcode_text(code)
        ),
    }
}

/// The `rtype` values at `name` on `server`, and their smallest TTL.
pub async fn values(
    server: SocketAddr,
    name: &Name,
    rtype: RecordType,
    timeout: Duration,
) -> Result<(Vec<RecordValue>, u32)> {
    let answer = ask(server, name, rtype, timeout).await?;
    Ok(values_in(&answer.answers, name, rtype))
}

/// The zone's SOA serial on `server`.
pub async fn serial(server: SocketAddr, zone: &Name, timeout: Duration) -> Result<u32> {
    let answer = ask(server, zone, RecordType::SOA, timeout).await?;
    match answer.answers.iter().find_map(|r| match &r.data {
        RData::SOA(soa) if r.name == *zone => Some(soa.serial),
        _ => None,
    }) {
        Some(serial) => Ok(serial),
        None => bail!("{server} has no SOA record for {zone}"),
    }
}

/// What a client gets for a name: an address (or an alias it would chase elsewhere),
/// and how long it may cache that.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// The host to connect to, if the name points anywhere.
    pub host: Option<String>,
    /// Seconds a caching client keeps this answer.
    pub ttl: u32,
}

/// Resolves `name` on `server`: the configured record type, or A then AAAA for `auto`,
/// following CNAMEs the server included in its answer.
pub async fn resolve(
    server: SocketAddr,
    name: &Name,
    kind: RecordKind,
    timeout: Duration,
) -> Result<Answer> {
    let types: &[RecordType] = match kind {
        RecordKind::A => &[RecordType::A],
        RecordKind::Aaaa => &[RecordType::AAAA],
        RecordKind::Cname => &[RecordType::CNAME],
        RecordKind::Auto => &[RecordType::A, RecordType::AAAA],
    };
    let mut negative_ttl = 0;
    for rtype in types {
        let answer = ask(server, name, *rtype, timeout).await?;
        if let Some(found) = read_answer(&answer, name, *rtype) {
            return Ok(found);
        }
        negative_ttl = negative_ttl_of(&answer);
    }
    Ok(Answer {
        host: None,
        ttl: negative_ttl,
    })
}

/// The address in one answer, chasing CNAMEs within it; `None` when it holds nothing.
fn read_answer(answer: &Message, name: &Name, rtype: RecordType) -> Option<Answer> {
    if rtype == RecordType::CNAME {
        let (values, ttl) = values_in(&answer.answers, name, rtype);
        return values.first().map(|v| Answer {
            host: Some(v.host()),
            ttl,
        });
    }
    let mut current = name.clone();
    let mut ttl = u32::MAX;
    let mut chased = false;
    for _ in 0..MAX_CHAIN {
        let (alias, alias_ttl) = values_in(&answer.answers, &current, RecordType::CNAME);
        match alias.first() {
            Some(RecordValue::Alias(target)) => {
                ttl = ttl.min(alias_ttl);
                current = target.clone();
                chased = true;
            }
            _ => break,
        }
    }
    let (values, value_ttl) = values_in(&answer.answers, &current, rtype);
    match values.first() {
        Some(v) => Some(Answer {
            host: Some(v.host()),
            ttl: ttl.min(value_ttl),
        }),
        // An alias out of the zone: the client would chase it through other servers.
        None if chased => Some(Answer {
            host: Some(current.to_ascii().trim_end_matches('.').to_owned()),
            ttl,
        }),
        None => None,
    }
}

/// How long a client caches "no such record" (RFC 2308: the SOA's TTL capped by its
/// MINIMUM field).
fn negative_ttl_of(answer: &Message) -> u32 {
    answer
        .authorities
        .iter()
        .find_map(|r| match &r.data {
            RData::SOA(soa) => Some(r.ttl.min(soa.minimum)),
            _ => None,
        })
        .unwrap_or(0)
}

/// The trait's view of an answer: DNS carries no port, so the workload's port is added.
pub fn into_resolved(name: &Name, answer: Answer, port: Option<u16>) -> Result<Resolved> {
    let ttl = Some(Duration::from_secs(answer.ttl.into()));
    let endpoint = match (answer.host, port) {
        (Some(host), Some(port)) => Some(Endpoint { host, port }),
        (Some(host), None) => bail!(
            "{name} resolves to {host}, but no workload with this public name has a port \
             to connect to"
        ),
        (None, _) => None,
    };
    Ok(Resolved { endpoint, ttl })
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::rr::Record;
    use hickory_proto::rr::rdata::{A, CNAME, SOA};

    fn n(text: &str) -> Name {
        super::super::record::absolute_name(text).unwrap()
    }

    fn a(name: &str, ttl: u32, ip: &str) -> Record {
        Record::from_rdata(n(name), ttl, RData::A(A(ip.parse().unwrap())))
    }

    fn cname(name: &str, ttl: u32, target: &str) -> Record {
        Record::from_rdata(n(name), ttl, RData::CNAME(CNAME(n(target))))
    }

    #[test]
    fn cname_chains_are_chased_and_the_smallest_ttl_wins() {
        let mut m = Message::query();
        m.answers = vec![
            cname("app.t", 300, "web.t"),
            cname("web.t", 30, "host.t"),
            a("host.t", 60, "192.0.2.9"),
        ];
        let got = read_answer(&m, &n("app.t"), RecordType::A).unwrap();
        assert_eq!(
            got,
            Answer {
                host: Some("192.0.2.9".into()),
                ttl: 30
            }
        );
    }

    #[test]
    fn an_alias_out_of_the_answer_is_returned_as_a_host() {
        let mut m = Message::query();
        m.answers = vec![cname("app.t", 120, "lb.elsewhere.test")];
        let got = read_answer(&m, &n("app.t"), RecordType::A).unwrap();
        assert_eq!(
            got,
            Answer {
                host: Some("lb.elsewhere.test".into()),
                ttl: 120
            }
        );
        assert_eq!(
            read_answer(&Message::query(), &n("app.t"), RecordType::A),
            None
        );
    }

    #[test]
    fn a_cname_loop_ends() {
        let mut m = Message::query();
        m.answers = vec![cname("x.t", 5, "y.t"), cname("y.t", 5, "x.t")];
        assert!(read_answer(&m, &n("x.t"), RecordType::A).is_some());
    }

    #[test]
    fn negative_answers_are_cached_for_the_soa_minimum() {
        let mut m = Message::query();
        let soa = SOA::new(n("ns1.t"), n("admin.t"), 7, 3600, 600, 86400, 30);
        m.authorities = vec![Record::from_rdata(n("t"), 3600, RData::SOA(soa))];
        assert_eq!(negative_ttl_of(&m), 30);
        assert_eq!(negative_ttl_of(&Message::query()), 0);
    }

    #[test]
    fn resolving_needs_a_port_only_when_there_is_an_address() {
        let none = Answer { host: None, ttl: 9 };
        let r = into_resolved(&n("a.t"), none, None).unwrap();
        assert_eq!((r.endpoint, r.ttl), (None, Some(Duration::from_secs(9))));
        let some = Answer {
            host: Some("192.0.2.1".into()),
            ttl: 9,
        };
        assert!(into_resolved(&n("a.t"), some.clone(), None).is_err());
        let r = into_resolved(&n("a.t"), some, Some(8080)).unwrap();
        assert_eq!(r.endpoint.unwrap().to_string(), "192.0.2.1:8080");
    }
}
