//! Python bindings of `edgeward_core::ipnet`: `IpPolicy`, `IpTable` and the
//! `CidrError` raised for a bad CIDR list entry. Conversion only; the
//! semantics live in the core crate and `docs/ipnet.md`.

use edgeward_core::ipnet::{self, Addr, Prefix, PrefixError};
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyList, PyString, PyTuple};

use crate::guard::guard;

pyo3::create_exception!(
    edgeward_native,
    CidrError,
    PyValueError,
    "An entry of a CIDR list is not a valid prefix. `field` names the list \
     (\"allow\", \"deny\", \"pairs\"), `index` the entry's position in it and \
     `entry` its text."
);

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<IpPolicy>()?;
    m.add_class::<IpTable>()?;
    m.add("CidrError", m.py().get_type::<CidrError>())?;
    Ok(())
}

/// Allow/deny CIDR lists; see `edgeward_native.IpPolicy`.
#[pyclass(module = "edgeward_native", frozen)]
pub struct IpPolicy {
    pub(crate) policy: ipnet::IpPolicy,
}

#[pymethods]
impl IpPolicy {
    #[new]
    #[pyo3(signature = (allow = None, deny = None), text_signature = "(allow=(), deny=())")]
    fn new(allow: Option<&Bound<'_, PyAny>>, deny: Option<&Bound<'_, PyAny>>) -> PyResult<Self> {
        guard(|| {
            let allow = allow.map_or(Ok(Vec::new()), |a| prefixes("allow", a))?;
            let deny = deny.map_or(Ok(Vec::new()), |d| prefixes("deny", d))?;
            Ok(IpPolicy {
                policy: ipnet::IpPolicy::new(allow, deny),
            })
        })
    }

    fn decide(&self, ip: &Bound<'_, PyAny>) -> PyResult<bool> {
        guard(|| Ok(self.policy.decide(address(ip, Place::ARGUMENT)?)))
    }

    fn decide_many<'py>(&self, ips: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyList>> {
        guard(|| {
            let mut verdicts = Vec::with_capacity(ips.len().unwrap_or(0));
            for_each_item(ips, |i, ip| {
                verdicts.push(self.policy.decide(address(ip, Place::item("ips", i))?));
                Ok(())
            })?;
            PyList::new(ips.py(), verdicts)
        })
    }

    fn __repr__(&self) -> PyResult<String> {
        guard(|| {
            Ok(format!(
                "<IpPolicy of {} address ranges>",
                self.policy.ranges()
            ))
        })
    }
}

/// Longest-prefix-match table of Python values; see `edgeward_native.IpTable`.
#[pyclass(module = "edgeward_native", frozen, generic)]
pub struct IpTable {
    table: ipnet::IpTable<Py<PyAny>>,
}

#[pymethods]
impl IpTable {
    #[new]
    fn new(pairs: &Bound<'_, PyAny>) -> PyResult<Self> {
        guard(|| {
            let mut entries = Vec::with_capacity(pairs.len().unwrap_or(0));
            for_each_item(pairs, |i, pair| {
                let (cidr, value) = unpack_pair(pair, i)?;
                entries.push((prefix(&cidr, "pairs", i)?, value.unbind()));
                Ok(())
            })?;
            Ok(IpTable {
                table: ipnet::IpTable::new(entries),
            })
        })
    }

    fn lookup(&self, py: Python<'_>, ip: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        guard(|| {
            Ok(match self.table.lookup(address(ip, Place::ARGUMENT)?) {
                Some(value) => value.clone_ref(py),
                None => py.None(),
            })
        })
    }

    fn lookup_many<'py>(&self, ips: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyList>> {
        guard(|| {
            let py = ips.py();
            let mut found = Vec::with_capacity(ips.len().unwrap_or(0));
            for_each_item(ips, |i, ip| {
                found.push(self.table.lookup_index(address(ip, Place::item("ips", i))?));
                Ok(())
            })?;
            let values = self.table.values();
            PyList::new(
                py,
                found.into_iter().map(|index| match index {
                    Some(index) => values[index as usize].bind(py).clone(),
                    None => py.None().into_bound(py),
                }),
            )
        })
    }

    fn __len__(&self) -> PyResult<usize> {
        guard(|| Ok(self.table.len()))
    }

    fn __repr__(&self) -> PyResult<String> {
        guard(|| {
            Ok(format!(
                "<IpTable of {} prefixes, {} address ranges>",
                self.table.len(),
                self.table.ranges()
            ))
        })
    }
}

/// Calls `each(index, item)` for every item of `iterable`; lists and tuples
/// are walked directly, without the iterator protocol.
fn for_each_item<'py>(
    iterable: &Bound<'py, PyAny>,
    mut each: impl FnMut(usize, &Bound<'py, PyAny>) -> PyResult<()>,
) -> PyResult<()> {
    if let Ok(list) = iterable.cast::<PyList>() {
        for (i, item) in list.iter().enumerate() {
            each(i, &item)?;
        }
    } else if let Ok(tuple) = iterable.cast::<PyTuple>() {
        for (i, item) in tuple.iter().enumerate() {
            each(i, &item)?;
        }
    } else {
        for (i, item) in iterable.try_iter()?.enumerate() {
            each(i, &item?)?;
        }
    }
    Ok(())
}

/// Where a value came from, for error messages: "allow[2]", "ips[5]", or
/// nothing for a single argument. Formatted only when there is an error.
#[derive(Clone, Copy)]
struct Place<'a> {
    field: &'a str,
    index: Option<usize>,
}

impl Place<'_> {
    const ARGUMENT: Place<'static> = Place {
        field: "",
        index: None,
    };

    fn item(field: &str, index: usize) -> Place<'_> {
        Place {
            field,
            index: Some(index),
        }
    }

    /// "field[index]: ", or "" for an argument.
    fn label(self) -> String {
        match self.index {
            Some(index) => format!("{}[{index}]: ", self.field),
            None => String::new(),
        }
    }
}

/// The text of `obj`, a `str`, or a `TypeError`. A `str` that UTF-8
/// cannot encode (lone surrogates) comes back empty: no address either.
fn text<'a>(obj: &'a Bound<'_, PyAny>, place: Place<'_>) -> PyResult<&'a [u8]> {
    let Ok(string) = obj.cast::<PyString>() else {
        let kind = obj.get_type().name()?;
        let label = place.label();
        return Err(PyTypeError::new_err(format!(
            "{label}expected str, got {kind}"
        )));
    };
    Ok(string.to_str().map_or(&[][..], str::as_bytes))
}

fn address(ip: &Bound<'_, PyAny>, place: Place<'_>) -> PyResult<Addr> {
    Addr::parse_ascii(text(ip, place)?).map_err(|_| {
        let repr = ip.repr().map(|r| r.to_string()).unwrap_or_default();
        let label = place.label();
        PyValueError::new_err(format!("{label}{repr} is not a valid IP address"))
    })
}

fn prefixes(field: &str, cidrs: &Bound<'_, PyAny>) -> PyResult<Vec<Prefix>> {
    let mut out = Vec::new();
    for_each_item(cidrs, |i, cidr| {
        out.push(prefix(cidr, field, i)?);
        Ok(())
    })?;
    Ok(out)
}

fn prefix(cidr: &Bound<'_, PyAny>, field: &str, index: usize) -> PyResult<Prefix> {
    let place = Place::item(field, index);
    Prefix::parse_ascii(text(cidr, place)?).map_err(|error| {
        let repr = cidr.repr().map(|r| r.to_string()).unwrap_or_default();
        let reason = match error {
            PrefixError::Syntax => "is not a valid CIDR".to_owned(),
            PrefixError::HostBitsSet { masked } => {
                format!("has host bits set (did you mean '{masked}'?)")
            }
        };
        let message = format!("{}{repr} {reason}", place.label());
        cidr_error(cidr.py(), message, field, index, cidr)
    })
}

fn cidr_error(
    py: Python<'_>,
    message: String,
    field: &str,
    index: usize,
    entry: &Bound<'_, PyAny>,
) -> PyErr {
    let error = CidrError::new_err(message);
    let value = error.value(py);
    let attributes = value
        .setattr("field", field)
        .and_then(|()| value.setattr("index", index))
        .and_then(|()| value.setattr("entry", entry));
    attributes.err().unwrap_or(error)
}

/// `(cidr, value)` from any iterable of exactly two items (as Python's
/// `cidr, value = pair` would unpack it).
fn unpack_pair<'py>(
    pair: &Bound<'py, PyAny>,
    index: usize,
) -> PyResult<(Bound<'py, PyAny>, Bound<'py, PyAny>)> {
    let not_a_pair =
        || PyTypeError::new_err(format!("pairs[{index}]: expected a (cidr, value) pair"));
    if let Ok(tuple) = pair.cast::<PyTuple>() {
        return match tuple.len() {
            2 => Ok((tuple.get_item(0)?, tuple.get_item(1)?)),
            _ => Err(not_a_pair()),
        };
    }
    let mut items = pair.try_iter().map_err(|_| not_a_pair())?;
    let mut next = || items.next().transpose();
    match (next()?, next()?, next()?) {
        (Some(cidr), Some(value), None) => Ok((cidr, value)),
        _ => Err(not_a_pair()),
    }
}
