//! Allow/deny policies: the engine of `restrict-ips` and IP policies.

use super::addr::{Addr, Prefix};
use super::ranges::{RangeMap, NONE};

/// An address is allowed only if it is in at least one `allow` prefix and
/// in no `deny` prefix, whatever the prefix lengths: a deny always wins,
/// and with no allow prefix nothing is allowed.
///
/// Built once (O(n log n)); [`IpPolicy::decide`] is a constant-time index
/// read plus a binary search over a handful of ranges.
#[derive(Clone, Debug)]
pub struct IpPolicy {
    v4: RangeMap<u32>,
    v6: RangeMap<u128>,
}

impl IpPolicy {
    pub fn new<A, D>(allow: A, deny: D) -> IpPolicy
    where
        A: IntoIterator<Item = Prefix>,
        D: IntoIterator<Item = Prefix>,
    {
        let (allow4, allow6) = split_families(allow);
        let (deny4, deny6) = split_families(deny);
        IpPolicy {
            v4: RangeMap::allowed(&allow4, &deny4),
            v6: RangeMap::allowed(&allow6, &deny6),
        }
    }

    /// A policy allowing exactly the union of `prefixes` (CEL's
    /// `inCidrRanges` with a constant list).
    pub fn any_of<P: IntoIterator<Item = Prefix>>(prefixes: P) -> IpPolicy {
        IpPolicy::new(prefixes, [])
    }

    pub fn decide(&self, addr: Addr) -> bool {
        let value = match addr {
            Addr::V4(v4) => self.v4.get(v4),
            Addr::V6(v6) => self.v6.get(v6),
        };
        value != NONE
    }

    /// Number of address ranges the policy was compiled to (size measure).
    pub fn ranges(&self) -> usize {
        self.v4.ranges() + self.v6.ranges()
    }
}

type Families = (Vec<(u32, u8)>, Vec<(u128, u8)>);

fn split_families<P: IntoIterator<Item = Prefix>>(prefixes: P) -> Families {
    let (mut v4, mut v6) = (Vec::new(), Vec::new());
    for prefix in prefixes {
        match prefix.network() {
            Addr::V4(network) => v4.push((network, prefix.prefix_len())),
            Addr::V6(network) => v6.push((network, prefix.prefix_len())),
        }
    }
    (v4, v6)
}
