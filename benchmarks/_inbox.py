"""``--only inbox``: the sandbox's API throughput with its web inbox open, and without (issue 24).

The sandbox (``ui=True``) runs in a child process of its own. Each round fans out ``n`` OTPs to
``n`` recipients with ``send_many`` from this process, once with no page open and once with the
page open in another child process, in alternating order; the sandbox is reset between rounds.
The page is the real one in Debian's Chromium when Playwright and Chromium are installed (the
``browser`` extra), else a stand-in that does what the page's script does: it follows
``/_sandbox/events`` and fetches the first page of threads on each event. A round with the page
starts once the browser has settled (a freshly started Chromium burns about a core for its
first half second, which is its start, not what an open page costs), and the page's CPU during
the round is reported. The figure is the median of the rounds' sends per second, and the ratio
with/without (the issue's bound: 0.9).
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

import aiohttp
import attrs

from routee_viber_async import ClientCredentials, RouteeViberClient, SendMessage

__all__ = ["InboxResult", "run_inbox"]

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
_CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


# The browser is settled once a window of _SETTLE_WINDOW seconds used under _IDLE_SHARE of a
# core; after _SETTLE_TRIES windows the round starts anyway.
_SETTLE_WINDOW = 0.5
_IDLE_SHARE = 0.05
_SETTLE_TRIES = 20


@attrs.frozen
class InboxResult:
    """Sends per second of each round, without and with the page open."""

    n: int
    page: str
    without: list[float]
    with_page: list[float]
    page_fetches: list[int]
    page_cpu: list[float]
    """CPU seconds the page (Chromium, or the stand-in) used during each round."""

    @property
    def ratio(self) -> float:
        """Median rate with the page open over the median rate without."""
        return statistics.median(self.with_page) / statistics.median(self.without)

    def __str__(self) -> str:
        return (
            f"{self.n:,} sends/round, page={self.page}: without "
            f"{statistics.median(self.without):.0f}/s, with "
            f"{statistics.median(self.with_page):.0f}/s, ratio {self.ratio:.3f} "
            f"(rounds without {[round(r) for r in self.without]}, with "
            f"{[round(r) for r in self.with_page]}; page fetches {self.page_fetches}; page CPU "
            f"{[round(c, 2) for c in self.page_cpu]} s)"
        )


# -- the sandbox child ------------------------------------------------------------------------


async def _serve() -> None:
    from routee_viber_async.pytest_plugin import approved_template
    from routee_viber_async.sandbox import Sandbox

    async with (
        Sandbox(ui=True, delivery_delay=0.2, seed=24) as sandbox,
        RouteeViberClient(
            credentials=sandbox.credentials,
            base_url=sandbox.base_url,
            auth_url=sandbox.auth_url,
        ) as client,
    ):
        template = await approved_template(client, sandbox)
        creds = sandbox.credentials
        print(
            json.dumps(
                {
                    "base_url": sandbox.base_url,
                    "application_id": creds.application_id,
                    "application_secret": creds.application_secret,
                    "sender": sandbox.sender_id,
                    "template_id": template.template_id,
                }
            ),
            flush=True,
        )
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)


# -- the page child ---------------------------------------------------------------------------


def _tree_cpu_seconds(root: int) -> float:
    """CPU seconds (user + system) of the live processes descending from ``root`` (Linux)."""
    children: dict[int, list[int]] = {}
    seconds: dict[int, float] = {}
    tick = os.sysconf("SC_CLK_TCK")
    for entry in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{entry}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except OSError:  # it ended meanwhile
            continue
        children.setdefault(int(fields[1]), []).append(int(entry))
        seconds[int(entry)] = (int(fields[11]) + int(fields[12])) / tick
    below = list(children.get(root, []))
    total = 0.0
    while below:
        pid = below.pop()
        total += seconds[pid]
        below += children.get(pid, [])
    return total


def _settle(root: int) -> None:
    """Wait until the browser is idle: a freshly started Chromium spends its first half second
    or so starting up (about a core's worth), which is not what an open page costs."""
    for _ in range(_SETTLE_TRIES):
        before = _tree_cpu_seconds(root)
        time.sleep(_SETTLE_WINDOW)
        if _tree_cpu_seconds(root) - before < _SETTLE_WINDOW * _IDLE_SHARE:
            return


def _browser_page(url: str) -> tuple[int, float]:
    from playwright.sync_api import sync_playwright

    fetches = 0

    def count(request: Any) -> None:
        nonlocal fetches
        fetches += "/_sandbox/inbox" in request.url

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=_CHROMIUM_ARGS
        )
        page = browser.new_page()
        page.on("request", count)
        page.goto(url)
        page.wait_for_selector("#live.on")
        _settle(os.getpid())
        began = _tree_cpu_seconds(os.getpid())
        print("ready", flush=True)
        sys.stdin.read()
        used = _tree_cpu_seconds(os.getpid()) - began
        browser.close()
    return fetches, used


async def _stand_in_page(url: str) -> tuple[int, float]:
    fetches = 0
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    threading.Thread(target=lambda: (sys.stdin.read(), loop.call_soon_threadsafe(stop.set))).start()
    async with aiohttp.ClientSession() as http:

        async def follow() -> None:
            nonlocal fetches
            async with http.get(url + "_sandbox/events") as events:
                print("ready", flush=True)
                async for line in events.content:
                    if line.startswith(b"data:"):
                        async with http.get(url + "_sandbox/inbox?offset=0&limit=20") as page:
                            await page.read()
                        fetches += 1

        task = asyncio.create_task(follow())
        began = time.process_time()
        await stop.wait()
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    return fetches, time.process_time() - began


def _page(url: str) -> None:
    fetches, cpu = _browser_page(url) if _has_browser() else asyncio.run(_stand_in_page(url))
    print(fetches, cpu, flush=True)


def _has_browser() -> bool:
    try:
        import playwright  # noqa: F401
    except ImportError:
        return False
    return shutil.which(CHROMIUM) is not None


# -- the parent -------------------------------------------------------------------------------


def _child(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "benchmarks._inbox", *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )


def _end(process: subprocess.Popen[str]) -> str:
    out, _ = process.communicate("", timeout=120)
    return out


async def _fan_out(server: dict[str, str], n: int, concurrency: int) -> float:
    async with RouteeViberClient(
        credentials=ClientCredentials(server["application_id"], server["application_secret"]),
        base_url=server["base_url"],
        auth_url=server["base_url"] + "/oauth/token",
        max_concurrency=concurrency,
    ) as client:
        template = await client.templates.get(server["template_id"])

        def messages() -> Iterator[SendMessage]:
            for i in range(n):
                yield SendMessage(
                    server["sender"], f"+3069{i:08d}", template.template_id, "en", {"pin": "1234"}
                )

        began = time.perf_counter()
        ok = 0
        async for outcome in client.messages.send_many(
            messages(), template=template, concurrency=concurrency
        ):
            ok += outcome.ok
        rate = n / (time.perf_counter() - began)
        assert ok == n, f"{n - ok} sends failed"
        async with aiohttp.ClientSession() as http:
            await (await http.post(server["base_url"] + "/_sandbox/reset")).read()
        return rate


def run_inbox(*, n: int = 10_000, rounds: int = 3, concurrency: int = 50) -> InboxResult:
    """Run the rounds (see the module docstring)."""
    sandbox = _child("serve")
    assert sandbox.stdout is not None
    try:
        server = json.loads(sandbox.stdout.readline())
        url = server["base_url"] + "/"
        without: list[float] = []
        with_page: list[float] = []
        fetches: list[int] = []
        page_seconds: list[float] = []
        asyncio.run(_fan_out(server, min(n, 1000), concurrency))  # warm-up
        for round_number in range(rounds):
            for open_page in (False, True) if round_number % 2 == 0 else (True, False):
                if not open_page:
                    without.append(asyncio.run(_fan_out(server, n, concurrency)))
                    continue
                page = _child("page", url)
                assert page.stdout is not None
                assert page.stdout.readline().strip() == "ready"
                with_page.append(asyncio.run(_fan_out(server, n, concurrency)))
                page_fetches, page_cpu = _end(page).split()[-2:]
                fetches.append(int(page_fetches))
                page_seconds.append(float(page_cpu))
    finally:
        _end(sandbox)
    kind = "Chromium" if _has_browser() else "stand-in"
    return InboxResult(n, kind, without, with_page, fetches, page_seconds)


if __name__ == "__main__":
    if sys.argv[1] == "serve":
        asyncio.run(_serve())
    elif sys.argv[1] == "page":
        _page(sys.argv[2])
    else:
        print(run_inbox(n=int(sys.argv[2]) if len(sys.argv) > 2 else 10_000))
