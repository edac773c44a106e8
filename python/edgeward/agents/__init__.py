"""The edge's side of agents (docs/agents.md): the registry of agent
sessions and the endpoints they publish (`registry`), what a Bind asks for
(`targets`), the SNI of a ClientHello for tls passthrough (`sni`), and the
events a security team reads (`events`). Sans-IO and trio-free: the trio
ingress that drives it is `edgeward.proxy.agent_ingress`; the agent itself
is `edgeward.agent`."""

from edgeward.agents.registry import (
    AgentSession,
    Binding,
    ListenerRoutes,
    Published,
    Registry,
    ServedListener,
    Settings,
)
from edgeward.agents.targets import Target, requested

__all__ = [
    "AgentSession",
    "Binding",
    "ListenerRoutes",
    "Published",
    "Registry",
    "ServedListener",
    "Settings",
    "Target",
    "requested",
]
