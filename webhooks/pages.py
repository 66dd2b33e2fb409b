"""The details page of a decision: server-rendered HTML, every user string escaped.

Viewing a page reads the stored decision and writes nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from html import escape
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from gate.dsse import InvalidEnvelope
from gate.result import decision_from_dict
from gate.statement import verify_record

_STYLE = """
body{font:14px/1.5 system-ui,sans-serif;margin:2rem auto;max-width:72rem;padding:0 1rem}
table{border-collapse:collapse;width:100%;margin:1rem 0}
td,th{border:1px solid #d0d7de;padding:.3rem .5rem;text-align:left;vertical-align:top}
.pass{color:#1a7f37}.needs_approval{color:#9a6700}.denied,.error{color:#cf222e}code{font-size:90%}
"""


def _page(title: str, body: str) -> str:
    return (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        f"<title>{escape(title)}</title><style>{_STYLE}</style></head><body>{body}</body></html>"
    )


def not_found(decision_id: str) -> str:
    return _page("Decision not found", f"<h1>No decision {escape(decision_id)}</h1>")


def _verified(
    envelope: Mapping[str, object], keys: Mapping[str, Ed25519PublicKey], head: str
) -> str:
    try:
        verify_record(envelope, keys=keys, expect_commit=head)
    except (InvalidEnvelope, ValueError) as error:
        return f"<p class=denied>✗ The signed record does not verify: {escape(str(error))}</p>"
    return "<p class=pass>✓ The signed record verifies against this service's published keys.</p>"


def decision_page(stored: Mapping[str, Any], *, keys: Mapping[str, Ed25519PublicKey]) -> str:
    decision = decision_from_dict(dict(stored["decision"]))
    outcome = decision.outcome.value
    rows_files = "".join(
        "<tr><td><code>{}</code>{}</td><td>{}</td><td><ul>{}</ul></td></tr>".format(
            escape(f.path),
            f" (from <code>{escape(f.previous_path)}</code>)" if f.previous_path else "",
            ("denied · " if f.denied else "") + escape(f.tier),
            "".join(
                f"<li>{escape(r.detail)} <small>{escape(r.source)}</small></li>" for r in f.reasons
            ),
        )
        for f in decision.files
    )
    rows_reqs = "".join(
        "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>".format(
            "✓" if r.satisfied else "…",
            escape(r.tier),
            escape(r.kind),
            escape(", ".join(r.owners) or r.owners_source),
            escape(r.explanation),
        )
        for r in decision.requirements
    )
    ignored = "".join(
        f"<li>@{escape(i.user)} (review {i.review_id}): {escape(i.why)}</li>"
        for i in decision.ignored_reviews
    )
    notes = "".join(f"<li>{escape(n)}</li>" for n in decision.notes)
    body = f"""
<h1 class={escape(outcome)}>{escape(decision.summary)}</h1>
<p><b>{escape(decision.repo)}#{decision.number}</b> at <code>{escape(decision.head_sha)}</code>,
base <code>{escape(decision.base_sha)}</code> · check conclusion
<b>{escape(decision.vocabulary.check_run)}</b> · evaluated {escape(str(stored.get("at", "")))}</p>
<p>{escape(decision.governance)}.</p>
{_verified(stored["envelope"], keys, decision.head_sha)}
<p>Record digest <code>{escape(str(stored.get("digest", "")))}</code></p>
<h2>Requirements</h2><table><tr><th></th><th>tier</th><th>kind</th><th>who</th><th>status</th></tr>{rows_reqs}</table>
{f"<h2>Approvals that do not count</h2><ul>{ignored}</ul>" if ignored else ""}
<h2>Files</h2><table><tr><th>file</th><th>tier</th><th>why</th></tr>{rows_files}</table>
{f"<h2>Notes</h2><ul>{notes}</ul>" if notes else ""}
"""
    return _page(f"merge-gate: {decision.repo}#{decision.number}", body)
