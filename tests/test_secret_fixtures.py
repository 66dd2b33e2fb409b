"""Secrets on real repositories: look-alikes pass, fixtures inform, allowed fingerprints.

Every credential here is generated at run time (see ``benchmarks.secret_lookalikes``);
the look-alikes are the shapes real commits carry that are not secrets.
"""

from __future__ import annotations

import random
import string
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks.secret_lookalikes import JWT_IO_SAMPLE, LOOKALIKES, Sample, real_in_fixtures
from gate.defaults import load_policy
from gate.detectors import builtin
from gate.detectors.secrets import scan_text
from gate.filekinds import is_test_or_doc_path
from gate.policy import InvalidPolicy
from gate.result import Outcome
from tests.factories import changed, decide, pull

ROOT = Path(__file__).resolve().parent.parent


def token(n: int, seed: str) -> str:
    rng = random.Random(seed)
    return "".join(rng.choice(string.ascii_letters + string.digits) for _ in range(n))


@pytest.mark.parametrize("sample", LOOKALIKES, ids=lambda s: f"{s.path}: {s.why}")
def test_lookalike_does_not_deny(sample: Sample) -> None:
    findings = scan_text(path=sample.path, text=sample.text)
    assert [f for f in findings if f.deny] == []


@pytest.mark.parametrize("sample", real_in_fixtures(), ids=lambda s: f"{s.path}: {s.why}")
def test_real_credential_in_a_test_or_docs_file_still_denies(sample: Sample) -> None:
    findings = scan_text(path=sample.path, text=sample.text)
    assert any(f.deny and not f.informational for f in findings)


def test_short_value_in_a_test_file_is_reported_as_informational() -> None:
    text = 'PASSWORD = "Tr0ub4dor&3"\n'
    in_test = scan_text(path="tests/test_login.py", text=text)
    assert [(f.rule, f.deny, f.informational) for f in in_test] == [("generic-secret", False, True)]
    assert "[informational]" in in_test[0].message
    assert "Tr0ub4dor" not in in_test[0].message
    # The same line in application code denies.
    in_app = scan_text(path="app/login.py", text=text)
    assert [(f.rule, f.deny) for f in in_app] == [("generic-secret", True)]


def test_jwt_io_sample_is_known_but_other_tokens_are_not() -> None:
    assert scan_text(path="app/a.py", text=f'T = "{JWT_IO_SAMPLE}"\n') == ()
    header, _, signature = JWT_IO_SAMPLE.split(".")
    other = f"{header}.eyJzdWIiOiI5ODc2NTQzMjEwIiwiaWF0IjoxNTE2MjM5MDIyfQ.{signature}"
    assert [f.rule for f in scan_text(path="app/a.py", text=f'T = "{other}"\n')] == ["jwt"]


def test_truncated_key_passes_but_a_whole_one_denies() -> None:
    body = "\n".join(token(64, f"line{i}") for i in range(6))
    whole = f"-----BEGIN RSA PRIVATE KEY-----\n{body}\n-----END RSA PRIVATE KEY-----\n"
    assert [f.rule for f in scan_text(path="app/k.py", text=whole)] == ["private-key"]
    cut = whole.replace(body.splitlines()[2], "...")
    assert scan_text(path="app/k.py", text=cut) == ()


def test_local_url_password_passes_only_when_plain() -> None:
    plain = 'URL = "postgres://app:devpass42@localhost/app"\n'
    assert scan_text(path="app/settings.py", text=plain) == ()
    generated = f'URL = "postgres://app:{token(24, "pw")}@localhost/app"\n'
    assert [f.rule for f in scan_text(path="app/settings.py", text=generated)] == ["basic-auth-url"]


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("tests/test_a.py", True),
        ("payment/tests/helpers.py", True),
        ("internal/webhook/webhook_test.go", True),
        ("spec/models/user_spec.rb", True),
        ("web/src/Login.test.tsx", True),
        ("docs/setup.md", True),
        ("README.md", True),
        ("app/latest.py", False),
        ("app/contest.py", False),
        ("src/attestation.go", False),
        ("src/UserTest.java", True),
        ("src/LATEST.java", False),
    ],
)
def test_test_and_doc_paths(path: str, expected: bool) -> None:
    assert is_test_or_doc_path(path) is expected


# --- the base branch's allowlist ---------------------------------------------------------


def _secret_pull(secret: str, path: str = "app/client.py"):  # type: ignore[no-untyped-def]
    return pull([changed(path, patch=f'@@ -0,0 +1 @@\n+API_SECRET = "{secret}"')])


def _fingerprint(secret: str) -> str:
    findings = scan_text(path="app/client.py", text=f'API_SECRET = "{secret}"\n')
    assert len(findings) == 1
    return findings[0].fingerprint


def test_allowed_fingerprint_makes_the_finding_informational() -> None:
    secret = token(40, "fixture")
    shown = _fingerprint(secret)[: len("sha256:") + 12]  # as the redaction shows it
    policy = load_policy(f'version: 1\nsecrets:\n  allowed_fingerprints: ["{shown}"]\n')
    allowed = decide(policy, _secret_pull(secret), detectors=builtin())
    assert allowed.outcome is Outcome.NEEDS_APPROVAL
    (file,) = allowed.files
    assert not file.denied
    assert file.tier == "medium"  # what it would be without the finding
    assert "fingerprint allowed by .github/merge-gate.yml:3" in file.findings[0].message
    # In a test directory the file keeps its low tier.
    in_tests = decide(policy, _secret_pull(secret, "tests/data.py"), detectors=builtin())
    assert in_tests.outcome is Outcome.PASS
    assert in_tests.files[0].tier == "low"


def test_allowlist_allows_only_the_listed_secret() -> None:
    secret, other = token(40, "fixture"), token(40, "leak")
    shown = _fingerprint(secret)[: len("sha256:") + 12]
    policy = load_policy(f'version: 1\nsecrets:\n  allowed_fingerprints: ["{shown}"]\n')
    assert decide(policy, _secret_pull(other), detectors=builtin()).outcome is Outcome.DENIED
    without = load_policy("version: 1\n")
    assert decide(without, _secret_pull(secret), detectors=builtin()).outcome is Outcome.DENIED


@pytest.mark.parametrize("entry", ["sha256:abc", "ghp_" + "a" * 36, "sha256:" + "G" * 12])
def test_allowlist_entries_are_fingerprints_only(entry: str) -> None:
    with pytest.raises(InvalidPolicy, match="allowed_fingerprints"):
        load_policy(f'version: 1\nsecrets:\n  allowed_fingerprints: ["{entry}"]\n')


def test_a_pull_request_cannot_allow_its_own_secret(tmp_path: Path) -> None:
    """The policy is read from the base: an allowlist added by the PR itself does nothing."""
    repo = tmp_path / "repo"
    repo.mkdir()

    def git(*args: str) -> None:
        subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True)

    git("init", "-q", "-b", "main")
    git("config", "user.email", "bot@example.org")
    git("config", "user.name", "devin-ai-integration[bot]")
    (repo / "README.md").write_text("app\n")
    git("add", "-A")
    git("commit", "-q", "-m", "root")
    git("checkout", "-q", "-b", "agent/change")
    secret = token(40, "own")
    (repo / "app.py").write_text(f'API_SECRET = "{secret}"\n')
    (repo / ".github").mkdir()
    (repo / ".github/merge-gate.yml").write_text(
        f'version: 1\nsecrets:\n  allowed_fingerprints: ["{_fingerprint(secret)}"]\n'
    )
    git("add", "-A")
    git("commit", "-q", "-m", "allow my own secret")
    done = subprocess.run(
        [sys.executable, "-m", "gate", "check", "--repo", str(repo), "--base", "main"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
        timeout=60,
    )
    assert done.returncode == 1, done.stderr
    assert "Denied" in done.stdout
    assert "app.py: line 1: Hard-coded secret" in done.stdout
