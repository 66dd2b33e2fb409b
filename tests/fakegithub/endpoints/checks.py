"""Check runs, with the limits GitHub enforces on them.

https://docs.github.com/rest/checks/runs
"""

from __future__ import annotations

from typing import Any

from tests.fakegithub import payloads
from tests.fakegithub.models import CheckRun, Repo
from tests.fakegithub.routing import ApiError, Ctx, Reply, not_found, route, unprocessable
from tests.fakegithub.state import iso

#: "The Checks API limits the number of annotations to a maximum of 50 per API request."
MAX_ANNOTATIONS = 50
#: Maximum length of a check run's output title, summary and text.
MAX_TEXT = 65535


def _field_error(field: str, message: str) -> dict[str, str]:
    return {"resource": "CheckRun", "code": "invalid", "field": field, "message": message}


def check_limits(body: dict[str, Any], *, creating: bool) -> ApiError | None:
    """GitHub's own 422s for a create/update body, or ``None`` if it passes."""
    raw_output = body.get("output")
    output: dict[str, Any] = raw_output if isinstance(raw_output, dict) else {}
    annotations = output.get("annotations") or []
    if isinstance(annotations, list) and len(annotations) > MAX_ANNOTATIONS:
        return unprocessable(
            "Validation Failed",
            errors=[
                _field_error(
                    "output.annotations",
                    f"Only {MAX_ANNOTATIONS} annotations are allowed per request,"
                    f" {len(annotations)} were given",
                )
            ],
        )
    for key in ("title", "summary", "text"):
        value = output.get(key)
        if isinstance(value, str) and len(value) > MAX_TEXT:
            return unprocessable(
                "Validation Failed",
                errors=[
                    _field_error(
                        f"output.{key}", f"{key} is too long (maximum is {MAX_TEXT} characters)"
                    )
                ],
            )
    status = body.get("status")
    conclusion = body.get("conclusion")
    if conclusion is not None and status is not None and status != "completed":
        return unprocessable(
            "Validation Failed",
            errors=[
                _field_error("conclusion", "conclusion can only be set when status is completed")
            ],
        )
    if status == "completed" and conclusion is None and creating:
        return unprocessable(
            "Validation Failed",
            errors=[_field_error("conclusion", "conclusion is required when status is completed")],
        )
    if body.get("completed_at") is not None and conclusion is None and creating:
        return unprocessable(
            "Validation Failed",
            errors=[
                _field_error("conclusion", "conclusion is required when completed_at is given")
            ],
        )
    if conclusion == "stale":
        return unprocessable(
            "Validation Failed", errors=[_field_error("conclusion", "only GitHub can set stale")]
        )
    return None


def _on_invalid_create(ctx: Ctx) -> ApiError | None:
    return check_limits(ctx.body(), creating=True)


def _on_invalid_update(ctx: Ctx) -> ApiError | None:
    return check_limits(ctx.body(), creating=False)


def _known_shas(ctx: Ctx, repo: Repo) -> set[str]:
    shas = set(repo.branches.values()) | set(repo.trees)
    for p in ctx.state.pulls.values():
        if (
            p.repo.lower() == repo.full_name.lower()
            or p.head_repo.lower() == repo.full_name.lower()
        ):
            shas.update({p.head_sha, p.base_sha, *(c.sha for c in p.commits)})
    shas.update(r.head_sha for r in ctx.state.runs.values() if r.repo == repo.full_name)
    return shas


def _apply(run: CheckRun, body: dict[str, Any]) -> None:
    for key in ("name", "external_id", "details_url", "started_at", "completed_at"):
        if key in body:
            setattr(run, key, body[key])
    if "status" in body:
        run.status = body["status"]
    if body.get("conclusion") is not None:
        # "Providing conclusion will automatically set the status parameter to completed."
        run.conclusion = body["conclusion"]
        run.status = "completed"
    if run.status == "completed" and run.completed_at is None:
        run.completed_at = iso()
    if run.status == "in_progress" and run.started_at is None:
        run.started_at = iso()
    output = body.get("output")
    if isinstance(output, dict):
        for key in ("title", "summary", "text"):
            if key in output:
                setattr(run, key, output[key])
        # Annotations accumulate across requests; that is how >50 get onto a run.
        run.annotations.extend(dict(a) for a in output.get("annotations") or [])
    if "actions" in body:
        run.actions = list(body["actions"])


@route("POST", "/repos/{owner}/{repo}/check-runs", on_invalid=_on_invalid_create)
def create_run(ctx: Ctx) -> Reply:
    repo = ctx.repo()
    body = ctx.body()
    error = check_limits(body, creating=True)
    if error is not None:
        raise error
    if body["head_sha"] not in _known_shas(ctx, repo):
        raise unprocessable(f"No commit found for SHA: {body['head_sha']}")
    assert ctx.token is not None
    run = CheckRun(
        id=ctx.state.next_check_run_id(),
        repo=repo.full_name,
        head_sha=body["head_sha"],
        name=body["name"],
        app_id=ctx.state.installations[ctx.token.installation_id].app_id,
        started_at=iso(),
    )
    _apply(run, body)
    ctx.state.runs[run.id] = run
    return Reply(201, payloads.check_run_json(ctx.api, ctx.state, run))


def _run(ctx: Ctx) -> CheckRun:
    repo = ctx.repo()
    run = ctx.state.runs.get(int(ctx.params["check_run_id"]))
    if run is None or run.repo != repo.full_name:
        raise not_found()
    return run


@route("PATCH", "/repos/{owner}/{repo}/check-runs/{check_run_id}", on_invalid=_on_invalid_update)
def update_run(ctx: Ctx) -> Reply:
    run = _run(ctx)
    assert ctx.token is not None
    if ctx.state.installations[ctx.token.installation_id].app_id != run.app_id:
        # An App may only update its own check runs.
        raise ApiError(
            403, f"Invalid app_id `{run.app_id}` - check run can only be modified by its creator"
        )
    error = check_limits(ctx.body(), creating=False)
    if error is not None:
        raise error
    _apply(run, ctx.body())
    return Reply(body=payloads.check_run_json(ctx.api, ctx.state, run))


@route("GET", "/repos/{owner}/{repo}/check-runs/{check_run_id}")
def get_run(ctx: Ctx) -> Reply:
    return Reply(body=payloads.check_run_json(ctx.api, ctx.state, _run(ctx)))


@route("GET", "/repos/{owner}/{repo}/check-runs/{check_run_id}/annotations")
def list_annotations(ctx: Ctx) -> Reply:
    run = _run(ctx)
    chunk, headers = ctx.page(run.annotations)
    return Reply(body=[payloads.annotation_json(run, a) for a in chunk], headers=headers)


@route("GET", "/repos/{owner}/{repo}/commits/{ref}/check-runs", greedy=("ref",))
def runs_for_ref(ctx: Ctx) -> Reply:
    repo = ctx.repo()
    ref = ctx.params["ref"].removeprefix("refs/heads/")
    sha = repo.branches.get(ref, ref)
    runs = [r for r in ctx.state.runs.values() if r.repo == repo.full_name and r.head_sha == sha]
    if "check_name" in ctx.query:
        runs = [r for r in runs if r.name == ctx.query["check_name"]]
    if "status" in ctx.query:
        runs = [r for r in runs if r.status == ctx.query["status"]]
    if "app_id" in ctx.query:
        runs = [r for r in runs if r.app_id == ctx.int_query("app_id", -1)]
    if ctx.query.get("filter", "latest") == "latest":
        # "latest" keeps the most recent run of each name (per app).
        newest: dict[tuple[str, int], CheckRun] = {}
        for r in runs:
            key = (r.name, r.app_id)
            if key not in newest or r.id > newest[key].id:
                newest[key] = r
        runs = list(newest.values())
    runs.sort(key=lambda r: r.id, reverse=True)
    chunk, headers = ctx.page(runs)
    return Reply(
        body={
            "total_count": len(runs),
            "check_runs": [payloads.check_run_json(ctx.api, ctx.state, r) for r in chunk],
        },
        headers=headers,
    )
