"""`deny`: refuse the request (403 by default, no body) or, in
`on_tcp_connect`, close the connection."""

from __future__ import annotations

from typing import Self

from edgeward.policy.actions.base import (
    Action,
    ActionContext,
    CompileScope,
    ConfigReader,
    Decision,
    Phase,
)


class Deny(Action):
    type = "deny"
    phases = frozenset({Phase.TCP_CONNECT, Phase.HTTP_REQUEST})
    terminating = True

    def __init__(self, status: int | None) -> None:
        self.status = status  # None: close the connection

    @classmethod
    def from_config(cls, config: ConfigReader, scope: CompileScope) -> Self:
        if scope.phase is Phase.TCP_CONNECT:
            return cls(None)
        return cls(config.integer("status_code", default=403, minimum=100, maximum=599))

    def apply(self, ctx: ActionContext) -> Decision:
        return self.decision()

    def decision(self) -> Decision:
        """The refusal (it reads nothing of the request)."""
        if self.status is None:
            return Decision.close("denied by policy", verdict="deny")
        return Decision.respond(self.status, verdict="deny", reason="denied by policy")
