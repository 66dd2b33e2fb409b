"""merge-gate as a running App: real HTTP in, the fake GitHub out."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from gate import render
from gate.statement import verify_record
from tests.fakegithub.models import PRCommit, PRFile
from tests.fakegithub.server import FakeGitHub
from tests.harness import SECRET, RunningService, settings_env, wait_for
from tests.world import OBSERVED, World, patch, sha


def test_docs_only_agent_pr_passes_and_requests_nobody(world: World) -> None:
    world.open(1, [PRFile("docs/guide.md", patch=patch())], head=sha(101))
    run = world.run(sha(101), "success")
    assert run.name == "merge-gate"
    assert world.fake.requested_reviewers(world.repo, 1) == ([], [])
    assert world.fake.violations == []


def test_auth_change_blocks_requests_owner_team_and_annotates(world: World) -> None:
    world.open(
        2, [PRFile("app/auth/login.py", patch="@@ -10,2 +10,4 @@\n a\n+b\n+c\n d")], head=sha(201)
    )
    run = world.run(sha(201), "action_required")
    assert run.details_url.startswith("http://merge-gate.test/decisions/")
    assert world.fake.requested_reviewers(world.repo, 2) == ([], ["security"])
    annotation = next(a for a in run.annotations if a["path"] == "app/auth/login.py")
    assert (annotation["start_line"], annotation["end_line"]) == (11, 12)
    assert annotation["annotation_level"] == "warning"
    assert annotation["raw_details"].startswith("sha256:")
    assert render.escape("@" + world.org + "/security") in run.summary


def test_owner_approval_passes_and_push_blocks_again(world: World) -> None:
    world.open(3, [PRFile("app/auth/login.py", patch=patch())], head=sha(301))
    world.run(sha(301), "action_required")
    world.fake.add_review(world.repo, 3, user="sec1", commit_id=sha(301))
    world.deliver("pull_request_review", "submitted", number=3, head_sha=sha(301))
    world.run(sha(301), "success")
    # A push moves the head: the approval is stale, the new head is blocked.
    world.fake.push(world.repo, 3, sha(302), files=[PRFile("app/auth/login.py", patch=patch(2))])
    world.deliver("pull_request", "synchronize", number=3, head_sha=sha(302))
    run = world.run(sha(302), "action_required")
    assert "older commit" in run.summary


@pytest.mark.parametrize(
    ("user", "user_type", "why"),
    [
        ("dev1", "User", "needs 1 more approval"),
        ("devin-ai-integration[bot]", "Bot", "the PR author"),
        ("helper[bot]", "Bot", "a Bot account"),
        ("copilot-swe-agent", "User", "an agent identity"),
    ],
)
def test_approvals_that_do_not_count_leave_it_blocked(
    world: World, user: str, user_type: str, why: str
) -> None:
    world.open(4, [PRFile("app/auth/x.py", patch=patch())], head=sha(401))
    world.run(sha(401), "action_required")
    world.fake.add_review(world.repo, 4, user=user, user_type=user_type, commit_id=sha(401))
    world.deliver("pull_request_review", "submitted", number=4, head_sha=sha(401))
    world.settle()
    run = world.run(sha(401))
    assert run.conclusion == "action_required"
    assert why in run.summary


def test_rename_out_of_a_gated_folder_is_gated(world: World) -> None:
    moved = PRFile(
        "app/misc/token.py",
        status="renamed",
        previous_filename="app/auth/token.py",
        additions=0,
        deletions=0,
        patch=None,
    )
    world.open(5, [moved], head=sha(501))
    run = world.run(sha(501), "action_required")
    assert "app/auth/token.py" in run.summary
    # Both the old path's owners and the new path's owners must approve.
    assert world.fake.requested_reviewers(world.repo, 5)[1] == ["devs", "security"]


def test_policy_and_codeowners_edits_are_judged_by_the_base_versions(world: World) -> None:
    head = sha(601)
    # The head loosens everything; the base's rules still apply.
    world.fake.set_file(world.repo, head, ".github/CODEOWNERS", "* @" + world.org + "/devs\n")
    world.fake.set_file(
        world.repo,
        head,
        ".github/merge-gate.yml",
        "version: 1\ntiers: [{name: low, paths: ['**'], require: {approvals: 0}}]\n"
        "default_tier: low\nunseen_content_tier: low\n",
    )
    world.open(
        6,
        [
            PRFile(".github/merge-gate.yml", patch=patch()),
            PRFile(".github/CODEOWNERS", patch=patch()),
            PRFile("app/auth/x.py", patch=patch()),
        ],
        head=head,
    )
    run = world.run(head, "action_required")
    assert "governance" in run.summary
    # The review request and the check-run write go out together: wait for both.
    wait_for(
        lambda: world.fake.requested_reviewers(world.repo, 6)[1] == ["security"],
        what="the security team asked",
    )
    assert not world.fake.calls_to("GET", f"/repos/{world.repo}/git/blobs/{head}")


def test_bad_signature_is_401_and_nothing_happens(world: World) -> None:
    world.add_pull(7, [PRFile("x.py")], head=sha(701))
    before = len(world.fake.calls)
    response = world.svc.deliver(
        "pull_request",
        "opened",
        secret="wrong-secret-0123456789",
        repo=world.repo,
        installation_id=world.installation,
        number=7,
        head_sha=sha(701),
    )
    assert response.status_code == 401
    unsigned = httpx.post(
        f"{world.svc.url}/api/github/webhooks",
        content=b"{}",
        headers={"X-GitHub-Event": "ping", "X-GitHub-Delivery": "x"},
    )
    assert unsigned.status_code == 401
    world.settle()
    assert len(world.fake.calls) == before
    # Counted with bounded labels, never written to the audit log: a stranger
    # posting forged deliveries must not be able to grow it.
    entries = world.svc.call(lambda s: s.audit.query())
    assert not any(e.get("kind") == "delivery_rejected" for e in entries)
    metrics = httpx.get(f"{world.svc.url}/metrics").text
    assert 'event="pull_request",result="bad_signature"' in metrics
    forged = httpx.post(
        f"{world.svc.url}/api/github/webhooks",
        content=b"{}",
        headers={"X-GitHub-Event": "x" * 30 + "-made-up", "X-GitHub-Delivery": "y"},
    )
    assert forged.status_code == 401
    assert "made-up" not in httpx.get(f"{world.svc.url}/metrics").text


def test_same_delivery_three_times_gives_one_check_run(world: World) -> None:
    world.add_pull(8, [PRFile("app/views.py", patch=patch())], head=sha(801))
    codes = [
        world.deliver(
            "pull_request", "opened", number=8, head_sha=sha(801), delivery_id="dup-1"
        ).status_code
        for _ in range(3)
    ]
    assert codes == [202, 200, 200]
    world.run(sha(801), "action_required")
    world.settle()
    assert len(world.fake.check_runs(world.repo, sha(801))) == 1
    assert len(world.fake.calls_to("POST", f"/repos/{world.repo}/check-runs")) == 1


def test_3000_file_cap_fails_closed(world: World) -> None:
    files = [PRFile(f"docs/{i}.md", patch=patch()) for i in range(3001)]
    world.open(9, files, head=sha(901))
    run = world.run(sha(901), "failure")
    assert "3000" in run.summary


def test_server_errors_and_secondary_rate_limits_end_in_the_right_answer(world: World) -> None:
    world.add_pull(10, [PRFile("app/auth/x.py", patch=patch())], head=sha(1001))
    world.fake.fail_next(3, status=502)
    world.fake.secondary_rate_limit_next(2, retry_after=1)
    world.deliver("pull_request", "opened", number=10, head_sha=sha(1001))
    world.run(sha(1001), "action_required")
    assert any(c.status == 502 for c in world.fake.calls)
    assert any(c.status in (403, 429) for c in world.fake.calls)


def test_human_pr_gets_a_passing_check_saying_it_is_not_governed(world: World) -> None:
    world.open(
        11,
        [PRFile(".github/workflows/ci.yml", patch=patch())],
        head=sha(1101),
        author="alice",
        author_type="User",
    )
    run = world.run(sha(1101), "success")
    assert "Not governed" in run.title


def test_human_pr_with_agent_coauthored_commits_is_governed(world: World) -> None:
    commit = PRCommit(
        sha(1201),
        message="Fix\n\nCo-authored-by: Claude <noreply@anthropic.com>",
        author_login="alice",
    )
    world.open(
        12,
        [PRFile("app/auth/x.py", patch=patch())],
        head=sha(1201),
        author="alice",
        author_type="User",
        commits=[commit],
    )
    run = world.run(sha(1201), "action_required")
    assert "co-authored by agent Claude" in run.summary


def test_workflow_edit_by_agent_is_denied(world: World) -> None:
    world.open(13, [PRFile(".github/workflows/ci.yml", patch=patch())], head=sha(1301))
    run = world.run(sha(1301), "failure")
    assert run.title.startswith("Denied")
    assert run.annotations[0]["annotation_level"] == "failure"
    assert world.fake.requested_reviewers(world.repo, 13) == ([], [])


def test_draft_waits_for_ready_for_review_before_requesting(world: World) -> None:
    world.open(14, [PRFile("app/auth/x.py", patch=patch())], head=sha(1401), draft=True)
    world.run(sha(1401), "action_required")
    assert world.fake.requested_reviewers(world.repo, 14) == ([], [])
    world.fake.pull(world.repo, 14).draft = False
    world.deliver("pull_request", "ready_for_review", number=14, head_sha=sha(1401))
    wait_for(
        lambda: world.fake.requested_reviewers(world.repo, 14) == ([], ["security"]),
        what="review request",
    )


def test_team_without_access_is_noted_not_fatal(world: World) -> None:
    world.fake.teams_without_access.add(f"{world.org}/security")
    world.open(15, [PRFile("app/auth/x.py", patch=patch())], head=sha(1501))
    world.run(sha(1501), "action_required")
    world.settle()
    summary = world.run(sha(1501)).summary
    assert "refused the review request" in summary
    # Only requests GitHub accepted are named as made.
    assert "Review requested from" not in summary


def test_more_than_50_annotations_go_in_follow_up_patches(world: World) -> None:
    files = [PRFile(f"app/auth/f{i}.py", patch=patch()) for i in range(120)]
    world.open(16, files, head=sha(1601))
    run = world.run(sha(1601), "action_required")
    world.settle()
    assert len(world.fake.check_runs(world.repo, sha(1601))[-1].annotations) == 120
    # 50 with the create, then 50 and 20 in follow-up PATCHes.
    patches = world.fake.calls_to("PATCH", "/repos/{owner}/{repo}/check-runs/{check_run_id}")
    assert [len(c.json["output"]["annotations"]) for c in patches] == [50, 20]
    assert run.id == world.fake.check_runs(world.repo, sha(1601))[-1].id


def test_invalid_policy_on_base_fails_closed_with_positions(world: World) -> None:
    world.fake.set_file(
        world.repo, world.base, ".github/merge-gate.yml", "version: 1\nbogus: true\n"
    )
    world.open(17, [PRFile("docs/a.md", patch=patch())], head=sha(1701))
    run = world.run(sha(1701), "failure")
    assert ".github/merge-gate.yml:2:1: unknown key 'bogus'" in run.summary


def test_staged_rollout_button_counts_only_for_a_qualifying_user(world: World) -> None:
    world.open(
        18,
        [PRFile("migrations/0003.sql", patch="@@ -0,0 +1 @@\n+ALTER TABLE t ADD c int;")],
        head=sha(1801),
    )
    world.fake.add_review(world.repo, 18, user="dba1", commit_id=sha(1801))
    world.deliver("pull_request_review", "submitted", number=18, head_sha=sha(1801))
    run = world.run(sha(1801), "action_required")
    wait_for(
        lambda: "Confirm rollout" in str(world.fake.check_runs(world.repo, sha(1801))[-1].actions),
        what="button",
    )

    def click(user: str) -> None:
        fields = {"head_sha": sha(1801), "pull_requests": [{"number": 18}], "id": run.id}
        action = {"requested_action": {"identifier": "confirm_rollout"}}
        assert (
            world.deliver_patched(
                "check_run",
                "requested_action",
                node="check_run",
                fields=fields,
                sender=user,
                top=action,
            )
            == 202
        )

    click("dev1")
    world.settle()
    assert world.fake.check_runs(world.repo, sha(1801))[-1].conclusion == "action_required"
    click("dba1")
    world.run(sha(1801), "success")


def test_fork_check_run_rerequest_is_mapped_by_head_sha(world: World) -> None:
    world.add_pull(
        19, [PRFile("docs/a.md", patch=patch())], head=sha(1901), head_repo="someone/app"
    )
    fields = {"head_sha": sha(1901), "pull_requests": []}
    assert world.deliver_patched("check_run", "rerequested", node="check_run", fields=fields) == 202
    world.run(sha(1901), "success")


def test_merge_group_passes_only_when_every_pr_passes(world: World) -> None:
    world.open(20, [PRFile("docs/a.md", patch=patch())], head=sha(2001))
    world.open(21, [PRFile("app/auth/x.py", patch=patch())], head=sha(2101))
    world.settle()
    world.fake.set_compare(world.repo, world.base, sha(2201), commits=[sha(2001), sha(2101)])

    def group(head: str) -> None:
        world.fake.set_branch(world.repo, f"gh-readonly-queue/main/pr-21-{head}", head)
        fields = {
            "head_sha": head,
            "base_sha": world.base,
            "head_ref": f"refs/heads/gh-readonly-queue/main/pr-21-{head}",
        }
        assert (
            world.deliver_patched(
                "merge_group", "checks_requested", node="merge_group", fields=fields
            )
            == 202
        )

    group(sha(2201))
    run = world.run(sha(2201), "failure")
    assert "#21" in run.summary
    world.fake.add_review(world.repo, 21, user="sec1", commit_id=sha(2101))
    world.fake.set_compare(world.repo, world.base, sha(2202), commits=[sha(2001), sha(2101)])
    group(sha(2202))
    world.run(sha(2202), "success")


def test_details_page_escapes_content_verifies_and_writes_nothing(world: World) -> None:
    evil = "app/auth/<script>alert(1)</script>.py"
    world.open(22, [PRFile(evil, patch=patch())], head=sha(2201 + 50))
    run = world.run(sha(2251), "action_required")
    world.settle()
    depth_before = world.svc.call(lambda s: s.audit.size())
    page = httpx.get(run.details_url.replace("http://merge-gate.test", world.svc.url))
    assert page.status_code == 200
    assert "<script>alert(1)" not in page.text
    assert "&lt;script&gt;" in page.text
    assert "✓ Verifies" in page.text
    assert world.svc.call(lambda s: s.audit.size()) == depth_before
    # The check run's text carries the signed record; it verifies against the JWKS.
    envelope = json.loads(run.text.split("```json\n", 1)[1].split("\n```", 1)[0])
    jwks = httpx.get(f"{world.svc.url}/.well-known/jwks.json").json()
    from gate.jwk import parse_jwks

    statement = verify_record(envelope, keys=parse_jwks(jwks), expect_commit=sha(2251))
    assert statement["predicate"]["conclusion"] == "needs_approval"  # type: ignore[index]


@pytest.mark.parametrize(
    ("headers", "body", "status"),
    [
        ({"X-GitHub-Event": "pull_request"}, b"{}", 400),  # no delivery id
        ({"X-GitHub-Delivery": "d"}, b"{}", 400),  # no event
        ({"X-GitHub-Event": "pull_request", "X-GitHub-Delivery": "d"}, b"{not json", 400),
        (
            {"X-GitHub-Event": "pull_request", "X-GitHub-Delivery": "d2"},
            b'{"action": "opened"}',
            400,
        ),
        ({"X-GitHub-Event": "star", "X-GitHub-Delivery": "d3"}, b'{"action": "created"}', 202),
        ({"X-GitHub-Event": "pull_request", "X-GitHub-Delivery": "d4"}, b"[1, 2]", 400),
        (
            {"X-GitHub-Event": "pull_request", "X-GitHub-Delivery": "d5"},
            b'{"action": "opened", "repository": 7, "pull_request": {"number": 1}}',
            400,
        ),
        (
            {"X-GitHub-Event": "pull_request", "X-GitHub-Delivery": "d6"},
            b'{"action": "opened", "repository": {"full_name": "o/r"},'
            b' "pull_request": {"number": "1", "head": {"sha": "a"}}}',
            400,
        ),
    ],
)
def test_malformed_deliveries_get_clear_errors(
    service: RunningService, headers: dict[str, str], body: bytes, status: int
) -> None:
    from tests.fakegithub.deliveries import sign

    response = httpx.post(
        f"{service.url}/api/github/webhooks",
        content=body,
        headers={**headers, "X-Hub-Signature-256": sign(body, SECRET)},
    )
    assert response.status_code == status
    assert response.json()["message"]


def test_oversized_body_is_413_before_buffering(service: RunningService) -> None:
    import socket

    # A declared length over the cap is refused before any of the body is read.
    host, port = service.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as conn:
        conn.sendall(
            b"POST /api/github/webhooks HTTP/1.1\r\nHost: x\r\nX-GitHub-Event: ping\r\n"
            b"X-GitHub-Delivery: big\r\nContent-Length: 27262976\r\n\r\n" + b"x" * 1024
        )
        assert conn.recv(64).startswith(b"HTTP/1.1 413")

    # A chunked body is counted as it streams in.
    def chunks() -> Iterator[bytes]:
        for _ in range(27):
            yield b"x" * (1024 * 1024)

    response = httpx.post(
        f"{service.url}/api/github/webhooks",
        content=chunks(),
        headers={"X-GitHub-Event": "ping", "X-GitHub-Delivery": "big2"},
    )
    assert response.status_code == 413


def test_probes_metrics_and_jwks(service: RunningService) -> None:
    assert httpx.get(f"{service.url}/healthz").status_code == 200
    assert httpx.get(f"{service.url}/readyz").json()["message"] == "ready"
    metrics = httpx.get(f"{service.url}/metrics").text
    assert "merge_gate_deliveries_total" in metrics
    assert "merge_gate_queue_depth" in metrics
    jwks = httpx.get(f"{service.url}/.well-known/jwks.json")
    key = jwks.json()["keys"][0]
    assert (key["kty"], key["crv"], key["alg"], key["use"]) == ("OKP", "Ed25519", "EdDSA", "sig")
    assert "max-age" in jwks.headers["cache-control"]


def test_settings_refuse_to_start_naming_the_variable(
    fake_github_server: FakeGitHub, tmp_path: Path
) -> None:
    from webhooks.settings import SettingsError, load

    env = settings_env(fake_github_server, tmp_path)
    for name, value, message in [
        ("GATE_WEBHOOK_SECRET", "", "GATE_WEBHOOK_SECRET: is required"),
        ("GATE_WEBHOOK_SECRET", "short", "GATE_WEBHOOK_SECRET: must be at least 16"),
        ("GATE_APP_ID", "abc", "GATE_APP_ID"),
        ("GATE_PRIVATE_KEY", "not a key", "GATE_PRIVATE_KEY: not a PEM private key"),
    ]:
        with pytest.raises(SettingsError, match=message):
            load({**env, name: value})
    settings = load(env)
    assert SECRET not in repr(settings)
    assert "PRIVATE KEY" not in repr(settings)


def test_expired_installation_token_is_refreshed_once(world: World) -> None:
    world.open(23, [PRFile("docs/a.md", patch=patch())], head=sha(2301))
    world.run(sha(2301), "success")
    world.fake.expire_tokens()
    world.fake.push(world.repo, 23, sha(2302), files=[PRFile("docs/b.md", patch=patch())])
    world.deliver("pull_request", "synchronize", number=23, head_sha=sha(2302))
    world.run(sha(2302), "success")
    assert any(c.status == 401 for c in world.fake.calls)


def test_label_that_marks_an_agent_pr_is_re_evaluated(world: World) -> None:
    world.fake.set_file(
        world.repo,
        world.base,
        ".github/merge-gate.yml",
        "version: 1\nagents:\n  labels: [ai-generated]\n",
    )
    world.open(
        24,
        [PRFile("app/auth/x.py", patch=patch())],
        head=sha(2401),
        author="alice",
        author_type="User",
    )
    world.run(sha(2401), "success")
    world.fake.pull(world.repo, 24).labels.append("ai-generated")
    world.deliver("pull_request", "labeled", number=24, head_sha=sha(2401))
    run = world.run(sha(2401), "action_required")
    assert "label 'ai-generated' marks an agent PR" in run.summary


def test_check_suite_request_evaluates_the_pull_requests_of_its_head(world: World) -> None:
    world.add_pull(25, [PRFile("docs/a.md", patch=patch())], head=sha(2501))
    fields = {"head_sha": sha(2501), "pull_requests": [{"number": 25}]}
    assert (
        world.deliver_patched("check_suite", "requested", node="check_suite", fields=fields) == 202
    )
    world.run(sha(2501), "success")


def test_configuration_reread_after_invalidation_is_a_304(world: World) -> None:
    world.open(26, [PRFile("docs/a.md", patch=patch())], head=sha(2601))
    world.run(sha(2601), "success")
    # An installation event drops the parsed-configuration cache; the listing is
    # revalidated with its ETag and the blob is not fetched again.
    world.svc.deliver(
        "installation", "new_permissions_accepted", installation_id=world.installation
    )
    world.settle()
    world.add_pull(27, [PRFile("app/auth/x.py", patch=patch())], head=sha(2701))
    world.deliver("pull_request", "opened", number=27, head_sha=sha(2701))
    world.run(sha(2701), "action_required")
    listings = world.fake.calls_to("GET", "/repos/{owner}/{repo}/contents/{path}")
    assert [c.status for c in listings if c.path.endswith("/contents/.github")] == [200, 304]
    assert len(world.fake.calls_to("GET", "/repos/{owner}/{repo}/git/blobs/{file_sha}")) == 1


def test_manifest_permissions_are_exactly_those_the_calls_need() -> None:
    """Runs last in this module: derives the permission set from the calls made above."""
    import yaml

    from webhooks.permissions import OPERATIONS, OPTIONAL_OPERATIONS, needed_permissions

    assert len(OBSERVED) >= 10, "the end-to-end tests above must run first"
    unknown = sorted(op for op in OBSERVED if op not in OPERATIONS)
    assert unknown == [], f"calls missing from webhooks/permissions.py: {unknown}"
    manifest = yaml.safe_load((Path(__file__).parent.parent / "app-manifest.yml").read_text())
    # Optional calls (a break-glass review issue) need what only some installations grant.
    required = sorted(op for op in OBSERVED if op not in OPTIONAL_OPERATIONS)
    derived = needed_permissions(required, events=manifest["default_events"])
    assert derived == manifest["default_permissions"]


def test_advisory_mode_never_blocks_and_counts_what_it_would_have_blocked(world: World) -> None:
    world.fake.set_file(
        world.repo,
        world.base,
        ".github/merge-gate.yml",
        "version: 1\nmode: advisory\nfallback_owners: ['@" + world.org + "/security']\n",
    )
    before = httpx.get(f"{world.svc.url}/metrics").text
    world.open(95, [PRFile("app/auth/x.py", patch=patch())], head=sha(9501))
    run = world.run(sha(9501), "success")
    assert run.title.startswith("Would block (advisory mode): Needs approval")
    # Evaluated, signed and annotated as usual; nobody is asked for review.
    assert any(a["path"] == "app/auth/x.py" for a in run.annotations)
    assert world.fake.requested_reviewers(world.repo, 95) == ([], [])
    after = httpx.get(f"{world.svc.url}/metrics").text

    def count(text: str) -> float:
        line = next(
            (x for x in text.splitlines() if x.startswith("merge_gate_would_block_total")), ""
        )
        return float(line.split()[-1]) if line else 0.0

    assert count(after) == count(before) + 1
    entries = world.svc.call(lambda s: s.audit.query())
    mine = [e for e in entries if e.get("repo") == world.repo and e.get("pr") == 95]
    assert mine[-1]["conclusion"] == "blocked"
    assert mine[-1]["advisory"] is True


BAD_POLICY = (
    "version: 1\n"
    "bogus: true\n"
    "tiers:\n"
    "  - name: low\n"
    '    require: {approvals: "two"}\n'
    "unseen_content_tier: low\n"
    "default_tier: low\n"
    "scope: {deny: [{paths: ['x/**']}]}\n"
)


@pytest.mark.parametrize(
    ("author", "author_type"), [("devin-ai-integration[bot]", "Bot"), ("alice", "User")]
)
def test_a_new_policy_with_mistakes_is_annotated_on_each_line_and_cannot_pass(
    world: World, author: str, author_type: str
) -> None:
    number = 96 if author_type == "Bot" else 97
    head = sha(9600 + number)
    world.fake.set_file(world.repo, head, ".github/merge-gate.yml", BAD_POLICY)
    world.open(
        number,
        [PRFile(".github/merge-gate.yml", patch=patch())],
        head=head,
        author=author,
        author_type=author_type,
    )
    run = world.run(head, "failure")
    lines = sorted(
        a["start_line"]
        for a in run.annotations
        if a["path"] == ".github/merge-gate.yml" and a["annotation_level"] == "failure"
    )
    assert lines == [2, 5, 8]
    assert "is invalid (3 error(s)" in run.summary


def test_a_policy_change_shows_what_it_would_decide_on_the_last_merged_prs(world: World) -> None:
    for number, path in ((98_001, "app/auth/login.py"), (98_002, "docs/a.md")):
        pull = world.fake.add_pull(
            world.repo, number, head_sha=sha(number), files=[PRFile(path, patch=patch())]
        )
        pull.state, pull.merged = "closed", True
    # The new policy makes docs gated too.
    loosened = (
        "version: 1\n"
        "tiers:\n"
        "  - {name: low, paths: ['nothing/**'], require: {approvals: 0}}\n"
        "  - {name: medium, require: {approvals: 1}}\n"
        "default_tier: medium\nunseen_content_tier: medium\n"
    )
    head = sha(9901)
    world.fake.set_file(world.repo, head, ".github/merge-gate.yml", loosened)
    world.open(99, [PRFile(".github/merge-gate.yml", patch=patch())], head=head)
    run = world.run(head, "action_required")
    assert "The new policy on the last 2 merged pull requests" in run.summary
    row = next(line for line in run.summary.splitlines() if line.startswith("| #98002"))
    assert "low: CI only" in row
    assert "**medium: gated**" in row


def test_a_denied_pr_requests_nobody_and_says_only_how_to_unblock(world: World) -> None:
    files = [
        PRFile(".github/workflows/ci.yml", patch=patch()),
        PRFile("app/auth/x.py", patch=patch()),
    ]
    world.open(93, files, head=sha(9301))
    run = world.run(sha(9301), "failure")
    assert world.fake.requested_reviewers(world.repo, 93) == ([], [])
    assert "To unblock" in run.summary
    assert "#### Requirements" not in run.summary
    assert "Review requested" not in run.summary
    assert run.actions == []


def test_a_3000_file_summary_lists_gated_files_and_collapses_the_rest(world: World) -> None:
    files = [PRFile(f"docs/{i}.md", patch=patch()) for i in range(2989)]
    files += [PRFile(f"app/auth/{i}.py", patch=patch()) for i in range(10)]
    world.open(94, files, head=sha(9401))
    run = world.run(sha(9401), "action_required")
    assert len(run.summary) <= 65535
    table = run.summary.index("#### Files")
    assert run.summary.index("app/auth/0.py", table) < run.summary.index("<details>", table)
    assert "2989 file(s) in tier low (CI only)" in run.summary
    assert "and 2789 more" in run.summary


def test_a_1000_file_record_is_never_cut_and_verifies_offline_from_its_link(
    world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    from webhooks.main import main

    head = sha(9201)
    files = [PRFile(f"app/auth/module_{i}.py", patch=patch()) for i in range(1000)]
    world.open(92, files, head=head)
    run = world.run(head, "action_required")
    assert len(run.text) <= 65535
    assert "too large for a check run" in run.text
    record_url = f"{run.details_url}/record"
    assert record_url in run.text
    capsys.readouterr()
    served = record_url.replace("http://merge-gate.test", world.svc.url)  # the public URL here
    code = main(
        [
            "verify",
            served,
            "--jwks",
            f"{world.svc.url}/.well-known/jwks.json",
            "--expect-commit",
            head,
        ]
    )
    assert code == 0, capsys.readouterr().err
