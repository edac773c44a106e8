//! Fuzzes IP address and CIDR parsing and matching (`edgeward_core::ipnet`,
//! behind `IpPolicy`, `IpTable`, `restrict-ips` and `inCidrRange`). Input:
//! lines; the first is an address, the others CIDRs (`!` first: a deny
//! entry). Parsing must never panic, what parses must print and parse back
//! to itself, and the policy and table must agree with a linear scan.
#![no_main]
#![forbid(unsafe_code)]

use edgeward_core::ipnet::{Addr, IpPolicy, IpTable, Prefix};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut lines = data.split(|&b| b == b'\n');
    let first = lines.next().unwrap_or_default();
    let addr = Addr::parse_ascii(first);
    if let Ok(a) = addr {
        assert_eq!(Addr::parse(&a.to_string()), Ok(a), "address round trip");
    }
    let (mut allow, mut deny, mut pairs) = (Vec::new(), Vec::new(), Vec::new());
    for (i, line) in lines.enumerate() {
        let (is_deny, text) = match line.split_first() {
            Some((b'!', rest)) => (true, rest),
            _ => (false, line),
        };
        let Ok(prefix) = Prefix::parse_ascii(text) else {
            // A masked parse accepts host bits; it must not panic either.
            let _ = std::str::from_utf8(text).map(Prefix::parse_masked);
            continue;
        };
        assert_eq!(
            prefix.to_string().parse::<Prefix>(),
            Ok(prefix),
            "prefix round trip"
        );
        if is_deny {
            deny.push(prefix);
        } else {
            allow.push(prefix);
        }
        pairs.push((prefix, i));
    }
    let Ok(addr) = addr else {
        return;
    };
    let policy = IpPolicy::new(allow.clone(), deny.clone());
    let expected = allow.iter().any(|p| p.contains(addr)) && !deny.iter().any(|p| p.contains(addr));
    assert_eq!(policy.decide(addr), expected, "policy vs linear scan");
    let table = IpTable::new(pairs.clone());
    // Longest prefix wins; of equal prefixes, the last one given.
    let best = pairs
        .iter()
        .filter(|(p, _)| p.contains(addr))
        .max_by_key(|(p, i)| (p.prefix_len(), *i))
        .map(|(_, i)| i);
    assert_eq!(table.lookup(addr), best, "table vs linear scan");
});
