"""Events: the public envelope, and the bus that takes them to SIEMs
(docs/control-plane.md, "Events").

- `envelope`: `Event` and `Principal` (event_id, event_type, ...);
- `bus`: `Bus` (publish without blocking; bounded queue, overflow on disk),
  and the process's bus (`install`, `publish`);
- `spec`: destinations and subscriptions validated (types, globs, CEL filter);
- `spool`: the on-disk FIFO each destination delivers from;
- `delivery`: a destination's sender thread (retries with backoff);
- one module per destination kind: `jsonlines` (file/stdout), `syslog`
  (RFC 5424 over TCP or TLS), `http` (Splunk HEC or a JSON array);
- `ocsf`: the optional OCSF mapping (6003, 3002, 6004);
- `service`: the trio side: the store's destinations and subscriptions
  applied to the bus within a second of a change.

Nothing here imports trio but `service`.
"""

from edgeward.events.bus import Bus, current, install, publish
from edgeward.events.envelope import Event, Principal

__all__ = ["Bus", "Event", "Principal", "current", "install", "publish"]
