"""The edge configuration: one YAML (or JSON) file of listeners, endpoints,
limits, timeouts, access log and named IP policies, validated strictly.

    config = load_config("edge.yml", policy_factory)

Errors are `edgeward.errors.ConfigError` naming file, line and key.
"""

from edgeward.config.load import load_config
from edgeward.config.model import (
    AccessLog,
    AdminListener,
    AgentIngress,
    AgentTcp,
    ApiListener,
    Certificate,
    EdgeConfig,
    Endpoint,
    ForwardedTrust,
    IdentityConfig,
    IpPolicy,
    Limits,
    Listener,
    ListenerTls,
    PolicyFactory,
    PolicySource,
    Timeouts,
    Upstream,
    is_internal,
)
from edgeward.document import Document, load_document, parse_document

__all__ = [
    "AccessLog",
    "AdminListener",
    "AgentIngress",
    "AgentTcp",
    "ApiListener",
    "Certificate",
    "Document",
    "EdgeConfig",
    "Endpoint",
    "ForwardedTrust",
    "IdentityConfig",
    "IpPolicy",
    "Limits",
    "Listener",
    "ListenerTls",
    "PolicyFactory",
    "PolicySource",
    "Timeouts",
    "Upstream",
    "is_internal",
    "load_config",
    "load_document",
    "parse_document",
]
