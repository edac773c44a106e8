"""Reading an action's `config` block: typed fields, load-time CEL, located
errors.

Each action's `from_config` reads its fields through a `ConfigReader`. Every
read names the key, so a wrong type, a value out of range or a CEL syntax
error is reported at the file and line of that key; keys nobody read are
reported as unknown once `from_config` returns. CEL-capable fields are
compiled here, once, against the variables of the action's phase.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NoReturn, Protocol

from edgeward import native
from edgeward.document import Fields, PathKey, SourceDocument, describe
from edgeward.errors import ConfigError, Location
from edgeward.identity.flow import Runtime
from edgeward.ipintel import IpIntelligence
from edgeward.policy.errors import Diagnostic, Severity
from edgeward.policy.expressions import (
    Envs,
    Renderable,
    compile_expression,
    compile_template,
    compile_url_template,
    condition_type_error,
)
from edgeward.policy.model import Phase
from edgeward.policy.targets import ExternalTargets


class IpPolicyRules(Protocol):
    """A named IP policy of the edge config (`edgeward.config.IpPolicy`):
    CIDRs as strings or `ipaddress` networks."""

    @property
    def allow(self) -> Collection[object]: ...

    @property
    def deny(self) -> Collection[object]: ...


@dataclass(frozen=True, slots=True)
class EngineOptions:
    """Engine-wide settings the edge config provides."""

    body_limit: int = 1024 * 1024  # the most a policy buffers of a request body
    # What `http-request` may call outside the edge (the edge config's
    # `http_request`); unknown (nothing allowed) without an edge config.
    http_request: ExternalTargets = field(default_factory=lambda: ExternalTargets(known=False))
    clock: Callable[[], float] | None = None  # None = time.time
    # `secrets.get(vault, name)` reads here: vault -> name -> value (the edge
    # config's `secrets:`); None when unknown (`policy check` without one).
    secrets: Mapping[str, Mapping[str, str]] | None = field(default=None, repr=False)
    # oauth / openid-connect: the edge's identity runtime (None: compiled
    # without an edge, or an edge without `identity:`), and whether the
    # policy is compiled for an edge (problems a standalone `policy check`
    # only warns about are then errors).
    identity: Runtime | None = None
    edge: bool = False
    # What `conn.*_ip.{geo,as,categories,...}` read: the edge config's
    # `ip_intelligence`; None when unknown (`policy check`): empty values.
    ip_intelligence: IpIntelligence | None = field(default=None, repr=False)
    # The OWASP CRS actions' rules directory (the edge config's
    # `owasp_crs.rules_dir`); None: the Debian package's.
    owasp_crs_rules_dir: str | None = None
    # The policy's CEL Envs, bound to `secrets` (made from it).
    cel: Envs = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "cel", Envs(self.secrets))


def redactor(secrets: Mapping[str, Mapping[str, str]] | None) -> Callable[[str], str]:
    """Replaces every secret value (of 4 characters or more: shorter ones
    would mangle any text) by ``[secret]`` in a message about to leave the
    engine (events, `policy test` output)."""
    values = sorted(
        {v for vault in (secrets or {}).values() for v in vault.values() if len(v) >= 4},
        key=len,
        reverse=True,
    )
    if not values:
        return _same

    def redact(text: str) -> str:
        for value in values:
            if value in text:
                text = text.replace(value, "[secret]")
        return text

    return redact


def _same(text: str) -> str:
    return text


def redact_value(value: Any, redact: Callable[[str], str]) -> Any:
    """`value` with `redact` applied to every string in it."""
    if redact is _same:
        return value
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, Mapping):
        return {k: redact_value(v, redact) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redact_value(v, redact) for v in value]
    return value


@dataclass(frozen=True, slots=True)
class CompileScope:
    """What an action may consult while it is compiled."""

    phase: Phase
    ip_policies: Mapping[str, IpPolicyRules] | None  # None: unknown (policy check alone)
    options: EngineOptions = field(default_factory=EngineOptions)
    # Where the reader notes the variables each compiled program reads.
    references: set[str] = field(default_factory=set)


class InvalidConfig(ConfigError):
    """Raised by `ConfigReader.fail`; the loader turns it into a diagnostic
    and goes on with the next action."""

    location: Location

    def __init__(self, message: str, location: Location) -> None:
        super().__init__(message, location)


_MISSING: Any = object()
_YAML11_BOOLS = {"yes": True, "on": True, "y": True, "no": False, "off": False, "n": False}
_DURATION = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)")
_DURATION_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
_HEADER_NAME = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")


def _num(value: float) -> str:
    """`60`, `0.5`, `2000000000`: whole numbers without a fraction or an exponent."""
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


def constant(template: native.Template) -> str:
    """The text of a template without `${...}` (its `$${` escapes undone)."""
    assert template.is_constant
    return template.render({})


def parse_duration(text: str) -> float | None:
    """Seconds in a Go duration string (``"1m30s"``, ``"500ms"``), or None."""
    text = text.strip()
    if text in ("0", ""):
        return 0.0 if text == "0" else None
    pos, total = 0, 0.0
    while pos < len(text):
        m = _DURATION.match(text, pos)
        if not m:
            return None
        total += float(m.group(1)) * _DURATION_UNITS[m.group(2)]
        pos = m.end()
    return total


class ConfigReader(Fields):
    """Typed, located access to one mapping of a policy document (an
    action's `config` and the mappings in it), on `edgeward.document.Fields`:
    its errors are `InvalidConfig`, its keys are fields, and an unknown
    field's error lists the valid ones."""

    word = "field"
    list_known = True
    Error = InvalidConfig

    def __init__(
        self,
        data: Mapping[str, Any],
        path: PathKey,
        document: SourceDocument,
        scope: CompileScope,
        report: Callable[[Diagnostic], None],
        *,
        rule: str | None = None,
        action: str | None = None,
    ) -> None:
        super().__init__(data, path, document)
        self.scope = scope
        self._report = report
        self._rule = rule
        self._action = action
        self._children: list[ConfigReader] = []

    # --- errors and warnings -----------------------------------------------

    def locate(self, path: PathKey) -> Location:
        return self.document.locate(path)

    def fail(self, key: str | int | None, message: str) -> NoReturn:
        """Raise `InvalidConfig` at `key`, or at the mapping itself for None.
        An error about the whole mapping ("missing required field", "needs
        one of") is first a mistyped field, when one is present: then that
        is reported, at its own line."""
        if key is None:
            typo = self.first_misspelt()
            if typo is not None:
                raise typo
        raise self.error(key, message)

    def warn(self, key: str | int | None, message: str) -> None:
        self._report(
            Diagnostic(Severity.WARNING, message, self.where(key), self._rule, self._action)
        )

    def finish(self) -> None:
        """Report keys that no read asked for (called by the loader)."""
        self.check_unknown()

    def missing(self, key: str) -> NoReturn:
        """Fail for a required field that is absent (or mistyped: `fail`)."""
        self.read.add(key)
        self.fail(None, f"missing required field {key!r}")

    # --- raw access --------------------------------------------------------

    def has(self, key: str) -> bool:
        return key in self.data

    def _take(self, key: str, aliases: Sequence[str]) -> tuple[str, Any]:
        """The key actually used and its value (`_MISSING` if absent)."""
        self.read.add(key)
        self.read.update(aliases)
        found = [k for k in (key, *aliases) if k in self.data]
        if len(found) > 1:
            self.fail(found[1], f"{found[1]!r} and {found[0]!r} are the same field; give one")
        if not found:
            return key, _MISSING
        used = found[0]
        if used != key:
            self.warn(used, f"{used!r} is another spelling of {key!r}; prefer {key!r}")
        return used, self.data[used]

    def value(self, key: str, *, default: Any = None, aliases: Sequence[str] = ()) -> Any:
        _, value = self._take(key, aliases)
        return default if value is _MISSING else value

    def _get(
        self, key: str, aliases: Sequence[str] = (), required: bool = False
    ) -> tuple[str, Any]:
        """Like `_take`, but an empty value counts as absent (`_MISSING`),
        which fails for a required field."""
        used, raw = self._take(key, aliases)
        if raw is _MISSING or raw is None:
            if required:
                self.missing(key)
            return used, _MISSING
        return used, raw

    # --- scalars -------------------------------------------------------------

    def string(
        self,
        key: str,
        *,
        required: bool = False,
        default: str | None = None,
        choices: Collection[str] | None = None,
        aliases: Sequence[str] = (),
        max_length: int | None = None,
    ) -> str | None:
        used, raw = self._get(key, aliases, required)
        if raw is _MISSING:
            return default
        text = self._as_text(used, raw)
        if choices is not None and text not in choices:
            self.fail(used, f"{key} must be one of {', '.join(sorted(choices))}, not {text!r}")
        if max_length is not None and len(text) > max_length:
            self.fail(used, f"{key} is longer than {max_length} characters")
        return text

    def _as_text(self, key: str | int, raw: Any) -> str:
        # A YAML scalar written without quotes (`x-version: 2`) is still text.
        if isinstance(raw, str):
            return raw
        if isinstance(raw, bool):
            return "true" if raw else "false"
        if isinstance(raw, int | float):
            return str(raw)
        self.fail(key, f"must be a string, not {describe(raw)}")

    def integer(
        self,
        key: str,
        *,
        required: bool = False,
        default: int | None = None,
        minimum: int | None = None,
        maximum: int | None = None,
        aliases: Sequence[str] = (),
    ) -> int | None:
        used, raw = self._get(key, aliases, required)
        if raw is _MISSING:
            return default
        if isinstance(raw, str) and raw.strip().lstrip("-").isdigit():
            raw = int(raw)
        if isinstance(raw, bool) or not isinstance(raw, int):
            self.fail(used, f"{key} must be an integer, not {describe(raw)}")
        self._check_range(used, key, raw, minimum, maximum)
        return raw

    def number(
        self,
        key: str,
        *,
        required: bool = False,
        default: float | None = None,
        minimum: float | None = None,
        maximum: float | None = None,
        aliases: Sequence[str] = (),
    ) -> float | None:
        used, raw = self._get(key, aliases, required)
        if raw is _MISSING:
            return default
        if isinstance(raw, bool) or not isinstance(raw, int | float):
            self.fail(used, f"{key} must be a number, not {describe(raw)}")
        self._check_range(used, key, raw, minimum, maximum)
        return float(raw)

    def _check_range(
        self,
        used: str,
        key: str,
        value: float,
        lo: float | None,
        hi: float | None,
        *,
        unit: str = "",
    ) -> None:
        """`unit` is the suffix every number is spelled with (`s`)."""
        if lo is not None and value < lo:
            self.fail(used, f"{key} must be at least {_num(lo)}{unit}, not {_num(value)}{unit}")
        if hi is not None and value > hi:
            self.fail(used, f"{key} must be at most {_num(hi)}{unit}, not {_num(value)}{unit}")

    def boolean(
        self, key: str, *, default: bool | None = None, aliases: Sequence[str] = ()
    ) -> bool | None:
        used, raw = self._get(key, aliases)
        if raw is _MISSING:
            return default
        if isinstance(raw, str) and raw.lower() in _YAML11_BOOLS:
            # `enforce: yes`: YAML 1.1 spellings, which Go's YAML still
            # reads into a boolean field.
            self.warn(used, f"{key}: write true or false, not {raw!r}")
            return _YAML11_BOOLS[raw.lower()]
        if not isinstance(raw, bool):
            self.fail(used, f"{key} must be true or false, not {describe(raw)}")
        return raw

    def duration(
        self,
        key: str,
        *,
        required: bool = False,
        default: float | None = None,
        minimum: float | None = None,
        maximum: float | None = None,
        aliases: Sequence[str] = (),
    ) -> float | None:
        """Seconds, from a Go duration string (``"10s"``, ``"1h30m"``) or a
        number of seconds."""
        used, raw = self._get(key, aliases, required)
        if raw is _MISSING:
            return default
        if isinstance(raw, bool) or not isinstance(raw, int | float | str):
            self.fail(used, f"{key} must be a duration such as '30s', not {describe(raw)}")
        seconds = float(raw) if not isinstance(raw, str) else parse_duration(raw)
        if seconds is None:
            self.fail(used, f"{key}: {raw!r} is not a duration such as '30s' or '1m30s'")
        self._check_range(used, key, seconds, minimum, maximum, unit="s")
        return seconds

    # --- lists and mappings ------------------------------------------------

    def items(
        self,
        key: str,
        *,
        required: bool = False,
        min_items: int = 0,
        max_items: int | None = None,
        aliases: Sequence[str] = (),
    ) -> list[tuple[PathKey, Any]] | None:
        """The items of a list field with their paths; None if absent."""
        used, raw = self._get(key, aliases, required)
        if raw is _MISSING:
            return None
        if not isinstance(raw, list):
            self.fail(used, f"{key} must be a list, not {describe(raw)}")
        if len(raw) < min_items:
            self.fail(used, f"{key} needs at least {min_items} item(s)")
        if max_items is not None and len(raw) > max_items:
            self.fail(used, f"{key} has {len(raw)} items; at most {max_items} are allowed")
        return [((*self.path, used, i), item) for i, item in enumerate(raw)]

    def string_list(
        self,
        key: str,
        *,
        required: bool = False,
        min_items: int = 0,
        max_items: int | None = None,
        aliases: Sequence[str] = (),
    ) -> list[str] | None:
        items = self.items(
            key, required=required, min_items=min_items, max_items=max_items, aliases=aliases
        )
        if items is None:
            return None
        return [self._sub_text(path, item) for path, item in items]

    def _sub_text(self, path: PathKey, item: Any) -> str:
        if isinstance(item, str | int | float) and not isinstance(item, bool):
            return str(item)
        raise InvalidConfig(f"must be a string, not {describe(item)}", self.document.locate(path))

    def mapping(
        self, key: str, *, required: bool = False, aliases: Sequence[str] = ()
    ) -> ConfigReader | None:
        """A nested mapping read the same way (its unknown keys are reported
        when the action's config is finished)."""
        used, raw = self._get(key, aliases, required)
        if raw is _MISSING:
            return None
        return self.reader_at((*self.path, used), raw)

    def reader_at(self, path: PathKey, raw: Any) -> ConfigReader:
        """A reader of the mapping `raw` at `path` (raises when it is none)."""
        sub = ConfigReader(
            raw, path, self.document, self.scope, self._report, rule=self._rule, action=self._action
        )
        self._children.append(sub)
        return sub

    def finish_all(self) -> None:
        self.finish()
        for child in self._children:
            child.finish_all()

    # --- CEL ---------------------------------------------------------------

    def template(
        self,
        key: str,
        *,
        required: bool = False,
        default: str | None = None,
        aliases: Sequence[str] = (),
    ) -> native.Template | None:
        """A CEL-capable string field, compiled once: ``${expr}`` parts are
        evaluated per request."""
        used, raw = self._get(key, aliases, required)
        if raw is _MISSING:
            return None if default is None else self.compile_template(None, default)
        return self.compile_template((*self.path, used), self._as_text(used, raw))

    def url_template(
        self, key: str, *, required: bool = False, aliases: Sequence[str] = ()
    ) -> Renderable | None:
        """A URL-valued CEL-capable field: what ``${expr}`` gives is
        percent-encoded where a URL cannot hold it (`UrlTemplate`)."""
        used, raw = self._get(key, aliases, required)
        if raw is _MISSING:
            return None
        path = (*self.path, used)
        try:
            template = compile_url_template(
                self._as_text(used, raw), self.scope.phase, self.scope.options.cel
            )
        except native.PolicyExprError as exc:
            message = _expr_message(exc, "interpolation")
            raise InvalidConfig(message, self.document.locate(path)) from None
        self.scope.references.update(template.references)
        return template

    def template_list(
        self, key: str, *, required: bool = False, min_items: int = 0, max_items: int | None = None
    ) -> list[native.Template] | None:
        items = self.items(key, required=required, min_items=min_items, max_items=max_items)
        if items is None:
            return None
        return [self.compile_template(path, self._sub_text(path, item)) for path, item in items]

    def template_map(
        self,
        key: str,
        *,
        required: bool = False,
        min_items: int = 0,
        max_items: int | None = None,
        header_names: bool = False,
    ) -> dict[str, native.Template] | None:
        """A map of names to CEL-capable values (keys are not interpolated).
        With `header_names`, keys must be HTTP field names and are
        lower-cased."""
        used, raw = self._get(key, (), required)
        if raw is _MISSING:
            return None
        if not isinstance(raw, Mapping):
            self.fail(used, f"{key} must be a mapping, not {describe(raw)}")
        if len(raw) < min_items:
            self.fail(used, f"{key} needs at least {min_items} entr(y/ies)")
        if max_items is not None and len(raw) > max_items:
            self.fail(used, f"{key} has {len(raw)} entries; at most {max_items} are allowed")
        out: dict[str, native.Template] = {}
        for name, value in raw.items():
            path = (*self.path, used, name)
            if header_names and not _HEADER_NAME.fullmatch(name):
                raise InvalidConfig(
                    f"{name!r} is not a valid header name", self.document.locate(path)
                )
            key = name.lower() if header_names else name
            out[key] = self.compile_template(path, self._sub_text(path, value))
        return out

    def compile_template(self, path: PathKey | None, text: str) -> native.Template:
        try:
            template = compile_template(text, self.scope.phase, self.scope.options.cel)
        except native.PolicyExprError as exc:
            where = self.document.locate(path) if path is not None else self.where()
            raise InvalidConfig(_expr_message(exc, "interpolation"), where) from None
        self.scope.references.update(template.references)
        return template

    def expression(
        self,
        key: str,
        *,
        required: bool = False,
        condition: bool = False,
        variables: Mapping[str, Any] | None = None,
    ) -> native.Program | None:
        """A CEL program. With `condition`, its static type must be `bool`
        (or `dyn`); `variables` declares roots beyond the phase's, which the
        action provides itself when it evaluates the program."""
        used, raw = self._get(key, (), required)
        if raw is _MISSING:
            return None
        path = (*self.path, used)
        text = self._as_text(used, raw)
        if variables is None and not condition:
            return self.compile_expression(path, text)
        try:
            program = compile_expression(text, self.scope.phase, self.scope.options.cel, variables)
        except native.PolicyExprError as exc:
            raise InvalidConfig(
                _expr_message(exc, "expression"), self.document.locate(path)
            ) from None
        if condition and (wrong := condition_type_error(program)) is not None:
            raise InvalidConfig(f"expression {text!r} {wrong}", self.document.locate(path))
        own = variables or {}
        self.scope.references.update(r for r in program.references if r.split(".")[0] not in own)
        return program

    def expression_list(
        self, key: str, *, required: bool = False, min_items: int = 0, max_items: int | None = None
    ) -> list[native.Program] | None:
        """A list of CEL programs (rate-limit's `bucket_key`)."""
        items = self.items(key, required=required, min_items=min_items, max_items=max_items)
        if items is None:
            return None
        return [self.compile_expression(path, self._sub_text(path, item)) for path, item in items]

    def compile_expression(self, path: PathKey, text: str) -> native.Program:
        try:
            program = compile_expression(text, self.scope.phase, self.scope.options.cel)
        except native.PolicyExprError as exc:
            raise InvalidConfig(
                _expr_message(exc, "expression"), self.document.locate(path)
            ) from None
        self.scope.references.update(program.references)
        return program


def _expr_message(exc: native.PolicyExprError, what: str) -> str:
    return f"{what} {exc.source!r}: {exc.message} (line {exc.line}, column {exc.column})"
