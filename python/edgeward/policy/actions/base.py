"""The interface every Traffic Policy action implements.

An action class is compiled once per occurrence in a policy
(`from_config`) and then runs for every request that reaches it (`apply`,
or `run` when it needs I/O). See docs/policy.md, "The action interface".
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Generator, Iterable
from dataclasses import dataclass
from typing import ClassVar, Self

from edgeward.hooks import Effect, EffectResult, ForwardInternal, Header, LocalResponse
from edgeward.policy.config import CompileScope, ConfigReader
from edgeward.policy.context import ActionContext
from edgeward.policy.errors import ActionError, ErrorCode
from edgeward.policy.model import Phase

__all__ = [
    "Action",
    "ActionContext",
    "ActionError",
    "CompileScope",
    "ConfigReader",
    "Decision",
    "ErrorCode",
    "Phase",
]


@dataclass(frozen=True, slots=True)
class Decision:
    """An action's verdict that ends the phase: answer the client with
    `response`, hand the request to an internal endpoint (`forward`), or
    close the connection when both are None. `verdict` and `reason` go to
    the event log (never a secret in `reason`)."""

    verdict: str  # deny, respond, redirect, close, forward, ...
    reason: str
    response: LocalResponse | None = None
    forward: ForwardInternal | None = None  # forward-internal (on_http_request)

    @classmethod
    def respond(
        cls,
        status: int,
        *,
        headers: Iterable[Header] = (),
        body: bytes = b"",
        error_code: str | None = None,
        verdict: str = "deny",
        reason: str = "",
    ) -> Decision:
        response = LocalResponse(status, list(headers), body, error_code)
        return cls(verdict, reason, response)

    @classmethod
    def close(cls, reason: str, *, verdict: str = "close") -> Decision:
        return cls(verdict, reason, None)


class Action(ABC):
    """One compiled action of a policy. Instances are shared by all requests:
    per-request data belongs on the `ActionContext`."""

    type: ClassVar[str]
    """The `type` that selects this action in a document."""

    phases: ClassVar[frozenset[Phase]]
    """The phases the action may appear in; elsewhere it is a load error."""

    terminating: ClassVar[bool] = False
    """True when the action always ends the phase (deny, custom-response):
    actions after it in the same rule are unreachable, a load error."""

    def always_ends_phase(self) -> bool:
        """Whether this occurrence always ends the phase (actions after it
        in its rule are then unreachable, a load error). `terminating`,
        unless the action's config says otherwise (forward-internal with
        `on_error: continue`)."""
        return self.terminating

    result_key: ClassVar[str | None] = None
    """The key of its results under `actions.ngrok`; None: the type with `_`."""

    @classmethod
    def results_name(cls) -> str:
        return cls.result_key or cls.type.replace("-", "_")

    @classmethod
    @abstractmethod
    def from_config(cls, config: ConfigReader, scope: CompileScope) -> Self:
        """Read and check the `config` block (raise via `config.fail`)."""

    def run(self, ctx: ActionContext) -> Generator[Effect, EffectResult, Decision | None]:
        """Run for one request: yield effects (`ctx.read_body()`,
        `ctx.fetch()`), return a `Decision` to end the phase or None to go
        on. The default runs `apply`."""
        return self.apply(ctx)
        yield  # type: ignore[unreachable]  # makes this a generator; never reached

    def apply(self, ctx: ActionContext) -> Decision | None:
        """Run for one request, without I/O."""
        raise NotImplementedError(f"{type(self).__name__} implements neither run nor apply")

    @classmethod
    def needs_effects(cls) -> bool:
        """Whether `run` is overridden (the engine calls `apply` directly
        otherwise, saving a generator per action)."""
        return cls.run is not Action.run
