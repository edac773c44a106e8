"""Authtokens: the credentials agents present, and the `bind:` ACLs that
decide what each may bind (traffic-policy-reference.md §6).

- `tokens`: the token format (`ewt_<id>_<secret>`), generation, keyed hashing;
- `acl`: the rule grammar, compiled `Acl`, bind targets, `Decision`;
- `snapshot`: the immutable in-memory view the edge authenticates against;
- `manage`: create, list, revoke in the state store;
- `cli`: `edgeward authtoken create|list|revoke`.

`tokens` and `acl` are pure and are what this package exports; `snapshot`
and `manage` use `edgeward.store` (SQLAlchemy): import them by path, so that
`edgeward serve` does not load a database library it does not use yet. No
trio anywhere (tests/test_architecture.py).
"""

from edgeward.authtokens.acl import (
    Acl,
    AclError,
    AclProblem,
    AclRule,
    AddressBind,
    BindTarget,
    BindTargetError,
    Decision,
    HostBind,
    LabelBind,
)
from edgeward.authtokens.tokens import Token, TokenError, TokenHasher

__all__ = [
    "Acl",
    "AclError",
    "AclProblem",
    "AclRule",
    "AddressBind",
    "BindTarget",
    "BindTargetError",
    "Decision",
    "HostBind",
    "LabelBind",
    "Token",
    "TokenError",
    "TokenHasher",
]
