"""Headless Chromium driven through the DevTools protocol (a websocket; no driver binary needed)."""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import requests

from tests.support.chromium import find_chromium, install_command
from tests.support.waiting import wait_until

CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--remote-debugging-address=127.0.0.1",
    "--remote-debugging-port=0",
)


class BrowserError(RuntimeError):
    pass


def chromium_binary() -> str:
    path = find_chromium()
    if path is None:
        raise BrowserError(f"no Chromium found: {install_command()} (make test installs it where it can)")
    return path


class Chromium:
    """One headless Chromium with a fresh profile and one page.

    ``with Chromium() as browser: browser.open(url); browser.evaluate("document.title")``
    """

    def __init__(self, timeout: float = 20.0) -> None:
        self.timeout = timeout
        self._profile = Path(tempfile.mkdtemp(prefix="chromium-profile-"))
        self._process: subprocess.Popen | None = None
        self._socket = None
        self._ids = itertools.count(1)
        self.events: list[dict[str, Any]] = []

    def __enter__(self) -> Chromium:
        from websockets.sync.client import connect

        self._log = open(self._profile / "chromium.log", "wb")  # closed in __exit__
        self._process = subprocess.Popen(
            [chromium_binary(), *CHROMIUM_FLAGS, f"--user-data-dir={self._profile}", "about:blank"],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        port_file = self._profile / "DevToolsActivePort"

        def started() -> bool:
            if self._process.poll() is not None:
                raise BrowserError("Chromium exited")
            return port_file.exists() and bool(port_file.read_text().strip())

        try:
            wait_until(started, what="Chromium's DevTools port", timeout=self.timeout)
        except (BrowserError, TimeoutError):
            self.__exit__()
            raise BrowserError(
                f"Chromium did not start: {(self._profile / 'chromium.log').read_text()[-2000:]}"
            ) from None
        port = int(port_file.read_text().split()[0])
        targets = requests.get(f"http://127.0.0.1:{port}/json/list", timeout=5).json()
        page = next(t for t in targets if t["type"] == "page")
        self._connection = contextlib.ExitStack()
        self._socket = self._connection.enter_context(
            connect(page["webSocketDebuggerUrl"], max_size=None, open_timeout=self.timeout)
        )
        self.send("Page.enable")
        self.send("Runtime.enable")
        return self

    def __exit__(self, *exc: object) -> None:
        if self._socket is not None:
            with contextlib.suppress(Exception):
                self._connection.close()
        if self._process is not None and self._process.poll() is None:
            os.killpg(self._process.pid, signal.SIGTERM)
            try:
                self._process.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self._process.pid, signal.SIGKILL)
                self._process.wait(10)
        if getattr(self, "_log", None):
            self._log.close()
        shutil.rmtree(self._profile, ignore_errors=True)

    # ------------------------------------------------------------------ protocol

    def send(self, method: str, **params: Any) -> dict[str, Any]:
        """Call a DevTools method and return its result (events met on the way are kept)."""
        message_id = next(self._ids)
        self._socket.send(json.dumps({"id": message_id, "method": method, "params": params}))
        deadline = time.monotonic() + self.timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise BrowserError(f"no answer to {method} within {self.timeout}s")
            message = json.loads(self._socket.recv(timeout=remaining))
            if message.get("id") == message_id:
                if "error" in message:
                    raise BrowserError(f"{method}: {message['error']}")
                return message.get("result", {})
            self.events.append(message)

    def evaluate(self, expression: str) -> Any:
        """Evaluate JavaScript in the page (promises awaited) and return its JSON value."""
        result = self.send("Runtime.evaluate", expression=expression, awaitPromise=True, returnByValue=True)
        if "exceptionDetails" in result:
            raise BrowserError(f"{expression[:80]}...: {result['exceptionDetails']}")
        return result["result"].get("value")

    def wait_for(self, condition: str, timeout: float | None = None) -> Any:
        """Poll the JavaScript ``condition`` until it is truthy; return its value."""
        try:  # BrowserError while waiting: the page may be navigating
            return wait_until(
                lambda: self.evaluate(condition),
                what=condition,
                timeout=timeout or self.timeout,
                ignore=(BrowserError,),
            )
        except TimeoutError as error:
            raise BrowserError(f"{error}; page: {self.evaluate('location.href')}") from None

    # ------------------------------------------------------------------ conveniences

    def open(self, url: str) -> None:
        """Navigate to ``url`` and wait for the page's load event."""
        seen = len(self.events)
        result = self.send("Page.navigate", url=url)
        if result.get("errorText"):
            raise BrowserError(f"cannot open {url}: {result['errorText']}")
        self.wait_for_event("Page.loadEventFired", since=seen)

    def wait_for_event(self, method: str, since: int = 0) -> dict[str, Any]:
        """The first event ``method`` received after the first ``since`` events."""
        deadline = time.monotonic() + self.timeout
        while True:
            for event in self.events[since:]:
                if event.get("method") == method:
                    return event
            since = len(self.events)
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise BrowserError(f"no {method} within {self.timeout}s")
            self.events.append(json.loads(self._socket.recv(timeout=remaining)))

    def type_into(self, selector: str, text: str) -> None:
        """Focus the element and type ``text`` as keyboard input (frameworks see real input events)."""
        self.wait_for(f"document.querySelector({json.dumps(selector)}) !== null")
        self.evaluate(f"document.querySelector({json.dumps(selector)}).focus()")
        self.send("Input.insertText", text=text)

    def text(self, selector: str) -> str | None:
        return self.evaluate(f"document.querySelector({json.dumps(selector)})?.textContent ?? null")
