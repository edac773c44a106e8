"""The optional OCSF form of an event (`format: ocsf` on a destination),
in OCSF 1.1's classes:

- API Activity (6003): the admin API's events (`credential_*`, `api_key_*`,
  `event_destination_*`, `event_subscription_*`, `tunnel_session_stopped`,
  `api_key_used`): activity Create 1 / Read 2 / Update 3 / Delete 4 / Other 99;
- Authentication (3002): agents logging on and off (`tunnel_session_*`
  from the agent ingress): Logon 1 / Logoff 2, a refused authtoken a failed Logon;
- Web Resource Access Activity (6004): policy denies and agents' binds:
  Access Grant 1 / Access Deny 2.

The envelope is kept whole under `unmapped`, so nothing is lost; an event of
no class above is API Activity, activity Other.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

VERSION = "1.1.0"
API_ACTIVITY, AUTHENTICATION, WEB_RESOURCE_ACCESS = 6003, 3002, 6004
CATEGORY = {API_ACTIVITY: 6, AUTHENTICATION: 3, WEB_RESOURCE_ACCESS: 6}
CLASS_NAME = {
    API_ACTIVITY: "API Activity",
    AUTHENTICATION: "Authentication",
    WEB_RESOURCE_ACCESS: "Web Resource Access Activity",
}
_METHOD_ACTIVITY = {"POST": 1, "GET": 2, "HEAD": 2, "PATCH": 3, "PUT": 3, "DELETE": 4}
_AGENT_SESSION = {
    "tunnel_session_started": 1,
    "tunnel_session_ended": 2,
    "tunnel_session_refused": 1,
    "tunnel_session_revoked": 2,
}
_WEB = {"policy_denied": 2, "endpoint_bound": 1, "endpoint_bind_refused": 2}


def classify(event: Mapping[str, Any]) -> tuple[int, int, bool]:
    """(class_uid, activity_id, success) of an envelope."""
    name = str(event.get("event_type", "")).rpartition(".v")[0] or str(event.get("event_type"))
    obj = event.get("object") or {}
    principal = event.get("principal") or {}
    if name in _AGENT_SESSION and principal.get("type") == "credential":
        return AUTHENTICATION, _AGENT_SESSION[name], name != "tunnel_session_refused"
    if name in _WEB:
        return WEB_RESOURCE_ACCESS, _WEB[name], _WEB[name] == 1
    if name == "api_key_used":
        status = obj.get("status_code")
        ok = isinstance(status, int) and status < 400
        return API_ACTIVITY, _METHOD_ACTIVITY.get(str(obj.get("method")), 99), ok
    for suffix, activity in (("_created", 1), ("_updated", 3), ("_deleted", 4)):
        if name.endswith(suffix):
            return API_ACTIVITY, activity, True
    return API_ACTIVITY, 99, True


def _millis(stamp: Any) -> int:
    if isinstance(stamp, str):
        try:
            return int(datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp() * 1000)
        except ValueError:
            pass
    return 0


def to_ocsf(event: Mapping[str, Any]) -> dict[str, Any]:
    class_uid, activity, ok = classify(event)
    obj: Mapping[str, Any] = event.get("object") or {}
    principal: Mapping[str, Any] = event.get("principal") or {}
    out: dict[str, Any] = {
        "class_uid": class_uid,
        "class_name": CLASS_NAME[class_uid],
        "category_uid": CATEGORY[class_uid],
        "activity_id": activity,
        "type_uid": class_uid * 100 + activity,
        "time": _millis(event.get("event_timestamp")),
        "severity_id": 1 if ok else 3,  # Informational / Medium
        "status_id": 1 if ok else 2,  # Success / Failure
        "metadata": {
            "version": VERSION,
            "uid": event.get("event_id"),
            "event_code": event.get("event_type"),
            "product": {"name": "edgeward", "vendor_name": "edgeward"},
        },
        "actor": {"user": {"uid": principal.get("id"), "type": principal.get("type")}},
        "unmapped": dict(event),
    }
    ip = obj.get("client_ip") or obj.get("ip")
    if ip:
        out["src_endpoint"] = {"ip": ip}
    if class_uid == API_ACTIVITY:
        out["api"] = {
            "operation": obj.get("method") or event.get("event_type"),
            "request": {"uid": event.get("event_id")},
        }
        if obj.get("path"):
            out["http_request"] = {"url": {"path": obj["path"]}, "http_method": obj.get("method")}
        if obj.get("id"):
            out["resources"] = [
                {"uid": obj.get("id"), "type": str(event.get("event_type")).split("_")[0]}
            ]
    elif class_uid == AUTHENTICATION:
        out["user"] = {"uid": principal.get("id"), "type": "credential"}
        out["session"] = {"uid": obj.get("session")}
        if not ok:
            out["status_detail"] = obj.get("reason")
    else:
        url = obj.get("url") or obj.get("endpoint")
        out["web_resources"] = [{"url_string": url}] if url else []
        if not ok:
            out["status_detail"] = obj.get("reason")
    return out


__all__ = ["classify", "to_ocsf"]
