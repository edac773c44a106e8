"""The admin API's errors: a type per answer, rendered in the public API's
error body

    {"error_code": "ERR_EDGEWARD_4103", "status_code": 404,
     "msg": "no credential 'cr_...'", "details": {"operation_id": "op_..."}}

Codes (docs/control-plane.md keeps the table): 4100 no or a bad API key,
4101 a missing or unsupported `Ngrok-Version`, 4102 the key's role may not do
this, 4103 no such resource, 4104 an invalid request body or parameter,
4105 `If-Match` does not match (412), 4106 an ACL beyond the developer's
grant, 4107 a method the resource does not have, 4108 the state store
cannot be read or written.
"""

from __future__ import annotations

from typing import Any

from edgeward.errors import EdgewardError

UNAUTHORIZED = "ERR_EDGEWARD_4100"
VERSION = "ERR_EDGEWARD_4101"
FORBIDDEN = "ERR_EDGEWARD_4102"
NOT_FOUND = "ERR_EDGEWARD_4103"
INVALID = "ERR_EDGEWARD_4104"
PRECONDITION = "ERR_EDGEWARD_4105"
BEYOND_GRANT = "ERR_EDGEWARD_4106"
METHOD = "ERR_EDGEWARD_4107"
STORE = "ERR_EDGEWARD_4108"


class ApiError(EdgewardError):
    """An answer other than success: status, stable code, message."""

    def __init__(self, status: int, code: str, msg: str, **details: Any) -> None:
        super().__init__(msg)
        self.status = status
        self.code = code
        self.msg = msg
        self.details = details

    def body(self, operation_id: str) -> dict[str, Any]:
        return {
            "error_code": self.code,
            "status_code": self.status,
            "msg": self.msg,
            "details": {"operation_id": operation_id, **self.details},
        }


def unauthorized(msg: str) -> ApiError:
    return ApiError(401, UNAUTHORIZED, msg)


def forbidden(msg: str) -> ApiError:
    return ApiError(403, FORBIDDEN, msg)


def not_found(what: str, id: str) -> ApiError:
    return ApiError(404, NOT_FOUND, f"no {what} {id!r}")


def invalid(msg: str, field: str | None = None) -> ApiError:
    return ApiError(400, INVALID, msg, **({"field": field} if field else {}))


def precondition(msg: str) -> ApiError:
    return ApiError(412, PRECONDITION, msg)


__all__ = ["ApiError", "forbidden", "invalid", "not_found", "precondition", "unauthorized"]


# The control plane's resources (IP policies and restrictions, endpoints,
# vaults): docs/control-plane.md keeps the table.
IP_RESTRICTED = "ERR_EDGEWARD_4120"  # 403: the caller's address is not allowed by an IP restriction
LOCKOUT = "ERR_EDGEWARD_4121"  # 409: the change would deny the caller's own address (force=true)
CONFLICT = "ERR_EDGEWARD_4122"  # 409: a name, URL or type already taken; a resource still in use
POLICY = "ERR_EDGEWARD_4123"  # 400: a traffic policy with errors (details.diagnostics)


def conflict(msg: str, field: str | None = None) -> ApiError:
    return ApiError(409, CONFLICT, msg, **({"field": field} if field else {}))
