"""Fixtures of the browser tests (``make test-browser``): Debian's Chromium driven by Playwright.

Not collected by ``make test`` (its pytest run reads ``tests/`` only), so that ``make test``
needs no browser. A missing Chromium or Playwright fails these tests, naming what to install:
nothing here is skipped.
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
# The sandbox tests' callback receiver, reused rather than written twice.
sys.path.insert(0, str(ROOT / "tests" / "sandbox"))

from sandbox_helpers import Receiver  # noqa: E402

from routee_viber_async import RouteeViberClient  # noqa: E402
from routee_viber_async.sandbox import Sandbox  # noqa: E402

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
#: Generous: the page updates within a fraction of a second, but the machine may be busy.
EXPECT_TIMEOUT_MS = 20_000


def _require_chromium() -> str:
    path = shutil.which(CHROMIUM)
    if path is None:
        pytest.fail(
            f"Chromium is missing ({CHROMIUM}): install it with "
            "`apt-get install -y chromium chromium-driver`",
            pytrace=False,
        )
    return path


@pytest.fixture
def screenshots(tmp_path: Path) -> Path:
    """Where the tests save their pictures: $ROUTEE_SCREENSHOTS_DIR (`make screenshots` gives
    docs/), else the test's own temporary directory."""
    chosen = os.environ.get("ROUTEE_SCREENSHOTS_DIR")
    folder = Path(chosen) if chosen else tmp_path / "screenshots"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture
async def page(tmp_path: Path) -> AsyncIterator[Any]:
    """A page of a fresh headless Chromium (its own profile directory)."""
    executable = _require_chromium()
    try:
        from playwright.async_api import async_playwright, expect
    except ImportError:
        pytest.fail("Playwright is missing: `pip install -e '.[browser]'`", pytrace=False)
    expect.set_options(timeout=EXPECT_TIMEOUT_MS)
    async with async_playwright() as playwright:
        context = await playwright.chromium.launch_persistent_context(
            str(tmp_path / "profile"),
            executable_path=executable,
            headless=True,
            args=CHROMIUM_ARGS,
            viewport={"width": 1280, "height": 900},
        )
        try:
            yield context.pages[0] if context.pages else await context.new_page()
        finally:
            await context.close()


@pytest.fixture
async def sandbox() -> AsyncIterator[Sandbox]:
    """A sandbox with its inbox, manual moderation and deliveries slow enough to watch."""
    async with Sandbox(
        ui=True,
        moderation="manual",
        delivery_delay=0.3,
        callback_retry_delay=0.05,
        callback_timeout=2.0,
        seed=24,
    ) as started:
        yield started


@pytest.fixture
async def client(sandbox: Sandbox) -> AsyncIterator[RouteeViberClient]:
    async with RouteeViberClient(
        credentials=sandbox.credentials, base_url=sandbox.base_url, auth_url=sandbox.auth_url
    ) as started:
        yield started


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    started = Receiver()
    await started.start()
    yield started
    await started.close()
