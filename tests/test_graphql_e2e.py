"""The running service reads a head by GraphQL, and by REST when GraphQL fails.

Real process, real HTTP on loopback, the fake GitHub validating every REST call
against GitHub's description and every query against GitHub's GraphQL schema.
"""

from __future__ import annotations

from tests.fakegithub.models import PRFile
from tests.world import World, patch, sha


def _reads(world: World, before: int) -> list[str]:
    return [str(c.operation) for c in world.fake.calls[before:] if c.operation]


def test_a_pull_request_is_read_with_one_graphql_query(world: World) -> None:
    world.open(1, [PRFile("app/auth/a.py", patch=patch())], head=sha(6101))
    world.run(sha(6101), "action_required")
    calls = _reads(world, 0)
    assert calls.count("POST /graphql") == 1
    assert all(c.status == 200 for c in world.fake.calls_to("POST", "/graphql"))
    for rest in ("reviews", "commits"):
        assert f"GET /repos/{{owner}}/{{repo}}/pulls/{{pull_number}}/{rest}" not in calls
    assert "GET /repos/{owner}/{repo}/commits/{commit_sha}/pulls" not in calls


def test_graphql_down_still_gates_through_rest(world: World) -> None:
    world.fake.fail_graphql(502)
    world.open(2, [PRFile("app/auth/a.py", patch=patch())], head=sha(6201))
    run = world.run(sha(6201), "action_required")
    assert world.fake.requested_reviewers(world.repo, 2) == ([], ["security"])
    calls = _reads(world, 0)
    assert "GET /repos/{owner}/{repo}/commits/{commit_sha}/pulls" in calls
    assert "GET /repos/{owner}/{repo}/pulls/{pull_number}/reviews" in calls
    world.fake.fail_graphql(None)
    # The same pull request, approved by its owner: GraphQL is back and says so.
    world.fake.add_review(world.repo, 2, user="sec1", state="APPROVED")
    world.deliver("pull_request_review", "submitted", number=2, head_sha=sha(6201))
    assert world.run(sha(6201), "success").id == run.id
