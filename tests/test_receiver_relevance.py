"""Deliveries that no input of a decision can see cost nothing: no job, no GitHub call."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.fakegithub import deliveries
from tests.fakegithub.server import FakeGitHub
from tests.harness import RunningService, running, settings_env

REPO = "relevance/app"


@pytest.fixture(scope="module")
def receiver(
    fake_github_server: FakeGitHub, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningService]:
    env = settings_env(fake_github_server, tmp_path_factory.mktemp("data"))
    with running(env, workers=0) as svc:  # what is queued stays queued
        yield svc


def _depth(svc: RunningService) -> int:
    depth: int = svc.call(lambda s: s.store.depth())
    return depth


def _send(svc: RunningService, event: str, action: str, **fields: Any) -> tuple[int, str, int]:
    before = _depth(svc)
    # GitHub's examples hold no "edited" delivery: its sibling, with the action set.
    source = {"pull_request": "opened", "pull_request_review": "submitted"}[event]
    payload = deliveries.build(event, source, repo=REPO, installation_id=7, number=5)
    payload.update(fields, action=action)
    answer = svc.deliver(event, action, payload=payload)
    return answer.status_code, answer.json()["message"], _depth(svc) - before


def test_a_title_edit_is_not_queued(receiver: RunningService) -> None:
    changes = {"title": {"from": "old title"}}
    status, message, queued = _send(receiver, "pull_request", "edited", changes=changes)
    assert (status, queued) == (202, 0)
    assert message == "ignored: a title edit changes no decision"


def test_a_new_description_is_evaluated(receiver: RunningService) -> None:
    # Its Requested-by trailers name the delegating human, whose approval stops counting.
    changes = {"title": {"from": "old title"}, "body": {"from": "old body"}}
    status, message, queued = _send(receiver, "pull_request", "edited", changes=changes)
    assert (status, message, queued) == (202, "accepted", 1)


@pytest.mark.parametrize("action", ["assigned", "unassigned"])
def test_an_assignment_is_evaluated(receiver: RunningService, action: str) -> None:
    # An assignee who handed the work over is a delegate: their approval stops counting.
    status, message, queued = _send(receiver, "pull_request", action)
    assert (status, message, queued) == (202, "accepted", 1)


def test_a_new_base_is_evaluated(receiver: RunningService) -> None:
    # Policy and CODEOWNERS come from the base: retargeting changes the decision.
    changes = {"base": {"ref": {"from": "main"}, "sha": {"from": "a" * 40}}}
    status, message, queued = _send(receiver, "pull_request", "edited", changes=changes)
    assert (status, message, queued) == (202, "accepted", 1)


def test_a_comment_review_is_not_queued(receiver: RunningService) -> None:
    example = deliveries.example("pull_request_review", "submitted")
    assert example["review"]["state"] == "commented"  # GitHub's own example
    status, message, queued = _send(
        receiver, "pull_request_review", "submitted", review=example["review"]
    )
    assert (status, queued) == (202, 0)
    assert message == "ignored: a comment review changes no decision"


@pytest.mark.parametrize("state", ["approved", "changes_requested", "APPROVED"])
def test_an_opinionated_review_is_evaluated(receiver: RunningService, state: str) -> None:
    review = {**deliveries.example("pull_request_review", "submitted")["review"], "state": state}
    status, message, queued = _send(receiver, "pull_request_review", "submitted", review=review)
    assert (status, message, queued) == (202, "accepted", 1)


def test_an_edited_review_text_is_not_queued(receiver: RunningService) -> None:
    review = deliveries.example("pull_request_review", "submitted")["review"]
    status, message, queued = _send(
        receiver, "pull_request_review", "edited", review={**review, "state": "approved"}
    )
    assert (status, queued) == (202, 0)
    assert message == "ignored: a review's text edited changes no decision"


def test_a_dismissal_is_evaluated(receiver: RunningService) -> None:
    review = deliveries.example("pull_request_review", "submitted")["review"]
    status, message, queued = _send(
        receiver, "pull_request_review", "dismissed", review={**review, "state": "dismissed"}
    )
    assert (status, message, queued) == (202, "accepted", 1)
