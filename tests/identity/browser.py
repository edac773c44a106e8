"""A real browser for the identity tests: Debian's chromium driven by its
chromedriver through selenium (never a downloaded browser), headless, with
test hostnames mapped to 127.0.0.1 and the edge's test certificate trusted
by its SPKI hash."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from tests.identity.support import DOMAIN, Certs

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"


def available() -> str | None:
    """Why the browser tests cannot run, or None."""
    for path in (CHROMIUM, CHROMEDRIVER):
        if not (os.path.exists(path) or shutil.which(os.path.basename(path))):
            return f"{path} is missing (scripts/system-deps installs chromium, chromium-driver)"
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed (the test extra)"
    return None


@contextlib.contextmanager
def chromium(certs: Certs) -> Iterator[Any]:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    os.environ.setdefault("SE_OFFLINE", "true")  # selenium manager: never download
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--no-first-run",
        "--disable-background-networking",
        # "MAP * ~NOTFOUND" also catches IP literals: the provider at 127.0.0.1 is excluded.
        f"--host-resolver-rules=MAP *.{DOMAIN} 127.0.0.1, MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
        f"--ignore-certificate-errors-spki-list={certs.spki_sha256}",
    ):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"performance": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()


def clear_cookies(driver: Any) -> None:
    driver.execute_cdp_cmd("Network.clearBrowserCookies", {})


def cookies(driver: Any) -> dict[str, dict[str, Any]]:
    """Every cookie of the browser, by (name@domain)."""
    found = driver.execute_cdp_cmd("Network.getAllCookies", {})["cookies"]
    return {f"{c['name']}@{c['domain']}": c for c in found}


def set_cookie(driver: Any, cookie: dict[str, Any]) -> None:
    keep = ("name", "value", "domain", "path", "secure", "httpOnly", "sameSite", "expires")
    params = {k: cookie[k] for k in keep if k in cookie}
    params["url"] = f"https://{cookie['domain'].lstrip('.')}/"
    params.pop("domain", None)  # __Host- cookies must be host-only
    driver.execute_cdp_cmd("Network.setCookie", params)


def visited(driver: Any) -> list[str]:
    """The URLs of the documents loaded since the last call (performance log)."""
    urls = []
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message.get("method") == "Network.requestWillBeSent":
            params = message["params"]
            if params.get("type") == "Document":
                urls.append(params["request"]["url"])
    return urls


def log_in(driver: Any, username: str, password: str) -> None:
    """Fill Canaille's login and password forms (whichever is shown)."""
    from selenium.webdriver.common.by import By

    wait_for(
        driver, lambda d: d.find_elements(By.NAME, "login") or d.find_elements(By.NAME, "password")
    )
    if driver.find_elements(By.NAME, "login"):
        field = driver.find_element(By.NAME, "login")
        field.send_keys(username)
        field.submit()
        wait_for(driver, lambda d: d.find_elements(By.NAME, "password"))
    field = driver.find_element(By.NAME, "password")
    field.send_keys(password)
    field.submit()


def wait_for(driver: Any, condition: Callable[[Any], Any], timeout: float = 20) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        try:
            found = condition(driver)
        except Exception:  # the page is changing under us
            found = None
        if found:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting in {driver.current_url}")
        time.sleep(0.1)


def page_json(driver: Any) -> Any:
    from selenium.webdriver.common.by import By

    return json.loads(driver.find_element(By.TAG_NAME, "body").text)


skip_without_browser = pytest.mark.skipif(available() is not None, reason=str(available()))
