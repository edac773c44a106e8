//! Unit tests: the parser on fixed cases, and policies and tables against a
//! brute-force scan over the prefixes on random inputs.

use super::*;

fn addr(text: &str) -> Addr {
    Addr::parse(text).unwrap_or_else(|_| panic!("{text:?} should parse"))
}

fn prefix(text: &str) -> Prefix {
    Prefix::parse(text).unwrap_or_else(|e| panic!("{text:?} should parse: {e}"))
}

fn prefixes(texts: &[&str]) -> Vec<Prefix> {
    texts.iter().map(|t| prefix(t)).collect()
}

#[test]
fn parses_addresses() {
    assert_eq!(addr("0.0.0.0"), Addr::V4(0));
    assert_eq!(addr("255.255.255.255"), Addr::V4(u32::MAX));
    assert_eq!(addr("192.0.2.1"), Addr::V4(0xc000_0201));
    assert_eq!(addr("::"), Addr::V6(0));
    assert_eq!(addr("::1"), Addr::V6(1));
    assert_eq!(addr("1::"), Addr::V6(1 << 112));
    assert_eq!(addr("2001:DB8::1"), Addr::V6(0x2001_0db8 << 96 | 1));
    assert_eq!(
        addr("1:2:3:4:5:6:7:8"),
        Addr::V6(0x0001_0002_0003_0004_0005_0006_0007_0008)
    );
    assert_eq!(
        addr("1:2:3:4:5:6:7::"),
        Addr::V6(0x0001_0002_0003_0004_0005_0006_0007_0000)
    );
    assert_eq!(
        addr("::2:3:4:5:6:7:8"),
        Addr::V6(0x0000_0002_0003_0004_0005_0006_0007_0008)
    );
    assert_eq!(addr("0000:0:0::00:1"), Addr::V6(1));
    assert_eq!(addr("::1.2.3.4"), Addr::V6(0x0102_0304));
    assert_eq!(
        addr("1:2:3:4:5:6:1.2.3.4"),
        Addr::V6(0x0001_0002_0003_0004_0005_0006_0102_0304)
    );
    assert_eq!(
        addr("1:2:3:4:5::1.2.3.4"),
        Addr::V6(0x0001_0002_0003_0004_0005_0000_0102_0304)
    );
    // IPv4-mapped addresses are IPv4 keys, in either notation.
    assert_eq!(addr("::ffff:1.2.3.4"), Addr::V4(0x0102_0304));
    assert_eq!(addr("::FFFF:102:304"), Addr::V4(0x0102_0304));
    assert_eq!(addr("0:0:0:0:0:ffff:0.0.0.0"), Addr::V4(0));
    // Near the mapped range but not in it.
    assert_eq!(addr("::fffe:1.2.3.4"), Addr::V6(0xfffe_0102_0304));
    assert_eq!(
        addr("1::ffff:1.2.3.4"),
        Addr::V6(1 << 112 | 0xffff_0102_0304)
    );
}

#[test]
fn rejects_malformed_addresses() {
    for text in [
        "",
        " ",
        "1.2.3",
        "1.2.3.4.5",
        "1.2.3.4 ",
        " 1.2.3.4",
        "1.2.3.256",
        "01.2.3.4",
        "1.2.3.04",
        "1.2.3.-4",
        "1.2.3.+4",
        "1..3.4",
        "1.2.3.4.",
        ".1.2.3",
        "1234.1.2.3",
        "0x1.2.3.4",
        "1.2.3.4/32",
        "١.2.3.4",
        ":",
        ":::",
        "::g",
        "1:2",
        "1:2:3:4:5:6:7",
        "1:2:3:4:5:6:7:8:9",
        "1::2::3",
        "1:::2",
        ":1::2",
        "1::2:",
        ":1:2:3:4:5:6:7:8",
        "12345::",
        "1:2:3:4:5:6:7:8::",
        "::1:2:3:4:5:6:7:8",
        "1:2:3:4::5:6:7:8",
        "fe80::1%eth0",
        "fe80::1%1",
        "::1.2.3",
        "::1.2.3.4:5",
        "1.2.3.4::",
        "::01.2.3.4",
        "1:2:3:4:5:6:7:1.2.3.4",
        "::1:2:3:4:5:6:1.2.3.4",
        "[::1]",
        "::ffff:1.2.3.4%0",
    ] {
        assert_eq!(Addr::parse(text), Err(ParseError), "{text:?}");
    }
}

#[test]
fn parses_prefixes() {
    let p = prefix("10.0.0.0/8");
    assert_eq!((p.network(), p.prefix_len()), (Addr::V4(0x0a00_0000), 8));
    assert_eq!(prefix("1.2.3.4").prefix_len(), 32);
    assert_eq!(prefix("::1").prefix_len(), 128);
    assert_eq!(prefix("0.0.0.0/0").prefix_len(), 0);
    assert_eq!(prefix("::/0"), Prefix::new(Addr::V6(0), 0).unwrap());
    // Mapped prefixes of length >= 96 are the IPv4 prefix they map.
    assert_eq!(prefix("::ffff:10.0.0.0/104"), prefix("10.0.0.0/8"));
    assert_eq!(prefix("::ffff:0:0/96"), prefix("0.0.0.0/0"));
    assert_eq!(prefix("::ffff:1.2.3.4"), prefix("1.2.3.4/32"));
    // Shorter ones stay IPv6 prefixes.
    assert_eq!(prefix("::/80").network(), Addr::V6(0));
    assert_eq!(prefix("10.0.0.0/8").to_string(), "10.0.0.0/8");
    assert_eq!(prefix("2001:db8:0:0::/64").to_string(), "2001:db8::/64");
}

#[test]
fn rejects_malformed_prefixes() {
    for text in [
        "",
        "/",
        "/8",
        "10.0.0.0/",
        "10.0.0.0/33",
        "10.0.0.0/-1",
        "10.0.0.0/+8",
        "10.0.0.0/08",
        "10.0.0.0/8/8",
        "10.0.0.0 /8",
        "10.0.0.0/ 8",
        "10.0.0.0/8 ",
        "10.0.0.0/255.0.0.0",
        "10.0.0.0/0x8",
        "::/129",
        "::/1000",
        "::/00",
        "fe80::%eth0/64",
        "1.2.3/24",
    ] {
        assert_eq!(Prefix::parse(text), Err(PrefixError::Syntax), "{text:?}");
        assert_eq!(
            Prefix::parse_masked(text),
            Err(PrefixError::Syntax),
            "{text:?}"
        );
    }
}

#[test]
fn host_bits_are_refused_or_masked() {
    let masked = prefix("10.0.0.0/8");
    assert_eq!(
        Prefix::parse("10.0.0.1/8"),
        Err(PrefixError::HostBitsSet { masked })
    );
    assert_eq!(Prefix::parse_masked("10.0.0.1/8"), Ok(masked));
    assert_eq!(
        Prefix::parse("::ffff:10.0.0.1/104"),
        Err(PrefixError::HostBitsSet { masked })
    );
    assert_eq!(Prefix::parse_masked("0.0.0.1/0"), Ok(prefix("0.0.0.0/0")));
    assert_eq!(
        Prefix::parse_masked("2001:db8::1/32"),
        Ok(prefix("2001:db8::/32"))
    );
    // The mapped range under /96 is IPv6 space: its host bits are set.
    assert_eq!(
        Prefix::parse_masked("::ffff:1.2.3.4/80"),
        Ok(prefix("::/80"))
    );
}

#[test]
fn prefix_contains() {
    let p = prefix("10.0.0.0/8");
    assert!(p.contains(addr("10.255.255.255")));
    assert!(p.contains(addr("::ffff:10.1.2.3")));
    assert!(!p.contains(addr("11.0.0.0")));
    assert!(!p.contains(addr("::a00:1"))); // IPv4-compatible is IPv6
    assert!(prefix("0.0.0.0/0").contains(addr("1.2.3.4")));
    assert!(!prefix("::/0").contains(addr("1.2.3.4")));
    assert!(!prefix("::/0").contains(addr("::ffff:1.2.3.4")));
    assert!(prefix("::/0").contains(addr("::fffe:1.2.3.4")));
}

#[test]
fn policy_semantics() {
    let policy = IpPolicy::new(
        prefixes(&["110.0.0.0/8", "2001:db8::/32"]),
        prefixes(&["110.2.3.4/32", "2001:db8:1::/48", "0.0.0.0/1"]),
    );
    // "0.0.0.0/1" denies 110/8 whole: deny wins whatever the lengths.
    assert!(!policy.decide(addr("110.9.9.9")));
    assert!(policy.decide(addr("2001:db8::1")));
    assert!(!policy.decide(addr("2001:db8:1::1")));
    assert!(!policy.decide(addr("2001:db9::")));

    let policy = IpPolicy::new(prefixes(&["110.0.0.0/8"]), prefixes(&["110.2.3.4"]));
    assert!(policy.decide(addr("110.2.3.3")));
    assert!(!policy.decide(addr("110.2.3.4")));
    assert!(!policy.decide(addr("::ffff:110.2.3.4")));
    assert!(policy.decide(addr("::ffff:110.2.3.5")));
    assert!(!policy.decide(addr("::6e02:305"))); // IPv4-compatible: IPv6

    let split = IpPolicy::new(
        prefixes(&["10.0.0.0/30"]),
        prefixes(&["10.0.0.1/32", "10.0.0.2/32"]),
    );
    let allowed: Vec<bool> = (0..5)
        .map(|i| split.decide(Addr::V4(0x0a00_0000 + i)))
        .collect();
    assert_eq!(allowed, [true, false, false, true, false]);

    let nothing = IpPolicy::new([], prefixes(&["10.0.0.0/8"]));
    assert!(!nothing.decide(addr("1.2.3.4")) && !nothing.decide(addr("::1")));
    assert!(!IpPolicy::new([], []).decide(addr("1.2.3.4")));

    let all = IpPolicy::any_of(prefixes(&["0.0.0.0/0", "::/0"]));
    for text in [
        "0.0.0.0",
        "255.255.255.255",
        "::",
        "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
    ] {
        assert!(all.decide(addr(text)), "{text}");
    }
    let v6_only = IpPolicy::any_of(prefixes(&["::/0"]));
    assert!(!v6_only.decide(addr("::ffff:1.2.3.4")) && v6_only.decide(addr("::1")));
    let mapped = IpPolicy::any_of(prefixes(&["::ffff:0:0/96"]));
    assert!(mapped.decide(addr("1.2.3.4")) && !mapped.decide(addr("::1")));
}

#[test]
fn policy_edges_of_the_address_space() {
    let policy = IpPolicy::new(
        prefixes(&["255.255.255.0/24", "0.0.0.0/24", "ffff::/16"]),
        prefixes(&[
            "255.255.255.255",
            "0.0.0.0",
            "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
        ]),
    );
    assert!(!policy.decide(addr("255.255.255.255")));
    assert!(policy.decide(addr("255.255.255.254")));
    assert!(!policy.decide(addr("0.0.0.0")));
    assert!(policy.decide(addr("0.0.0.1")));
    assert!(!policy.decide(addr("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff")));
    assert!(policy.decide(addr("ffff::")));
}

#[test]
fn table_semantics() {
    let table = IpTable::new(
        [
            ("10.0.0.0/8", "a"),
            ("10.1.0.0/16", "b"),
            ("10.1.0.0/16", "c"), // the last value of a prefix wins
            ("10.1.2.0/24", "d"),
            ("0.0.0.0/0", "v4"),
            ("::/0", "v6"),
            ("::ffff:10.1.2.3/128", "host"),
        ]
        .map(|(p, v)| (prefix(p), v)),
    );
    assert_eq!(table.len(), 6);
    let get = |text: &str| table.lookup(addr(text)).copied();
    assert_eq!(get("10.0.0.1"), Some("a"));
    assert_eq!(get("10.1.255.255"), Some("c"));
    assert_eq!(get("10.1.2.0"), Some("d"));
    assert_eq!(get("10.1.2.3"), Some("host"));
    assert_eq!(get("10.1.2.4"), Some("d"));
    assert_eq!(get("10.1.3.0"), Some("c"));
    assert_eq!(get("10.2.0.0"), Some("a"));
    assert_eq!(get("11.0.0.0"), Some("v4"));
    assert_eq!(get("::ffff:11.0.0.0"), Some("v4"));
    assert_eq!(get("::1"), Some("v6"));
    let empty = IpTable::<()>::new([]);
    assert!(empty.is_empty() && empty.lookup(addr("1.2.3.4")).is_none());
}

/// xorshift64*: reproducible randomness without a dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    /// Addresses clustered under a few /8s (and /16s for IPv6) so that the
    /// random prefixes nest and overlap.
    fn addr(&mut self) -> Addr {
        if self.below(2) == 0 {
            let top = [10u32, 192, 0, 255][self.below(4) as usize];
            Addr::V4(top << 24 | (self.next() as u32 >> 8))
        } else {
            let top = [0x2001u128, 0x2a00, 0, 0xffff][self.below(4) as usize];
            Addr::from_v6(top << 112 | (u128::from(self.next()) << 48 | u128::from(self.next())))
        }
    }

    /// Half of the prefixes sparse, half dense: in 10.0.0.0/24 or
    /// 2001:db8::/120 with short host parts, so that deny lists cut allow
    /// ranges into pieces down to single addresses.
    fn prefix(&mut self) -> Prefix {
        let (addr, shortest) = match self.below(4) {
            0 => (Addr::V4(0x0a00_0000 | self.below(256) as u32), 24),
            1 => (
                Addr::V6(0x2001_0db8 << 96 | u128::from(self.below(256))),
                120,
            ),
            _ => (self.addr(), 0),
        };
        let len = shortest + self.below(u64::from(addr.bits() - shortest) + 1) as u8;
        Prefix::new(addr, len).unwrap()
    }

    /// An address inside `p`: its first, its last, or a random one.
    fn addr_near(&mut self, p: Prefix) -> Addr {
        let host_bits = u32::from(p.network().bits() - p.prefix_len());
        let mask = u128::MAX.checked_shr(128 - host_bits).unwrap_or(0);
        let host = match self.below(3) {
            0 => 0,
            1 => mask,
            _ => (u128::from(self.next()) << 64 | u128::from(self.next())) & mask,
        };
        match p.network() {
            Addr::V4(n) => Addr::V4(n | host as u32),
            Addr::V6(n) => Addr::V6(n | host),
        }
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }
}

#[test]
fn policies_and_tables_agree_with_brute_force() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for round in 0..300 {
        let size = [0, 1, 2, 5, 20, 100][round % 6];
        let allow: Vec<Prefix> = (0..size).map(|_| rng.prefix()).collect();
        let deny: Vec<Prefix> = (0..size / 2 + 1).map(|_| rng.prefix()).collect();
        let pairs: Vec<(Prefix, usize)> = allow.iter().chain(&deny).copied().zip(0..).collect();
        let policy = IpPolicy::new(allow.iter().copied(), deny.iter().copied());
        let table = IpTable::new(pairs.iter().copied());
        let all: Vec<Prefix> = pairs.iter().map(|&(p, _)| p).collect();
        for _ in 0..300 {
            let a = match rng.below(2) {
                0 if !all.is_empty() => {
                    let p = *rng.pick(&all);
                    rng.addr_near(p)
                }
                _ => rng.addr(),
            };
            let expected =
                allow.iter().any(|p| p.contains(a)) && !deny.iter().any(|p| p.contains(a));
            assert_eq!(
                policy.decide(a),
                expected,
                "{a} allow={allow:?} deny={deny:?}"
            );
            // Longest match; among equal prefixes the last pair.
            let best = pairs
                .iter()
                .filter(|(p, _)| p.contains(a))
                .max_by_key(|&&(p, i)| (p.prefix_len(), i))
                .map(|&(_, i)| i);
            assert_eq!(table.lookup(a).copied(), best, "{a} pairs={pairs:?}");
        }
    }
}

#[test]
fn large_tables_use_the_full_index() {
    let mut rng = Rng(42);
    let pairs: Vec<(Prefix, u32)> = (0..200_000).map(|i| (rng.prefix(), i)).collect();
    let table = IpTable::new(pairs.iter().copied());
    // Spot-check against brute force on a sample of the table.
    let sample = &pairs[..2_000];
    let small = IpTable::new(sample.iter().copied());
    for _ in 0..2_000 {
        let (p, _) = *rng.pick(sample);
        let a = rng.addr_near(p);
        let best = sample
            .iter()
            .filter(|(p, _)| p.contains(a))
            .max_by_key(|&&(p, i)| (p.prefix_len(), i))
            .map(|&(_, i)| i);
        assert_eq!(small.lookup(a).copied(), best);
    }
    // Every prefix's own network and last address find a value of at least
    // that length.
    for &(p, _) in pairs.iter().step_by(97) {
        let found = table.lookup(p.network()).copied().unwrap();
        let (q, _) = pairs[found as usize];
        assert!(q.contains(p.network()) && q.prefix_len() >= p.prefix_len());
    }
}
