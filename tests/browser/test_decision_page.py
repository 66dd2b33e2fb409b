"""The decision page in Chromium: sign-in, refusal, content, links, no injection, layout.

A real service (OAuth configured) against the fake GitHub, whose sign-in and
authorize pages the browser really visits; the page shows a decision the engine
made from a pull request whose file names and reviewer logins carry markup.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any

import pytest

from tests.browser.conftest import DESKTOP, PHONE, shoot
from tests.decisions import HOSTILE_PATHS, IMG, MARKDOWN, SCRIPT
from tests.test_details import REPO, Site, site

pytestmark = pytest.mark.browser
assert site  # the fixture, imported for these tests

DOM_CHECKS = """() => ({
  scripts: document.querySelectorAll('script').length,
  images: document.querySelectorAll('img').length,
  handlers: [...document.querySelectorAll('*')].flatMap(
      e => [...e.attributes].filter(a => a.name.startsWith('on')).map(a => a.name)),
  javascriptLinks: [...document.querySelectorAll('a')].filter(
      a => a.protocol === 'javascript:').length,
  headings: [...document.querySelectorAll('h1,h2,h3,h4,h5,h6')].map(h => +h.tagName[1]),
  landmarks: ['header', 'nav', 'main'].map(t => document.querySelectorAll(t).length),
  overflow: document.documentElement.scrollWidth - window.innerWidth,
  title: document.title,
})"""


def open_page(chromium: Any, site: Site, *, login: str | None, viewport: dict[str, int]) -> Any:
    context = chromium.new_context(viewport=viewport, accept_downloads=True)
    page = context.new_page()
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.errors = errors  # type: ignore[attr-defined]
    site.fake.oauth.sign_in(login)
    page.goto(site.page)
    return page


def contrast(foreground: str, background: str = "rgb(255, 255, 255)") -> float:
    """WCAG 2.2 contrast ratio of two CSS ``rgb()`` colours."""

    def luminance(color: str) -> float:
        r, g, b = (int(v) / 255 for v in re.findall(r"\d+", color)[:3])
        lin = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in (r, g, b)]
        return 0.2126 * lin[0] + 0.7152 * lin[1] + 0.0722 * lin[2]

    light, dark = sorted((luminance(foreground), luminance(background)), reverse=True)
    return (light + 0.05) / (dark + 0.05)


def test_the_page_needs_a_github_sign_in(chromium: Any, site: Site, artifacts: Path) -> None:
    site.fake.oauth.grant(REPO, "alice")
    page = open_page(chromium, site, login=None, viewport=DESKTOP)
    # Our page sent the browser to GitHub's authorize page, which asks to sign in.
    assert page.url.startswith(f"{site.fake.base_url}/login/oauth/authorize?")
    assert page.get_by_role("heading", name="Sign in to GitHub").is_visible()
    assert "Denied" not in page.content()
    shoot(page, artifacts, "1-sign-in-required")
    # Signed in at GitHub: the same link now shows the decision.
    site.fake.oauth.sign_in("alice")
    page.goto(site.page)
    assert page.url == site.page
    assert page.title() == "merge-gate: acme/app#7"
    assert page.get_by_role("banner").get_by_text("alice").is_visible()
    shoot(page, artifacts, "2-decision-desktop")
    page.context.close()


def test_a_reader_without_access_gets_a_403_page(
    chromium: Any, site: Site, artifacts: Path
) -> None:
    page = open_page(chromium, site, login=f"bob{SCRIPT}", viewport=DESKTOP)
    response = page.goto(site.page)
    assert response.status == 403
    assert page.get_by_role("heading", level=1).inner_text() == "You cannot see this decision"
    assert f"bob{SCRIPT}" in page.get_by_role("main").inner_text()
    checks = page.evaluate(DOM_CHECKS)
    assert checks["scripts"] == 0
    assert REPO not in page.content()
    shoot(page, artifacts, "3-forbidden")
    page.context.close()


def test_content_and_links(chromium: Any, site: Site, artifacts: Path) -> None:
    site.fake.oauth.grant(REPO, "alice")
    page = open_page(chromium, site, login="alice", viewport=DESKTOP)
    web = site.fake.base_url
    pull = f"{web}/acme/app/pull/7"
    assert page.get_by_role("link", name="Pull request on GitHub").get_attribute("href") == pull
    assert page.get_by_role("link", name="acme/app#7").get_attribute("href") == pull
    main = page.get_by_role("main")
    text = main.inner_text()
    assert "Denied" in page.get_by_role("heading", level=1).inner_text()
    # Every changed file links to its place in the pull request's diff.
    for path in ("db/migrations/0042_drop_users.sql", ".github/workflows/ci.yml", *HOSTILE_PATHS):
        link = main.get_by_role("link", name=path, exact=True).first
        anchor = hashlib.sha256(path.encode()).hexdigest()
        assert link.get_attribute("href") == f"{pull}/files#diff-{anchor}", path
    # Who can unblock, the rollout plan, approvals that counted and did not.
    assert main.get_by_role("link", name="@acme/security").first.get_attribute("href") == (
        f"{web}/orgs/acme/teams/security"
    )
    assert "Apply to the staging database first, then to 10% of shards." in text
    assert main.get_by_role("link", name="@alice").first.get_attribute("href") == (
        f"{pull}#pullrequestreview-101"
    )
    assert "approved an older commit" in text
    assert "✓ Verifies" in text
    # Landmarks and headings in order, for screen readers.
    checks = page.evaluate(DOM_CHECKS)
    assert checks["landmarks"] == [1, 1, 1]
    assert checks["headings"][0] == 1
    assert checks["headings"].count(1) == 1
    assert all(b <= a + 1 for a, b in zip(checks["headings"], checks["headings"][1:], strict=False))
    # The record downloads and is the stored envelope.
    with page.expect_download() as caught:
        main.get_by_role("link", name="Download the signed record").click()
    download = caught.value
    assert json.loads(Path(download.path()).read_text()) == site.record["envelope"]
    assert download.suggested_filename == f"merge-gate-{site.decision_id}.dsse.json"
    assert page.errors == []  # type: ignore[attr-defined]
    page.context.close()


def test_pull_request_text_never_becomes_markup(chromium: Any, site: Site, artifacts: Path) -> None:
    site.fake.oauth.grant(REPO, "alice")
    page = open_page(chromium, site, login="alice", viewport=DESKTOP)
    checks = page.evaluate(DOM_CHECKS)
    assert checks["scripts"] == 0
    assert checks["images"] == 0
    assert checks["handlers"] == []
    assert checks["javascriptLinks"] == 0
    assert checks["title"] == "merge-gate: acme/app#7"  # nothing ran to change it
    text = page.get_by_role("main").inner_text()
    for hostile in (*HOSTILE_PATHS, f"mallory{SCRIPT}"):
        assert hostile in text, hostile
    assert IMG in text
    assert MARKDOWN in text
    # A Markdown link in a file name is text inside the diff link, not a link of its own.
    assert page.get_by_role("link", name="click", exact=True).count() == 0
    shoot(page, artifacts, "4-hostile-names")
    page.context.close()


def test_readable_on_a_phone_with_enough_contrast(
    chromium: Any, site: Site, artifacts: Path
) -> None:
    site.fake.oauth.grant(REPO, "alice")
    page = open_page(chromium, site, login="alice", viewport=PHONE)
    checks = page.evaluate(DOM_CHECKS)
    assert checks["overflow"] <= 0, "the page scrolls sideways on a phone"
    font = page.evaluate("getComputedStyle(document.body).fontSize")
    assert float(font.removesuffix("px")) >= 14
    colours = page.evaluate(
        """() => [...document.querySelectorAll('main a, .ok, .wait, .bad, .muted, main td')]
             .map(e => getComputedStyle(e).color)"""
    )
    worst = min(contrast(c) for c in set(colours))
    assert worst >= 4.5, worst
    shoot(page, artifacts, "5-decision-phone")
    page.context.close()
