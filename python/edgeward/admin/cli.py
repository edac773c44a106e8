"""`edgeward api-key create | list | delete` on the local state store: how the
first admin key is made (later ones can come from the API itself).

Exit codes: 0 done; 1 invalid input (an unknown role or id, a bad rule, a
store that cannot be read); 2 usage.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import TYPE_CHECKING, Any

from edgeward.authtokens.cli import open_store, store_location
from edgeward.errors import EdgewardError

if TYPE_CHECKING:
    from edgeward.store import ApiKeyRow

OK, INVALID, USAGE = 0, 1, 2


def register(sub: Any) -> None:
    parser = sub.add_parser("api-key", help="create, list and delete admin API keys")
    commands = parser.add_subparsers(dest="api_key_command", required=True)

    create = commands.add_parser(
        "create",
        help="create an API key and print it (once)",
        description="Create an admin API key. The key is printed once: only its hash is stored.",
    )
    create.add_argument(
        "--role",
        required=True,
        choices=("admin", "developer", "auditor"),
        help="admin: everything; developer: authtokens within --acl; auditor: read-only",
    )
    create.add_argument(
        "--acl",
        action="append",
        default=[],
        metavar="RULE",
        help="developer: a bind rule it may give its authtokens (repeatable)",
    )
    create.add_argument("--description", default="", help="up to 255 bytes")
    create.add_argument("--metadata", default="", help="free text, up to 4096 bytes")
    create.add_argument("--json", action="store_true", help="print one JSON object")
    store_location(create)
    create.set_defaults(run=run_create)

    listing = commands.add_parser("list", help="list API keys (never the keys)")
    listing.add_argument("--json", action="store_true", help="print a JSON array")
    store_location(listing)
    listing.set_defaults(run=run_list)

    delete = commands.add_parser("delete", help="delete an API key")
    delete.add_argument("id", help="the key's id (ak_...)")
    store_location(delete)
    delete.set_defaults(run=run_delete)

    glass = sub.add_parser(
        "break-glass", help="the local admin who signs in with a password and TOTP when SSO is down"
    )
    glass_commands = glass.add_subparsers(dest="break_glass_command", required=True)
    enroll = glass_commands.add_parser(
        "enroll",
        help="make (or replace) a break-glass admin; prints its TOTP secret once",
        description="Make a break-glass admin: a password (asked, or --password-stdin) and a"
        " TOTP secret, printed once with its otpauth:// URI for an authenticator app."
        " Its every login is audited (break_glass_login.v0).",
    )
    enroll.add_argument("--username", required=True, help="lower-case letters, digits, . _ -")
    enroll.add_argument(
        "--password-stdin", action="store_true", help="read the password from standard input"
    )
    enroll.add_argument("--json", action="store_true", help="print one JSON object")
    store_location(enroll)
    enroll.set_defaults(run=run_enroll)


def run_create(args: argparse.Namespace) -> int:
    from edgeward.admin import keys
    from edgeward.authtokens.acl import Acl

    try:
        acl = Acl.parse(args.acl, source="--acl")
        with open_store(args) as store:
            created = keys.create(
                store,
                role=args.role,
                acl=acl,
                description=args.description,
                metadata=args.metadata,
            )
    except EdgewardError as exc:
        return _fail("create", exc)
    row = created.row
    if args.json:
        print(json.dumps({**_json(row), "token": created.key.text}))
        return OK
    print(f"Created API key {row.id} ({row.role})")
    if row.acl:
        print(f"May grant: {', '.join(row.acl)}")
    print("The key, shown only now (the store keeps a hash of it):")
    print(created.key.text)
    return OK


def run_list(args: argparse.Namespace) -> int:
    from edgeward.admin import keys

    try:
        with open_store(args) as store:
            rows = keys.list_all(store)
    except EdgewardError as exc:
        return _fail("list", exc)
    if args.json:
        print(json.dumps([_json(row) for row in rows], indent=2))
        return OK
    for row in rows:
        grant = f" grants {', '.join(row.acl)}" if row.acl else ""
        print(f"{row.id}  {row.role}  {row.description}{grant}".rstrip())
    return OK


def run_delete(args: argparse.Namespace) -> int:
    from edgeward.admin import keys

    try:
        with open_store(args) as store:
            keys.delete(store, args.id)
    except EdgewardError as exc:
        return _fail("delete", exc)
    print(f"Deleted API key {args.id}")
    return OK


def run_enroll(args: argparse.Namespace) -> int:
    import getpass

    from edgeward.admin.sso import breakglass

    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = getpass.getpass("Password: ")
        if getpass.getpass("Again: ") != password:
            print("edgeward break-glass enroll: the passwords differ", file=sys.stderr)
            return INVALID
    try:
        with open_store(args) as store:
            enrolled = breakglass.enroll(store, args.username, password)
    except EdgewardError as exc:
        print(f"edgeward break-glass enroll: {exc}", file=sys.stderr)
        return INVALID
    if args.json:
        print(json.dumps({"username": enrolled.username, "secret": enrolled.secret,
                          "uri": enrolled.uri}))  # fmt: skip
        return OK
    print(f"Break-glass admin {enrolled.username!r} enrolled. Its TOTP secret, shown only now:")
    print(enrolled.secret)
    print(enrolled.uri)
    print("Keep the password and the secret apart, offline. Every login is audited.")
    return OK


def _fail(command: str, exc: EdgewardError) -> int:
    print(f"edgeward api-key {command}: {exc}", file=sys.stderr)
    return INVALID


def _json(row: ApiKeyRow) -> dict[str, Any]:
    return {
        "id": row.id,
        "role": row.role,
        "description": row.description,
        "metadata": row.metadata,
        "acl": list(row.acl),
        "created_at": row.created_at.isoformat(timespec="seconds").replace("+00:00", "Z"),
    }


__all__ = ["register"]
