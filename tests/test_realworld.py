"""The replay command on a real git repository built here, commit by commit."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(repo), *args], check=True, capture_output=True, text=True
    ).stdout


def commit(repo: Path, message: str, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = repo / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", message)


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory) -> Path:
    repo = tmp_path_factory.mktemp("replay") / "repo"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    git(repo, "config", "user.email", "dev@example.org")
    git(repo, "config", "user.name", "Dev")
    commit(repo, "root", {"README.md": "# app\n", "app/views.py": "x = 1\n"})
    commit(repo, "docs", {"docs/guide.md": "How to use it.\n"})
    commit(repo, "logic", {"app/views.py": "x = 2\n"})
    commit(repo, "workflow", {".github/workflows/ci.yml": "on: push\n"})
    commit(
        repo,
        "schema",
        {"db/migrate/20240101_add_users.rb": "class AddUsers < ActiveRecord::Migration[7.1]\n"},
    )
    # A side branch merged back: the merge commit is not replayed.
    git(repo, "checkout", "-q", "-b", "side")
    commit(repo, "side", {"app/side.py": "y = 1\n"})
    git(repo, "checkout", "-q", "main")
    git(repo, "merge", "-q", "--no-ff", "-m", "merge side", "side")
    return repo


def test_replay_decides_every_non_merge_commit(history: Path, tmp_path: Path) -> None:
    out = tmp_path / "decisions.jsonl"
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.realworld", str(history), "--jsonl", str(out)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    # side, schema, workflow, logic, docs: the root has no parent and the merge is skipped.
    subjects = sorted(line["subject"] for line in lines)
    assert subjects == ["docs", "logic", "schema", "side", "workflow"]
    by_subject = {line["subject"]: line for line in lines}
    assert by_subject["docs"]["outcome"] == "pass"
    assert by_subject["docs"]["tier"] == "low"
    assert by_subject["logic"]["tier"] == "medium"
    assert by_subject["workflow"]["outcome"] == "denied"
    assert by_subject["schema"]["tier"] == "migrations"
    assert "decisions: 5  crashes: 0  unreadable commits: 0" in done.stdout
    assert "outcomes: needs_approval 3, denied 1, pass 1" in done.stdout
    assert "denials by reason (files): scope.deny '.github/workflows/**' 1" in done.stdout
    assert "engine per decision: median" in done.stdout


def test_replay_limits_the_commits(history: Path) -> None:
    from benchmarks.realworld import replay

    tally = replay(history, limit=2)
    assert tally.decisions == 2
    assert tally.crashes == 0
    assert sum(tally.outcomes.values()) == 2
