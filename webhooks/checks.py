"""Publishing a decision: the ``merge-gate`` check run and the review requests.

- https://docs.github.com/rest/checks/runs#create-a-check-run
- https://docs.github.com/rest/checks/runs#update-a-check-run (50 annotations per request)
- https://docs.github.com/rest/pulls/review-requests#request-reviewers-for-a-pull-request

One check run per head sha: created once, then updated. ``action_required``
carries a ``details_url``; a block is never ``neutral`` or ``skipped``, which
GitHub counts as passing for required checks.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from gate import render
from gate.result import Decision, Outcome, RequirementKind
from webhooks.events import CLEAR_SECRET, CONFIRM_ROLLOUT
from webhooks.github import GitHubApp, GitHubError
from webhooks.store import Store

log = logging.getLogger("merge_gate.checks")

CHECK_NAME = "merge-gate"
ANNOTATIONS_PER_REQUEST = 50


def check_run_output(
    decision: Decision,
    *,
    details_url: str,
    text: str,
    annotations: Sequence[render.Annotation],
    requested: render.Requested,
) -> tuple[dict[str, Any], list[list[dict[str, object]]]]:
    """(first request body fields, remaining annotation batches).

    ``requested``: the review requests GitHub accepted, the only ones the summary names.
    """
    items = [a.to_github() for a in annotations]
    output: dict[str, Any] = {
        "title": render.title(decision)[:255],
        "summary": render.markdown(decision, details_url=details_url, requested=requested),
        "text": text[: render.MAX_TEXT],
        "annotations": items[:ANNOTATIONS_PER_REQUEST],
    }
    body: dict[str, Any] = {
        "name": CHECK_NAME,
        "status": "completed",
        "conclusion": decision.vocabulary.check_run,
        "details_url": details_url,
        "output": output,
    }
    # A denied decision offers nothing a button could fix, but a secret's clearance.
    waiting = [
        r
        for p in decision.pulls
        for r in p.requirements
        if r.kind is RequirementKind.STAGED_ROLLOUT and not r.satisfied
    ]
    if waiting and decision.outcome is not Outcome.DENIED:
        body["actions"] = [
            {
                "label": "Confirm rollout",
                "description": "Confirm a staged rollout of this head",
                "identifier": CONFIRM_ROLLOUT,
            }
        ]
    # A secret's denial is the one a human can clear (a false alarm, or revoked).
    secret = any(
        x.detector == "secrets" and x.deny
        for p in decision.pulls
        for f in p.files
        for x in f.findings
    )
    if secret:
        body["actions"] = [
            {
                "label": "Not a secret",
                "description": "False alarm, or already revoked",
                "identifier": CLEAR_SECRET,
            }
        ]
    rest = [
        items[i : i + ANNOTATIONS_PER_REQUEST]
        for i in range(ANNOTATIONS_PER_REQUEST, len(items), ANNOTATIONS_PER_REQUEST)
    ]
    return body, rest


async def publish(
    gh: GitHubApp,
    store: Store,
    *,
    installation_id: int,
    repo: str,
    head_sha: str,
    body: dict[str, Any],
    more_annotations: Sequence[list[dict[str, object]]] = (),
    look_up: bool = False,
) -> int:
    """Create or update the head's check run; returns its id."""
    key = f"{repo}@{head_sha}"
    known = await store.get("checkrun", key)
    run_id = int(known) if known else None
    if run_id is None and look_up:
        run_id = await find_check_run(
            gh, installation_id=installation_id, repo=repo, head_sha=head_sha
        )
    if run_id is None:
        answer = await gh.call(
            "POST",
            f"/repos/{repo}/check-runs",
            installation_id=installation_id,
            json={**body, "head_sha": head_sha},
            route="POST /check-runs",
        )
        run_id = int(answer.data["id"])
        await store.put("checkrun", key, str(run_id).encode(), ttl=90 * 24 * 3600)
    else:
        await gh.call(
            "PATCH",
            f"/repos/{repo}/check-runs/{run_id}",
            installation_id=installation_id,
            json=body,
            route="PATCH /check-runs/{id}",
        )
    for batch in more_annotations:
        output = {k: body["output"][k] for k in ("title", "summary")}
        await gh.call(
            "PATCH",
            f"/repos/{repo}/check-runs/{run_id}",
            installation_id=installation_id,
            json={"output": {**output, "annotations": batch}},
            route="PATCH /check-runs/{id}",
        )
    return run_id


async def find_check_run(
    gh: GitHubApp, *, installation_id: int, repo: str, head_sha: str
) -> int | None:
    answer = await gh.call(
        "GET",
        f"/repos/{repo}/commits/{head_sha}/check-runs",
        installation_id=installation_id,
        params={"check_name": CHECK_NAME, "filter": "latest"},
        route="GET /commits/{sha}/check-runs",
    )
    for run in (answer.data or {}).get("check_runs", []):
        app = run.get("app") or {}
        if run.get("name") == CHECK_NAME and app.get("id") in (None, gh.app_id):
            return int(run["id"])
    return None


async def request_reviews(
    gh: GitHubApp, *, installation_id: int, repo: str, number: int, decision: Decision
) -> str | None:
    """Ask the decision's reviewers; a 422 (e.g. a team without access) is a note, not fatal."""
    if not (decision.request_users or decision.request_teams) or decision.outcome is Outcome.DENIED:
        return None
    body = {
        "reviewers": list(decision.request_users),
        "team_reviewers": list(decision.request_teams),
    }
    try:
        await gh.call(
            "POST",
            f"/repos/{repo}/pulls/{number}/requested_reviewers",
            installation_id=installation_id,
            json=body,
            route="POST /pulls/{n}/requested_reviewers",
        )
    except GitHubError as error:
        if error.status != 422:
            raise
        log.warning(
            "review request refused", extra={"repo": repo, "pr": number, "error": str(error)}
        )
        return f"GitHub refused the review request: {error}"
    return None
