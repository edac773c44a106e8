"""`edgeward authtoken create | list | revoke` on the local state store.

Exit codes: 0 done; 1 invalid input (a bad ACL rule, an unknown id, a value
too long, a config or store that cannot be read); 2 usage (argparse's own,
and `create` without any `--acl`).
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edgeward.authtokens.acl import Acl, AclError
from edgeward.errors import EdgewardError

if TYPE_CHECKING:  # imported when a command runs: `edgeward serve` need not load SQLAlchemy
    from edgeward.store import AuthtokenRow, Store

OK, INVALID, USAGE = 0, 1, 2


def register(sub: Any) -> None:
    """Add `authtoken create|list|revoke` to the `edgeward` parser."""
    parser = sub.add_parser("authtoken", help="create, list and revoke agent authtokens")
    commands = parser.add_subparsers(dest="authtoken_command", required=True)

    create = commands.add_parser(
        "create",
        help="create an authtoken and print it (once)",
        description="Create an authtoken. The token is printed once: only its hash is stored.",
    )
    create.add_argument("--description", default="", help="up to 255 bytes")
    create.add_argument(
        "--acl",
        action="append",
        default=[],
        metavar="RULE",
        help="a bind rule, repeatable: '*', bind:HOST, bind:*.SUFFIX, bind:HOST:PORT,"
        " bind:KEY=VALUE (at least one; '*' for an unrestricted token)",
    )
    create.add_argument("--metadata", default="", help="free text, up to 4096 bytes")
    create.add_argument("--json", action="store_true", help="print one JSON object")
    _store_options(create)
    create.set_defaults(run=run_create)

    listing = commands.add_parser("list", help="list authtokens (never their tokens)")
    listing.add_argument("--json", action="store_true", help="print a JSON array")
    _store_options(listing)
    listing.set_defaults(run=run_list)

    revoke = commands.add_parser("revoke", help="revoke an authtoken: its agents are disconnected")
    revoke.add_argument("id", help="the authtoken's id (at_...)")
    _store_options(revoke)
    revoke.set_defaults(run=run_revoke)


def _store_options(parser: argparse.ArgumentParser) -> None:
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--config", "-c", help="edge config whose state_dir to use")
    where.add_argument("--state-dir", type=Path, help="the state directory")


def run_create(args: argparse.Namespace) -> int:
    if not args.acl:
        print(
            "edgeward authtoken create: give at least one --acl rule; an authtoken with no"
            " rules may bind any endpoint, so say so with --acl '*'",
            file=sys.stderr,
        )
        return USAGE
    from edgeward.authtokens import manage

    try:
        acl = Acl.parse(args.acl, source="--acl")
        with _open(args) as store:
            created = manage.create(
                store, acl=acl, description=args.description, metadata=args.metadata
            )
    except EdgewardError as exc:
        return _fail("create", exc)
    row = created.row
    if args.json:
        print(json.dumps({**_json(row), "token": created.token.text}))
        return OK
    print(f"Created authtoken {row.id}" + (f" ({row.description})" if row.description else ""))
    print(f"ACL: {', '.join(row.acl)}")
    print("The token, shown only now (the store keeps a hash of it):")
    print(created.token.text)
    return OK


def run_list(args: argparse.Namespace) -> int:
    from edgeward.authtokens import manage

    try:
        with _open(args) as store:
            rows = manage.list_all(store)
    except EdgewardError as exc:
        return _fail("list", exc)
    if args.json:
        print(json.dumps([_json(row) for row in rows], indent=2))
        return OK
    table = [("ID", "DESCRIPTION", "ACL", "CREATED", "REVOKED")]
    table += [
        (
            row.id,
            row.description,
            ", ".join(row.acl) or "(unrestricted)",
            _time(row.created_at),
            _time(row.revoked_at) if row.revoked_at else "-",
        )
        for row in rows
    ]
    widths = [max(len(line[i]) for line in table) for i in range(len(table[0]))]
    for line in table:
        print(
            "  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip()
        )
    return OK


def run_revoke(args: argparse.Namespace) -> int:
    from edgeward.authtokens import manage

    try:
        with _open(args) as store:
            row = manage.revoke(store, args.id)
    except EdgewardError as exc:
        return _fail("revoke", exc)
    assert row.revoked_at is not None
    print(f"Revoked authtoken {row.id} at {_time(row.revoked_at)}")
    return OK


def _open(args: argparse.Namespace) -> Store:
    from edgeward.store import Store, statedir

    state_dir: Path | None = args.state_dir
    if args.config is not None:
        from edgeward.config import load_config  # the config only says where the store is

        state_dir = load_config(args.config).state_dir
    return Store.open(statedir.resolve(state_dir))


def _fail(command: str, exc: EdgewardError) -> int:
    lines = [p.describe(exc.source) for p in exc.problems] if isinstance(exc, AclError) else [exc]
    for line in lines:
        print(f"edgeward authtoken {command}: {line}", file=sys.stderr)
    return INVALID


def _json(row: AuthtokenRow) -> dict[str, Any]:
    return {
        "id": row.id,
        "description": row.description,
        "metadata": row.metadata,
        "acl": list(row.acl),
        "created_at": _time(row.created_at),
        "revoked_at": _time(row.revoked_at) if row.revoked_at else None,
    }


def _time(value: datetime) -> str:
    return value.isoformat(timespec="seconds").replace("+00:00", "Z")


__all__ = ["register"]
