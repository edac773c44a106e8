"""From a parsed document to compiled rules, with every problem located.

The loader walks the document (phases -> rules -> actions), normalises the
lenient shapes the public docs use (a single rule or action where a list
belongs), compiles every CEL expression and every action's config, and
collects all errors and warnings as `Diagnostic`s instead of stopping at the
first one, so `policy check` can list them all.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any, Literal

from edgeward import native
from edgeward.document import PathKey, SourceDocument, describe, did_you_mean
from edgeward.policy.actions import ACTIONS, ALIASES, UNSUPPORTED
from edgeward.policy.actions.base import Action
from edgeward.policy.config import (
    CompileScope,
    ConfigReader,
    EngineOptions,
    InvalidConfig,
    IpPolicyRules,
)
from edgeward.policy.errors import Diagnostic, Severity
from edgeward.policy.expressions import (
    Envs,
    compile_chain,
    compile_expression,
    condition_type_error,
)
from edgeward.policy.model import Phase

_RULE_KEYS = frozenset({"name", "expressions", "actions", "on_error"})
_ACTION_KEYS = frozenset({"type", "config"})
_LEGACY_PHASES = {"inbound": Phase.HTTP_REQUEST, "outbound": Phase.HTTP_RESPONSE}


@dataclass(frozen=True, slots=True)
class Step:
    """One action of a rule, ready to run."""

    action: Action
    type: str
    needs_effects: bool


@dataclass(frozen=True, slots=True)
class Rule:
    phase: Phase
    index: int
    name: str | None
    condition: native.Program | None  # all expressions joined with &&; None = always
    steps: tuple[Step, ...]
    continue_on_error: bool
    label: str  # the name, else "on_http_request[2]": what events call the rule
    # When this rule starts a run of rules whose expressions read only the
    # traffic: one program giving the index of the run's first match, or
    # `chain_end` for none (see engine.run_phase).
    chain: native.Program | None = None
    chain_end: int = 0

    @property
    def needs_effects(self) -> bool:
        return any(step.needs_effects for step in self.steps)


@dataclass(frozen=True, slots=True)
class LoadedPolicy:
    rules: Mapping[Phase, tuple[Rule, ...]]
    diagnostics: tuple[Diagnostic, ...]
    # The variable paths each phase's programs and templates read
    # (`req.url.path`): what its activation must hold.
    references: Mapping[Phase, frozenset[str]]

    @property
    def errors(self) -> tuple[Diagnostic, ...]:
        return tuple(d for d in self.diagnostics if d.severity is Severity.ERROR)

    @property
    def warnings(self) -> tuple[Diagnostic, ...]:
        return tuple(d for d in self.diagnostics if d.severity is Severity.WARNING)


def load(
    document: SourceDocument,
    *,
    ip_policies: Mapping[str, IpPolicyRules] | None = None,
    options: EngineOptions | None = None,
) -> LoadedPolicy:
    """Compile `document`; problems are in `diagnostics` (no exception)."""
    return _Loader(document, ip_policies, options or EngineOptions()).load()


class _Loader:
    def __init__(
        self,
        document: SourceDocument,
        ip_policies: Mapping[str, IpPolicyRules] | None,
        options: EngineOptions,
    ) -> None:
        self.doc = document
        self.ip_policies = ip_policies
        self.options = options
        self.diagnostics: list[Diagnostic] = []
        self.references: dict[Phase, set[str]] = {phase: set() for phase in Phase}

    def report(self, diagnostic: Diagnostic) -> None:
        self.diagnostics.append(diagnostic)

    def error(
        self, path: PathKey, message: str, rule: str | None = None, action: str | None = None
    ) -> None:
        self.report(Diagnostic(Severity.ERROR, message, self.doc.locate(path), rule, action))

    def warn(self, path: PathKey, message: str, rule: str | None = None) -> None:
        self.report(Diagnostic(Severity.WARNING, message, self.doc.locate(path), rule))

    def load(self) -> LoadedPolicy:
        data = self.doc.data
        rules: dict[Phase, list[Rule]] = {phase: [] for phase in Phase}
        if data is None:
            data = {}
        if not isinstance(data, Mapping):
            self.error((), f"a traffic policy must be a mapping of phases, not {describe(data)}")
            data = {}
        for key, value in data.items():
            phase = self._phase(key)
            if phase is not None:
                rules[phase].extend(self._rules(phase, key, value))
        return LoadedPolicy(
            {phase: chained(phase, found, self.options.cel) for phase, found in rules.items()},
            tuple(self.diagnostics),
            {phase: frozenset(refs) for phase, refs in self.references.items()},
        )

    def _phase(self, key: str) -> Phase | None:
        try:
            return Phase(key)
        except ValueError:
            pass
        if key in _LEGACY_PHASES:
            phase = _LEGACY_PHASES[key]
            self.warn((key,), f"{key!r} is the legacy name of {phase.value!r}; rename it")
            return phase
        names = [p.value for p in Phase]
        hint = did_you_mean(key, names)
        self.error((key,), f"unknown phase {key!r}{hint} (phases are {', '.join(names)})")
        return None

    def _as_list(
        self, path: PathKey, value: Any, what: str, rule: str | None = None
    ) -> list[tuple[PathKey, Any]]:
        """Items of a list field; a single mapping is one item (with a
        warning: some public examples write it so)."""
        if value is None:
            return []
        if isinstance(value, Mapping):
            self.warn(
                path, f"{what} should be a list; a single mapping was read as a list of one", rule
            )
            return [(path, value)]
        if isinstance(value, str) and what == "expressions":
            self.warn(
                path,
                "expressions should be a list; a single string was read as a list of one",
                rule,
            )
            return [(path, value)]
        if not isinstance(value, list):
            self.error(path, f"{what} must be a list, not {describe(value)}", rule)
            return []
        return [((*path, i), item) for i, item in enumerate(value)]

    def _rules(self, phase: Phase, key: str, value: Any) -> list[Rule]:
        out = []
        for index, (path, raw) in enumerate(self._as_list((key,), value, f"{key}")):
            rule = self._rule(phase, index, path, raw)
            if rule is not None:
                out.append(rule)
        return out

    def _rule(self, phase: Phase, index: int, path: PathKey, raw: Any) -> Rule | None:
        label = f"{phase.value}[{index}]"
        if not isinstance(raw, Mapping):
            self.error(
                path,
                f"a rule must be a mapping (name, expressions, actions), not {describe(raw)}",
                label,
            )
            return None
        name = raw.get("name")
        if name is not None:
            name = str(name)
            label = f"{label} {name!r}"
        ok = True
        for k in raw:
            if k not in _RULE_KEYS:
                hint = (
                    " (an action? put it in the rule's 'actions' list)"
                    if k in _ACTION_KEYS
                    else did_you_mean(k, _RULE_KEYS)
                )
                self.error((*path, k), f"unknown rule field {k!r}{hint}", label)
                ok = False
        on_error = raw.get("on_error", "halt")
        if on_error not in ("halt", "continue"):
            self.error(
                (*path, "on_error"),
                f"on_error must be 'halt' or 'continue', not {on_error!r}",
                label,
            )
            ok = False
        condition = self._condition(phase, (*path, "expressions"), raw.get("expressions"), label)
        if condition is False:
            ok = False
        if raw.get("actions") is None:
            self.error(path, "a rule needs at least one action", label)
            return None
        steps = self._steps(phase, (*path, "actions"), raw["actions"], label)
        if steps is None or not ok:
            return None
        return Rule(
            phase=phase,
            index=index,
            name=name,
            condition=condition if condition is not False else None,
            steps=steps,
            continue_on_error=on_error == "continue",
            label=name or f"{phase.value}[{index}]",
        )

    def _condition(
        self, phase: Phase, path: PathKey, value: Any, label: str
    ) -> native.Program | Literal[False] | None:
        """The rule's expressions as one program; False after an error."""
        sources = []
        ok = True
        for item_path, item in self._as_list(path, value, "expressions", label):
            if not isinstance(item, str):
                self.error(
                    item_path, f"an expression must be a string, not {describe(item)}", label
                )
                ok = False
                continue
            try:
                program = compile_expression(item, phase, self.options.cel)
            except native.PolicyExprError as exc:
                self.error(
                    item_path,
                    f"expression {item!r}: {exc.message} (line {exc.line}, column {exc.column})",
                    label,
                )
                ok = False
                continue
            wrong_type = condition_type_error(program)
            if wrong_type is not None:
                self.error(item_path, f"expression {item!r} {wrong_type} (line 1, column 1)", label)
                ok = False
                continue
            sources.append(item)
        if not ok:
            return False
        if not sources:
            return None
        # The public format defines a rule's expressions as joined with &&.
        source = sources[0] if len(sources) == 1 else " && ".join(f"({s})" for s in sources)
        program = compile_expression(source, phase, self.options.cel)
        self.references[phase].update(program.references)
        return program

    def _steps(
        self, phase: Phase, path: PathKey, value: Any, label: str
    ) -> tuple[Step, ...] | None:
        items = self._as_list(path, value, "actions", label)
        if not items:
            self.error(path, "a rule needs at least one action", label)
            return None
        steps: list[Step] = []
        ok = True
        after_terminating: str | None = None
        for i, (item_path, raw) in enumerate(items):
            step = self._step(phase, item_path, raw, label, i)
            if step is None:
                ok = False
                continue
            if after_terminating is not None:
                self.error(
                    item_path,
                    f"action {step.type!r} is unreachable: {after_terminating!r} before it"
                    " always ends the phase",
                    label,
                    f"actions[{i}] {step.type}",
                )
                ok = False
            if step.action.always_ends_phase():
                after_terminating = step.type
            steps.append(step)
        return tuple(steps) if ok else None

    def _step(self, phase: Phase, path: PathKey, raw: Any, label: str, i: int) -> Step | None:
        if not isinstance(raw, Mapping):
            self.error(
                path,
                f"an action must be a mapping with 'type' and 'config', not {describe(raw)}",
                label,
            )
            return None
        type_name = raw.get("type")
        where = f"actions[{i}] {type_name}" if isinstance(type_name, str) else f"actions[{i}]"
        for k in raw:
            if k == "name":  # some public examples label actions; nothing reads it
                self.report(
                    Diagnostic(
                        Severity.WARNING,
                        "actions have no 'name' (rules do); it is ignored",
                        self.doc.locate((*path, k)),
                        label,
                        where,
                    )
                )
            elif k not in _ACTION_KEYS:
                self.error(
                    (*path, k),
                    f"unknown action field {k!r}{did_you_mean(k, _ACTION_KEYS)}"
                    " (an action has 'type' and 'config')",
                    label,
                    where,
                )
                return None
        if not isinstance(type_name, str):
            self.error(path, "an action needs a 'type'", label, where)
            return None
        cls = self._action_class(path, type_name, label, where)
        if cls is None:
            return None
        if phase not in cls.phases:
            allowed = ", ".join(p.value for p in Phase if p in cls.phases)
            self.error(
                (*path, "type"),
                f"action {type_name!r} cannot run in {phase.value} (only in {allowed})",
                label,
                where,
            )
            return None
        config = raw.get("config")
        if config is None:
            config = {}
        if not isinstance(config, Mapping):
            self.error(
                (*path, "config"), f"config must be a mapping, not {describe(config)}", label, where
            )
            return None
        reader = ConfigReader(
            config,
            (*path, "config"),
            self.doc,
            CompileScope(phase, self.ip_policies, self.options, self.references[phase]),
            self.report,
            rule=label,
            action=where,
        )
        try:
            action = cls.from_config(reader, reader.scope)
            reader.finish_all()
        except InvalidConfig as exc:
            self.report(Diagnostic(Severity.ERROR, exc.message, exc.location, label, where))
            return None
        return Step(action, cls.type, cls.needs_effects())

    def _action_class(
        self, path: PathKey, type_name: str, label: str, where: str
    ) -> type[Action] | None:
        canonical = ALIASES.get(type_name)
        if canonical is not None:
            self.report(
                Diagnostic(
                    Severity.WARNING,
                    f"action type {type_name!r} is another name of {canonical!r}; use that",
                    self.doc.locate((*path, "type")),
                    label,
                    where,
                )
            )
            type_name = canonical
        cls = ACTIONS.get(type_name)
        if cls is not None:
            return cls
        reason = UNSUPPORTED.get(type_name)
        message = (
            f"action type {type_name!r} is {reason}"
            if reason
            else f"unknown action type {type_name!r}{did_you_mean(type_name, ACTIONS)}"
        )
        self.error((*path, "type"), message, label, where)
        return None


# --- chains of traffic-only rules ---------------------------------------------------

_STATEFUL = frozenset({"actions", "vars"})  # what actions change within a phase
_MAX_CHAIN = 32


def _traffic_only(rule: Rule) -> bool:
    condition = rule.condition
    return condition is not None and not any(
        ref.split(".", 1)[0] in _STATEFUL for ref in condition.references
    )


def chained(phase: Phase, rules: list[Rule], envs: Envs | None = None) -> tuple[Rule, ...]:
    """`rules` with `chain` set on each rule that starts a run of at least
    two traffic-only rules (the run is then tested by one program)."""
    out = list(rules)
    i = 0
    while i < len(out):
        end = i
        while end < len(out) and end - i < _MAX_CHAIN and _traffic_only(out[end]):
            end += 1
        for start in range(i, end - 1):
            program = _chain_program(phase, out, start, end, envs)
            if program is not None:
                out[start] = replace(out[start], chain=program, chain_end=end)
        i = max(end, i + 1)
    return tuple(out)


def _chain_program(
    phase: Phase, rules: list[Rule], start: int, end: int, envs: Envs | None
) -> native.Program | None:
    source = str(end)
    for index in range(end - 1, start - 1, -1):
        condition = rules[index].condition
        assert condition is not None
        source = f"({condition.source}) ? {index} : ({source})"
    try:
        return compile_chain(source, phase, envs)
    except native.PolicyExprError:  # over a limit: the rules run one by one
        return None
