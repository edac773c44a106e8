"""Helpers of the walkthrough test: the edge's two SIEM sinks (Debian's
rsyslog and an HTTP collector, both real, fed by `api.events:`), read
back as event envelopes; and numbered screenshots kept as the test's
artifacts."""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.admin.console_support import BROWSER_TIMEOUT as TIMEOUT
from tests.events.receivers import HttpReceiver, Rsyslog


def sinks_config(syslog: Rsyslog, collector: HttpReceiver) -> str:
    """The `api.events:` lines (indented 2) sending every event to both sinks."""
    return f"""  events:
    - name: siem-syslog
      target:
        syslog:
          address: 127.0.0.1:{syslog.tcp_port}
    - name: siem-http
      target:
        http:
          url: {collector.url}
"""


Event = dict[str, Any]


@dataclass
class Sinks:
    """What the two destinations received, as envelopes."""

    syslog: Rsyslog
    collector: HttpReceiver

    def from_syslog(self) -> list[Event]:
        # facility, severity, app-name, MSGID (the event type), SD, MSG (the envelope)
        out = []
        for line in self.syslog.lines():
            event = json.loads(line[5])
            assert line[3] == event["event_type"], line
            assert f'event_id="{event["event_id"]}"' in line[4], line
            out.append(event)
        return out

    def from_http(self) -> list[Event]:
        return self.collector.events()

    def both(self, what: str, event_type: str, principal: str, **fields: Any) -> Event:
        """The `event_type` event of `principal` whose object has `fields`,
        once both sinks have it (the same event_id); `what` names the step."""

        def wanted(e: Event) -> bool:
            obj = e["object"]
            return (
                e["event_type"] == event_type
                and e["principal"]["id"] == principal
                and all(obj.get(k) == v for k, v in fields.items())
            )

        deadline = time.monotonic() + TIMEOUT
        while True:
            by_syslog = {e["event_id"]: e for e in self.from_syslog() if wanted(e)}
            by_http = {e["event_id"]: e for e in self.from_http() if wanted(e)}
            common = [id for id in by_http if id in by_syslog]
            if common:
                return by_http[common[0]]
            if time.monotonic() > deadline:
                seen = sorted({e["event_type"] for e in self.from_http() + self.from_syslog()})
                raise AssertionError(
                    f"{what}: no {event_type} of {principal!r} with {fields} in both sinks"
                    f" (syslog {len(by_syslog)}, http {len(by_http)}); types seen: {seen}"
                )
            time.sleep(0.1)

    def same_ids(self) -> set[str]:
        """Every event_id, once both sinks hold the same set (each
        destination has its own spool and sender: they converge)."""
        deadline = time.monotonic() + TIMEOUT
        while True:
            syslog = [e["event_id"] for e in self.from_syslog()]
            http = [e["event_id"] for e in self.from_http()]
            if set(syslog) == set(http):  # delivery is at least once: a retry may repeat
                return set(http)
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"the sinks differ: only syslog {sorted(set(syslog) - set(http))},"
                    f" only http {sorted(set(http) - set(syslog))}"
                )
            time.sleep(0.1)


@dataclass
class Shots:
    """Screenshots numbered in the order taken, under `directory`."""

    directory: Path
    taken: list[Path] = field(default_factory=list)

    def __call__(self, driver: Any, name: str) -> None:
        path = self.directory / f"{len(self.taken) + 1:02d}-{name}.png"
        driver.save_screenshot(str(path))
        self.taken.append(path)


def submit(driver: Any, form: str, **fields: str) -> None:
    """Fill the console form at the CSS selector `form` (inputs, selects,
    textareas by name) and send it with its button."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    found = driver.find_element(By.CSS_SELECTOR, form)
    for name, value in fields.items():
        element = found.find_element(By.NAME, name)
        if element.tag_name == "select":
            Select(element).select_by_value(value)
        else:
            element.clear()
            element.send_keys(value)
    found.find_element(By.CSS_SELECTOR, "button[type=submit]").click()


def notice(driver: Any, pattern: str) -> re.Match[str]:
    """The console's notice once it matches `pattern` (the page after a change)."""
    from selenium.webdriver.common.by import By
    from tests.identity.browser import wait_for

    def shown(d: Any) -> re.Match[str] | None:
        return re.search(pattern, d.find_element(By.ID, "notice").text)

    found: re.Match[str] = wait_for(driver, shown, TIMEOUT)
    return found


__all__ = ["TIMEOUT", "Shots", "Sinks", "notice", "sinks_config", "submit"]
