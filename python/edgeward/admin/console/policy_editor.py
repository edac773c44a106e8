"""The console's policy editor: `edgeward policy check` and `policy test`
on pasted text, through the same code (`compile_policy`, `policy.cli`'s
`run_cases`, `summary` and `print_case`), with each diagnostic placed on
its line and column of the text. Offline: nothing reaches the edge."""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from typing import Any

from edgeward.document import parse_document
from edgeward.errors import ConfigError, Location
from edgeward.policy import compile_policy
from edgeward.policy.cli import print_case, run_cases, summary
from edgeward.policy.errors import PolicyError, Severity

POLICY_FILE = "policy"  # the name diagnostics give the pasted text
CASES_FILE = "cases"
API_FILE = "traffic_policy"  # the name the API's diagnostics give an endpoint's policy


@dataclass(frozen=True, slots=True)
class Shown:
    """A diagnostic as the page shows it."""

    severity: str
    message: str
    where: str  # "policy:3:7: on_http_request[0].actions[0].type"
    line: int | None
    column: int | None


@dataclass(slots=True)
class Line:
    text: str
    diagnostics: list[Shown] = field(default_factory=list)


@dataclass(slots=True)
class Checked:
    ok: bool
    summary: str
    diagnostics: list[Shown]
    lines: list[Line]

    @property
    def errors(self) -> int:
        return sum(d.severity == Severity.ERROR for d in self.diagnostics)


@dataclass(frozen=True, slots=True)
class CaseResult:
    name: str
    passed: bool
    text: str  # what `edgeward policy test` prints for it


@dataclass(slots=True)
class Tested:
    error: str = ""  # a document that does not load (located)
    cases: list[CaseResult] = field(default_factory=list)

    @property
    def passed(self) -> int:
        return sum(c.passed for c in self.cases)

    @property
    def failed(self) -> int:
        return len(self.cases) - self.passed


def _shown(severity: str, message: str, location: object, context: str = "") -> Shown:
    line = getattr(location, "line", None)
    column = getattr(location, "column", None)
    where = str(location) if location is not None else POLICY_FILE
    return Shown(severity, message + context, where, line, column)


def check(text: str) -> Checked:
    """`policy check` on `text`."""
    diagnostics: list[Shown] = []
    result = ""
    try:
        policy = compile_policy(parse_document(text, POLICY_FILE))
    except PolicyError as exc:
        for d in exc.diagnostics:
            where = " ".join(part for part in (d.rule, d.action) if part)
            context = f" ({where})" if where else ""
            diagnostics.append(_shown(d.severity.value, d.message, d.location, context))
    except ConfigError as exc:
        diagnostics.append(_shown("error", exc.message, exc.location))
    else:
        diagnostics += [_shown(w.severity.value, w.message, w.location) for w in policy.warnings]
        result = summary(policy)
    return _placed(text, diagnostics, result)


def located(text: str, diagnostics: list[dict[str, Any]]) -> Checked:
    """The API's diagnostics of `text` (`details.diagnostics` of a refused
    endpoint, as `endpoints_api` words them) placed as `check` places its
    own, so a page shows them the same way."""
    shown = [
        Shown(
            str(d.get("severity", "error")),
            str(d.get("message", "")),
            str(Location(API_FILE, d.get("line"), d.get("column"), d.get("path"))),
            d.get("line"),
            d.get("column"),
        )
        for d in diagnostics
    ]
    return _placed(text, shown, "")


def _placed(text: str, diagnostics: list[Shown], result: str) -> Checked:
    # A browser posts a textarea with CRLF; the last line may be the empty one
    # after a final newline (where an unclosed bracket's error is found).
    lines = [Line(t.rstrip("\r")) for t in text.split("\n")]
    for placed in diagnostics:
        if placed.line is not None:
            lines[min(max(placed.line, 1), len(lines)) - 1].diagnostics.append(placed)
    ok = not any(placed.severity == Severity.ERROR for placed in diagnostics)
    return Checked(ok, result, diagnostics, lines)


def run_tests(policy_text: str, cases_text: str) -> Tested:
    """`policy test` of `cases_text` through `policy_text`."""
    try:
        results = run_cases(
            parse_document(policy_text, POLICY_FILE), parse_document(cases_text, CASES_FILE)
        )
    except ConfigError as exc:
        return Tested(error=str(exc))
    out = Tested()
    for case, outcome in results:
        printed = io.StringIO()
        print_case(case.name, outcome, printed)
        out.cases.append(CaseResult(case.name, outcome.passed, printed.getvalue().rstrip()))
    return out


__all__ = ["CaseResult", "Checked", "Tested", "check", "located", "run_tests"]
