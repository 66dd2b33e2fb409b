"""The pages a reviewer reads: server-rendered HTML, every string escaped, no JavaScript.

A decision's page answers what the check run's summary has no room for: what is
blocked and why, file by file (each linked to its place in the pull request's
diff), who can unblock each requirement, the rollout plan, which approvals
counted and which did not (and why), the policy and CODEOWNERS the decision was
made from, and whether its signed record verifies (with the record itself to
download). Viewing a page reads the stored decision and writes nothing.

Everything shown comes from the pull request (titles, logins, file names a PR
author chose), so every string goes through ``html.escape`` and every URL is
built here from escaped, percent-encoded parts on the configured GitHub web URL:
nothing in a decision can become markup, a script or a link elsewhere.
Accessibility follows WCAG 2.2: landmarks (``header``, ``nav``, ``main``),
headings in order, text contrast at least 4.5:1, state never shown by colour
alone; a viewport meta and a single-column layout below 40rem keep it readable
on a phone.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterable, Mapping, Sequence
from html import escape
from typing import Any
from urllib.parse import quote

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from gate.dsse import InvalidEnvelope
from gate.result import (
    Decision,
    DecisionKind,
    FileResult,
    Outcome,
    RequirementResult,
    decision_from_dict,
)
from gate.statement import verify_record

GITHUB = "https://github.com"

_STYLE = """
:root{color-scheme:light;--fg:#1f2328;--muted:#59636e;--line:#d1d9e0;--bg2:#f6f8fa;
--ok:#1a7f37;--wait:#8a5a00;--bad:#cf222e;--link:#0969da}
*{box-sizing:border-box}
body{font:16px/1.5 system-ui,-apple-system,"Segoe UI",sans-serif;color:var(--fg);margin:0}
main{overflow-wrap:break-word}
header,nav,main,footer{max-width:72rem;margin:0 auto;padding:.5rem 1rem}
header{display:flex;flex-wrap:wrap;gap:.5rem 1rem;align-items:center;
justify-content:space-between;border-bottom:1px solid var(--line)}
header form{margin:0}
nav ul{list-style:none;display:flex;flex-wrap:wrap;gap:.25rem 1rem;margin:0;padding:0}
a{color:var(--link)}a:focus,button:focus{outline:3px solid var(--link);outline-offset:2px}
button{font:inherit;padding:.25rem .75rem;border:1px solid var(--line);border-radius:6px;
background:var(--bg2);color:var(--fg);cursor:pointer}
h1{font-size:1.5rem;line-height:1.25}h2{font-size:1.25rem;margin-top:2rem}h3{font-size:1.1rem}
code{font:.875em ui-monospace,SFMono-Regular,Menlo,monospace;overflow-wrap:anywhere}
.facts{display:grid;grid-template-columns:max-content 1fr;gap:.25rem 1rem;margin:1rem 0}
.facts dt{font-weight:600}.facts dd{margin:0;overflow-wrap:anywhere}
table{border-collapse:collapse;width:100%;margin:1rem 0}
th,td{border:1px solid var(--line);padding:.4rem .6rem;text-align:left;vertical-align:top}
th{background:var(--bg2)}
td ul{margin:0;padding-left:1.1rem}
.state{font-weight:600;white-space:nowrap}
.ok{color:var(--ok)}.wait{color:var(--wait)}.bad{color:var(--bad)}
.muted{color:var(--muted)}
.plan{border-left:4px solid var(--wait);background:var(--bg2);padding:.5rem 1rem;margin:.5rem 0}
section.pull{border-top:2px solid var(--line);margin-top:2rem}
@media (max-width:40rem){
body{font-size:15px}
.facts{grid-template-columns:1fr}.facts dd{margin-bottom:.5rem}
table,tbody,tr,td{display:block;width:100%}
thead{display:none}
tr{border:1px solid var(--line);margin:0 0 .75rem}
td{border:0;border-top:1px solid var(--line)}td:first-child{border-top:0}
td::before{content:attr(data-label);display:block;font-weight:600;color:var(--muted)}
}
"""

#: Content-Security-Policy for these pages: no script at all, this one stylesheet,
#: forms posting back here only, never framed.
CSP = (
    "default-src 'none'; "
    f"style-src 'sha256-{base64.b64encode(hashlib.sha256(_STYLE.encode()).digest()).decode()}'; "
    "form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)

_OUTCOME = {
    Outcome.PASS: ("ok", "✓ Passes"),
    Outcome.NEEDS_APPROVAL: ("wait", "● Needs approval"),
    Outcome.DENIED: ("bad", "✗ Denied"),
    Outcome.ERROR: ("bad", "✗ Error"),
}


def diff_anchor(path: str) -> str:
    """GitHub's anchor of a file in a pull request's *Files changed* tab: ``diff-`` and
    the hex SHA-256 of the file's path."""
    return "diff-" + hashlib.sha256(path.encode()).hexdigest()


class _Links:
    """URLs on the GitHub web UI for one pull request; every part percent-encoded."""

    def __init__(self, web: str, repo: str, number: int) -> None:
        self.web = web.rstrip("/")
        owner, _, name = repo.partition("/")
        self.repo = f"{self.web}/{quote(owner, safe='')}/{quote(name, safe='')}"
        self.pull = f"{self.repo}/pull/{int(number)}"

    def commit(self, sha: str) -> str:
        return f"{self.repo}/commit/{quote(sha, safe='')}"

    def diff(self, path: str) -> str:
        return f"{self.pull}/files#{diff_anchor(path)}"

    def review(self, review_id: int) -> str:
        return f"{self.pull}#pullrequestreview-{int(review_id)}"

    def blob(self, sha: str, path: str) -> str:
        return f"{self.repo}/blob/{quote(sha, safe='')}/{quote(path)}"

    def owner(self, owner: str) -> str | None:
        """A ``@user`` or ``@org/team`` owner's page on GitHub."""
        name = owner.removeprefix("@")
        org, slash, team = name.partition("/")
        if not org or org.startswith("."):
            return None
        if slash:
            return f"{self.web}/orgs/{quote(org, safe='')}/teams/{quote(team, safe='')}"
        return f"{self.web}/{quote(org, safe='')}"


def _a(href: str | None, text: str, *, code: bool = False) -> str:
    inner = f"<code>{escape(text)}</code>" if code else escape(text)
    if href is None:
        return inner
    return f'<a href="{escape(href)}">{inner}</a>'


def _td(label: str, content: str) -> str:
    return f'<td data-label="{escape(label)}">{content}</td>'


def _list(items: Iterable[str]) -> str:
    rows = "".join(f"<li>{item}</li>" for item in items)
    return f"<ul>{rows}</ul>" if rows else ""


def _page(
    title: str, main: str, *, nav: Sequence[tuple[str, str]] = (), viewer: str | None = None
) -> str:
    who = ""
    if viewer is not None:
        # Logging out changes state, so it is a POST (never a link a page elsewhere
        # could make a browser follow); SameSite=Lax keeps cross-site POSTs cookie-less.
        who = (
            f'<form method="post" action="/logout"><span>Signed in as '
            f"<b>{escape(viewer)}</b></span> <button type=submit>Sign out</button></form>"
        )
    links = "".join(f'<li><a href="{escape(href)}">{escape(text)}</a></li>' for href, text in nav)
    nav_html = f'<nav aria-label="On this page"><ul>{links}</ul></nav>' if nav else ""
    return (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        '<meta name="referrer" content="no-referrer">'
        f"<title>{escape(title)}</title><style>{_STYLE}</style></head><body>"
        f"<header><span><b>merge-gate</b> decision details</span>{who}</header>"
        f"{nav_html}<main>{main}</main></body></html>"
    )


def message_page(title: str, message: str, *, viewer: str | None = None) -> str:
    """A page that only says something (not found, refused, sign-in failed)."""
    return _page(title, f"<h1>{escape(title)}</h1><p>{escape(message)}</p>", viewer=viewer)


def not_found(decision_id: str) -> str:
    return message_page("Decision not found", f"There is no decision {decision_id!r}.")


def forbidden(login: str) -> str:
    # Says nothing about the decision: not even whether it exists or which repository
    # it is about, since the viewer may not learn that either.
    return message_page(
        "You cannot see this decision",
        f"Signed in as {login}, you cannot read the repository this decision is about. "
        "Ask its administrators for access, or sign in as another GitHub user.",
        viewer=login,
    )


def _verified(
    envelope: Mapping[str, object], keys: Mapping[str, Ed25519PublicKey], head: str
) -> str:
    try:
        verify_record(envelope, keys=keys, expect_commit=head)
    except (InvalidEnvelope, ValueError) as error:
        return (
            f'<p class="bad"><span class="state">✗ Does not verify:</span> {escape(str(error))}</p>'
        )
    signatures = envelope.get("signatures")
    kids = [
        str(s.get("keyid", ""))
        for s in (signatures if isinstance(signatures, list) else [])
        if isinstance(s, Mapping)
    ]
    by = f" (key <code>{escape(', '.join(kids))}</code>)" if kids else ""
    return (
        '<p class="ok"><span class="state">✓ Verifies</span> against this service\'s '
        f"published keys{by} and names head <code>{escape(head[:12])}</code>.</p>"
    )


def _who(requirement: RequirementResult, links: _Links) -> str:
    if requirement.owners:
        return ", ".join(_a(links.owner(o), o) for o in requirement.owners)
    return escape(requirement.owners_source or "anyone with write access")


def _rollout_plan(requirement: RequirementResult) -> tuple[str, str]:
    """The explanation and, for a staged rollout, the policy's rollout text apart."""
    text = requirement.explanation
    if requirement.rollout:
        return text.split(" Staged rollout: ", 1)[0], requirement.rollout
    if requirement.kind == "staged_rollout" and " Staged rollout: " in text:
        head, plan = text.split(" Staged rollout: ", 1)
        return head, plan
    return text, ""


def _requirements(decision: Decision, links: _Links, level: int) -> str:
    if not decision.requirements:
        return ""
    rows = []
    plans = []
    for r in decision.requirements:
        explanation, plan = _rollout_plan(r)
        state = (
            '<span class="state ok">✓ met</span>'
            if r.satisfied
            else ('<span class="state wait">● open</span>')
        )
        counted = ", ".join(
            _a(links.review(a.review_id) if a.review_id else None, f"@{a.user}")
            for a in r.satisfied_by
        )
        files = ", ".join(_a(links.diff(p), p, code=True) for p in r.paths[:10])
        if len(r.paths) > 10:
            files += f" and {len(r.paths) - 10} more"
        rows.append(
            "<tr>"
            + _td("Status", state)
            + _td(
                "Requirement",
                f"{escape(r.kind.replace('_', ' '))} · tier {escape(r.tier)}"
                + (
                    f"<br><span class=muted>{escape(r.description)}</span>" if r.description else ""
                ),
            )
            + _td("Who can unblock", _who(r, links))
            + _td("Why", escape(explanation) + (f"<br>Counted: {counted}" if counted else ""))
            + _td("Files", files)
            + "</tr>"
        )
        if plan:
            plans.append(
                f'<div class="plan"><p><b>Rollout plan for tier {escape(r.tier)}</b></p>'
                f"<p>{escape(plan)}</p></div>"
            )
    h = f"h{level}"
    return (
        f'<{h} id="{_id(decision, "requirements")}">Requirements</{h}>'
        "<table><thead><tr><th>Status</th><th>Requirement</th><th>Who can unblock</th>"
        f"<th>Why</th><th>Files</th></tr></thead><tbody>{''.join(rows)}</tbody></table>"
        + "".join(plans)
    )


def _reviews(decision: Decision, links: _Links, level: int) -> str:
    counted: dict[tuple[str, int], list[str]] = {}
    for r in decision.requirements:
        for a in r.satisfied_by:
            if r.kind == "approval":
                counted.setdefault((a.user, a.review_id), []).append(r.tier)
    if not counted and not decision.ignored_reviews:
        return ""
    h = f"h{level}"
    ok = _list(
        f"{_a(links.review(review), '@' + user)}: counts for tier "
        f"{escape(', '.join(sorted(set(tiers))))}"
        for (user, review), tiers in sorted(counted.items())
    )
    ignored = _list(
        f"{_a(links.review(i.review_id), '@' + i.user)}: {escape(i.why)}"
        for i in decision.ignored_reviews
    )
    return (
        f'<{h} id="{_id(decision, "approvals")}">Approvals</{h}>'
        + (
            f"<p>Counted on head <code>{escape(decision.head_sha[:12])}</code>:</p>{ok}"
            if ok
            else "<p>No approval counts yet.</p>"
        )
        + (f"<p>Did not count:</p>{ignored}" if ignored else "")
    )


def _source(source: str) -> str:
    if not source:
        return ""
    shown = source if source.startswith("(") else f"({source})"
    return f" <span class=muted>{escape(shown)}</span>"


def _file_row(file: FileResult, links: _Links) -> str:
    name = _a(links.diff(file.path), file.path, code=True)
    if file.previous_path:
        previous = escape(file.previous_path)
        name += f"<br><span class=muted>renamed from <code>{previous}</code></span>"
    state = '<span class="state bad">✗ denied</span>' if file.denied else escape(file.tier)
    why = [escape(r.detail) + _source(r.source) for r in file.reasons]
    why += [
        f"{escape(f.detector)}: {escape(f.message)}"
        + (f" <span class=muted>(line {int(f.line)})</span>" if f.line else "")
        for f in file.findings
    ]
    owners = ", ".join(_a(links.owner(o), o) for o in file.owners)
    return (
        "<tr>"
        + _td("File", name)
        + _td("Tier", state)
        + _td("Why", _list(why))
        + _td("Owners", owners or '<span class="muted">none</span>')
        + "</tr>"
    )


def _files(decision: Decision, links: _Links, level: int) -> str:
    if not decision.files:
        return ""
    h = f"h{level}"
    # Blocked files first: that is what the reader came for.
    ordered = sorted(decision.files, key=lambda f: (not f.denied, f.path))
    rows = "".join(_file_row(f, links) for f in ordered)
    return (
        f'<{h} id="{_id(decision, "files")}">Files ({len(decision.files)})</{h}>'
        "<table><thead><tr><th>File</th><th>Tier</th><th>Why</th><th>Owners</th></tr></thead>"
        f"<tbody>{rows}</tbody></table>"
    )


def _sources(decision: Decision, links: _Links, level: int) -> str:
    h = f"h{level}"
    items = []
    for label, ref in (("Policy", decision.policy), ("CODEOWNERS", decision.codeowners)):
        if ref is None:
            items.append(f"<dt>{label}</dt><dd class=muted>none</dd>")
            continue
        if ref.blob and ref.blob != "builtin" and not ref.path.startswith("("):
            where = _a(links.blob(decision.base_sha, ref.path), ref.path, code=True)
        else:
            where = escape(ref.path)
        digest = f" · <code>{escape(ref.digest)}</code>" if ref.digest else ""
        blob = f" · blob <code>{escape(ref.blob[:12])}</code>" if ref.blob else ""
        items.append(f"<dt>{label}</dt><dd>{where}{blob}{digest}</dd>")
    base = _a(links.commit(decision.base_sha), decision.base_sha[:12], code=True)
    return (
        f'<{h} id="{_id(decision, "sources")}">Rules applied</{h}>'
        f"<p>Read from the base commit {base}"
        " (a pull request cannot change the rules it is judged by).</p>"
        f'<dl class="facts">{"".join(items)}</dl>'
    )


def _id(decision: Decision, part: str) -> str:
    # A commit's decision carries its most restrictive pull request's number.
    return f"{decision.kind.value}{int(decision.number)}-{part}"


def _sha(links: _Links, sha: str) -> str:
    return _a(links.commit(sha), sha, code=True) if sha else '<span class="muted">unknown</span>'


def _result(decision: Decision) -> str:
    css, label = _OUTCOME[decision.outcome]
    result = (
        f'<span class="state {css}">{escape(label)}</span> · check conclusion '
        f"<code>{escape(decision.vocabulary.check_run)}</code>"
    )
    if decision.would_block:
        result += " (advisory mode: it would block, but the check passes)"
    if decision.tier:
        result += f" · tier <b>{escape(decision.tier)}</b>"
    return result


def _decision(decision: Decision, web: str, level: int) -> str:
    """One decision: a pull request's, or a commit's or merge group's whose children
    (one per pull request) follow as sections one heading level down."""
    links = _Links(web, decision.repo, decision.number)
    css, _label = _OUTCOME[decision.outcome]
    h = f"h{level}"
    if decision.kind is DecisionKind.PULL:
        facts = [("Pull request", _a(links.pull, f"{decision.repo}#{decision.number}"))]
    else:
        what = "Merge group" if decision.kind is DecisionKind.MERGE_GROUP else "Commit"
        pulls = ", ".join(
            _a(_Links(web, c.repo, c.number).pull, f"#{c.number}") for c in decision.children
        )
        facts = [(what, escape(decision.repo)), ("Pull requests", pulls or "none")]
    facts += [
        ("Result", _result(decision)),
        ("Head", _sha(links, decision.head_sha)),
        ("Base", _sha(links, decision.base_sha)),
    ]
    if decision.author:
        facts.append(
            ("Author", escape(f"@{decision.author}") + (" (agent)" if decision.agent else ""))
        )
    facts.append(("Governance", escape(decision.governance)))
    if decision.request_users or decision.request_teams:
        asked = [f"@{u}" for u in decision.request_users] + [
            f"@{t}" for t in decision.request_teams
        ]
        facts.append(("Review requested", ", ".join(_a(links.owner(a), a) for a in asked)))
    blocked = decision.denied_files
    summary = ""
    if blocked:
        summary = (
            f'<p class="bad"><b>{len(blocked)} file(s) an agent may not change</b>: '
            + ", ".join(_a(links.diff(f.path), f.path, code=True) for f in blocked)
            + "</p>"
        )
    notes = _list(escape(n) for n in decision.notes)
    body = (
        f'<{h} class="{css}">{escape(decision.summary)}</{h}>'
        f'<dl class="facts">{"".join(f"<dt>{k}</dt><dd>{v}</dd>" for k, v in facts)}</dl>'
        f"{summary}"
        + _requirements(decision, links, level + 1)
        + _reviews(decision, links, level + 1)
        + _files(decision, links, level + 1)
        + (f"<h{level + 1}>Notes</h{level + 1}>{notes}" if notes else "")
        + (_sources(decision, links, level + 1) if decision.base_sha else "")
    )
    for child in decision.children:
        body += f'<section class="pull">{_decision(child, web, level + 1)}</section>'
    return body


def decision_page(
    stored: Mapping[str, Any],
    *,
    keys: Mapping[str, Ed25519PublicKey],
    web_url: str = GITHUB,
    record_url: str | None = None,
    viewer: str | None = None,
) -> str:
    """The details page of one stored decision (``{"decision", "envelope", "digest", "at"}``).

    ``web_url`` is GitHub's web UI (``https://HOST`` on Enterprise Server);
    ``record_url`` links the signed record for download; ``viewer`` is the signed-in
    GitHub login, when the page requires one.
    """
    decision = decision_from_dict(dict(stored["decision"]))
    record = (
        f"<p>{_a(record_url, 'Download the signed record')} (DSSE envelope, "
        "<code>application/vnd.in-toto+json</code>); check it offline with "
        "<code>gate verify --jwks …/.well-known/jwks.json</code>.</p>"
        if record_url
        else ""
    )
    main = (
        _decision(decision, web_url, 1)
        + '<h2 id="record">Signed record</h2>'
        + _verified(stored["envelope"], keys, decision.head_sha)
        + f"<dl class=facts><dt>Digest</dt><dd><code>{escape(str(stored.get('digest', '')))}"
        f"</code></dd><dt>Evaluated</dt><dd>{escape(str(stored.get('at', '')))}</dd></dl>" + record
    )
    nav = []
    if decision.kind is DecisionKind.PULL:
        nav.append((_Links(web_url, decision.repo, decision.number).pull, "Pull request on GitHub"))
    if decision.requirements:
        nav.append((f"#{_id(decision, 'requirements')}", "Requirements"))
    if decision.files:
        nav.append((f"#{_id(decision, 'files')}", "Files"))
    nav.append(("#record", "Signed record"))
    return _page(f"merge-gate: {decision.repo}#{decision.number}", main, nav=nav, viewer=viewer)
