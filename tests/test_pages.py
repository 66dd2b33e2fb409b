"""The decision details page, parsed: content, links, escaping, structure.

The browser tests (tests/browser) check the same page as Chromium renders it;
these run everywhere, fast, on the HTML itself.
"""

from __future__ import annotations

import dataclasses
import hashlib
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from gate.result import DecisionKind
from tests.decisions import HOSTILE_PATHS, IMG, MARKDOWN, SCRIPT, decision, stored
from webhooks import pages

PULL = "https://github.com/acme/app/pull/7"


class Dom(HTMLParser):
    """Tags with their attributes, text, and the heading levels in order."""

    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []
        self.headings: list[int] = []
        self.feed(html)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        if len(tag) == 2 and tag[0] == "h" and tag[1].isdigit():
            self.headings.append(int(tag[1]))

    def handle_data(self, data: str) -> None:
        self.text.append(data)

    def all(self, tag: str) -> list[dict[str, str | None]]:
        return [attrs for name, attrs in self.tags if name == tag]

    def links(self) -> dict[str, str]:
        """href -> text is not recoverable from a flat parse; hrefs only."""
        return {str(a["href"]): "" for a in self.all("a")}

    @property
    def content(self) -> str:
        return "".join(self.text)


@pytest.fixture(scope="module")
def page(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, dict[str, Any]]:
    record, keyring = stored(tmp_path_factory.mktemp("keys"))
    html = pages.decision_page(
        record,
        keys=keyring.verification_keys(),
        record_url="/decisions/abc/record",
        viewer=f"eve{SCRIPT}",
    )
    return html, record


def test_hostile_names_stay_text(page: tuple[str, dict[str, Any]]) -> None:
    html, _ = page
    dom = Dom(html)
    assert dom.all("script") == []
    assert dom.all("img") == []
    assert not [(tag, name) for tag, attrs in dom.tags for name in attrs if name.startswith("on")]
    for path in HOSTILE_PATHS:
        assert path in dom.content
    assert f"mallory{SCRIPT}" in dom.content  # an approval that did not count
    assert f"eve{SCRIPT}" in dom.content  # the signed-in viewer
    # A Markdown link in a file name is not a link.
    assert not [a for a in dom.all("a") if "javascript" in str(a["href"])]
    assert MARKDOWN in dom.content


def test_every_link_goes_to_github_or_this_service(page: tuple[str, dict[str, Any]]) -> None:
    hrefs = list(Dom(page[0]).links())
    assert hrefs
    for href in hrefs:
        assert href.startswith(("https://github.com/", "#", "/decisions/")), href


def test_files_link_to_their_place_in_the_diff(page: tuple[str, dict[str, Any]]) -> None:
    hrefs = Dom(page[0]).links()
    for path in ("db/migrations/0042_drop_users.sql", *HOSTILE_PATHS):
        anchor = hashlib.sha256(path.encode()).hexdigest()
        assert f"{PULL}/files#diff-{anchor}" in hrefs, path


def test_the_page_says_what_blocks_and_who_unblocks(page: tuple[str, dict[str, Any]]) -> None:
    html, record = page
    dom = Dom(html)
    text = dom.content
    hrefs = dom.links()
    assert PULL in hrefs
    head, base = record["decision"]["head_sha"], record["decision"]["base_sha"]
    assert f"https://github.com/acme/app/commit/{head}" in hrefs
    assert f"https://github.com/acme/app/commit/{base}" in hrefs
    assert "✗ denied" in text  # the workflow file
    assert "1 file(s) an agent may not change" in text
    # Who can unblock each requirement, linked to their GitHub page.
    assert "https://github.com/orgs/acme/teams/security" in hrefs
    assert "https://github.com/dba-lead" in hrefs
    assert "needs 1 more approval(s) from @dba-lead" in text
    # The rollout plan, apart from the requirement's status.
    assert "Rollout plan for tier migrations" in text
    assert "Apply to the staging database first, then to 10% of shards." in text
    # Approvals that counted, linked to the review, and those that did not, with why.
    assert f"{PULL}#pullrequestreview-101" in hrefs
    assert "counts for tier high, medium" in text
    assert "approved an older commit (bbbbbbbbbbbb), not the current head" in text
    assert "the PR author" in text
    # The rules it was judged by, read at the base commit.
    assert f"https://github.com/acme/app/commit/{base}" in hrefs
    assert "Policy" in text
    assert "CODEOWNERS" in text
    assert record["decision"]["policy"]["digest"] in text
    # The record verifies, and can be downloaded.
    assert "✓ Verifies" in text
    assert "/decisions/abc/record" in hrefs
    assert record["digest"] in text


def test_a_tampered_record_is_shown_as_such(tmp_path: Path) -> None:
    record, keyring = stored(tmp_path)
    envelope = dict(record["envelope"])
    envelope["payload"] = envelope["payload"][:-8] + "AAAAAAA="
    html = pages.decision_page({**record, "envelope": envelope}, keys=keyring.verification_keys())
    assert "✗ Does not verify" in Dom(html).content


def test_structure_landmarks_headings_viewport_no_script(
    page: tuple[str, dict[str, Any]],
) -> None:
    html, _ = page
    dom = Dom(html)
    names = [tag for tag, _ in dom.tags]
    for landmark in ("header", "nav", "main"):
        assert names.count(landmark) == 1, landmark
    assert dom.headings[0] == 1
    assert dom.headings.count(1) == 1
    for before, after in zip(dom.headings, dom.headings[1:], strict=False):
        assert after <= before + 1, dom.headings
    [viewport] = [m for m in dom.all("meta") if m.get("name") == "viewport"]
    assert "width=device-width" in str(viewport["content"])
    assert dom.all("html")[0]["lang"] == "en"
    # Signing out is a POST form, never a link.
    [form] = dom.all("form")
    assert (form["method"], form["action"]) == ("post", "/logout")


def test_the_style_is_the_one_the_policy_allows(page: tuple[str, dict[str, Any]]) -> None:
    html = page[0]
    style = html.split("<style>", 1)[1].split("</style>", 1)[0]
    import base64

    digest = base64.b64encode(hashlib.sha256(style.encode()).digest()).decode()
    assert f"style-src 'sha256-{digest}'" in pages.CSP
    assert "script-src" not in pages.CSP
    assert "default-src 'none'" in pages.CSP


def test_a_forbidden_page_names_nothing_about_the_decision() -> None:
    html = pages.forbidden(f"eve{IMG}")
    dom = Dom(html)
    assert dom.all("img") == []
    assert "acme" not in html
    assert "cannot read the repository" in dom.content


def test_children_are_sections_one_level_down(tmp_path: Path) -> None:
    first, second = decision(), dataclasses.replace(decision(author="sweep-ai"), number=8)
    tree = dataclasses.replace(
        first, kind=DecisionKind.COMMIT, children=(first, second), files=(), requirements=()
    )
    record, keyring = stored(tmp_path, tree)
    dom = Dom(pages.decision_page(record, keys=keyring.verification_keys()))
    assert len(dom.all("section")) == 2
    assert "@sweep-ai" in dom.content
    hrefs = dom.links()
    assert "https://github.com/acme/app/pull/7" in hrefs
    assert "https://github.com/acme/app/pull/8" in hrefs
    ids = [attrs["id"] for _tag, attrs in dom.tags if attrs.get("id")]
    assert len(ids) == len(set(ids)), ids
    assert dom.headings.count(1) == 1
    for before, after in zip(dom.headings, dom.headings[1:], strict=False):
        assert after <= before + 1, dom.headings
    # The child's summary is a level-2 heading, its parts level 3.
    assert 3 in dom.headings


def test_a_merge_group_page_links_its_pull_requests_not_a_pull_zero(tmp_path: Path) -> None:
    from gate.tree import for_merge_group

    first, second = decision(), dataclasses.replace(decision(author="sweep-ai"), number=8)
    group = for_merge_group(
        repo="acme/app", head_sha="d" * 40, base_sha="c" * 40, children=(first, second)
    )
    record, keyring = stored(tmp_path, group)
    dom = Dom(pages.decision_page(record, keys=keyring.verification_keys()))
    hrefs = dom.links()
    assert not [h for h in hrefs if h.endswith("/pull/0")]
    assert {"https://github.com/acme/app/pull/7", "https://github.com/acme/app/pull/8"} <= set(
        hrefs
    )
    assert "Merge group" in dom.content
    assert len(dom.all("section")) == 2
    assert "✓ Verifies" in dom.content
