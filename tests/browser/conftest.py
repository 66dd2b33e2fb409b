"""Chromium driven by Playwright, for the pages people read.

The browser is Debian's ``chromium`` (``apt-get install chromium``), never one
Playwright downloads; ``MERGE_GATE_CHROMIUM`` names another binary. Without the
browser or the ``playwright`` package these tests skip, saying which is missing;
``.ci/run`` installs both and runs them (``pytest -m browser``). Screenshots go to
``test-artifacts/browser/`` (ignored by git); the path is printed.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts" / "browser"
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 900}


def chromium_path() -> str | None:
    named = os.environ.get("MERGE_GATE_CHROMIUM")
    if named:
        return named if Path(named).exists() else None
    return shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="session")
def chromium() -> Iterator[Any]:
    sync_api = pytest.importorskip(
        "playwright.sync_api", reason="pip install playwright (.ci/run does)"
    )
    path = chromium_path()
    if path is None:
        pytest.skip("no chromium: apt-get install chromium (.ci/run does)")
    with sync_api.sync_playwright() as playwright:
        # No sandbox when running as root (CI containers): Chromium refuses otherwise.
        args = ["--no-sandbox"] if os.geteuid() == 0 else []
        browser = playwright.chromium.launch(executable_path=path, args=args)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture(scope="session")
def artifacts() -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS


def shoot(page: Any, artifacts: Path, name: str) -> Path:
    path = artifacts / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    print(f"screenshot: {path}")
    return path
