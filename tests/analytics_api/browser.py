"""What the browser tests share: Debian's Chromium driven by Playwright for Python (never a
downloaded browser), the flags it needs on these machines, and where screenshots go.

Browser test modules set ``pytestmark = needs_chromium``: skipped, with the reason, when there
is no Chromium (``.ci/run`` installs Debian's ``chromium``; ``FOOTFALL_TEST_CHROMIUM`` points
elsewhere).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, sync_playwright

CHROMIUM = os.environ.get("FOOTFALL_TEST_CHROMIUM", "/usr/bin/chromium")
needs_chromium = pytest.mark.skipif(not Path(CHROMIUM).exists(),
                                    reason=f"no Chromium at {CHROMIUM} (.ci/run installs Debian's chromium)")
"""Set ``pytestmark = needs_chromium`` in a browser test module."""

# Without the background-networking flags Chromium keeps calling Google's hosts, which this
# machine's closed network refuses; --no-sandbox because CI runs as root.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"


def launch_browser() -> Iterator[Browser]:
    """One headless Chromium (a module-scoped fixture's body: each test opens its own profile)."""
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


def artifacts_dir() -> Path:
    """``tests/artifacts/`` (git-ignored), created on first use."""
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS
