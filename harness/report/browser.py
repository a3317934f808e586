"""A small headless-Chromium driver over the Chrome DevTools Protocol: PDFs of reports, browser checks.

    with Browser() as browser:
        page = browser.open("out/report.html", width=390, mobile=True)
        page.requests                      # every URL the page asked for, itself first
        page.boxes("table td:last-child")  # [{"width", "height", "x", "y"}, ...]
        page.screenshot("out/report.png")  # the whole page
        page.print_pdf("out/report.pdf", header_html, footer_html)

    print_pdf("out/report.html", "out/report.pdf", "Quarterly drill")  # header and "Page N of M"

Chromium runs headless with a private, throwaway profile, in its own process group (killed whole on
close), with DevTools on 127.0.0.1 only. Pages get no network: every host name resolves to nothing and
every request, loopback included, goes to a proxy that does not exist; requests still show in
`page.requests`, so a check that a page fetches nothing can fail. The DevTools websocket is aiohttp's
client (already a dependency), driven from a private event-loop thread so that every call here blocks
and works whether or not the caller runs an event loop of its own.
"""

from __future__ import annotations

import asyncio
import base64
import concurrent.futures
import html
import itertools
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp

from ..files import atomic_write_bytes

ENV_BINARY = "DRILL_CHROMIUM"
BINARY_NAMES = ("chromium", "chromium-browser", "google-chrome")
START_TIMEOUT_S = 30.0
CALL_TIMEOUT_S = 30.0
FIX = f"install it with `apt-get install chromium` (Debian) or set {ENV_BINARY} to a Chromium or Chrome binary"
A4_INCHES = (210 / 25.4, 297 / 25.4)
_LISTENING = re.compile(rb"DevTools listening on (ws://\S+)")
_BLANK = "<span></span>"  # an empty template: Chromium's default header (date and title) otherwise


class BrowserUnavailable(RuntimeError):
    """No Chromium could be found or started; `reason` says what is missing and how to fix it."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


class BrowserError(RuntimeError):
    """Chromium is running but a DevTools call failed (an error answer, a timeout, a failed navigation)."""


def find_binary() -> str:
    """The Chromium to run: $DRILL_CHROMIUM if set, else chromium, chromium-browser, google-chrome on PATH."""
    wanted = os.environ.get(ENV_BINARY)
    if wanted:
        found = shutil.which(wanted)
        if not found:
            raise BrowserUnavailable(f"{ENV_BINARY}={wanted!r} is not an executable file; {FIX}")
        return found
    for name in BINARY_NAMES:
        found = shutil.which(name)
        if found:
            return found
    raise BrowserUnavailable(f"no Chromium found ({', '.join(BINARY_NAMES)} are not on PATH); {FIX}")


def available() -> str | None:
    """Why Chromium cannot be used here (binary missing or not runnable), or None when it can."""
    try:
        binary = find_binary()
        done = subprocess.run([binary, "--version"], stdin=subprocess.DEVNULL, capture_output=True, timeout=15)
    except BrowserUnavailable as exc:
        return exc.reason
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"{binary} --version failed: {exc}; {FIX}"
    if done.returncode != 0:
        tail = done.stderr.decode(errors="replace").strip().splitlines()[-1:] or ["no output"]
        return f"{binary} --version exited with code {done.returncode} ({tail[0]}); {FIX}"
    return None


def _url(path_or_url: str | os.PathLike[str]) -> str:
    text = os.fspath(path_or_url)
    if re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*:", text) and not os.path.exists(text):
        return text  # already a URL: file:, http:, data:, about:
    path = Path(text).resolve()
    if not path.is_file():
        raise FileNotFoundError(f"no such page: {path}")
    return path.as_uri()


class _Channel:
    """One DevTools websocket, served by an event loop on a private thread; `call` blocks for the answer.

    Answers go to the waiting call by id; events are kept per session (target) in arrival order.
    """

    def __init__(self, url: str, timeout: float):
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="devtools", daemon=True)
        self._thread.start()
        self._ids = itertools.count(1)
        self._lock = threading.Condition()
        self._pending: dict[int, concurrent.futures.Future[dict[str, Any]]] = {}
        self._events: dict[str | None, list[dict[str, Any]]] = {}
        self._closed: str | None = None
        self._session: aiohttp.ClientSession | None = None
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._reader: asyncio.Future[None] | None = None
        try:
            self._run(self._open(url), timeout)
        except BaseException:
            self.close()
            raise

    def _run(self, coro: Any, timeout: float) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    async def _open(self, url: str) -> None:
        self._session = aiohttp.ClientSession()
        # max_msg_size=0: screenshots and PDFs arrive as one base64 message of many megabytes
        self._ws = await self._session.ws_connect(url, max_msg_size=0)
        self._reader = asyncio.ensure_future(self._read())

    async def _read(self) -> None:
        assert self._ws is not None
        try:
            async for msg in self._ws:
                if msg.type != aiohttp.WSMsgType.TEXT:
                    continue
                data = json.loads(msg.data)
                with self._lock:
                    if "id" in data:
                        future = self._pending.pop(data["id"], None)
                        if future is not None and not future.done():
                            future.set_result(data)
                    else:
                        self._events.setdefault(data.get("sessionId"), []).append(data)
                        self._lock.notify_all()
        finally:
            self._shut("the DevTools connection closed (did Chromium exit?)")

    def _shut(self, why: str) -> None:
        with self._lock:
            if self._closed is None:
                self._closed = why
            for future in self._pending.values():
                if not future.done():
                    future.set_exception(BrowserError(self._closed))
            self._pending.clear()
            self._lock.notify_all()

    def call(
        self,
        method: str,
        params: dict[str, Any] | None = None,
        session: str | None = None,
        timeout: float = CALL_TIMEOUT_S,
    ) -> dict[str, Any]:
        """Send one command and wait for its result; BrowserError on an error answer or no answer."""
        future: concurrent.futures.Future[dict[str, Any]] = concurrent.futures.Future()
        with self._lock:
            if self._closed is not None:
                raise BrowserError(f"{method}: {self._closed}")
            ident = next(self._ids)
            self._pending[ident] = future
        message: dict[str, Any] = {"id": ident, "method": method, "params": params or {}}
        if session is not None:
            message["sessionId"] = session
        try:
            assert self._ws is not None
            self._run(self._ws.send_str(json.dumps(message)), timeout)
            answer = future.result(timeout)
        except (concurrent.futures.TimeoutError, TimeoutError):
            raise BrowserError(f"{method}: no answer from Chromium within {timeout:g} s") from None
        except aiohttp.ClientError as exc:
            raise BrowserError(f"{method}: {exc}") from exc
        finally:
            with self._lock:
                self._pending.pop(ident, None)
        if "error" in answer:
            error = answer["error"]
            raise BrowserError(f"{method}: {error.get('message')} {error.get('data') or ''}".strip())
        return answer.get("result") or {}

    def events(self, session: str | None) -> list[dict[str, Any]]:
        """A copy of the events received so far for `session`, oldest first."""
        with self._lock:
            return list(self._events.get(session, ()))

    def wait_event(
        self,
        session: str | None,
        method: str,
        since: int,
        timeout: float,
        match: Callable[[dict[str, Any]], bool] = lambda params: True,
    ) -> dict[str, Any]:
        """The first event `method` of `session` from index `since` on whose params `match`."""
        deadline = time.monotonic() + timeout
        seen = since
        with self._lock:
            while True:
                events = self._events.get(session, [])
                for event in events[seen:]:
                    if event.get("method") == method and match(event.get("params") or {}):
                        return event.get("params") or {}
                seen = len(events)
                if self._closed is not None:
                    raise BrowserError(f"waiting for {method}: {self._closed}")
                left = deadline - time.monotonic()
                if left <= 0:
                    raise BrowserError(f"no {method} within {timeout:g} s")
                self._lock.wait(left)

    def forget(self, session: str | None) -> None:
        with self._lock:
            self._events.pop(session, None)

    def close(self) -> None:
        """Close the websocket (briefly: Chromium may already be gone) and stop the loop thread."""
        self._shut("the DevTools connection was closed")

        async def shut() -> None:
            if self._ws is not None:
                await self._ws.close()
            if self._session is not None:
                await self._session.close()
            if self._reader is not None:
                self._reader.cancel()

        try:
            if self._loop.is_running():
                self._run(shut(), 3)
        except Exception:  # noqa: BLE001 - the browser is killed next anyway
            pass
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(5)
            if not self._thread.is_alive():
                self._loop.close()


class Page:
    """One browser tab, attached over the shared DevTools connection; made by `Browser.open`."""

    def __init__(self, channel: _Channel, target_id: str, session_id: str, url: str, width: int, height: int):
        self._channel = channel
        self.target_id = target_id
        self.session_id = session_id
        self.url = url
        self.width = width
        self.height = height

    def call(
        self, method: str, params: dict[str, Any] | None = None, timeout: float = CALL_TIMEOUT_S
    ) -> dict[str, Any]:
        """Any DevTools command on this page's session, for what this class does not offer."""
        return self._channel.call(method, params, self.session_id, timeout)

    @property
    def requests(self) -> list[str]:
        """Every URL this page requested since before its navigation (itself first), in order."""
        return [
            (e.get("params") or {}).get("request", {}).get("url", "")
            for e in self._channel.events(self.session_id)
            if e.get("method") == "Network.requestWillBeSent"
        ]

    def evaluate(self, js: str, timeout: float = CALL_TIMEOUT_S) -> Any:
        """The value of a JavaScript expression (promises awaited), as JSON-able data."""
        result = self.call("Runtime.evaluate", {"expression": js, "returnByValue": True, "awaitPromise": True}, timeout)
        if "exceptionDetails" in result:
            details = result["exceptionDetails"]
            text = (details.get("exception") or {}).get("description") or details.get("text")
            raise BrowserError(f"JavaScript failed: {text}")
        return (result.get("result") or {}).get("value")

    def boxes(self, css_selector: str) -> list[dict[str, float]]:
        """getBoundingClientRect of every element matching `css_selector`: dicts of width, height, x, y."""
        return self.evaluate(
            f"Array.from(document.querySelectorAll({json.dumps(css_selector)}), e => {{"
            " const r = e.getBoundingClientRect();"
            " return {width: r.width, height: r.height, x: r.x, y: r.y}; })"
        )

    def screenshot(self, path: str | os.PathLike[str]) -> Path:
        """A PNG of the whole page (not only the viewport), written atomically."""
        metrics = self.call("Page.getLayoutMetrics")
        size = metrics.get("cssContentSize") or metrics["contentSize"]
        clip = {"x": 0, "y": 0, "width": max(size["width"], self.width), "height": size["height"], "scale": 1}
        data = self.call(
            "Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True, "clip": clip}, timeout=60
        )["data"]
        return atomic_write_bytes(Path(path), base64.b64decode(data))

    def print_pdf(
        self,
        path: str | os.PathLike[str],
        header_html: str = _BLANK,
        footer_html: str = _BLANK,
        *,
        landscape: bool = False,
    ) -> Path:
        """Print to a PDF, A4 unless the page's CSS @page says otherwise, written atomically.

        `header_html`/`footer_html` are repeated on every page; in them Chromium fills the elements
        of class pageNumber, totalPages, title, date and url. Give them an explicit font size (8px):
        they are invisible otherwise.
        """
        width, height = A4_INCHES
        params = {
            "landscape": landscape,
            "displayHeaderFooter": True,
            "printBackground": True,
            "preferCSSPageSize": True,
            "paperWidth": width,
            "paperHeight": height,
            # room for the header and footer when the page sets no @page margin
            "marginTop": 0.6,
            "marginBottom": 0.6,
            "marginLeft": 0.4,
            "marginRight": 0.4,
            "headerTemplate": header_html or _BLANK,
            "footerTemplate": footer_html or _BLANK,
        }
        data = base64.b64decode(self.call("Page.printToPDF", params, timeout=120)["data"])
        return atomic_write_bytes(Path(path), data)

    def close(self) -> None:
        try:
            self._channel.call("Target.closeTarget", {"targetId": self.target_id}, timeout=5)
        except BrowserError:
            pass
        self._channel.forget(self.session_id)

    def __enter__(self) -> Page:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Browser:
    """Headless Chromium, started on `__enter__` (or `start()`) and killed with its temp dir on close."""

    def __init__(self, binary: str | None = None, start_timeout: float = START_TIMEOUT_S):
        self.binary = binary
        self.start_timeout = start_timeout
        self.process: subprocess.Popen[bytes] | None = None
        self.tempdir: Path | None = None
        self.websocket_url: str | None = None
        self.started_in_s: float | None = None
        self._channel: _Channel | None = None

    def start(self) -> Browser:
        """Launch Chromium and connect; BrowserUnavailable if there is none or it does not start in time."""
        binary = self.binary or find_binary()
        began = time.monotonic()
        self.tempdir = Path(tempfile.mkdtemp(prefix="drill-chromium-"))
        try:
            log_path = self.tempdir / "chromium.log"
            with open(log_path, "wb") as log:
                self.process = subprocess.Popen(
                    [
                        binary,
                        "--headless=new",
                        "--no-sandbox",
                        "--disable-gpu",
                        "--remote-debugging-port=0",
                        "--remote-debugging-address=127.0.0.1",
                        f"--user-data-dir={self.tempdir / 'profile'}",
                        "--no-first-run",
                        "--no-default-browser-check",
                        "--host-resolver-rules=MAP * ~NOTFOUND",
                        "--proxy-server=127.0.0.1:9",
                        "--proxy-bypass-list=<-loopback>",
                        "about:blank",
                    ],
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=log,
                    start_new_session=True,
                    # its singleton socket dir (org.chromium.Chromium.*) goes in TMPDIR: ours, removed on close
                    env={**os.environ, "TMPDIR": str(self.tempdir)},
                )
            self.websocket_url = self._wait_listening(log_path, binary)
            self._channel = _Channel(self.websocket_url, max(1.0, began + self.start_timeout - time.monotonic()))
            self.started_in_s = time.monotonic() - began
        except BaseException:
            self.close()
            raise
        return self

    def _wait_listening(self, log_path: Path, binary: str) -> str:
        assert self.process is not None
        deadline = time.monotonic() + self.start_timeout
        while True:
            found = _LISTENING.search(log_path.read_bytes())
            if found:
                url = found.group(1).decode()
                if not url.startswith("ws://127.0.0.1:"):
                    raise BrowserError(f"Chromium's DevTools listen on {url}, not on 127.0.0.1 only")
                return url
            if _exited(self.process.pid):
                tail = log_path.read_text(errors="replace").strip().splitlines()[-3:]
                raise BrowserUnavailable(
                    f"{binary} exited before DevTools listened: {' | '.join(tail) or 'no output'}; {FIX}"
                )
            if time.monotonic() > deadline:
                raise BrowserUnavailable(f"{binary} did not start within {self.start_timeout:g} s; {FIX}")
            time.sleep(0.02)

    def open(
        self,
        path_or_url: str | os.PathLike[str],
        width: int = 1280,
        height: int = 900,
        mobile: bool = False,
        timeout: float = CALL_TIMEOUT_S,
    ) -> Page:
        """A new tab at `width` x `height` (a phone's viewport with `mobile`), navigated, after its load event."""
        if self._channel is None:
            raise BrowserError("the browser is not started: use `with Browser() as browser:`")
        url = _url(path_or_url)
        target = self._channel.call("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = self._channel.call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        page = Page(self._channel, target, session, url, width, height)
        try:
            page.call("Page.enable")
            page.call("Page.setLifecycleEventsEnabled", {"enabled": True})
            page.call("Network.enable")  # requests are recorded from here, before the navigation
            page.call(
                "Emulation.setDeviceMetricsOverride",
                {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": mobile},
            )
            if mobile:
                page.call("Emulation.setTouchEmulationEnabled", {"enabled": True, "maxTouchPoints": 5})
            since = len(self._channel.events(session))
            nav = page.call("Page.navigate", {"url": url}, timeout)
            if nav.get("errorText"):
                raise BrowserError(f"could not open {url}: {nav['errorText']}")
            if nav.get("loaderId"):
                self._channel.wait_event(
                    session,
                    "Page.lifecycleEvent",
                    since,
                    timeout,
                    lambda p: p.get("name") == "load" and p.get("loaderId") == nav["loaderId"],
                )
            else:  # a same-document navigation has no new loader
                self._channel.wait_event(session, "Page.loadEventFired", since, timeout)
            page.evaluate("document.fonts.ready.then(() => true)", timeout)
        except BaseException:
            page.close()
            raise
        return page

    def close(self) -> None:
        """Disconnect, kill Chromium's whole process group and remove its temp dir; safe to call twice."""
        try:
            if self._channel is not None:
                self._channel.close()
        finally:
            self._channel = None
            try:
                if self.process is not None:
                    _kill_group(self.process)
            finally:
                self.process = None
                if self.tempdir is not None:
                    _remove(self.tempdir)
                    self.tempdir = None

    def __enter__(self) -> Browser:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()


def _exited(pid: int) -> bool:
    """Has our child `pid` exited? Without reaping it: its pid (the group's id) stays ours until then."""
    try:
        return os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None
    except ChildProcessError:
        return True


def _kill_group(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM Chromium's process group, up to 3 s to exit, then SIGKILL what is left, then reap."""
    group = process.pid  # start_new_session: the browser leads its own group
    try:
        os.killpg(group, signal.SIGTERM)
    except ProcessLookupError:
        pass
    deadline = time.monotonic() + 3
    while not _exited(process.pid) and time.monotonic() < deadline:
        time.sleep(0.02)
    try:
        os.killpg(group, signal.SIGKILL)  # renderers, zygotes, utilities that outlived the browser
    except ProcessLookupError:
        pass
    process.wait(10)


def _remove(folder: Path) -> None:
    for attempt in range(3):  # a dying child may still add a file for a moment
        try:
            shutil.rmtree(folder)
            return
        except FileNotFoundError:
            return
        except OSError:
            if attempt == 2:
                raise
            time.sleep(0.2)


def print_pdf(
    html_path: str | os.PathLike[str],
    pdf_path: str | os.PathLike[str],
    title: str,
    *,
    browser: Browser | None = None,
    banner: str | None = None,
) -> Path:
    """Print a report to an A4 PDF: `title` (escaped) atop every page, "Page N of M" at the foot;
    `banner` (escaped), when given, in bold red above the title on every page (a lab run's
    "REHEARSAL" line).

    Written atomically. Uses `browser` if given, else starts and closes one (BrowserUnavailable when
    there is no Chromium).
    """
    warning = (
        f'<div style="font-size:9px; font-weight:700; color:#cf222e;">{html.escape(banner)}</div>' if banner else ""
    )
    header = (
        '<div style="font-size:8px; width:100%; margin:0 12mm; color:#59636e; '
        f'font-family:system-ui, sans-serif;">{warning}{html.escape(title)}</div>'
    )
    footer = (
        '<div style="font-size:8px; width:100%; text-align:center; color:#59636e; '
        'font-family:system-ui, sans-serif;">Page <span class="pageNumber"></span> of '
        '<span class="totalPages"></span></div>'
    )
    if browser is None:
        with Browser() as own:
            return print_pdf(html_path, pdf_path, title, browser=own, banner=banner)
    with browser.open(html_path) as page:
        return page.print_pdf(pdf_path, header, footer)
