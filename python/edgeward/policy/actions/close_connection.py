"""`close-connection`: close the client connection without an answer
(HTTP/2: reset the stream)."""

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


class CloseConnection(Action):
    type = "close-connection"
    phases = frozenset({Phase.TCP_CONNECT, Phase.HTTP_REQUEST})
    terminating = True

    @classmethod
    def from_config(cls, config: ConfigReader, scope: CompileScope) -> Self:
        return cls()

    def apply(self, ctx: ActionContext) -> Decision:
        return Decision.close("closed by policy")
