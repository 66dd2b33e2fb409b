"""The hook's policy cache: content-addressed, verified on load, never able to weaken a decision.

An agent may be able to write in the state directory. Each test plants or edits what
such an agent could, and checks the hook still decides on the base branch's policy.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from gate.agents.view import LoadedView
from tests.test_agent_hooks import git, make_repo
from tests.test_hook_cli import POLICY, run_hook
from webhooks.commands import hook_cache
from webhooks.commands.hook_cache import KEY_FILE, cache_key, cached_policy

BLOB = "b" * 40
PERMISSIVE = POLICY.replace("    agent_edit: deny\n", "")


def vendor_write(root: Path) -> dict[str, object]:
    return {
        "session_id": "s",
        "cwd": str(root),
        "hook_event_name": "PreToolUse",
        "tool_name": "Write",
        "tool_input": {"file_path": str(root / "vendor/lib.py"), "content": "v = 2\n"},
    }


def decision_of(root: Path, state: Path) -> str:
    answer = run_hook("claude-code", json.dumps(vendor_write(root)), state=state, cwd=root)
    output = json.loads(answer.stdout)["hookSpecificOutput"]
    return str(output["permissionDecision"])


def frozen_edit(view: LoadedView) -> str:
    return next(t.agent_edit for t in view.policy.tiers if t.name == "frozen")


def test_a_changed_base_policy_is_used_on_the_next_call(tmp_path: Path) -> None:
    root = make_repo(tmp_path / "repo", {".github/merge-gate.yml": POLICY, "vendor/lib.py": "v\n"})
    state = tmp_path / "state"
    assert decision_of(root, state) == "deny"
    assert decision_of(root, state) == "deny"  # now from the cache
    (root / ".github/merge-gate.yml").write_text(PERMISSIVE)
    git(root, "commit", "-qam", "vendor is editable")
    assert decision_of(root, state) == "allow"
    (root / ".github/merge-gate.yml").write_text(POLICY)
    git(root, "commit", "-qam", "vendor is frozen again")
    assert decision_of(root, state) == "deny"
    entries = sorted(p.name for p in (state / "policy-cache").glob("*.json"))
    assert len(entries) == 2


def _built(cache: Path, text: str) -> Path:
    cached_policy(text=text, blob=BLOB, ref="main", cache_dir=cache)
    return cache / f"{cache_key(text, BLOB)}.json"


def test_an_edited_entry_is_rebuilt_not_believed(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    entry = _built(cache, POLICY)
    data = json.loads(entry.read_text())
    for tier in data["view"]["tiers"]:
        tier["agent_edit"] = "allow"
    entry.write_text(json.dumps(data))
    view = cached_policy(text=POLICY, blob=BLOB, ref="main", cache_dir=cache)
    assert frozen_edit(view) == "deny"
    # The rebuild replaced the forged entry with a verified one.
    assert json.loads(entry.read_text())["view"] != data["view"]


def test_an_entry_of_another_policy_under_this_name_is_not_used(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    permissive = _built(cache, PERMISSIVE)  # MAC'd by us, for another text
    os.replace(permissive, cache / f"{cache_key(POLICY, BLOB)}.json")
    view = cached_policy(text=POLICY, blob=BLOB, ref="main", cache_dir=cache)
    assert frozen_edit(view) == "deny"


def _forge(cache: Path, text: str, *, like: str) -> None:
    """An entry for ``text`` holding the view of ``like``, MAC'd with the real key."""
    key = (cache / KEY_FILE).read_bytes()
    built = json.loads(_built(cache, like).read_text())
    source = hook_cache.source_digest(text, BLOB)
    entry = {
        "source": source,
        "view": built["view"],
        "mac": hook_cache._mac(key, source, built["view"]),
    }
    (cache / f"{cache_key(text, BLOB)}.json").write_text(json.dumps(entry))


def test_a_forged_entry_with_the_right_key_is_used_so_the_checks_below_matter(
    tmp_path: Path,
) -> None:
    # Control for the two tests below: the forgery works when the directory is private.
    cache = tmp_path / "cache"
    _built(cache, POLICY)
    _forge(cache, POLICY, like=PERMISSIVE)
    view = cached_policy(text=POLICY, blob=BLOB, ref="main", cache_dir=cache)
    assert frozen_edit(view) == "allow"


def test_a_cache_directory_others_can_write_is_not_read(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    _built(cache, POLICY)
    _forge(cache, POLICY, like=PERMISSIVE)
    cache.chmod(0o777)
    view = cached_policy(text=POLICY, blob=BLOB, ref="main", cache_dir=cache)
    assert frozen_edit(view) == "deny"


def test_a_key_others_can_read_is_not_used(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    _built(cache, POLICY)
    _forge(cache, POLICY, like=PERMISSIVE)
    (cache / KEY_FILE).chmod(0o644)
    view = cached_policy(text=POLICY, blob=BLOB, ref="main", cache_dir=cache)
    assert frozen_edit(view) == "deny"


def test_the_key_and_entries_are_private(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    entry = _built(cache, POLICY)
    assert (cache / KEY_FILE).stat().st_mode & 0o777 == 0o600
    assert entry.stat().st_mode & 0o777 == 0o600
    assert cache.stat().st_mode & 0o077 == 0


def test_an_agent_can_neither_read_nor_write_the_state_directory(tmp_path: Path) -> None:
    root = make_repo(tmp_path / "repo", {".github/merge-gate.yml": POLICY, "app/x.py": "x\n"})
    state = tmp_path / "state"
    key = state / "policy-cache" / KEY_FILE
    base = {"session_id": "s", "cwd": str(root), "hook_event_name": "PreToolUse"}
    events = {
        "write": {
            **base,
            "tool_name": "Write",
            "tool_input": {"file_path": str(state / "policy-cache/x.json"), "content": "{}"},
        },
        "read": {**base, "tool_name": "Read", "tool_input": {"file_path": str(key)}},
        "shell": {**base, "tool_name": "Bash", "tool_input": {"command": f"cat {key}"}},
        "relative": {
            **base,
            "tool_name": "Bash",
            "tool_input": {"command": "echo {} > ../state/policy-cache/x.json"},
        },
    }
    for name, event in events.items():
        answer = run_hook("claude-code", json.dumps(event), state=state, cwd=root)
        output = json.loads(answer.stdout)["hookSpecificOutput"]
        assert output["permissionDecision"] == "deny", name
        assert "hook.state_dir" in output["permissionDecisionReason"], name
    # The same commands elsewhere are allowed: the rule is about the state directory.
    elsewhere = {**base, "tool_name": "Read", "tool_input": {"file_path": str(root / "app/x.py")}}
    answer = run_hook("claude-code", json.dumps(elsewhere), state=state, cwd=root)
    assert json.loads(answer.stdout)["hookSpecificOutput"]["permissionDecision"] == "allow"
