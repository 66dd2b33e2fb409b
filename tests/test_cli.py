"""`gate check` and `gate policy` as a user runs them: real subprocesses on a real git repo."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def gate(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gate", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        check=False,
        timeout=120,
    )


def check(repo: Path, *args: str, head: str = "agent/change") -> subprocess.CompletedProcess[str]:
    return gate("check", "--repo", str(repo), "--base", "main", "--head", head, *args)


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> Path:
    repo = tmp_path_factory.mktemp("sample") / "repo"
    subprocess.run(
        ["bash", str(ROOT / "examples/make-sample-repo.sh"), str(repo)],
        check=True,
        capture_output=True,
    )
    return repo


def test_sample_agent_branch_is_blocked_and_explained(sample: Path) -> None:
    done = check(sample)
    assert done.returncode == 1, done.stderr
    assert "app/auth/login.py" in done.stdout
    assert "needs 1 more approval(s) from @acme/security" in done.stdout
    # The author defaults to the head commit's author.
    assert "author @devin-ai-integration[bot] is a Bot account" in done.stdout


def test_human_author_with_agent_commits_is_governed(sample: Path) -> None:
    done = check(
        sample,
        "--author",
        "alice",
    )
    assert done.returncode == 1
    assert "commits authored by agent @devin-ai-integration[bot]" in done.stdout


def test_json_output_is_canonical_and_complete(sample: Path) -> None:
    done = check(
        sample,
        "--author",
        "devin-ai-integration[bot]",
        "--format",
        "json",
    )
    assert done.returncode == 1
    decision = json.loads(done.stdout)
    tiers = {f["path"]: f["tier"] for f in decision["files"]}
    assert tiers == {
        "app/auth/login.py": "high",
        "app/views.py": "medium",
        "docs/index.md": "low",
        "migrations/0002_last_login.sql": "migrations",
    }
    assert decision["outcome"] == "needs_approval"
    assert (
        done.stdout.encode().rstrip(b"\n")
        == json.dumps(decision, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    )


def test_approvals_by_owners_let_it_pass_except_the_rollout(sample: Path) -> None:
    done = check(
        sample,
        "--team",
        "acme/security=alice",
        "--team",
        "acme/dba=bob",
        "--approved-by",
        "alice",
        "--approved-by",
        "bob",
        "--format",
        "json",
    )
    decision = json.loads(done.stdout)
    assert [r["kind"] for r in decision["requirements"] if not r["satisfied"]] == ["staged_rollout"]
    assert done.returncode == 1


def test_policy_comes_from_the_base_ref(sample: Path, tmp_path: Path) -> None:
    # The agent branch loosens the policy; the base branch's policy still applies.
    subprocess.run(
        ["git", "-C", str(sample), "checkout", "-q", "-b", "agent/loosen", "agent/change"],
        check=True,
    )
    (sample / ".github/merge-gate.yml").write_text(
        "version: 1\ntiers: [{name: low, paths: ['**'], require: {approvals: 0}}]\n"
        "default_tier: low\nunseen_content_tier: low\nscope: {deny: []}\n"
    )
    subprocess.run(
        ["git", "-C", str(sample), "commit", "-q", "-am", "loosen"],
        check=True,
        env={
            "GIT_AUTHOR_NAME": "a",
            "GIT_AUTHOR_EMAIL": "a@b",
            "GIT_COMMITTER_NAME": "a",
            "GIT_COMMITTER_EMAIL": "a@b",
            "HOME": str(tmp_path),
        },
    )
    subprocess.run(["git", "-C", str(sample), "checkout", "-q", "main"], check=True)
    done = check(sample, "--format", "json", head="agent/loosen")
    decision = json.loads(done.stdout)
    tiers = {f["path"]: f["tier"] for f in decision["files"]}
    assert tiers[".github/merge-gate.yml"] == "governance"
    assert tiers["app/auth/login.py"] == "high"
    assert done.returncode == 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--repo", "/nonexistent/x", "--base", "main"], "not a git repository"),
        (["--base", "no-such-ref"], "unknown ref 'no-such-ref'"),
    ],
)
def test_usage_errors_exit_2_with_a_clear_message(
    sample: Path, args: list[str], message: str
) -> None:
    full = ["check", *args] if "--repo" in args else ["check", "--repo", str(sample), *args]
    done = gate(*full)
    assert done.returncode == 2
    assert message in done.stderr
    assert "Traceback" not in done.stderr


def test_invalid_policy_on_base_is_a_configuration_error(tmp_path: Path) -> None:
    repo = tmp_path / "r"
    env = {
        "GIT_AUTHOR_NAME": "a",
        "GIT_AUTHOR_EMAIL": "a@b",
        "GIT_COMMITTER_NAME": "a",
        "GIT_COMMITTER_EMAIL": "a@b",
        "HOME": str(tmp_path),
    }
    subprocess.run(["git", "init", "-q", "-b", "main", str(repo)], check=True)
    (repo / ".github").mkdir()
    (repo / ".github/merge-gate.yml").write_text("version: 1\ntiers: nope\n")
    subprocess.run(["git", "-C", str(repo), "add", "-A"], check=True)
    subprocess.run(["git", "-C", str(repo), "commit", "-qm", "x"], check=True, env=env)
    done = gate("check", "--repo", str(repo), "--base", "main")
    assert done.returncode == 2
    assert "main:.github/merge-gate.yml:2:8: tiers:" in done.stderr


def test_policy_validate_reports_file_line_col(tmp_path: Path) -> None:
    bad = tmp_path / "merge-gate.yml"
    bad.write_text("version: 1\nagents:\n  robots: true\n")
    good = tmp_path / "good.yml"
    good.write_text("version: 1\n")
    done = gate("policy", "validate", str(good), str(bad))
    assert done.returncode == 1
    assert f"{bad}:3:3: unknown key 'robots' in agents" in done.stderr
    assert f"{good}: ok" in done.stdout


def test_policy_schema_is_json_schema() -> None:
    done = gate("policy", "schema")
    schema = json.loads(done.stdout)
    assert schema["additionalProperties"] is False
    assert "tiers" in schema["properties"]


def _git_repo(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    repo = tmp_path / "r"
    env = {
        "GIT_AUTHOR_NAME": "devin-ai-integration[bot]",
        "GIT_AUTHOR_EMAIL": "bot@example.com",
        "GIT_COMMITTER_NAME": "a",
        "GIT_COMMITTER_EMAIL": "a@b",
        "HOME": str(tmp_path),
    }
    subprocess.run(["git", "init", "-q", "-b", "main", str(repo)], check=True)
    (repo / "README.md").write_text("x\n")
    subprocess.run(["git", "-C", str(repo), "add", "-A"], check=True)
    subprocess.run(["git", "-C", str(repo), "commit", "-qm", "base"], check=True, env=env)
    subprocess.run(["git", "-C", str(repo), "checkout", "-qb", "agent"], check=True)
    return repo, env


def test_names_git_quotes_are_read_exactly_and_odd_bytes_never_crash(tmp_path: Path) -> None:
    repo, env = _git_repo(tmp_path)
    workflows = repo / ".github" / "workflows"
    workflows.mkdir(parents=True)
    # git shows this name quoted and escaped; read as shown it would dodge the deny.
    (workflows / 'x\n"é\t.yml').write_text("on: push\n")
    (repo / "docs").mkdir()
    (repo / "docs" / "latin1.md").write_bytes(b"caf\xe9 \xff\xfe\n")
    subprocess.run(["git", "-C", str(repo), "add", "-A"], check=True)
    subprocess.run(["git", "-C", str(repo), "commit", "-qm", "odd"], check=True, env=env)
    done = gate(
        "check", "--repo", str(repo), "--base", "main", "--head", "agent", "--format", "json"
    )
    assert done.returncode == 1, done.stderr
    decision = json.loads(done.stdout)
    by_path = {f["path"]: f for f in decision["files"]}
    assert by_path['.github/workflows/x\n"é\t.yml']["denied"] is True
    assert by_path['.github/workflows/x\n"é\t.yml']["status"] == "added"
    assert "docs/latin1.md" in by_path


def test_more_than_3000_files_fail_closed_offline_as_online(tmp_path: Path) -> None:
    repo, env = _git_repo(tmp_path)
    many = repo / "docs" / "many"
    many.mkdir(parents=True)
    for i in range(3001):
        (many / f"{i}.md").write_text(f"{i}\n")
    subprocess.run(["git", "-C", str(repo), "add", "-A"], check=True)
    subprocess.run(["git", "-C", str(repo), "commit", "-qm", "many"], check=True, env=env)
    done = gate("check", "--repo", str(repo), "--base", "main", "--head", "agent")
    assert done.returncode == 2
    assert "the file list is incomplete" in done.stdout


def test_a_file_that_became_a_symlink_is_listed_once(tmp_path: Path) -> None:
    repo, env = _git_repo(tmp_path)
    (repo / "README.md").unlink()
    (repo / "README.md").symlink_to("docs/index.md")
    subprocess.run(["git", "-C", str(repo), "add", "-A"], check=True)
    subprocess.run(["git", "-C", str(repo), "commit", "-qm", "link"], check=True, env=env)
    done = gate(
        "check", "--repo", str(repo), "--base", "main", "--head", "agent", "--format", "json"
    )
    paths = [f["path"] for f in json.loads(done.stdout)["files"]]
    assert paths == ["README.md"]
