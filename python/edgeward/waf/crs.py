"""The OWASP Core Rule Set on ModSecurity v3, as the CRS actions run it.

    crs = CoreRuleSet.load("/usr/share/modsecurity-crs")   # once per process and directory
    verdict = crs.inspect_request(RequestInput(...), exclude=frozenset({942100}))

The rules are the installed CRS's own files, read at load time (nothing is
copied into edgeward). The setup is the reference's: the engine settings of
`modsecurity.conf-recommended` that matter here, `crs-setup.conf.example`'s
active directives, paranoia level 1, anomaly scoring with the inbound
threshold 5 and the outbound threshold 4. Two compiled sets: the request set
(every `REQUEST-*.conf`) and the response set (the initialisation file and
every `RESPONSE-*.conf`), so that inspecting a response never re-runs the
request's rules. Exclusions (`SecRuleRemoveById`) make a variant of a set
that shares its compiled rules (`msc_rules_merge`), cached by exclusion set.

Decisions come from the engine: the CRS's blocking-evaluation rule (949110 /
959100) interrupts the transaction when the score reaches the threshold. The
score itself is read by one rule of ours in the logging phase, which runs
whether or not the transaction was interrupted.
"""

from __future__ import annotations

import dataclasses
import os
import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

from edgeward.waf.modsecurity import (
    INSTALL_HINT,
    ModSecurityError,
    RulesSet,
    Transaction,
    library,
)

DEFAULT_RULES_DIR = "/usr/share/modsecurity-crs"
PARANOIA_LEVEL = 1
INBOUND_THRESHOLD = 5
OUTBOUND_THRESHOLD = 4
BODY_PREFIX = 4096  # `process_body` inspects this much of a body

_SCORE_RULE = 99101  # ours: the local-use id range (1-99,999), outside the CRS's
_SEVERITIES = ("emergency", "alert", "critical", "error", "warning", "notice", "info", "debug")

# The engine settings of modsecurity.conf-recommended that the actions need
# (no audit log, no temporary files, bounded PCRE work against ReDoS), and
# the JSON/XML body processors, so `process_body` sees JSON fields as ARGS.
_ENGINE = r"""
SecRuleEngine On
SecRequestBodyAccess On
SecResponseBodyAccess On
SecResponseBodyMimeType text/plain text/html text/xml
SecRequestBodyLimit 13107200
SecRequestBodyNoFilesLimit 131072
SecRequestBodyLimitAction ProcessPartial
SecResponseBodyLimit 524288
SecResponseBodyLimitAction ProcessPartial
SecPcreMatchLimit 1000
SecPcreMatchLimitRecursion 1000
SecArgumentSeparator &
SecCookieFormat 0
SecAuditEngine Off
SecStatusEngine Off
SecRule REQUEST_HEADERS:Content-Type "^(?:application(?:/soap\+|/)|text/)xml" \
  "id:200000,phase:1,t:none,t:lowercase,pass,nolog,ctl:requestBodyProcessor=XML"
SecRule REQUEST_HEADERS:Content-Type "^application/json" \
  "id:200001,phase:1,t:none,t:lowercase,pass,nolog,ctl:requestBodyProcessor=JSON"
"""

# crs-setup.conf.example's active directives, with the level and thresholds
# the reference names (the CRS's own defaults, written out so that they hold).
_SETUP = """
SecDefaultAction "phase:1,log,auditlog,pass"
SecDefaultAction "phase:2,log,auditlog,pass"
SecAction "id:900000,phase:1,pass,t:none,nolog,\
setvar:tx.paranoia_level={pl},setvar:tx.blocking_paranoia_level={pl}"
SecAction "id:900110,phase:1,pass,t:none,nolog,\
setvar:tx.inbound_anomaly_score_threshold={inbound},\
setvar:tx.outbound_anomaly_score_threshold={outbound}"
SecAction "id:900990,phase:1,pass,t:none,nolog,setvar:tx.crs_setup_version={version}"
"""

# Reads the scores (CRS 3: anomaly_score / outbound_anomaly_score; CRS 4:
# blocking_inbound / blocking_outbound_anomaly_score) after every phase.
_SCORE = (
    "SecAction \"id:{id},phase:5,pass,log,msg:'edgeward anomaly scores',"
    "logdata:'%{{tx.anomaly_score}}|%{{tx.blocking_inbound_anomaly_score}}|"
    "%{{tx.outbound_anomaly_score}}|%{{tx.blocking_outbound_anomaly_score}}'\""
)

# A body that does not parse (JSON, XML, multipart) blocks the request when
# the whole body was inspected (coraza.conf-recommended's rule 200002); the
# 4 KiB prefix of a longer body never parses, so it is not held against it.
_STRICT_BODY = (
    'SecRule REQBODY_ERROR "!@eq 0" "id:200002,phase:2,t:none,log,deny,status:400,'
    "msg:'Failed to parse request body.',logdata:'%{reqbody_error_msg}',severity:2\""
)

# A rule message's own fields, in the engine's order; `data` is escaped by
# the engine (no raw quote), `msg` comes from the rule.
_FIELDS = re.compile(
    r'\[file "(?P<file>[^"]*)"\] \[line "(?P<line>\d+)"\] \[id "(?P<id>\d+)"\] \[rev "[^"]*"\]'
    r' \[msg "(?P<msg>(?:[^"]|"(?!\] \[data "))*)"\] \[data "(?P<data>[^"]*)"\]'
    r' \[severity "(?P<severity>\d*)"\]'
)
_RULE_ID = re.compile(r"\bid:'?(\d+)")
_TEXT_RULES = "<<reference missing or not informed>>"  # rules added as text (ours)
_OWN_RULES = frozenset({200002})
_SCORE_PREFIX = (
    f'ModSecurity: Warning.  [file "{_TEXT_RULES}"] [line "1"] [id "{_SCORE_RULE}"] [rev ""]'
    ' [msg "edgeward anomaly scores"] [data "'
)
_VERSION = re.compile(r"ver:'OWASP_CRS/(\d+)\.(\d+)\.(\d+)'")


class CrsError(ModSecurityError):
    """The rule set cannot be loaded (missing files, rules the engine refuses)."""


@dataclass(frozen=True, slots=True)
class RequestInput:
    """What the request check sees: the head as received, and the body
    prefix when `process_body`."""

    method: bytes
    target: bytes
    http_version: bytes  # b"1.1", b"2"
    headers: Sequence[tuple[bytes, bytes]]
    client_ip: str
    client_port: int
    server_ip: str
    server_port: int
    body: bytes = b""
    body_complete: bool = False  # the whole body is in `body`


@dataclass(frozen=True, slots=True)
class ResponseInput:
    request: RequestInput  # its head only: the response rules read request data too
    status: int
    headers: Sequence[tuple[bytes, bytes]]
    body: bytes = b""


@dataclass(frozen=True, slots=True)
class MatchedRule:
    id: int
    message: str
    severity: str  # critical, error, warning, notice, ...
    data: str  # the engine's matched data: it quotes the request

    def as_variable(self) -> dict[str, object]:
        return {
            "id": self.id,
            "message": self.message,
            "severity": self.severity,
            "data": self.data,
        }


@dataclass(frozen=True, slots=True)
class Verdict:
    blocked: bool
    anomaly_score: int
    threshold: int
    matched_rules: tuple[MatchedRule, ...] = field(default=())
    status: int = 0  # the engine's status when blocked (403, or 400 for an unparsable body)


class CoreRuleSet:
    """The CRS of one directory, compiled once; shared by every policy and
    thread (transactions are per call)."""

    _cache: ClassVar[dict[tuple[str, tuple[tuple[str, int, int], ...]], CoreRuleSet]] = {}
    _cache_lock: ClassVar[threading.Lock] = threading.Lock()

    def __init__(self, rules_dir: Path, files: Sequence[Path]) -> None:
        self.rules_dir = rules_dir
        self.version = _crs_version(files)
        library()  # the library's own error first: it names what to install
        setup = _ENGINE + _SETUP.format(
            pl=PARANOIA_LEVEL,
            inbound=INBOUND_THRESHOLD,
            outbound=OUTBOUND_THRESHOLD,
            version="".join(self.version.split(".")) or "330",
        )
        score = _SCORE.format(id=_SCORE_RULE)
        names = [f.name for f in files]
        request = [f for f in files if f.name.startswith("REQUEST-")]
        response = [f for f in files if f.name.startswith(("REQUEST-901-", "RESPONSE-"))]
        if not any(n.startswith("REQUEST-949") for n in names):
            raise CrsError(
                f"{rules_dir}: no REQUEST-949 blocking evaluation among {len(names)} files"
            )
        self._sets = {
            "request": _compile(setup, request, score),
            "response": _compile(setup, response, score),
        }
        self._index = _RuleIndex(files)
        self._variants: dict[tuple[str, frozenset[int], bool], RulesSet] = {}
        self._lock = threading.Lock()

    @classmethod
    def load(cls, rules_dir: str | os.PathLike[str] = DEFAULT_RULES_DIR) -> CoreRuleSet:
        """The compiled CRS of `rules_dir` (the directory holding `rules/`,
        or `rules/` itself), loaded once per process while its files stay
        the same; `CrsError` / `ModSecurityError` say what is missing."""
        path = Path(rules_dir).resolve()
        files = _rule_files(path)
        key = (str(path), tuple((f.name, *_stamp(f)) for f in files))
        with cls._cache_lock:
            crs = cls._cache.get(key)
            if crs is None:
                crs = cls._cache[key] = cls(path, files)
            return crs

    def _rules(self, kind: str, exclude: frozenset[int], strict_body: bool) -> RulesSet:
        if not exclude and not strict_body:
            return self._sets[kind]
        key = (kind, exclude, strict_body)
        with self._lock:
            rules = self._variants.get(key)
            if rules is None:
                extra = [f"SecRuleRemoveById {i}" for i in sorted(exclude)]
                if strict_body:
                    extra.append(_STRICT_BODY)
                rules = self._variants[key] = self._sets[kind].merged("\n".join(extra))
            return rules

    def inspect_request(
        self, request: RequestInput, exclude: frozenset[int] = frozenset()
    ) -> Verdict:
        """Phases 1-2 of the request set. Blocking: run it off the event loop."""
        strict = request.body_complete and bool(request.body)
        with Transaction(self._rules("request", exclude, strict)) as tx:
            _request_phases(tx, request)
            tx.logging()
            return _verdict(tx, 0, INBOUND_THRESHOLD, self._index)

    def inspect_response(
        self, response: ResponseInput, exclude: frozenset[int] = frozenset()
    ) -> Verdict:
        """Phases 3-4 of the response set (after its request phases, which
        only initialise). Blocking: run it off the event loop."""
        with Transaction(self._rules("response", exclude, False)) as tx:
            head_only = dataclasses.replace(response.request, body=b"", body_complete=False)
            if not _request_phases(tx, head_only):
                version = b"HTTP " + _protocol(response.request.http_version)
                if not tx.response_head(response.status, version, response.headers):
                    tx.response_body(response.body)
            tx.logging()
            return _verdict(tx, 2, OUTBOUND_THRESHOLD, self._index)


def _protocol(version: bytes) -> bytes:
    return b"2.0" if version == b"2" else version


def _request_phases(tx: Transaction, request: RequestInput) -> bool:
    tx.connection(request.client_ip, request.client_port, request.server_ip, request.server_port)
    if tx.request_head(
        request.method, request.target, _protocol(request.http_version), request.headers
    ):
        return True
    return tx.request_body(request.body)


def _verdict(tx: Transaction, score_index: int, threshold: int, index: _RuleIndex) -> Verdict:
    rules: list[MatchedRule] = []
    score = 0
    messages = list(tx.messages)
    interruption = tx.interruption
    if interruption is not None and interruption.log:
        messages.append(interruption.log)
    seen: set[tuple[int, str]] = set()
    for text in messages:
        if text.startswith(_SCORE_PREFIX):  # our rule: its data is ours alone
            parts = text[len(_SCORE_PREFIX) :].split('"', 1)[0].split("|")
            if len(parts) == 4:  # CRS 4's variable when set, else CRS 3's
                value = parts[score_index + 1] or parts[score_index]
                score = int(value) if value.isdigit() else 0
            continue
        for rule in index.find(text):
            if (rule.id, rule.data) not in seen:  # the interruption repeats its rule
                seen.add((rule.id, rule.data))
                rules.append(rule)
    return Verdict(
        blocked=interruption is not None,
        anomaly_score=score,
        threshold=threshold,
        matched_rules=tuple(rules),
        status=interruption.status if interruption is not None else 0,
    )


class _RuleIndex:
    """Where each rule of the loaded files starts (file, line -> id), to
    find a message's own fields. A message quotes the request unescaped
    before them (`Value: ...`) and after them (`[uri ...]`), so a request
    can write text shaped like another rule's fields: only a sequence whose
    file, line and id are those of a loaded rule counts, and every such
    sequence is kept, so a forged one can at most add a real rule to the
    list, never hide the one that matched."""

    def __init__(self, files: Sequence[Path]) -> None:
        self.starts: dict[tuple[str, int], int] = {}
        for f in files:
            start: int | None = None
            text: list[str] = []
            for number, line in enumerate(f.read_text(errors="replace").splitlines(), 1):
                stripped = line.strip()
                if start is None and stripped.startswith(("SecRule", "SecAction")):
                    start, text = number, []
                if start is not None:
                    text.append(stripped)
                    if not stripped.endswith("\\"):
                        found = _RULE_ID.search(" ".join(text))
                        if found:
                            self.starts[(str(f), start)] = int(found.group(1))
                        start = None

    def find(self, text: str) -> list[MatchedRule]:
        found = []
        for match in _FIELDS.finditer(text):
            file, line, rule_id = (
                match.group("file"),
                int(match.group("line")),
                int(match.group("id")),
            )
            if self.starts.get((file, line)) == rule_id or (
                file == _TEXT_RULES and rule_id in _OWN_RULES
            ):
                severity = match.group("severity")
                level = int(severity) if severity.isdigit() else len(_SEVERITIES)
                found.append(
                    MatchedRule(
                        rule_id,
                        match.group("msg"),
                        _SEVERITIES[level] if level < len(_SEVERITIES) else "",
                        match.group("data"),
                    )
                )
        return found


def _rule_files(path: Path) -> list[Path]:
    rules = path / "rules" if (path / "rules").is_dir() else path
    if not rules.is_dir():
        raise CrsError(f"OWASP CRS rules directory {path} not found: {INSTALL_HINT}")
    files = sorted(p for p in rules.glob("*.conf") if p.name.startswith(("REQUEST-", "RESPONSE-")))
    if not files:
        raise CrsError(f"no REQUEST-*.conf / RESPONSE-*.conf rules in {rules}: {INSTALL_HINT}")
    return files


def _stamp(path: Path) -> tuple[int, int]:
    st = path.stat()
    return st.st_mtime_ns, st.st_size


def _crs_version(files: Sequence[Path]) -> str:
    for f in files:
        if f.name.startswith("REQUEST-901-"):
            match = _VERSION.search(f.read_text(errors="replace"))
            if match:
                return ".".join(match.groups())
    return ""


def _compile(setup: str, files: Sequence[Path], score: str) -> RulesSet:
    rules = RulesSet()
    rules.add(setup)
    for f in files:
        try:
            rules.add_file(str(f))
        except ModSecurityError as exc:
            raise CrsError(f"the engine refused {f}: {exc}") from None
    rules.add(score)
    return rules
