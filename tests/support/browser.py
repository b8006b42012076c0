"""A real browser for the console tests: Playwright (from PyPI) driving Debian's chromium.

No browser is downloaded: scripts/test.sh installs the `chromium` package and its binary is
passed as the executable. Every browser starts on a fresh profile directory, so no cookie
or cache carries over from one to the next.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from playwright.async_api import BrowserContext, Page, Playwright

__all__ = ["CHROMIUM", "PageWatch", "browser"]

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@dataclass
class PageWatch:
    """A page and everything it complained about: console errors (a Content-Security-Policy
    violation is one) and uncaught script errors."""

    context: BrowserContext
    page: Page
    errors: list[str] = field(default_factory=list)


@asynccontextmanager
async def browser(playwright: Playwright, **options: object) -> AsyncIterator[PageWatch]:
    if shutil.which(CHROMIUM) is None:
        raise RuntimeError(f"{CHROMIUM} is missing: apt-get install -y chromium (scripts/test.sh)")
    profile = tempfile.mkdtemp(prefix="costproxy-chromium-")
    context = await playwright.chromium.launch_persistent_context(
        profile,
        executable_path=CHROMIUM,
        args=ARGS,
        headless=True,
        viewport={"width": 1280, "height": 900},
        **options,
    )
    try:
        page = context.pages[0] if context.pages else await context.new_page()
        watch = PageWatch(context, page)
        page.on("console", lambda m: watch.errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: watch.errors.append(str(e)))
        yield watch
    finally:
        await context.close()
        shutil.rmtree(profile, ignore_errors=True)
