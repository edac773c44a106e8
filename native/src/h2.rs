//! Python bindings of `edgeward_core::h2`: `H2Server`, the native HTTP/2
//! server connection. Conversion only: the events are instances of the
//! classes the caller hands over (edgeward's `edgeward.http2.events`), so
//! both implementations emit the very same objects.

use edgeward_core::h2::{self, Event, Limits, Server};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyList, PyTuple};

use crate::guard::guard;

pyo3::create_exception!(
    edgeward_native,
    H2SendError,
    PyValueError,
    "A send the stream's state does not allow: on a closed stream, past the \
     flow-control window, a frame larger than the client's maximum."
);

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<H2Server>()?;
    m.add("H2SendError", m.py().get_type::<H2SendError>())?;
    Ok(())
}

/// The event classes, in this order: Request, Body, EndBody, StreamReset,
/// WindowOpened, ConnectionEnded.
struct EventTypes {
    request: Py<PyAny>,
    body: Py<PyAny>,
    end_body: Py<PyAny>,
    stream_reset: Py<PyAny>,
    window_opened: Py<PyAny>,
    connection_ended: Py<PyAny>,
}

/// One HTTP/2 server connection; see `edgeward_native.H2Server`.
#[pyclass(module = "edgeward_native", subclass)]
pub struct H2Server {
    server: Server,
    limits: Py<PyAny>,
    types: EventTypes,
}

fn read_limits(limits: &Bound<'_, PyAny>) -> PyResult<Limits> {
    let window = |name: &str| -> PyResult<u32> {
        let value: u32 = limits.getattr(name)?.extract()?;
        if value > (1 << 31) - 1 {
            return Err(PyValueError::new_err(format!("{name} is over 2**31 - 1")));
        }
        Ok(value)
    };
    Ok(Limits {
        max_concurrent_streams: limits.getattr("max_concurrent_streams")?.extract()?,
        max_header_list_size: limits.getattr("max_header_list_size")?.extract()?,
        max_resets: limits.getattr("max_resets")?.extract()?,
        reset_window: limits.getattr("reset_window")?.extract()?,
        stream_window: window("stream_window")?,
        connection_window: window("connection_window")?,
        max_control_frames: limits.getattr("max_control_frames")?.extract()?,
        max_empty_frames: limits.getattr("max_empty_frames")?.extract()?,
    })
}

/// A header list from Python: (name, value) pairs of bytes.
fn headers<'py>(
    list: &Bound<'py, PyAny>,
) -> PyResult<Vec<(Bound<'py, PyBytes>, Bound<'py, PyBytes>)>> {
    let mut out = Vec::new();
    for item in list.try_iter()? {
        let item = item?;
        let pair = item.cast::<PyTuple>()?;
        if pair.len() != 2 {
            return Err(PyValueError::new_err("a header is a (name, value) pair"));
        }
        out.push((
            pair.get_item(0)?.cast_into::<PyBytes>()?,
            pair.get_item(1)?.cast_into::<PyBytes>()?,
        ));
    }
    Ok(out)
}

fn with_slices<T>(
    list: &[(Bound<'_, PyBytes>, Bound<'_, PyBytes>)],
    body: impl FnOnce(&[(&[u8], &[u8])]) -> T,
) -> T {
    let slices: Vec<(&[u8], &[u8])> = list
        .iter()
        .map(|(n, v)| (n.as_bytes(), v.as_bytes()))
        .collect();
    body(&slices)
}

fn field_list<'py>(py: Python<'py>, fields: &[(Vec<u8>, Vec<u8>)]) -> PyResult<Bound<'py, PyList>> {
    let list = PyList::empty(py);
    for (name, value) in fields {
        list.append(PyTuple::new(
            py,
            [PyBytes::new(py, name), PyBytes::new(py, value)],
        )?)?;
    }
    Ok(list)
}

fn send_error(error: h2::SendError) -> PyErr {
    H2SendError::new_err(error.0)
}

impl H2Server {
    fn event<'py>(&self, py: Python<'py>, event: Event) -> PyResult<Bound<'py, PyAny>> {
        let t = &self.types;
        match event {
            Event::Request {
                stream_id,
                method,
                target,
                authority,
                scheme,
                headers,
                end_stream,
            } => t.request.bind(py).call1((
                stream_id,
                PyBytes::new(py, &method),
                PyBytes::new(py, &target),
                PyBytes::new(py, &authority),
                PyBytes::new(py, &scheme),
                field_list(py, &headers)?,
                end_stream,
            )),
            Event::Body {
                stream_id,
                data,
                flow_length,
            } => t
                .body
                .bind(py)
                .call1((stream_id, PyBytes::new(py, &data), flow_length)),
            Event::EndBody {
                stream_id,
                trailers,
            } => t
                .end_body
                .bind(py)
                .call1((stream_id, field_list(py, &trailers)?)),
            Event::StreamReset {
                stream_id,
                error_code,
            } => t.stream_reset.bind(py).call1((stream_id, error_code)),
            Event::WindowOpened { stream_id } => t.window_opened.bind(py).call1((stream_id,)),
            Event::ConnectionEnded { error_code, reason } => {
                t.connection_ended.bind(py).call1((error_code, reason))
            }
        }
    }
}

#[pymethods]
impl H2Server {
    #[new]
    fn new(
        limits: &Bound<'_, PyAny>,
        scheme: &[u8],
        events: &Bound<'_, PyTuple>,
    ) -> PyResult<Self> {
        guard(|| {
            let item = |i: usize| -> PyResult<Py<PyAny>> { Ok(events.get_item(i)?.unbind()) };
            if events.len() != 6 {
                return Err(PyValueError::new_err("six event classes"));
            }
            Ok(H2Server {
                server: Server::new(read_limits(limits)?, scheme),
                limits: limits.clone().unbind(),
                types: EventTypes {
                    request: item(0)?,
                    body: item(1)?,
                    end_body: item(2)?,
                    stream_reset: item(3)?,
                    window_opened: item(4)?,
                    connection_ended: item(5)?,
                },
            })
        })
    }

    #[getter]
    fn limits(&self, py: Python<'_>) -> Py<PyAny> {
        self.limits.clone_ref(py)
    }

    #[setter]
    fn set_limits(&mut self, limits: &Bound<'_, PyAny>) -> PyResult<()> {
        guard(|| {
            self.server.set_limits(read_limits(limits)?);
            self.limits = limits.clone().unbind();
            Ok(())
        })
    }

    #[getter]
    fn scheme<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, self.server.scheme())
    }

    #[getter]
    fn ended(&self) -> bool {
        self.server.ended()
    }

    fn initiate(&mut self) -> PyResult<()> {
        guard(|| {
            self.server.initiate();
            Ok(())
        })
    }

    fn receive_data<'py>(
        &mut self,
        py: Python<'py>,
        data: &[u8],
        now: f64,
    ) -> PyResult<Bound<'py, PyList>> {
        guard(|| {
            let events = self.server.receive_data(data, now);
            let list = PyList::empty(py);
            for event in events {
                list.append(self.event(py, event)?)?;
            }
            Ok(list)
        })
    }

    fn data_to_send<'py>(&mut self, py: Python<'py>) -> PyResult<Bound<'py, PyBytes>> {
        guard(|| Ok(PyBytes::new(py, &self.server.data_to_send())))
    }

    fn all_sent(&mut self) -> PyResult<()> {
        guard(|| {
            self.server.all_sent();
            Ok(())
        })
    }

    #[pyo3(signature = (error_code = 0))]
    fn goaway(&mut self, error_code: u32) -> PyResult<()> {
        guard(|| {
            self.server.goaway(error_code);
            Ok(())
        })
    }

    #[pyo3(signature = (stream_id, status, headers, end_stream = false))]
    fn send_headers(
        &mut self,
        stream_id: u32,
        status: u16,
        headers: &Bound<'_, PyAny>,
        end_stream: bool,
    ) -> PyResult<()> {
        guard(|| {
            let list = self::headers(headers)?;
            with_slices(&list, |fields| {
                self.server
                    .send_headers(stream_id, status, fields, end_stream)
            })
            .map_err(send_error)
        })
    }

    fn send_window(&self, stream_id: u32) -> PyResult<i64> {
        guard(|| Ok(self.server.send_window(stream_id)))
    }

    fn send_data(&mut self, stream_id: u32, data: &[u8]) -> PyResult<()> {
        guard(|| self.server.send_data(stream_id, data).map_err(send_error))
    }

    #[pyo3(signature = (stream_id, trailers, data = b"".as_slice()))]
    fn end_stream(
        &mut self,
        stream_id: u32,
        trailers: &Bound<'_, PyAny>,
        data: &[u8],
    ) -> PyResult<()> {
        guard(|| {
            let list = self::headers(trailers)?;
            with_slices(&list, |fields| {
                self.server.end_stream(stream_id, fields, data)
            })
            .map_err(send_error)
        })
    }

    #[pyo3(signature = (stream_id, head, data, trailers))]
    fn finish_response(
        &mut self,
        stream_id: u32,
        head: Option<(u16, Bound<'_, PyAny>)>,
        data: &[u8],
        trailers: &Bound<'_, PyAny>,
    ) -> PyResult<bool> {
        guard(|| {
            let trailers = self::headers(trailers)?;
            let head = match head {
                Some((status, fields)) => Some((status, self::headers(&fields)?)),
                None => None,
            };
            with_slices(&trailers, |trailers| match &head {
                Some((status, fields)) => with_slices(fields, |fields| {
                    self.server
                        .finish_response(stream_id, Some((*status, fields)), data, trailers)
                }),
                None => self.server.finish_response(stream_id, None, data, trailers),
            })
            .map_err(send_error)
        })
    }

    fn consumed(&mut self, stream_id: u32, flow_length: u64) -> PyResult<()> {
        guard(|| {
            self.server.consumed(stream_id, flow_length);
            Ok(())
        })
    }

    #[pyo3(signature = (stream_id, error_code = h2::CANCEL))]
    fn reset(&mut self, stream_id: u32, error_code: u32) -> PyResult<()> {
        guard(|| {
            self.server.reset(stream_id, error_code);
            Ok(())
        })
    }
}
