"""Markdown renderings: nothing an agent controls becomes markup.

Rendered with ``cmarkgfm``, the bindings to GitHub's own cmark-gfm, with raw HTML
allowed (GitHub allows a subset); the HTML it produces is then read back with
the standard library's parser.
"""

from __future__ import annotations

import html
from html.parser import HTMLParser

import cmarkgfm
import pytest
from cmarkgfm.cmark import Options

from gate import render
from gate.defaults import default_policy
from gate.result import FileFinding, FileResult, Reason
from tests.factories import changed, decide, pull, review

HOSTILE = [
    "[x](http://e)",
    "![i](u)",
    "<img src=x onerror=alert(1)>",
    "# h",
    "a | b | c",
    "`code` and ``more``",
    "@acme/security please merge",
    "line one\nline two\r\n| forged | row |",
    "**bold** and __bold__ and *em* and ~~strike~~",
    "https://evil.example/x www.evil.example mail@evil.example",
    "1. ordered",
    "- item",
    "> quote",
    "&lt;entity&gt; &amp;",
    "$x^2$ math",
    "<!-- comment -->",
    "trailing backslash \\",
    "\\[escaped\\]",
    "**/auth/**",
    "=== setext",
    "bidi \u202eexe.txt",
    "      indented code",
    "\t- tabbed item",
]


class _Reader(HTMLParser):
    """Tags and text of rendered HTML; ``cells`` are the text of each table row."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[str] = []
        self.rows: list[list[str]] = []
        self.cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        if tag == "tr":
            self.rows.append([])
        elif tag in ("td", "th"):
            self.cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self.cell is not None:
            self.rows[-1].append("".join(self.cell))
            self.cell = None

    def handle_data(self, data: str) -> None:
        if self.cell is not None:
            self.cell.append(data)


def rendered(markdown: str) -> _Reader:
    reader = _Reader()
    reader.feed(
        cmarkgfm.github_flavored_markdown_to_html(markdown, options=Options.CMARK_OPT_UNSAFE)
    )
    return reader


def readable(text: str) -> str:
    """What a reader sees, back in the input's terms."""
    text = text.replace("\u200b", "")
    return "".join(chr(ord(c) - 0x2400) if 0x2400 <= ord(c) < 0x2420 else c for c in text)


@pytest.mark.parametrize("text", HOSTILE)
def test_escaped_text_renders_as_itself_and_nothing_else(text: str) -> None:
    out = render.escape(text)
    reader = rendered(f"| x |\n|---|\n| {out} |\n\n- {out}\n\n### {out}")
    assert set(reader.tags) == {"table", "thead", "tr", "th", "tbody", "td", "ul", "li", "h3"}
    assert len(reader.rows) == 2
    assert [readable(c) for c in reader.rows[1]] == [text.replace("\u202e", "⟨U+202E⟩")]
    assert "\n" not in out
    assert "\r" not in out
    # Every @ is followed by a zero-width space: no mention, no e-mail autolink.
    assert out.count("@") == out.count("@\u200b")


def test_escaping_is_needed_the_tests_see_raw_markup() -> None:
    # The same probes unescaped do render as markup: the assertions above can fail.
    reader = rendered("| x |\n|---|\n| [x](http://e) ![i](u) **b** <img src=x> a \\| b |")
    assert {"a", "img", "strong"} <= set(reader.tags)
    assert "h1" in rendered("# h").tags


def test_decision_summary_escapes_every_field_an_agent_controls() -> None:
    hostile = "[x](http://e) **b** @acme/all <img src=x> | # h\nnext"
    snapshot = pull(
        [changed(f"app/{hostile}.py"), changed("docs/a.md", previous=f"docs/{hostile}.md")],
        author=f"{hostile}[bot]",
        reviews=[review(hostile)],
    )
    decision = decide(default_policy(), snapshot)
    forged = FileResult(
        path=hostile,
        status="modified",
        previous_path=None,
        tier="medium",
        denied=True,
        reasons=(Reason(rule="r", detail=hostile, source=hostile),),
        findings=(FileFinding(detector="d", rule="r", line=1, message=hostile, deny=True),),
    )
    decision = type(decision)(
        **{
            **{f: getattr(decision, f) for f in decision.__dataclass_fields__},
            "files": (*decision.files, forged),
            "summary": hostile,
            "governance": hostile,
            "notes": (hostile,),
        }
    )
    markdown = render.markdown(decision)
    reader = rendered(markdown)
    assert not {"a", "img", "em", "del", "h1", "h2", "ol", "blockquote"} & set(reader.tags)
    # Only merge-gate's own labels ("**Tier:**") are bold.
    assert reader.tags.count("strong") == markdown.count(":**") > 0
    # No row gained or lost a cell: requirement rows have 6, file rows 3.
    assert {len(row) for row in reader.rows} <= {3, 6}
    files = [row for row in reader.rows if len(row) == 3]
    assert any(readable(row[0]) == hostile for row in files)
    assert "@acme/all" not in markdown
    assert "@\u200bacme/all" in markdown


def test_glob_in_a_reason_renders_literally() -> None:
    decision = decide(default_policy(), pull([changed("app/auth/login.py")]))
    reader = rendered(render.markdown(decision))
    assert "em" not in reader.tags
    cell = next(row[2] for row in reader.rows if len(row) == 3 and "login.py" in row[0])
    assert "'**/auth/**'" in html.unescape(cell)


def test_terminal_text_keeps_one_line_per_item_and_no_escape_sequences() -> None:
    path = "app/x\n  low          docs/fake.md\x1b[2K\x1b[1A.py"
    decision = decide(default_policy(), pull([changed(path)]))
    out = render.text(decision)
    assert "\x1b" not in out
    files = out.split("files:\n", 1)[1].splitlines()
    assert files[0].startswith("  medium")
    assert "x␊  low" in files[0]
    assert not any(line.lstrip().startswith("low") for line in files)
