//! Bindings of `edgeward_core::geo` (`GeoDb`, `GeoDbError`) and
//! `edgeward_core::ja4` (`ja4_fingerprint`). Conversion only; the mapping
//! of MaxMind records and the JA4 algorithm live in the core crate.

use edgeward_core::geo::{self, GeoRecord, Location};
use edgeward_core::ipnet::Addr;
use edgeward_core::ja4;
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyString};

use crate::guard::guard;

pyo3::create_exception!(
    edgeward_native,
    GeoDbError,
    PyValueError,
    "A MaxMind DB file that cannot be opened or read."
);

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<GeoDb>()?;
    m.add("GeoDbError", m.py().get_type::<GeoDbError>())?;
    m.add_function(wrap_pyfunction!(ja4_fingerprint, m)?)?;
    Ok(())
}

/// A MaxMind DB file read into memory; see `edgeward_native.GeoDb`.
#[pyclass(module = "edgeward_native", frozen)]
pub struct GeoDb {
    db: geo::GeoDb,
    path: String,
}

#[pymethods]
impl GeoDb {
    #[new]
    fn new(py: Python<'_>, path: &Bound<'_, PyAny>) -> PyResult<Self> {
        guard(|| {
            let path: String = path.str()?.to_str()?.to_owned();
            let db = py
                .detach(|| geo::GeoDb::open(&path))
                .map_err(|e| GeoDbError::new_err(format!("{path}: {e}")))?;
            Ok(GeoDb { db, path })
        })
    }

    #[getter]
    fn database_type(&self) -> PyResult<String> {
        guard(|| Ok(self.db.database_type().to_owned()))
    }

    fn lookup<'py>(&self, ip: &Bound<'py, PyAny>) -> PyResult<Option<Bound<'py, PyDict>>> {
        guard(|| {
            let Ok(text) = ip.cast::<PyString>() else {
                let kind = ip.get_type().name()?;
                return Err(PyTypeError::new_err(format!("expected str, got {kind}")));
            };
            let addr = text
                .to_str()
                .ok()
                .and_then(|t| Addr::parse(t).ok())
                .ok_or_else(|| {
                    let repr = ip.repr().map(|r| r.to_string()).unwrap_or_default();
                    PyValueError::new_err(format!("{repr} is not a valid IP address"))
                })?;
            let record = self
                .db
                .lookup(addr)
                .map_err(|e| GeoDbError::new_err(e.to_string()))?;
            record.map(|r| record_dict(ip.py(), &r)).transpose()
        })
    }

    fn __repr__(&self) -> PyResult<String> {
        guard(|| Ok(format!("<GeoDb {} {}>", self.db.database_type(), self.path)))
    }
}

fn location_dict<'py>(py: Python<'py>, l: &Location) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("city", &l.city)?;
    d.set_item("continent", &l.continent)?;
    d.set_item("country", &l.country)?;
    d.set_item("country_code", &l.country_code)?;
    d.set_item("is_eu", l.is_eu)?;
    d.set_item("latitude", &l.latitude)?;
    d.set_item("longitude", &l.longitude)?;
    d.set_item("metro_code", &l.metro_code)?;
    d.set_item("postal_code", &l.postal_code)?;
    d.set_item("radius", &l.radius)?;
    d.set_item("subdivision", &l.subdivision)?;
    d.set_item("timezone", &l.timezone)?;
    Ok(d)
}

fn record_dict<'py>(py: Python<'py>, r: &GeoRecord) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("location", location_dict(py, &r.location)?)?;
    d.set_item(
        "registered_location",
        location_dict(py, &r.registered_location)?,
    )?;
    let asn = PyDict::new(py);
    asn.set_item("number", r.as_number)?;
    asn.set_item("organization", &r.as_organization)?;
    d.set_item("as", asn)?;
    Ok(d)
}

/// The JA4 fingerprint of the ClientHello at the start of `records`, or
/// None; see `edgeward_native.ja4_fingerprint`.
#[pyfunction]
fn ja4_fingerprint(records: &Bound<'_, PyAny>) -> PyResult<Option<String>> {
    guard(|| {
        let Ok(bytes) = records.cast::<PyBytes>() else {
            let kind = records.get_type().name()?;
            return Err(PyTypeError::new_err(format!("expected bytes, got {kind}")));
        };
        Ok(ja4::ja4(bytes.as_bytes()))
    })
}
