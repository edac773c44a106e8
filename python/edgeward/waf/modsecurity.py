"""A minimal ctypes binding of libmodsecurity's C API (ModSecurity v3).

Why ctypes (docs/architecture.md has the measurements): the crates.io
bindings do not fit Debian's library (`modsecurity` 1.0 requires
libmodsecurity >= 3.0.13, Debian 12 ships 3.0.9; 0.1.1-alpha.2 has no
transaction API and writes through a bad pointer on its error path), the
library is opened only when a policy uses the OWASP CRS actions (so neither
the edge nor the native module needs it to build or start), the same
binding serves both backends, and every foreign call releases the GIL, so a
transaction run in a worker thread leaves the event loop free. The binding
costs a few µs of a transaction that costs the engine milliseconds.

Only what the CRS actions need is bound. Every function has its argument
and result types declared; strings the library allocates (errors,
intervention texts) are copied and freed here. A `Transaction` belongs to
one thread at a time; a `RulesSet` is read-only once built and shared.
"""

from __future__ import annotations

import ctypes
import itertools
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from edgeward.errors import EdgewardError

LIBRARY = "libmodsecurity.so.3"
INSTALL_HINT = (
    "install ModSecurity v3 and the Core Rule Set"
    " (Debian/Ubuntu: apt-get install libmodsecurity3 modsecurity-crs)"
)

_P = ctypes.c_void_p
_LOG_CB = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_void_p)


class ModSecurityError(EdgewardError):
    """The library is missing, or refused rules, or failed a transaction."""


class _Intervention(ctypes.Structure):
    # struct ModSecurityIntervention_t (modsecurity/intervention.h)
    _fields_ = (
        ("status", ctypes.c_int),
        ("pause", ctypes.c_int),
        ("url", ctypes.c_void_p),
        ("log", ctypes.c_void_p),
        ("disruptive", ctypes.c_int),
    )


_SIGNATURES: dict[str, tuple[Any, list[Any]]] = {
    "msc_init": (_P, []),
    "msc_who_am_i": (ctypes.c_char_p, [_P]),
    "msc_set_connector_info": (None, [_P, ctypes.c_char_p]),
    "msc_set_log_cb": (None, [_P, _LOG_CB]),
    "msc_create_rules_set": (_P, []),
    "msc_rules_add": (ctypes.c_int, [_P, ctypes.c_char_p, ctypes.POINTER(_P)]),
    "msc_rules_add_file": (ctypes.c_int, [_P, ctypes.c_char_p, ctypes.POINTER(_P)]),
    "msc_rules_merge": (ctypes.c_int, [_P, _P, ctypes.POINTER(_P)]),
    "msc_rules_cleanup": (ctypes.c_int, [_P]),
    "msc_new_transaction": (_P, [_P, _P, _P]),
    "msc_process_connection": (
        ctypes.c_int,
        [_P, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_int],
    ),
    "msc_process_uri": (ctypes.c_int, [_P, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p]),
    "msc_add_n_request_header": (
        ctypes.c_int,
        [_P, ctypes.c_char_p, ctypes.c_size_t, ctypes.c_char_p, ctypes.c_size_t],
    ),
    "msc_process_request_headers": (ctypes.c_int, [_P]),
    "msc_append_request_body": (ctypes.c_int, [_P, ctypes.c_char_p, ctypes.c_size_t]),
    "msc_process_request_body": (ctypes.c_int, [_P]),
    "msc_add_n_response_header": (
        ctypes.c_int,
        [_P, ctypes.c_char_p, ctypes.c_size_t, ctypes.c_char_p, ctypes.c_size_t],
    ),
    "msc_process_response_headers": (ctypes.c_int, [_P, ctypes.c_int, ctypes.c_char_p]),
    "msc_append_response_body": (ctypes.c_int, [_P, ctypes.c_char_p, ctypes.c_size_t]),
    "msc_process_response_body": (ctypes.c_int, [_P]),
    "msc_intervention": (ctypes.c_int, [_P, ctypes.POINTER(_Intervention)]),
    "msc_process_logging": (ctypes.c_int, [_P]),
    "msc_transaction_cleanup": (None, [_P]),
}


class _Library:
    """The loaded library, one ModSecurity instance per process, and the log
    callback that routes each rule message to its transaction."""

    def __init__(self) -> None:
        try:
            lib = ctypes.CDLL(LIBRARY)
            libc = ctypes.CDLL(None)
        except OSError as exc:
            raise ModSecurityError(f"cannot load {LIBRARY} ({exc}): {INSTALL_HINT}") from None
        for name, (restype, argtypes) in _SIGNATURES.items():
            try:
                fn = getattr(lib, name)
            except AttributeError:
                raise ModSecurityError(f"{LIBRARY} has no {name}: {INSTALL_HINT}") from None
            fn.restype = restype
            fn.argtypes = argtypes
        self.free = libc.free
        self.free.argtypes = [_P]
        self.free.restype = None
        self.lib = lib
        self.msc = lib.msc_init()
        if not self.msc:
            raise ModSecurityError("msc_init failed")
        lib.msc_set_connector_info(self.msc, b"edgeward")
        # Messages by transaction token; the callback runs in the thread of
        # the call that logged (ctypes takes the GIL for it).
        self.messages: dict[int, list[str]] = {}
        self._tokens = itertools.count(1)
        self._callback = _LOG_CB(self._log)  # kept alive as long as the library
        lib.msc_set_log_cb(self.msc, self._callback)
        self.version = (lib.msc_who_am_i(self.msc) or b"").decode("ascii", "replace")

    def _log(self, token: int | None, message: int | None) -> None:
        if token is None or message is None:
            return
        sink = self.messages.get(token)
        if sink is not None:
            sink.append(ctypes.string_at(message).decode("utf-8", "replace"))

    def token(self) -> int:
        return next(self._tokens)

    def take_string(self, pointer: int | None) -> str:
        """Copy a string the library allocated for us, and free it."""
        if not pointer:
            return ""
        text = ctypes.string_at(pointer).decode("utf-8", "replace")
        self.free(pointer)
        return text


_LOCK = threading.Lock()
_LOADED: list[_Library] = []  # at most one


def library() -> _Library:
    """The library, loaded at first use; `ModSecurityError` says what to
    install when it is missing."""
    with _LOCK:
        if not _LOADED:
            _LOADED.append(_Library())
        return _LOADED[0]


class RulesSet:
    """Compiled rules (`msc_create_rules_set`). Read-only once built: shared
    by every transaction, in any thread."""

    def __init__(self) -> None:
        self._lib = library()
        self._ptr: int | None = self._lib.lib.msc_create_rules_set()
        if not self._ptr:
            raise ModSecurityError("msc_create_rules_set failed")

    def add(self, text: str) -> int:
        """Add rules written as text (directives); returns the rule count."""
        return self._check(self._lib.lib.msc_rules_add, text.encode(), "rules")

    def add_file(self, path: str) -> int:
        return self._check(self._lib.lib.msc_rules_add_file, path.encode(), path)

    def merged(self, extra: str) -> RulesSet:
        """A new set holding this one's rules (shared, not recompiled) and
        `extra` (e.g. `SecRuleRemoveById`)."""
        out = RulesSet()
        error = _P()
        if self._lib.lib.msc_rules_merge(out._ptr, self._ptr, ctypes.byref(error)) < 0:
            raise ModSecurityError(f"merging rules: {self._lib.take_string(error.value)}")
        self._lib.take_string(error.value)
        if extra:
            out.add(extra)
        return out

    def _check(self, fn: Any, arg: bytes, what: str) -> int:
        error = _P()
        count = int(fn(self._ptr, arg, ctypes.byref(error)))
        message = self._lib.take_string(error.value)
        if count < 0:
            raise ModSecurityError(f"{what}: {message.strip() or 'rejected'}")
        return count

    @property
    def pointer(self) -> int | None:
        return self._ptr

    def __del__(self) -> None:
        ptr, self._ptr = getattr(self, "_ptr", None), None
        if ptr:
            self._lib.lib.msc_rules_cleanup(ptr)


@dataclass(frozen=True, slots=True)
class Interruption:
    """What a disruptive rule decided (`msc_intervention`)."""

    status: int
    log: str  # the disruptive rule's message, as the library formats it


class Transaction:
    """One request/response through the rules. Feed it in phase order;
    `messages` collects the text of every rule that logged. Use it in one
    thread and `close()` it (or use it as a context manager)."""

    def __init__(self, rules: RulesSet) -> None:
        self._lib = library()
        self._rules = rules  # keeps the set alive while the transaction runs
        self._token = self._lib.token()
        self.messages: list[str] = []
        self._lib.messages[self._token] = self.messages
        self._ptr: int | None = self._lib.lib.msc_new_transaction(
            self._lib.msc, rules.pointer, self._token
        )
        if not self._ptr:
            del self._lib.messages[self._token]
            raise ModSecurityError("msc_new_transaction failed")
        self.interruption: Interruption | None = None

    def __enter__(self) -> Transaction:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        ptr, self._ptr = getattr(self, "_ptr", None), None
        if ptr:
            self._lib.lib.msc_transaction_cleanup(ptr)
            self._lib.messages.pop(self._token, None)

    def _call(self, name: str, *args: Any) -> None:
        if self._ptr is None:
            raise ModSecurityError("the transaction is closed")
        if getattr(self._lib.lib, name)(self._ptr, *args) != 1:
            raise ModSecurityError(f"{name} failed")

    def connection(self, client_ip: str, client_port: int, server_ip: str, port: int) -> None:
        self._call(
            "msc_process_connection", client_ip.encode(), client_port, server_ip.encode(), port
        )

    def request_head(
        self, method: bytes, uri: bytes, version: bytes, headers: Iterable[tuple[bytes, bytes]]
    ) -> bool:
        """Phase 1; True when a rule interrupted the transaction."""
        self._call("msc_process_uri", uri, method, version)
        add = self._lib.lib.msc_add_n_request_header
        for name, value in headers:
            add(self._ptr, name, len(name), value, len(value))
        self._call("msc_process_request_headers")
        return self._intervened()

    def request_body(self, body: bytes) -> bool:
        """Phase 2 (also without a body: the request's decision is made there)."""
        if body:
            self._call("msc_append_request_body", body, len(body))
        self._call("msc_process_request_body")
        return self._intervened()

    def response_head(
        self, status: int, protocol: bytes, headers: Iterable[tuple[bytes, bytes]]
    ) -> bool:
        """Phase 3."""
        add = self._lib.lib.msc_add_n_response_header
        for name, value in headers:
            add(self._ptr, name, len(name), value, len(value))
        self._call("msc_process_response_headers", status, protocol)
        return self._intervened()

    def response_body(self, body: bytes) -> bool:
        """Phase 4."""
        if body:
            self._call("msc_append_response_body", body, len(body))
        self._call("msc_process_response_body")
        return self._intervened()

    def logging(self) -> None:
        """Phase 5: runs even after an interruption."""
        self._call("msc_process_logging")

    def _intervened(self) -> bool:
        if self.interruption is not None:
            return True
        it = _Intervention(status=200)
        disruptive = self._lib.lib.msc_intervention(self._ptr, ctypes.byref(it))
        self._lib.take_string(it.url)
        log = self._lib.take_string(it.log)
        if disruptive and it.disruptive:
            self.interruption = Interruption(it.status, log)
            return True
        return False

    def __del__(self) -> None:
        self.close()
