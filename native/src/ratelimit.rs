//! `RateLimitStore`: the `rate-limit` buckets of one action, in Rust, so
//! that the native phase runner and the Python action (on the native
//! backend) count in one store (`edgeward_core::ratelimit`).
use std::sync::{Mutex, MutexGuard};

use edgeward_core::ratelimit::{key_of, Refusal, Store};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

use crate::guard::guard;

/// See `edgeward_native.RateLimitStore`.
#[pyclass(frozen, module = "edgeward_native", name = "RateLimitStore")]
pub struct RateLimitStore {
    store: Mutex<Store>,
    #[pyo3(get)]
    max_buckets: usize,
}

impl RateLimitStore {
    fn lock(&self) -> MutexGuard<'_, Store> {
        // a panic while held leaves plain counters behind: still usable
        self.store.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Count a request to the bucket of `key` (its text) if it fits.
    pub fn hit_text(&self, key: &str, capacity: u64, window: f64, now: f64) -> Refusal {
        self.lock().hit(key_of(key), capacity, window, now)
    }
}

#[pymethods]
impl RateLimitStore {
    #[new]
    #[pyo3(signature = (*, max_buckets=100_000))]
    fn new(max_buckets: usize) -> Self {
        RateLimitStore {
            store: Mutex::new(Store::new(max_buckets)),
            max_buckets,
        }
    }

    /// `(allowed, retry_after)`: whether the request was admitted (and
    /// counted), else the seconds until one more would be.
    #[pyo3(signature = (key, *, capacity, window, now))]
    fn hit(&self, key: &str, capacity: u64, window: f64, now: f64) -> PyResult<(bool, f64)> {
        guard(|| {
            if capacity == 0 || !window.is_finite() || window <= 0.0 || !now.is_finite() {
                return Err(PyValueError::new_err(
                    "capacity and window must be positive, now finite",
                ));
            }
            Ok(match self.hit_text(key, capacity, window, now) {
                None => (true, 0.0),
                Some(wait) => (false, wait),
            })
        })
    }

    fn __len__(&self) -> usize {
        self.lock().len()
    }

    fn __repr__(&self) -> String {
        format!("<RateLimitStore of {} buckets>", self.lock().len())
    }
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<RateLimitStore>()?;
    Ok(())
}
