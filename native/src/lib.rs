//! Python bindings of `edgeward-core`. This file only wires modules; each
//! binding module converts between Python objects and the core types.
use pyo3::prelude::*;

mod webhooks;
mod cel;
mod ipnet;

#[pymodule]
#[pyo3(name = "_core")]
fn core_module(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    webhooks::register(m)?;
    cel::register(m)?;
    ipnet::register(m)?;
    Ok(())
}
