//! Python bindings of `edgeward-core`. This file only wires modules; each
//! binding module converts between Python objects and the core types.
#![forbid(unsafe_code)]
use pyo3::prelude::*;

mod cel;
mod geo;
mod guard;
mod h2;
mod ipnet;
mod phase;
mod ratelimit;
mod webhooks;

#[pymodule]
#[pyo3(name = "_core")]
fn core_module(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    guard::register(m)?;
    h2::register(m)?;
    cel::register(m)?;
    geo::register(m)?;
    ipnet::register(m)?;
    phase::register(m)?;
    ratelimit::register(m)?;
    webhooks::register(m)?;
    Ok(())
}
