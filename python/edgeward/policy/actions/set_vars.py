"""`set-vars`: set `vars.<name>` for the rest of the phase. Entries are set
in order, so a later one may read an earlier one."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Self

from edgeward.document import describe
from edgeward.policy.actions.base import (
    Action,
    ActionContext,
    CompileScope,
    ConfigReader,
    Decision,
    Phase,
)
from edgeward.policy.config import InvalidConfig
from edgeward.policy.values import Evaluator, compile_value


class SetVars(Action):
    type = "set-vars"
    phases = frozenset(Phase)

    def __init__(self, entries: list[tuple[str, Evaluator]]) -> None:
        self.entries = tuple(entries)

    @classmethod
    def from_config(cls, config: ConfigReader, scope: CompileScope) -> Self:
        if isinstance(config.value("vars"), Mapping):
            # `vars: {a: 1, b: 2}` (seen in public examples): in key order.
            config.warn("vars", "vars should be a list of one-name mappings; read in order")
            mapping = config.value("vars")
            items = [((*config.path, "vars", k), {k: v}) for k, v in mapping.items()]
        else:
            items = config.items("vars", required=True, min_items=1) or []
        entries = []
        for path, item in items:
            if not isinstance(item, Mapping) or len(item) != 1:
                shape = f"{len(item)} names" if isinstance(item, Mapping) else describe(item)
                raise InvalidConfig(
                    f"each entry of vars maps one name to its value, not {shape}",
                    config.locate(path),
                )
            ((name, raw),) = item.items()
            if not isinstance(name, str) or not name.isidentifier():
                raise InvalidConfig(f"{name!r} is not a valid variable name", config.locate(path))
            entries.append((name, compile_value(config, (*path, name), raw)))
        return cls(entries)

    def apply(self, ctx: ActionContext) -> Decision | None:
        for name, value in self.entries:
            ctx.set_var(name, value(ctx))
        return None
