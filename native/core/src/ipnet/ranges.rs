//! The lookup structure behind policies and tables: the address space cut
//! into sorted, disjoint ranges, each carrying a value, plus a direct index
//! on the top address bits (the scheme of DXR, Zec, Rizzo & Mikuc, "DXR:
//! towards a billion routing lookups per second in software", 2012).
//!
//! All the prefix logic (longest match, deny-over-allow) is resolved when the
//! map is built; a lookup is one index read and a binary search over the
//! few ranges that start inside the address's bucket. Nothing allocates.

use std::fmt::Debug;

/// The value of an address no prefix covers.
pub(crate) const NONE: u32 = u32::MAX;

/// An address as an unsigned integer: `u32` for IPv4, `u128` for IPv6.
pub(crate) trait Key: Copy + Ord + Debug {
    const BITS: u32;
    const ZERO: Self;

    /// `self >> shift` as an index (`shift < BITS`, result < 2^16).
    fn bucket(self, shift: u32) -> usize;
    /// The first address of bucket `bucket` (`shift < BITS`).
    fn bucket_start(bucket: usize, shift: u32) -> Self;
    /// `self + 1`, `None` past the last address.
    fn next(self) -> Option<Self>;
    /// `self - 1`; `self` is never 0.
    fn prev(self) -> Self;
    /// The last address of the prefix `self/len` (`self` masked).
    fn prefix_end(self, len: u8) -> Self;
}

macro_rules! impl_key {
    ($t:ty) => {
        impl Key for $t {
            const BITS: u32 = <$t>::BITS;
            const ZERO: Self = 0;

            #[inline]
            fn bucket(self, shift: u32) -> usize {
                (self >> shift) as usize
            }
            fn bucket_start(bucket: usize, shift: u32) -> Self {
                (bucket as $t) << shift
            }
            fn next(self) -> Option<Self> {
                self.checked_add(1)
            }
            fn prev(self) -> Self {
                self - 1
            }
            fn prefix_end(self, len: u8) -> Self {
                self | <$t>::MAX.checked_shr(u32::from(len)).unwrap_or(0)
            }
        }
    };
}
impl_key!(u32);
impl_key!(u128);

/// Most index bits: 2^16 buckets of 4 bytes, as in DXR's D16R.
const MAX_INDEX_BITS: u32 = 16;

/// A map from every address of one family to a `u32` value (or [`NONE`]).
#[derive(Clone, Debug)]
pub(crate) struct RangeMap<K> {
    /// `starts[i]` is the first address of range `i`; `starts[0] == 0`.
    starts: Box<[K]>,
    /// `values[i]` is the value of every address in range `i`.
    values: Box<[u32]>,
    /// `index[b]` is the range holding the first address of bucket `b`;
    /// `index[buckets]` is the last range.
    index: Box<[u32]>,
    /// An address's bucket is `address >> shift`.
    shift: u32,
}

impl<K: Key> RangeMap<K> {
    #[inline]
    pub(crate) fn get(&self, key: K) -> u32 {
        let bucket = key.bucket(self.shift);
        let first = self.index[bucket] as usize;
        let last = self.index[bucket + 1] as usize;
        // The answer is in first..=last; starts[first] <= key already.
        let later = self.starts[first + 1..=last].partition_point(|&s| s <= key);
        self.values[first + later]
    }

    /// Number of ranges (for tests and docs).
    pub(crate) fn ranges(&self) -> usize {
        self.starts.len()
    }

    /// Builds the map from `(start, value)` runs as made by [`Runs`].
    fn from_runs(runs: Runs<K>) -> Self {
        let (starts, values): (Vec<K>, Vec<u32>) = runs.runs.into_iter().unzip();
        let count = starts.len();
        let bits = (usize::BITS - count.leading_zeros()).clamp(1, MAX_INDEX_BITS);
        let shift = K::BITS - bits;
        let buckets = 1usize << bits;
        let mut index = Vec::with_capacity(buckets + 1);
        let mut range = 0;
        for bucket in 0..buckets {
            let start = K::bucket_start(bucket, shift);
            while range + 1 < count && starts[range + 1] <= start {
                range += 1;
            }
            index.push(range as u32);
        }
        index.push((count - 1) as u32);
        RangeMap {
            starts: starts.into(),
            values: values.into(),
            index: index.into(),
            shift,
        }
    }

    /// Longest-prefix match: each address gets the value of the longest
    /// prefix containing it. `prefixes` are `(network, length, value)` with
    /// no two equal `(network, length)`.
    pub(crate) fn longest_match(mut prefixes: Vec<(K, u8, u32)>) -> Self {
        // Outer prefixes before the prefixes nested in them.
        prefixes.sort_unstable_by_key(|&(network, len, _)| (network, len));
        let mut runs = Runs::new();
        // Enclosing prefixes of the current one: (last address, value).
        let mut open: Vec<(K, u32)> = Vec::new();
        for (network, len, value) in prefixes {
            close_until(&mut open, &mut runs, Some(network));
            runs.push(network, value);
            open.push((network.prefix_end(len), value));
        }
        close_until(&mut open, &mut runs, None);
        Self::from_runs(runs)
    }

    /// Value 1 on the addresses of `allow` not in `deny`, [`NONE`]
    /// elsewhere. Both are lists of `(network, length)`.
    pub(crate) fn allowed(allow: &[(K, u8)], deny: &[(K, u8)]) -> Self {
        let mut runs = Runs::new();
        for (first, last) in subtract(&union(allow), &union(deny)) {
            runs.push(first, 1);
            if let Some(after) = last.next() {
                runs.push(after, NONE);
            }
        }
        Self::from_runs(runs)
    }
}

/// Pops the open prefixes that end before `next` (all of them for `None`),
/// starting the enclosing prefix's value again after each.
fn close_until<K: Key>(open: &mut Vec<(K, u32)>, runs: &mut Runs<K>, next: Option<K>) {
    while let Some(&(last, _)) = open.last() {
        if next.is_some_and(|n| last >= n) {
            break;
        }
        open.pop();
        if let Some(after) = last.next() {
            runs.push(after, open.last().map_or(NONE, |&(_, v)| v));
        }
    }
}

/// `(start, value)` pairs with increasing starts, beginning at address 0,
/// neighbours holding different values.
struct Runs<K> {
    runs: Vec<(K, u32)>,
}

impl<K: Key> Runs<K> {
    fn new() -> Self {
        Runs {
            runs: vec![(K::ZERO, NONE)],
        }
    }

    /// `value` from `start` on; `start` is never below the last start.
    fn push(&mut self, start: K, value: u32) {
        let (last_start, last_value) = *self.runs.last().expect("never empty");
        if last_start == start {
            self.runs.pop();
        } else if last_value == value {
            return;
        }
        match self.runs.last() {
            Some(&(_, previous)) if previous == value => {}
            _ => self.runs.push((start, value)),
        }
    }
}

/// Prefixes as sorted, disjoint, non-adjacent inclusive ranges.
fn union<K: Key>(prefixes: &[(K, u8)]) -> Vec<(K, K)> {
    let mut ranges: Vec<(K, K)> = prefixes
        .iter()
        .map(|&(network, len)| (network, network.prefix_end(len)))
        .collect();
    ranges.sort_unstable();
    let mut merged: Vec<(K, K)> = Vec::with_capacity(ranges.len());
    for (first, last) in ranges {
        match merged.last_mut() {
            Some(tail) if tail.1.next().is_none_or(|after| first <= after) => {
                tail.1 = tail.1.max(last);
            }
            _ => merged.push((first, last)),
        }
    }
    merged
}

/// The addresses of `keep` not in `remove` (both as made by [`union`]).
fn subtract<K: Key>(keep: &[(K, K)], remove: &[(K, K)]) -> Vec<(K, K)> {
    let mut out = Vec::new();
    let mut removals = remove.iter().peekable();
    for &(first, last) in keep {
        let mut from = Some(first);
        while let (Some(start), Some(&&(cut_first, cut_last))) = (from, removals.peek()) {
            if cut_last < start {
                removals.next();
                continue;
            }
            if cut_first > last {
                break;
            }
            if cut_first > start {
                out.push((start, cut_first.prev()));
            }
            from = cut_last.next().filter(|&after| after <= last);
            if cut_last <= last {
                removals.next();
            }
        }
        if let Some(start) = from {
            out.push((start, last));
        }
    }
    out
}
