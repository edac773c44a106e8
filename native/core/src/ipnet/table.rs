//! Longest-prefix-match tables: IP categories, geo tables.

use super::addr::{Addr, Prefix};
use super::ranges::{RangeMap, NONE};

/// A map from CIDR prefixes to values, looked up by longest prefix match.
/// A prefix given twice keeps the value given last.
///
/// Values live in a `Vec<V>`; the range maps hold `u32` indexes into it, so
/// `V` can be anything (Python objects in the bindings, a country code...).
#[derive(Clone, Debug)]
pub struct IpTable<V> {
    v4: RangeMap<u32>,
    v6: RangeMap<u128>,
    values: Vec<V>,
}

impl<V> IpTable<V> {
    /// Builds the table in O(n log n).
    ///
    /// # Panics
    /// With 2^32 - 1 distinct prefixes or more (value indexes are `u32`).
    pub fn new<P: IntoIterator<Item = (Prefix, V)>>(pairs: P) -> IpTable<V> {
        let mut pairs: Vec<(Prefix, V)> = pairs.into_iter().collect();
        // Stable: among equal prefixes the last given ends up last.
        pairs.sort_by_key(|&(prefix, _)| prefix);
        let mut values = Vec::with_capacity(pairs.len());
        let (mut v4, mut v6) = (Vec::new(), Vec::new());
        let mut pairs = pairs.into_iter().peekable();
        while let Some((prefix, value)) = pairs.next() {
            if pairs.peek().is_some_and(|(next, _)| *next == prefix) {
                continue;
            }
            let index = u32::try_from(values.len())
                .ok()
                .filter(|&i| i != NONE)
                .expect("fewer than 2^32 - 1 prefixes");
            values.push(value);
            match prefix.network() {
                Addr::V4(network) => v4.push((network, prefix.prefix_len(), index)),
                Addr::V6(network) => v6.push((network, prefix.prefix_len(), index)),
            }
        }
        IpTable {
            v4: RangeMap::longest_match(v4),
            v6: RangeMap::longest_match(v6),
            values,
        }
    }

    /// The value of the longest prefix containing `addr`.
    pub fn lookup(&self, addr: Addr) -> Option<&V> {
        self.lookup_index(addr).map(|i| &self.values[i as usize])
    }

    /// Like [`IpTable::lookup`], as an index into [`IpTable::values`].
    pub fn lookup_index(&self, addr: Addr) -> Option<u32> {
        let index = match addr {
            Addr::V4(v4) => self.v4.get(v4),
            Addr::V6(v6) => self.v6.get(v6),
        };
        (index != NONE).then_some(index)
    }

    /// The values of the distinct prefixes, in prefix order.
    pub fn values(&self) -> &[V] {
        &self.values
    }

    /// Number of distinct prefixes.
    pub fn len(&self) -> usize {
        self.values.len()
    }

    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// Number of address ranges the table was compiled to (size measure).
    pub fn ranges(&self) -> usize {
        self.v4.ranges() + self.v6.ranges()
    }
}
