//! The panic boundary of the bindings. PyO3 turns a panic that reaches it
//! into `pyo3_runtime.PanicException`, a `BaseException` that the server's
//! `except Exception` handlers do not catch (it would take the nursery
//! down). Every entry point runs its body in `guard`, which turns a panic
//! into `edgeward_native.NativeError`, a plain `Exception` carrying the
//! panic message and its location, so a panic costs one request, not the
//! process. The hook installed by `install_hook` keeps such panics off
//! stderr (the caller logs the exception once); panics elsewhere still go
//! to the previous hook.
use std::cell::{Cell, RefCell};
use std::panic::{self, AssertUnwindSafe};
use std::sync::Once;

use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;

pyo3::create_exception!(
    edgeward_native,
    NativeError,
    PyRuntimeError,
    "A bug in the native module: a Rust panic caught at the boundary. The \
     message names the panic and where it happened. The call failed; the \
     module stays usable."
);

thread_local! {
    /// How many `guard`s are running on this thread.
    static GUARDS: Cell<u32> = const { Cell::new(0) };
    /// The text of the last panic caught inside a `guard`.
    static CAUGHT: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// Runs `body`, turning a panic into `NativeError`.
pub fn guard<T>(body: impl FnOnce() -> PyResult<T>) -> PyResult<T> {
    GUARDS.with(|g| g.set(g.get() + 1));
    let outcome = panic::catch_unwind(AssertUnwindSafe(body));
    GUARDS.with(|g| g.set(g.get() - 1));
    outcome.unwrap_or_else(|payload| {
        let text = CAUGHT
            .with(|c| c.borrow_mut().take())
            .unwrap_or_else(|| format!("native panic: {}", payload_text(payload.as_ref())));
        Err(NativeError::new_err(text))
    })
}

fn payload_text(payload: &(dyn std::any::Any + Send)) -> &str {
    if let Some(s) = payload.downcast_ref::<&str>() {
        s
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s
    } else {
        "(no message)"
    }
}

/// Installs (once per process) the hook that records a panic raised inside
/// a `guard` instead of printing it.
pub fn install_hook() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let previous = panic::take_hook();
        panic::set_hook(Box::new(move |info| {
            if GUARDS.with(Cell::get) == 0 {
                return previous(info);
            }
            let place = info
                .location()
                .map(|l| format!(" at {}:{}", l.file(), l.line()))
                .unwrap_or_default();
            let text = format!("native panic{place}: {}", payload_text(info.payload()));
            CAUGHT.with(|c| *c.borrow_mut() = Some(text));
        }));
    });
}

/// Test-only: panics with `message` inside a guard, so tests can check the
/// conversion (`edgeward_native._core._testing.panic`). It offers nothing a
/// caller could not do with Python code in the same process.
#[pyfunction]
#[pyo3(name = "panic", signature = (message = "test panic"))]
fn test_panic(message: &str) -> PyResult<()> {
    guard(|| panic!("{message}"))
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    install_hook();
    m.add("NativeError", m.py().get_type::<NativeError>())?;
    let testing = PyModule::new(m.py(), "_testing")?;
    testing.add_function(wrap_pyfunction!(test_panic, &testing)?)?;
    m.add_submodule(&testing)?;
    Ok(())
}
