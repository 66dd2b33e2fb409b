"""Content-aware risk end to end: secrets, new dependencies with a scan, migrations by content."""

from __future__ import annotations

import json
import random
import string
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from tests.fakegithub import deliveries
from tests.fakegithub.models import PRFile
from tests.fakegithub.server import FakeGitHub
from tests.harness import RunningService, running, settings_env
from tests.simulators.registries import RegistrySimulator, running_registries
from tests.world import World, sha


@pytest.fixture(scope="module")
def registries() -> Iterator[RegistrySimulator]:
    with running_registries() as simulator:
        yield simulator


@pytest.fixture(scope="module")
def service(
    fake_github_server: FakeGitHub,
    registries: RegistrySimulator,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[RunningService]:
    urls = registries.urls
    env = settings_env(
        fake_github_server,
        tmp_path_factory.mktemp("data"),
        GATE_OSV_URL=urls.osv_querybatch,
        GATE_PYPI_URL=urls.pypi,
        GATE_NPM_URL=urls.npm,
    )
    with running(env) as svc:
        yield svc


def aws_key_id(seed: int) -> str:
    rng = random.Random(seed)
    return "AKIA" + "".join(rng.choice(string.ascii_uppercase + "234567") for _ in range(16))


def everything_rendered(world: World, head: str, details: str) -> str:
    runs = world.fake.check_runs(world.repo, head)
    parts = [details]
    for run in runs:
        parts += [run.title or "", run.summary or "", run.text or "", json.dumps(run.annotations)]
    entries = world.svc.call(lambda s: s.audit.entries(0, 10_000))
    parts += [e.decode() for e in entries]
    return "\n".join(parts)


def test_a_secret_in_added_lines_is_denied_on_its_line_and_never_shown(world: World) -> None:
    key = aws_key_id(1)
    patch = f'@@ -1,2 +1,4 @@\n import os\n+\n+AWS_ACCESS_KEY_ID = "{key}"\n REGION = "eu"'
    world.open(1, [PRFile("app/config.py", patch=patch)], head=sha(101))
    run = world.run(sha(101), "failure")
    assert run.title.startswith("Denied")
    # One annotation for the file, on the secret's line.
    [line] = [a for a in run.annotations if a["path"] == "app/config.py"]
    assert (line["start_line"], line["annotation_level"]) == (3, "failure")
    assert "secrets:" in line["message"]
    world.settle()
    details = httpx.get(run.details_url.replace("http://merge-gate.test", world.svc.url)).text
    rendered = everything_rendered(world, sha(101), details)
    assert key not in rendered
    assert key[:4] + "…" in rendered  # the redacted form: first 4 characters and a hash


def test_a_binary_file_is_read_and_scanned_or_fails_closed_when_too_large(world: World) -> None:
    head = sha(201)
    key = aws_key_id(2)
    world.fake.set_file(world.repo, head, "assets/blob.bin", f"\x00\x01 aws={key}\n")
    world.fake.set_file(world.repo, head, "assets/huge.bin", b"\x00" * (1024 * 1024 + 10))
    world.open(
        2,
        [
            PRFile("assets/blob.bin", status="added", additions=0, patch=None),
            PRFile("assets/huge.bin", status="added", additions=0, patch=None),
        ],
        head=head,
    )
    run = world.run(head, "failure")
    assert "assets/huge.bin" in run.summary
    assert "not inspected" in run.summary
    assert key not in run.summary + json.dumps(run.annotations)
    assert "assets/blob.bin" in json.dumps(run.annotations)


def requirements(world: World, head: str, added: str) -> None:
    world.fake.set_file(world.repo, world.base, "requirements.txt", "requests==2.31.0\n")
    world.fake.set_file(world.repo, head, "requirements.txt", f"requests==2.31.0\n{added}\n")


def test_new_dependency_is_scanned_and_passes_after_approval(
    world: World, registries: RegistrySimulator
) -> None:
    old = datetime.now(UTC) - timedelta(days=900)
    registries.pypi_project("requests", releases={"2.31.0": old})
    registries.pypi_project("attrs", releases={"23.1.0": old})
    head = sha(301)
    requirements(world, head, "attrs==23.1.0")
    world.open(
        3,
        [PRFile("requirements.txt", patch="@@ -1 +1,2 @@\n requests==2.31.0\n+attrs==23.1.0")],
        head=head,
    )
    run = world.run(head, "action_required")
    assert "dependencies" in run.summary
    assert registries.requests_to("osv")
    world.fake.add_review(world.repo, 3, user="dev1", commit_id=head)
    world.deliver("pull_request_review", "submitted", number=3, head_sha=head)
    world.run(head, "success")


def test_a_hallucinated_package_fails_the_scan(world: World, registries: RegistrySimulator) -> None:
    head = sha(401)
    requirements(world, head, "reqeusts-toolbelt-pro==0.1")
    world.open(
        4,
        [
            PRFile(
                "requirements.txt",
                patch="@@ -1 +1,2 @@\n requests==2.31.0\n+reqeusts-toolbelt-pro==0.1",
            )
        ],
        head=head,
    )
    world.fake.add_review(world.repo, 4, user="dev1", commit_id=head)
    world.deliver("pull_request_review", "submitted", number=4, head_sha=head)
    world.settle()
    run = world.run(head)
    assert run.conclusion == "action_required"
    assert "scan failed" in run.summary
    assert "reqeusts-toolbelt-pro" in run.summary


def test_a_scan_that_cannot_run_never_passes(world: World, registries: RegistrySimulator) -> None:
    old = datetime.now(UTC) - timedelta(days=900)
    registries.pypi_project("requests", releases={"2.31.0": old})
    registries.pypi_project("attrs", releases={"23.1.0": old})
    registries.state.fail["osv"] = 503
    try:
        head = sha(501)
        requirements(world, head, "attrs==23.1.0")
        world.open(
            5,
            [PRFile("requirements.txt", patch="@@ -1 +1,2 @@\n requests==2.31.0\n+attrs==23.1.0")],
            head=head,
        )
        world.fake.add_review(world.repo, 5, user="dev1", commit_id=head)
        world.deliver("pull_request_review", "submitted", number=5, head_sha=head)
        world.settle()
        run = world.run(head)
        assert run.conclusion == "action_required"
        assert "scan unavailable" in run.summary
    finally:
        registries.state.fail.pop("osv", None)
    # Once the scanner answers again, the next evaluation scans again and passes.
    world.deliver("pull_request_review", "submitted", number=5, head_sha=head)
    world.run(head, "success")


def test_destructive_migration_outside_migrations_is_recognised_by_content(world: World) -> None:
    patch = (
        "@@ -0,0 +1,3 @@\n+def upgrade():\n+    op.drop_column('users', 'email')\n+    return None"
    )
    world.open(6, [PRFile("app/db/upgrade_users.py", patch=patch)], head=sha(601))
    run = world.run(sha(601), "action_required")
    assert "migrations" in run.summary
    assert "destructive" in run.summary.lower()
    assert "Confirm rollout" in json.dumps(run.actions)
    assert "staging" in run.summary


def test_audit_log_is_served_with_proofs_that_verify(world: World) -> None:
    from gate.checkpoint import parse_checkpoint
    from gate.merkle import ProofError, leaf_hash, verify_consistency, verify_inclusion

    world.open(7, [PRFile("docs/a.md", patch="@@ -0,0 +1 @@\n+x")], head=sha(701))
    world.run(sha(701), "success")
    world.settle()
    old = world.svc.call(lambda s: s.audit.checkpoint(datetime.now(UTC)))
    world.open(8, [PRFile("docs/b.md", patch="@@ -0,0 +1 @@\n+y")], head=sha(801))
    world.run(sha(801), "success")
    world.settle()
    new = world.svc.call(lambda s: s.audit.checkpoint(datetime.now(UTC)))
    assert new.size > old.size
    served = parse_checkpoint(httpx.get(f"{world.svc.url}/audit/checkpoint").text)
    assert (served.size, served.root) == (new.size, new.root)
    import base64

    seq = new.size - 1
    proof = httpx.get(
        f"{world.svc.url}/audit/inclusion", params={"seq": seq, "size": new.size}
    ).json()
    # A public endpoint: hashes and proofs, never the entry (it names private things).
    assert "entry" not in proof
    entry = world.svc.call(lambda s: s.audit.entries(seq, seq + 1))[0]
    assert base64.b64decode(proof["leaf_hash"]) == leaf_hash(entry)
    verify_inclusion(  # raises ProofError when it does not verify
        index=seq,
        size=new.size,
        leaf=leaf_hash(entry),
        proof=[base64.b64decode(h) for h in proof["proof"]],
        root=new.root,
    )
    consistency = httpx.get(
        f"{world.svc.url}/audit/consistency", params={"old": old.size, "new": new.size}
    ).json()
    verify_consistency(
        old_size=old.size,
        new_size=new.size,
        old_root=old.root,
        new_root=new.root,
        proof=[base64.b64decode(h) for h in consistency["proof"]],
    )
    forged = [bytes(32), *(base64.b64decode(h) for h in proof["proof"][1:])]
    with pytest.raises(ProofError):
        verify_inclusion(
            index=seq,
            size=new.size,
            leaf=leaf_hash(entry),
            proof=forged,
            root=new.root,
        )
    assert httpx.get(f"{world.svc.url}/audit/inclusion", params={"seq": "x"}).status_code == 400


def test_json_logs_carry_context_and_no_secret(
    world: World, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from webhooks.logs import JsonFormatter

    caplog.set_level("INFO", logger="merge_gate")
    world.open(9, [PRFile("docs/a.md", patch="@@ -0,0 +1 @@\n+x")], head=sha(901))
    world.run(sha(901), "success")
    world.settle()
    lines = [JsonFormatter().format(r) for r in caplog.records if r.name.startswith("merge_gate")]
    published = [json.loads(line) for line in lines if "decision published" in line]
    assert published
    assert {"repo", "pr", "head_sha", "delivery"} <= set(published[-1])
    from tests.harness import SECRET

    assert not any(SECRET in line for line in lines)


def test_thousands_of_manifests_fail_closed_without_spending_the_rate_limit(world: World) -> None:
    files = [
        PRFile(f"pkg{i}/package.json", patch='@@ -1 +1 @@\n-{}\n+{"dependencies": {}}')
        for i in range(450)
    ]
    world.open(90, files, head=sha(9001))
    run = world.run(sha(9001), "failure")
    assert "are read per decision" in run.summary
    reads = world.fake.calls_to("GET", "/repos/{owner}/{repo}/contents/{path}")
    assert len([c for c in reads if c.path.endswith("package.json")]) <= 400


def test_a_false_secret_is_cleared_only_by_a_qualifying_human(world: World) -> None:
    from gate.statement import verify_record

    head = sha(9101)
    key = aws_key_id(91)
    patch = f'@@ -1 +1,2 @@\n import os\n+FIXTURE_KEY = "{key}"'
    world.open(91, [PRFile("app/fixtures.py", patch=patch)], head=head)
    run = world.run(head, "failure")
    assert [a["identifier"] for a in run.actions] == ["clear_secret"]

    def press(user: str, user_type: str = "User") -> None:
        current = world.fake.check_runs(world.repo, head)[-1]
        fields = {"id": current.id, "head_sha": head, "pull_requests": [{"number": 91}]}
        payload = deliveries.build(
            "check_run",
            "requested_action",
            repo=world.repo,
            installation_id=world.installation,
            sender=user,
            sender_type=user_type,
        )
        payload["check_run"].update(fields)
        payload["requested_action"] = {"identifier": "clear_secret"}
        assert (
            world.svc.deliver("check_run", "requested_action", payload=payload).status_code == 202
        )
        world.settle()

    # The agent that wrote it, and a human who owns nothing here, change nothing.
    press("devin-ai-integration[bot]", "Bot")
    press("stranger")
    assert world.fake.check_runs(world.repo, head)[-1].conclusion == "failure"
    # A code owner of the file (@org/devs) clears it: the file takes the tier it
    # would otherwise have (medium: one approval), not a pass.
    press("dev1")
    run = world.run(head, "action_required")
    assert "cleared** by @\u200bdev1" in run.summary
    entries = world.svc.call(lambda s: s.audit.query())
    cleared = [e for e in entries if e["kind"] == "secret_cleared" and e.get("pr") == 91]
    assert cleared[-1]["by"] == "dev1"
    assert cleared[-1]["fingerprints"][0].startswith("sha256:")
    assert key not in str(cleared)
    decision_id = run.details_url.rsplit("/", 1)[1]
    stored = world.svc.call(lambda s: s.store.get("decision", decision_id))
    envelope = json.loads(stored)["envelope"]
    keys = world.svc.service.keyring.verification_keys()
    statement = verify_record(envelope, keys=keys, expect_commit=head)
    assert "dev1" in json.dumps(statement)
