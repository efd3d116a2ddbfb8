//! The pure part of the DNS backend: what record an endpoint becomes, the UPDATE message
//! that swaps one value for another, and what an answer says. No I/O, so every rule here
//! is checked by unit and property tests.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use hickory_proto::op::{Message, OpCode, Query, UpdateMessage};
use hickory_proto::rr::rdata::{A, AAAA, CNAME};
use hickory_proto::rr::{DNSClass, Name, RData, Record, RecordType};

use crate::config::RecordKind;

/// The data one workload's record holds: an address, or an alias.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordValue {
    /// An A record.
    V4(Ipv4Addr),
    /// An AAAA record.
    V6(Ipv6Addr),
    /// A CNAME record (always an absolute name).
    Alias(Name),
}

impl RecordValue {
    /// The record an endpoint host becomes under `kind`. Fails when the host does not fit
    /// a forced type (a host name for `A`, an IPv4 address for `AAAA`, ...).
    pub fn for_host(host: &str, kind: RecordKind) -> Result<RecordValue, String> {
        // Endpoints may carry IPv6 addresses in URL brackets.
        let bare = host
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(host);
        let ip = bare.parse::<IpAddr>().ok();
        match (kind, ip) {
            (RecordKind::Auto | RecordKind::A, Some(IpAddr::V4(v4))) => Ok(RecordValue::V4(v4)),
            (RecordKind::Auto | RecordKind::Aaaa, Some(IpAddr::V6(v6))) => Ok(RecordValue::V6(v6)),
            (RecordKind::Auto | RecordKind::Cname, None) => {
                let mut name = Name::from_ascii(bare)
                    .map_err(|e| format!("{host:?} is not a valid host name: {e}"))?;
                if name.num_labels() == 0 {
                    return Err(format!("{host:?} is not a host name"));
                }
                name.set_fqdn(true);
                Ok(RecordValue::Alias(name))
            }
            (RecordKind::A, _) => Err(format!("an A record needs an IPv4 address, not {host:?}")),
            (RecordKind::Aaaa, _) => Err(format!(
                "an AAAA record needs an IPv6 address, not {host:?}"
            )),
            (RecordKind::Cname, Some(_)) => Err(format!(
                "a CNAME record needs a host name, not the address {host:?}"
            )),
        }
    }

    /// The DNS type of this value.
    pub fn record_type(&self) -> RecordType {
        match self {
            RecordValue::V4(_) => RecordType::A,
            RecordValue::V6(_) => RecordType::AAAA,
            RecordValue::Alias(_) => RecordType::CNAME,
        }
    }

    /// The wire form.
    pub fn rdata(&self) -> RData {
        match self {
            RecordValue::V4(ip) => RData::A(A(*ip)),
            RecordValue::V6(ip) => RData::AAAA(AAAA(*ip)),
            RecordValue::Alias(name) => RData::CNAME(CNAME(name.clone())),
        }
    }

    /// The value carried by an answer record, when it is one of the three types.
    pub fn from_rdata(rdata: &RData) -> Option<RecordValue> {
        match rdata {
            RData::A(a) => Some(RecordValue::V4(a.0)),
            RData::AAAA(a) => Some(RecordValue::V6(a.0)),
            RData::CNAME(c) => Some(RecordValue::Alias(c.0.clone())),
            _ => None,
        }
    }

    /// The host a client connects to (no trailing dot on names).
    pub fn host(&self) -> String {
        match self {
            RecordValue::V4(ip) => ip.to_string(),
            RecordValue::V6(ip) => ip.to_string(),
            RecordValue::Alias(name) => name.to_ascii().trim_end_matches('.').to_owned(),
        }
    }
}

impl fmt::Display for RecordValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RecordValue::V4(ip) => write!(f, "A {ip}"),
            RecordValue::V6(ip) => write!(f, "AAAA {ip}"),
            RecordValue::Alias(name) => write!(f, "CNAME {name}"),
        }
    }
}

/// Lists values for messages: `A 192.0.2.1, A 192.0.2.2`, or `nothing`.
pub fn show(values: &[RecordValue]) -> String {
    if values.is_empty() {
        return "nothing".to_owned();
    }
    values
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// An absolute DNS name from config text (`app.example.com` or `app.example.com.`).
pub fn absolute_name(text: &str) -> Result<Name, String> {
    let mut name =
        Name::from_ascii(text.trim()).map_err(|e| format!("{text:?} is not a DNS name: {e}"))?;
    name.set_fqdn(true);
    Ok(name)
}

/// The UPDATE that moves `name` from `old` to `new` in one transaction (RFC 2136):
///
/// * prerequisites: the `old` rrset exists with exactly that value (2.4.2), or, with no
///   `old`, no rrset of the new type exists (2.4.3); when the type changes, no rrset of
///   the new type exists either, so nothing unchecked is overwritten;
/// * updates: delete the old rrset (2.5.2), add the new record (2.5.1).
///
/// The server applies all of it or nothing, so a refused update leaves the old record.
pub fn swap_message(
    zone: &Name,
    name: &Name,
    ttl: u32,
    old: Option<&RecordValue>,
    new: &RecordValue,
) -> Message {
    let mut message = Message::query();
    message.metadata.op_code = OpCode::Update;
    message.metadata.recursion_desired = false;
    let mut zone_query = Query::query(zone.clone(), RecordType::SOA);
    zone_query.set_query_class(DNSClass::IN);
    message.add_zone(zone_query);

    let absent = |rtype: RecordType| {
        let mut r = Record::update0(name.clone(), 0, rtype);
        r.dns_class = DNSClass::NONE;
        r
    };
    match old {
        Some(old) => {
            message.add_pre_requisite(Record::from_rdata(name.clone(), 0, old.rdata()));
            if old.record_type() != new.record_type() {
                message.add_pre_requisite(absent(new.record_type()));
            }
            let mut delete = Record::update0(name.clone(), 0, old.record_type());
            delete.dns_class = DNSClass::ANY;
            message.add_update(delete);
        }
        None => message.add_pre_requisite(absent(new.record_type())),
    }
    message.add_update(Record::from_rdata(name.clone(), ttl, new.rdata()));
    message
}

/// The values of type `rtype` at `name` in an answer section, and the smallest TTL
/// among them (what a caching client would honour).
pub fn values_in(answers: &[Record], name: &Name, rtype: RecordType) -> (Vec<RecordValue>, u32) {
    let mut ttl = u32::MAX;
    let values: Vec<RecordValue> = answers
        .iter()
        .filter(|r| r.name == *name && r.record_type() == rtype)
        .filter_map(|r| {
            ttl = ttl.min(r.ttl);
            RecordValue::from_rdata(&r.data)
        })
        .collect();
    let ttl = if values.is_empty() { 0 } else { ttl };
    (values, ttl)
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::rr::RecordData;
    use proptest::prelude::*;

    fn name(text: &str) -> Name {
        absolute_name(text).unwrap()
    }

    #[test]
    fn host_becomes_the_record_type_it_fits() {
        use RecordKind::*;
        let ok = [
            ("192.0.2.7", Auto, RecordType::A),
            ("192.0.2.7", A, RecordType::A),
            ("2001:db8::7", Auto, RecordType::AAAA),
            ("[2001:db8::7]", Aaaa, RecordType::AAAA),
            ("web.other.test", Auto, RecordType::CNAME),
            ("web.other.test.", Cname, RecordType::CNAME),
        ];
        for (host, kind, want) in ok {
            let value = RecordValue::for_host(host, kind).unwrap();
            assert_eq!(value.record_type(), want, "{host} as {kind:?}");
        }
        let refused = [
            ("web.other.test", A),
            ("2001:db8::7", A),
            ("192.0.2.7", Aaaa),
            ("192.0.2.7", Cname),
            ("", Auto),
            ("bad name!", Cname),
        ];
        for (host, kind) in refused {
            assert!(
                RecordValue::for_host(host, kind).is_err(),
                "{host:?} as {kind:?}"
            );
        }
    }

    #[test]
    fn alias_host_has_no_trailing_dot() {
        let v = RecordValue::for_host("web.other.test", RecordKind::Auto).unwrap();
        assert_eq!(v.host(), "web.other.test");
        assert_eq!(v.to_string(), "CNAME web.other.test.");
    }

    #[test]
    fn swap_requires_the_old_value_and_replaces_the_rrset() {
        let zone = name("example.test");
        let app = name("app.example.test");
        let old = RecordValue::V4("192.0.2.1".parse().unwrap());
        let new = RecordValue::V4("192.0.2.2".parse().unwrap());
        let m = swap_message(&zone, &app, 60, Some(&old), &new);
        assert_eq!(m.metadata.op_code, OpCode::Update);
        assert_eq!(m.zones()[0].name(), &zone);
        let pre = m.prerequisites();
        assert_eq!(pre.len(), 1);
        assert_eq!((pre[0].dns_class, pre[0].ttl), (DNSClass::IN, 0));
        assert_eq!(pre[0].data, old.rdata());
        let up = m.updates();
        assert_eq!(up.len(), 2);
        assert_eq!(up[0].dns_class, DNSClass::ANY);
        assert_eq!(up[0].record_type(), RecordType::A);
        assert!(up[0].data.is_update());
        assert_eq!((up[1].dns_class, up[1].ttl), (DNSClass::IN, 60));
        assert_eq!(up[1].data, new.rdata());
    }

    #[test]
    fn first_placement_requires_no_rrset_of_the_new_type() {
        let new = RecordValue::V6("2001:db8::2".parse().unwrap());
        let m = swap_message(&name("t"), &name("a.t"), 5, None, &new);
        let pre = m.prerequisites();
        assert_eq!(pre.len(), 1);
        assert_eq!(pre[0].dns_class, DNSClass::NONE);
        assert_eq!(pre[0].record_type(), RecordType::AAAA);
        assert_eq!(m.updates().len(), 1);
    }

    #[test]
    fn type_change_also_requires_the_new_type_absent() {
        let old = RecordValue::V4("192.0.2.1".parse().unwrap());
        let new = RecordValue::Alias(name("web.other.test"));
        let m = swap_message(&name("t"), &name("a.t"), 5, Some(&old), &new);
        let pre = m.prerequisites();
        assert_eq!(pre.len(), 2);
        assert_eq!(pre[1].record_type(), RecordType::CNAME);
        assert_eq!(pre[1].dns_class, DNSClass::NONE);
    }

    #[test]
    fn values_in_keeps_matching_records_and_the_smallest_ttl() {
        let app = name("app.t");
        let answers = vec![
            Record::from_rdata(app.clone(), 60, RData::A(A("192.0.2.1".parse().unwrap()))),
            Record::from_rdata(app.clone(), 30, RData::A(A("192.0.2.2".parse().unwrap()))),
            Record::from_rdata(name("x.t"), 5, RData::A(A("192.0.2.3".parse().unwrap()))),
            Record::from_rdata(app.clone(), 1, RData::CNAME(CNAME(name("y.t")))),
        ];
        let (values, ttl) = values_in(&answers, &app, RecordType::A);
        assert_eq!(values.len(), 2);
        assert_eq!(ttl, 30);
        assert_eq!(values_in(&[], &app, RecordType::A), (vec![], 0));
    }

    proptest! {
        #[test]
        fn every_ip_round_trips_through_rdata(ip in any::<IpAddr>()) {
            let v = RecordValue::for_host(&ip.to_string(), RecordKind::Auto).unwrap();
            prop_assert_eq!(RecordValue::from_rdata(&v.rdata()), Some(v.clone()));
            prop_assert_eq!(v.host().parse::<IpAddr>().unwrap(), ip);
        }

        #[test]
        fn for_host_never_panics(host in ".*", k in 0..4u8) {
            let kind = [RecordKind::Auto, RecordKind::A, RecordKind::Aaaa, RecordKind::Cname][k as usize];
            let _ = RecordValue::for_host(&host, kind);
        }

        #[test]
        fn swap_always_adds_exactly_the_new_value(a in any::<Ipv4Addr>(), b in any::<Ipv4Addr>(), ttl in any::<u32>()) {
            let new = RecordValue::V4(b);
            let m = swap_message(&name("t"), &name("a.t"), ttl, Some(&RecordValue::V4(a)), &new);
            let last = m.updates().last().unwrap();
            prop_assert_eq!(&last.data, &new.rdata());
            prop_assert_eq!(last.ttl, ttl);
        }
    }
}
