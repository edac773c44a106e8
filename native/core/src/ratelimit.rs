//! The `rate-limit` action's sliding-window counter and bucket store: the
//! same arithmetic and eviction as the reference,
//! `edgeward.policy.ratelimit.MemoryStore` (see its docstring for the
//! algorithm), so the edge decides alike on either backend.
//!
//! Buckets are keyed by the first 16 bytes of the SHA-256 of the bucket
//! key text (bucket values may be long: a header); the store keeps at most
//! `max_buckets`, least recently used first out, and each new bucket first
//! drops up to two idle ones (empty by now).
use std::collections::{BTreeMap, HashMap};

use sha2::{Digest, Sha256};

/// Float noise must not refuse a request at exactly its Retry-After.
const EPSILON: f64 = 1e-12;

/// A store key: a digest of the bucket key text.
pub type Key = [u8; 16];

/// The store key of a bucket key text.
pub fn key_of(text: &str) -> Key {
    let digest = Sha256::digest(text.as_bytes());
    let mut key = [0u8; 16];
    key.copy_from_slice(&digest[..16]);
    key
}

/// The sliding-window estimate, `fraction` (0..1) into the current window.
pub fn load(previous: u64, current: u64, fraction: f64) -> f64 {
    previous as f64 * (1.0 - fraction) + current as f64
}

/// Seconds from now until `load(...) + 1 <= capacity`, with no new request.
pub fn retry_after(previous: u64, current: u64, fraction: f64, capacity: u64, window: f64) -> f64 {
    let room = capacity as i128 - 1 - current as i128; // what the previous window may still weigh
    if room >= 0 && previous > 0 {
        // later in this window: previous * (1 - g) <= room
        let g = 1.0 - room as f64 / previous as f64;
        if g < 1.0 {
            return ((g - fraction) * window).max(0.0);
        }
    }
    // the next window: today's `current` becomes `previous`
    let wait_to_next = (1.0 - fraction) * window;
    if current < capacity {
        return wait_to_next;
    }
    wait_to_next + (1.0 - (capacity - 1) as f64 / current as f64) * window
}

struct Bucket {
    index: i64, // the window `current` counts
    previous: u64,
    current: u64,
    stamp: u64, // its place in the recency order
}

impl Bucket {
    fn roll(&mut self, index: i64) {
        if index == self.index {
            return;
        }
        self.previous = if index == self.index + 1 {
            self.current
        } else {
            0
        };
        self.current = 0;
        self.index = index;
    }
}

/// Buckets in this process, as `MemoryStore`: one call counts and decides.
pub struct Store {
    max_buckets: usize,
    buckets: HashMap<Key, Bucket>,
    order: BTreeMap<u64, Key>, // stamp -> key, least recently used first
    next_stamp: u64,
}

/// `Some(retry_after)` when refused, None when admitted (and counted).
pub type Refusal = Option<f64>;

impl Store {
    pub fn new(max_buckets: usize) -> Self {
        Store {
            max_buckets,
            buckets: HashMap::new(),
            order: BTreeMap::new(),
            next_stamp: 0,
        }
    }

    pub fn len(&self) -> usize {
        self.buckets.len()
    }

    pub fn is_empty(&self) -> bool {
        self.buckets.is_empty()
    }

    /// Count a request to bucket `key` if it fits; else how long until one would.
    pub fn hit(&mut self, key: Key, capacity: u64, window: f64, now: f64) -> Refusal {
        let index = (now / window).floor() as i64;
        let stamp = self.next_stamp;
        self.next_stamp += 1;
        if let Some(bucket) = self.buckets.get_mut(&key) {
            self.order.remove(&bucket.stamp);
            bucket.stamp = stamp;
            self.order.insert(stamp, key);
            bucket.roll(index);
        } else {
            self.expire(index); // memory only grows here, so only here it is reclaimed
            self.buckets.insert(
                key,
                Bucket {
                    index,
                    previous: 0,
                    current: 0,
                    stamp,
                },
            );
            self.order.insert(stamp, key);
            if self.buckets.len() > self.max_buckets {
                if let Some((_, oldest)) = self.order.pop_first() {
                    self.buckets.remove(&oldest);
                }
            }
        }
        let Some(bucket) = self.buckets.get_mut(&key) else {
            return None; // max_buckets == 0: nothing kept, nothing counted
        };
        let fraction = (now - index as f64 * window) / window;
        let slack = EPSILON * (1.0 + capacity as f64);
        if load(bucket.previous, bucket.current, fraction) + 1.0 <= capacity as f64 + slack {
            bucket.current += 1;
            return None;
        }
        Some(retry_after(
            bucket.previous,
            bucket.current,
            fraction,
            capacity,
            window,
        ))
    }

    /// Drop up to two least recently used buckets that are empty by now (no
    /// request in this window or the previous one): amortised O(1).
    fn expire(&mut self, index: i64) {
        for _ in 0..2 {
            let Some((&stamp, key)) = self.order.first_key_value() else {
                return;
            };
            match self.buckets.get(key) {
                Some(oldest) if oldest.index >= index - 1 => return,
                _ => {}
            }
            let key = *key;
            self.order.remove(&stamp);
            self.buckets.remove(&key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: f64 = 1_700_000_040.0; // a multiple of 60

    #[test]
    fn over_capacity_waits_for_the_previous_window_to_fade() {
        let mut store = Store::new(100);
        let k = key_of("192.0.2.10");
        for _ in 0..3 {
            assert_eq!(store.hit(k, 3, 60.0, T0), None);
        }
        // the three weigh 3 * (1 - f) in the next window and need f >= 1/3
        let wait = store.hit(k, 3, 60.0, T0).unwrap();
        assert!((wait - 80.0).abs() < 1e-9, "{wait}");
        assert_eq!(store.hit(k, 3, 60.0, T0 + wait), None);
    }

    #[test]
    fn refused_requests_are_not_counted() {
        let mut store = Store::new(100);
        let k = key_of("k");
        assert_eq!(store.hit(k, 1, 60.0, T0), None);
        for _ in 0..5 {
            assert!(store.hit(k, 1, 60.0, T0 + 1.0).is_some());
        }
        assert_eq!(store.hit(k, 1, 60.0, T0 + 120.0), None);
    }

    #[test]
    fn memory_is_bounded_least_recently_used_first_out() {
        let mut store = Store::new(100);
        for i in 0..1000 {
            store.hit(key_of(&format!("k{i}")), 1, 60.0, T0);
        }
        assert_eq!(store.len(), 100);
        assert!(store.hit(key_of("k999"), 1, 60.0, T0).is_some()); // recent: kept
        assert_eq!(store.hit(key_of("k0"), 1, 60.0, T0), None); // evicted: fresh
    }

    #[test]
    fn idle_buckets_expire_two_per_new_bucket() {
        let mut store = Store::new(1000);
        for i in 0..10 {
            store.hit(key_of(&format!("k{i}")), 1, 60.0, T0);
        }
        for i in 0..10 {
            store.hit(key_of(&format!("n{i}")), 1, 60.0, T0 + 120.0);
        }
        assert_eq!(store.len(), 10);
    }

    #[test]
    fn retry_after_matches_the_formula() {
        // room left in this window once the previous one has faded enough
        assert!((retry_after(4, 1, 0.25, 3, 60.0) - 30.0).abs() < 1e-9);
        // more than capacity now: into the next window
        assert!((retry_after(0, 4, 0.5, 2, 60.0) - (30.0 + 0.75 * 60.0)).abs() < 1e-9);
    }
}
