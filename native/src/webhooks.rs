//! Bindings of `edgeward_core::webhooks`: Python values in, verdicts out.
//! The body is borrowed from the `bytes` object (no copy) and hashed with
//! the GIL released when it is large enough for that to pay off.

use std::time::{SystemTime, UNIX_EPOCH};

use edgeward_core::webhooks::{self, Error, Request, Verdict};
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyFrozenSet, PyString};

use crate::guard::guard;

/// Below this many body bytes, releasing the GIL costs more than it frees.
const DETACH_AT: usize = 4096;

/// A header name or value: `str`, or `bytes` as on the wire (ISO-8859-1).
fn text(value: &Bound<'_, PyAny>) -> PyResult<String> {
    if let Ok(s) = value.cast::<PyString>() {
        return Ok(s.to_str()?.to_owned());
    }
    if let Ok(b) = value.cast::<PyBytes>() {
        return Ok(b.as_bytes().iter().map(|&c| char::from(c)).collect());
    }
    Err(PyTypeError::new_err(
        "header names and values must be str or bytes",
    ))
}

/// Pairs of a mapping (its `items()`) or of an iterable of 2-tuples.
fn pairs(value: &Bound<'_, PyAny>) -> PyResult<Vec<(String, String)>> {
    let items = if value.hasattr("items")? {
        value.call_method0("items")?
    } else {
        value.clone()
    };
    items
        .try_iter()?
        .map(|item| {
            let (name, value): (Bound<'_, PyAny>, Bound<'_, PyAny>) = item?.extract()?;
            Ok((text(&name)?, text(&value)?))
        })
        .collect()
}

fn secret_bytes(secret: &Bound<'_, PyAny>) -> PyResult<Vec<u8>> {
    if let Ok(s) = secret.cast::<PyString>() {
        return Ok(s.to_str()?.as_bytes().to_vec());
    }
    if let Ok(b) = secret.cast::<PyBytes>() {
        return Ok(b.as_bytes().to_vec());
    }
    Err(PyTypeError::new_err("secret must be str or bytes"))
}

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

#[allow(clippy::too_many_arguments)]
fn run(
    py: Python<'_>,
    provider: &str,
    secret: &Bound<'_, PyAny>,
    headers: &Bound<'_, PyAny>,
    body: &[u8],
    url: Option<&str>,
    now: Option<f64>,
    tolerance_s: f64,
    options: Option<&Bound<'_, PyAny>>,
    method: &str,
) -> PyResult<Verdict> {
    let secret = secret_bytes(secret)?;
    let headers = pairs(headers)?;
    let options = options.map(pairs).transpose()?.unwrap_or_default();
    let req = Request {
        headers: &headers,
        body,
        url,
        method,
        now: now.unwrap_or_else(unix_now),
        tolerance_s,
    };
    let verify = || webhooks::verify(provider, &secret, &options, &req);
    let outcome = if body.len() >= DETACH_AT {
        py.detach(verify)
    } else {
        verify()
    };
    outcome.map_err(|error: Error| PyValueError::new_err(error.to_string()))
}

/// True when `body` carries a valid signature of `provider` made with `secret`.
#[pyfunction]
#[pyo3(signature = (provider, secret, headers, body, *, url=None, now=None, tolerance_s=300.0, options=None, method="POST"))]
#[allow(clippy::too_many_arguments)]
fn verify_webhook(
    py: Python<'_>,
    provider: &str,
    secret: &Bound<'_, PyAny>,
    headers: &Bound<'_, PyAny>,
    body: &[u8],
    url: Option<&str>,
    now: Option<f64>,
    tolerance_s: f64,
    options: Option<&Bound<'_, PyAny>>,
    method: &str,
) -> PyResult<bool> {
    guard(|| {
        let verdict = run(
            py,
            provider,
            secret,
            headers,
            body,
            url,
            now,
            tolerance_s,
            options,
            method,
        )?;
        Ok(verdict.verified)
    })
}

/// The verdict of `verify_webhook` and a short reason.
#[pyfunction]
#[pyo3(signature = (provider, secret, headers, body, *, url=None, now=None, tolerance_s=300.0, options=None, method="POST"))]
#[allow(clippy::too_many_arguments)]
fn explain_webhook(
    py: Python<'_>,
    provider: &str,
    secret: &Bound<'_, PyAny>,
    headers: &Bound<'_, PyAny>,
    body: &[u8],
    url: Option<&str>,
    now: Option<f64>,
    tolerance_s: f64,
    options: Option<&Bound<'_, PyAny>>,
    method: &str,
) -> PyResult<(bool, String)> {
    guard(|| {
        let verdict = run(
            py,
            provider,
            secret,
            headers,
            body,
            url,
            now,
            tolerance_s,
            options,
            method,
        )?;
        Ok((verdict.verified, verdict.reason.into_owned()))
    })
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    let names: Vec<&str> = webhooks::provider_names().collect();
    m.add("PROVIDERS", PyFrozenSet::new(py, &names)?)?;
    let tolerances = PyDict::new(py);
    for name in names {
        tolerances.set_item(name, webhooks::default_tolerance_s(name))?;
    }
    m.add("DEFAULT_TOLERANCE_S", tolerances)?;
    m.add_function(wrap_pyfunction!(verify_webhook, m)?)?;
    m.add_function(wrap_pyfunction!(explain_webhook, m)?)?;
    Ok(())
}
