"""``gate hook --agent NAME``: the merge gate's policy, checked inside the agent before it acts.

The agent runs this command before each tool call with its hook event as JSON on stdin;
the answer goes back in that agent's protocol (:mod:`gate.agents.protocols`). Steps:

1. parse the event into one :class:`~gate.agents.action.Action`;
2. find the repository from the event's ``cwd`` (else the process's), and read the
   policy and CODEOWNERS from the **base** ref (``--base``, else ``origin/HEAD``, ``main``,
   ``master``) with one ``git cat-file --batch``, exactly the files the merge gate reads:
   what the agent changes in its working tree changes nothing; and, where the merge gate
   would apply the organisation's policy (no repository policy, or ``extend: org``), read
   it from the file ``$GATE_ORG_POLICY_FILE`` names (:func:`read_org_policy`);
3. decide with :mod:`gate.agents.decision` (the merge gate's classifier);
4. append the decision to the signed, hash-chained audit log in the state directory
   (``$GATE_DATA_DIR``, else ``$XDG_STATE_HOME/merge-gate``, else
   ``~/.local/state/merge-gate``), the same format as the service's, so ``gate audit``
   and ``gate audit verify`` read it;
5. print the answer, then forward the event (and any earlier ones that could not be sent)
   to ``$GATE_AUDIT_URL/api/agent-events`` with ``$GATE_AGENT_TOKEN``, within
   :data:`FORWARD_TIMEOUT` seconds; what is not sent waits in ``outbox.jsonl``.

Fails closed: an unreadable event, an unknown tool, a repository without a base ref,
a policy that does not parse, an organisation policy that applies but cannot be had,
a failed audit append or any internal error answers **deny** in the agent's protocol.

Cold start matters (it runs before every tool call): ``gate-hook`` asks the user's
resident decision process (:mod:`webhooks.commands.hook_client`,
:mod:`webhooks.commands.hook_daemon`), which runs :func:`respond` and
:func:`forward_entry` below, and decides here whenever it cannot be believed. Here, only
what the decision needs is imported, and the parsed base policy is cached in the state
directory by the digest of its exact text, verified on load
(:mod:`webhooks.commands.hook_cache`), so a warm call never imports pydantic. The hook's
own state directory is off limits to the agent (``hook.state_dir``).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import TYPE_CHECKING, cast

from gate.agents.action import Action, BadEvent, Decision, FileWrite, Verdict, strictest
from gate.agents.protocols import AGENTS, Answer

if TYPE_CHECKING:
    import argparse

    from gate.agents.decision import Change, Rules
    from gate.agents.shell import ShellFacts

STATE_ENV = "GATE_DATA_DIR"
AUDIT_URL_ENV = "GATE_AUDIT_URL"
TOKEN_ENV = "GATE_AGENT_TOKEN"  # noqa: S105 - a variable name
#: The organisation's policy: a file the agent cannot write, named in the agent's
#: managed (organisation-wide) settings. The merge gate reads the same policy from
#: ``OWNER/.github``.
ORG_POLICY_ENV = "GATE_ORG_POLICY_FILE"
#: Longest organisation policy read, in bytes (a policy is a few kilobytes).
MAX_ORG_POLICY_BYTES = 1024 * 1024
#: Longest the answer's process waits on forwarding, in seconds.
FORWARD_TIMEOUT = 0.3
#: Same as ``gate.policy.POLICY_PATH`` (not imported: that module loads pydantic).
POLICY_PATH = ".github/merge-gate.yml"
#: Same as ``gate.codeowners.LOCATIONS``: GitHub's order, first found wins.
CODEOWNERS_LOCATIONS = (".github/CODEOWNERS", "CODEOWNERS", "docs/CODEOWNERS")
DEFAULT_BASES = ("origin/HEAD", "main", "master")
AUDIT_FILE = "audit.sqlite3"
OUTBOX_FILE = "outbox.jsonl"
#: Sign a checkpoint of the local log after this many entries or seconds.
CHECKPOINT_EVERY, CHECKPOINT_SECONDS = 64, 300.0
#: Files larger than this are not read to rebuild an edit (judged by the added text).
MAX_FILE_BYTES = 4 * 1024 * 1024
_EXIT_USAGE = 2


class HookError(Exception):
    """The hook cannot decide (no repository, no base ref, invalid policy): deny."""


class OrgPolicyError(HookError):
    """The organisation's policy applies but cannot be had: deny every action."""


def state_dir(env: Mapping[str, str] = os.environ) -> Path:
    """``$GATE_DATA_DIR``, else ``$XDG_STATE_HOME/merge-gate``, else
    ``~/.local/state/merge-gate``."""
    if env.get(STATE_ENV):
        return Path(env[STATE_ENV])
    base = env.get("XDG_STATE_HOME") or str(
        Path(env.get("HOME", "~")).expanduser() / ".local/state"
    )
    return Path(base) / "merge-gate"


# --- the base ref ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Blob:
    sha: str
    text: str


@dataclass(frozen=True, slots=True)
class Base:
    """What the merge gate would read from the base branch."""

    root: Path
    ref: str
    sha: str
    policy: Blob | None
    codeowners_path: str
    codeowners: Blob | None
    branches: frozenset[str]
    repo: str


def find_root(start: Path) -> Path:
    """The working tree holding ``start``: the nearest directory with a ``.git``."""
    for directory in (start, *start.parents):
        if (directory / ".git").exists():
            return directory
    raise HookError(f"{start} is not inside a git repository")


def _git_dir(root: Path) -> Path:
    dot = root / ".git"
    if dot.is_file():  # a worktree or submodule: "gitdir: <path>"
        text = dot.read_text(encoding="utf-8", errors="replace").strip()
        if text.startswith("gitdir:"):
            found = Path(text.split(":", 1)[1].strip())
            found = found if found.is_absolute() else root / found
            common = found / "commondir"
            if common.exists():
                shared = Path(common.read_text(encoding="utf-8").strip())
                return shared if shared.is_absolute() else (found / shared).resolve()
            return found
    return dot


def _repo_name(git_dir: Path, root: Path) -> str:
    """``owner/name`` from the ``origin`` remote's URL, else the directory name."""
    try:
        text = (git_dir / "config").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return root.name
    section = ""
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("["):
            section = stripped
        elif section == '[remote "origin"]' and stripped.replace(" ", "").startswith("url="):
            url = stripped.split("=", 1)[1].strip().removesuffix("/").removesuffix(".git")
            parts = url.replace(":", "/").split("/")
            if len(parts) >= 2 and parts[-1] and parts[-2]:
                return f"{parts[-2]}/{parts[-1]}"
    return root.name


def _origin_head(git_dir: Path) -> str | None:
    try:
        text = (git_dir / "refs/remotes/origin/HEAD").read_text(encoding="utf-8").strip()
    except OSError:
        return None
    return text.removeprefix("ref: refs/remotes/origin/") if text.startswith("ref:") else None


def _batch(root: Path, names: Sequence[str]) -> list[tuple[str, bytes] | None]:
    """``git cat-file --batch`` for every name: (sha, content) or None when missing."""
    import subprocess

    done = subprocess.run(
        ["git", "-C", str(root), "cat-file", "--batch"],
        input=("\n".join(names) + "\n").encode("utf-8", "surrogateescape"),
        capture_output=True,
        check=False,
    )
    if done.returncode != 0:
        raise HookError(f"git cat-file failed: {done.stderr.decode(errors='replace').strip()}")
    out, at = done.stdout, 0
    found: list[tuple[str, bytes] | None] = []
    for _name in names:
        end = out.index(b"\n", at)
        header = out[at:end].split(b" ")
        at = end + 1
        if len(header) == 3 and header[2].isdigit():
            size = int(header[2])
            found.append((header[0].decode(), out[at : at + size]))
            at += size + 1
        else:  # "<name> missing" or "<name> ambiguous"
            found.append(None)
    return found


def read_base(root: Path, base: str | None) -> Base:
    """The base ref's commit, policy and CODEOWNERS, in one ``git cat-file --batch``."""
    candidates = (base,) if base else DEFAULT_BASES
    files = (POLICY_PATH, *CODEOWNERS_LOCATIONS)
    names = [n for ref in candidates for n in (f"{ref}^{{commit}}", *(f"{ref}:{f}" for f in files))]
    answers = _batch(root, names)
    stride = 1 + len(files)
    for index, ref in enumerate(candidates):
        commit, *blobs = answers[index * stride : (index + 1) * stride]
        if commit is None:
            continue
        texts = [Blob(b[0], b[1].decode("utf-8", "replace")) if b else None for b in blobs]
        owners = next(
            (
                (path, blob)
                for path, blob in zip(CODEOWNERS_LOCATIONS, texts[1:], strict=True)
                if blob
            ),
            ("", None),
        )
        git_dir = _git_dir(root)
        branch = _origin_head(git_dir) if ref == "origin/HEAD" else ref.rsplit("/", 1)[-1]
        return Base(
            root=root,
            ref=ref,
            sha=commit[0],
            policy=texts[0],
            codeowners_path=owners[0],
            codeowners=owners[1],
            branches=frozenset(filter(None, (branch, "main", "master"))),
            repo=_repo_name(git_dir, root),
        )
    tried = ", ".join(candidates)
    raise HookError(f"no base ref ({tried}) in {root}: the policy cannot be read from it")


# --- the organisation's policy -------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class OrgPolicy:
    """The organisation's policy file: its path and exact bytes' SHA-256, and its text."""

    path: str
    sha: str
    text: str


def read_org_policy(env: Mapping[str, str]) -> OrgPolicy | None:
    """The file ``$GATE_ORG_POLICY_FILE`` names, or None when it is unset.

    The file must be one the agent cannot write: a regular file (a FIFO or device is not
    read) that neither its group nor others may write, in a directory they may not write
    either (else it could be replaced). Anything else raises :class:`OrgPolicyError`:
    the hook would decide on rules the agent could have chosen."""
    import hashlib
    import stat

    name = env.get(ORG_POLICY_ENV)
    if not name:
        return None
    path = Path(name)
    if not path.is_absolute():
        raise OrgPolicyError(f"{ORG_POLICY_ENV}={name} is not an absolute path")
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY)
    except OSError as error:
        raise OrgPolicyError(
            f"the organisation's policy {ORG_POLICY_ENV}={name} cannot be opened ({error.strerror})"
        ) from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise OrgPolicyError(f"the organisation's policy {name} is not a regular file")
        if info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
            raise OrgPolicyError(
                f"the organisation's policy {name} is writable by others "
                f"(mode {stat.S_IMODE(info.st_mode):04o}); make it 0644 or stricter"
            )
        try:
            parent = os.stat(path.parent)
        except OSError as error:
            raise OrgPolicyError(f"{path.parent} cannot be read ({error.strerror})") from None
        if parent.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
            raise OrgPolicyError(
                f"the organisation's policy {name} is in a directory others may write "
                f"({path.parent}, mode {stat.S_IMODE(parent.st_mode):04o})"
            )
        data = os.read(fd, MAX_ORG_POLICY_BYTES + 1)
        while len(data) <= MAX_ORG_POLICY_BYTES and (more := os.read(fd, 65536)):
            data += more
    except OSError as error:
        raise OrgPolicyError(f"the organisation's policy {name} cannot be read ({error})") from None
    finally:
        os.close(fd)
    if len(data) > MAX_ORG_POLICY_BYTES:
        raise OrgPolicyError(
            f"the organisation's policy {name} is larger than {MAX_ORG_POLICY_BYTES} bytes"
        )
    return OrgPolicy(
        path=str(path),
        sha=hashlib.sha256(data).hexdigest(),
        text=data.decode("utf-8", "replace"),
    )


def with_org(
    rules: Rules, base: Base, *, env: Mapping[str, str], cache_dir: Path | None
) -> tuple[Rules, Rules | None, OrgPolicy | None]:
    """The rules to decide under, and the organisation's floor, as the merge gate takes
    them (``gate.decide.decide``): a repository without a policy is governed by the
    organisation's; one saying ``extend: org`` by both, the stricter verdict winning;
    ``extend: org`` without an organisation policy denies everything."""
    import dataclasses

    from webhooks.commands.hook_cache import PolicyUnreadable, cached_policy

    extends = base.policy is not None and rules.policy.policy.extend == "org"
    if base.policy is not None and not extends:
        return rules, None, None
    org = read_org_policy(env)
    if org is None:
        if not extends:
            return rules, None, None
        raise OrgPolicyError(
            f"{base.ref}:{POLICY_PATH} says 'extend: org' but no organisation policy is "
            f"configured: set {ORG_POLICY_ENV} to its file in the agent's managed settings"
        )
    try:
        view = cached_policy(
            text=org.text, blob=org.sha, ref=base.ref, cache_dir=cache_dir, path=org.path
        )
    except PolicyUnreadable as error:
        raise OrgPolicyError(str(error)) from None
    under_org = dataclasses.replace(rules, policy=view)
    return (rules, under_org, org) if extends else (under_org, None, org)


# --- resolving paths and edits -------------------------------------------------------------


def _resolve(cwd: Path, root: Path, path: str) -> tuple[str, bool, Path]:
    """(repository path, inside?, absolute path) of ``path`` as the agent named it."""
    absolute = Path(os.path.expanduser(path))
    absolute = (absolute if absolute.is_absolute() else cwd / absolute).resolve()
    try:
        return absolute.relative_to(root).as_posix(), True, absolute
    except ValueError:
        return absolute.as_posix(), False, absolute


def _read_text(path: Path) -> str | None:
    try:
        if path.stat().st_size > MAX_FILE_BYTES:
            return None
        return path.read_text(encoding="utf-8", errors="replace")
    except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
        return None


def _apply(before: str | None, write: FileWrite) -> str | None:
    """The new text after ``write``'s edits, or None when an edit does not apply."""
    if before is None:
        return None
    text = before
    for edit in write.edits:
        if edit.old not in text:
            return None
        text = (
            text.replace(edit.old, edit.new)
            if edit.replace_all
            else text.replace(edit.old, edit.new, 1)
        )
    return text


def changes(write: FileWrite, *, cwd: Path, root: Path) -> list[Change]:
    """The ``Change`` (or two, for a move) the merge gate would see for ``write``."""
    from gate.agents.decision import Change

    path, inside, absolute = _resolve(cwd, root, write.path)
    before = _read_text(absolute)
    added = write.added or "\n".join(edit.new for edit in write.edits)
    if write.delete:
        return [Change(path=path, before=before, after=None, inside=inside)]
    if write.content is not None:
        after: str | None = write.content
    elif write.edits:
        after = _apply(before, write)
    else:
        after = None
    change = Change(
        path=path, before=before, after=after, added=added if after is None else "", inside=inside
    )
    if write.move_to:
        target, target_inside, _ = _resolve(cwd, root, write.move_to)
        return [
            Change(
                path=target,
                before=None if after is None else before,
                after=after,
                added=change.added,
                previous_path=path,
                inside=inside and target_inside,
            )
        ]
    return [change]


# --- deciding -------------------------------------------------------------------------------


def load_rules(base: Base, *, cache_dir: Path | None, writes: bool) -> Rules:
    """The decision's inputs: the base policy (cached by blob sha) and, when the action
    writes, CODEOWNERS and the detectors (reads and plain commands need neither)."""
    from gate.agents.decision import Rules
    from webhooks.commands.hook_cache import cached_policy

    policy = cached_policy(
        text=base.policy.text if base.policy else None,
        blob=base.policy.sha if base.policy else "",
        ref=base.ref,
        cache_dir=cache_dir,
    )
    if not writes:
        return Rules(policy=policy, codeowners=None, detectors={}, base_branches=base.branches)
    from gate.codeowners import CodeOwners
    from gate.detectors import builtin

    owners = (
        CodeOwners.parse(base.codeowners.text, path=base.codeowners_path)
        if base.codeowners
        else CodeOwners.empty()
    )
    return Rules(policy=policy, codeowners=owners, detectors=builtin(), base_branches=base.branches)


def _own_state(
    action: Action, facts: ShellFacts | None, *, cwd: Path, root: Path, state: Path | None
) -> Verdict | None:
    """Deny touching the hook's own state directory: its policy cache, audit log, keys
    and daemon socket are for the hook alone, whatever the policy says."""
    if state is None:
        return None
    named = [w.path for w in action.writes] + [w.move_to for w in action.writes if w.move_to]
    named += list(action.reads)
    if facts is not None:
        named += [*facts.reads, *facts.writes]
    for path in named:
        _, _, absolute = _resolve(cwd, root, path)
        if absolute == state or state in absolute.parents:
            return Verdict(
                decision=Decision.DENY,
                reason=f"{path} is in the hook's state directory ({state}): its audit log, "
                "keys and policy cache are not for agents to read or change",
                rule="hook.state_dir",
                source="gate hook built-in rules",
            )
    return None


def decide(
    action: Action,
    rules: Rules,
    *,
    facts: ShellFacts | None,
    cwd: Path,
    root: Path,
    state: Path | None = None,
    floor: Rules | None = None,
) -> Verdict:
    """The verdict on ``action``: the strictest over every file and command it touches.

    ``floor``: the organisation's rules, for a policy saying ``extend: org``; the action
    is judged under both and the stricter verdict wins (the repository's on a tie), as
    the merge gate's ``gate.tree.floor`` keeps the most restrictive outcome."""
    if floor is not None:
        ours = decide(action, rules, facts=facts, cwd=cwd, root=root, state=state)
        theirs = decide(action, floor, facts=facts, cwd=cwd, root=root, state=state)
        found = strictest([ours, theirs])
        assert found is not None
        return found
    from gate.agents import decision

    own = _own_state(action, facts, cwd=cwd, root=root, state=state)
    if own is not None:
        return own
    verdicts: list[Verdict] = []
    for write in action.writes:
        for change in changes(write, cwd=cwd, root=root):
            verdicts.append(decision.decide_write(rules, change))
    for read in action.reads:
        path, inside, _ = _resolve(cwd, root, read)
        verdicts.append(decision.decide_read(rules, path, inside=inside))
    if facts is not None:
        inside_paths: dict[str, str | None] = {}
        for target in facts.writes:
            path, inside, _ = _resolve(cwd, root, target)
            inside_paths[target] = path if inside else None
        verdicts.extend(decision.shell_verdicts(rules, facts, inside=inside_paths))
        if not verdicts:
            verdicts.append(
                Verdict(
                    decision=Decision.ALLOW,
                    reason="the command reads no secret, adds no dependency and bypasses "
                    "no safeguard",
                    rule="default",
                    source=rules.policy.path,
                )
            )
    found = strictest(verdicts)
    if found is None:
        raise BadEvent("the event names nothing to judge")
    return found


def deny(reason: str, rule: str = "hook.fail_closed") -> Verdict:
    return Verdict(
        decision=Decision.DENY,
        reason=f"{reason}; the hook fails closed",
        rule=rule,
        source="gate hook",
    )


# --- the audit trail ------------------------------------------------------------------------


def _command_for_log(command: str) -> str:
    """The command as logged: withheld when it holds a secret, cut at 2,000 characters."""
    from gate.detectors.secrets import scan_text

    findings = scan_text(path="(command)", text=command)
    if findings:
        return "(withheld: " + "; ".join(f.message for f in findings[:3]) + ")"
    return command if len(command) <= 2000 else command[:2000] + "…"


def audit_fields(
    *, agent: str, action: Action | None, verdict: Verdict, base: Base | None, cwd: Path
) -> dict[str, object]:
    """The ``agent_action`` entry: who, where, what, and which rule of which file decided."""
    paths: list[str] = []
    if action is not None:
        for write in action.writes:
            paths.append(write.path)
            if write.move_to:
                paths.append(write.move_to)
        paths.extend(action.reads)
    fields: dict[str, object] = {
        "agent": True,
        "author": agent,
        "session": action.session if action else "",
        "event": action.event if action else "",
        "tool": action.tool if action else "",
        "action": action.kind if action else "unknown",
        "repo": base.repo if base else "",
        "cwd": str(cwd),
        "paths": paths,
        "decision": verdict.decision.value,
        "rule": verdict.rule,
        "source": verdict.source,
        "reason": verdict.reason,
    }
    if verdict.tier:
        fields["tier"] = verdict.tier
    if action is not None and action.command is not None:
        fields["command"] = _command_for_log(action.command)
    if base is not None:
        fields["base_ref"] = base.ref
        fields["base_sha"] = base.sha
        fields["policy_blob"] = base.policy.sha if base.policy else "builtin"
    return fields


def record(fields: Mapping[str, object], *, directory: Path, now: datetime) -> int:
    """Append to the local log, signing a checkpoint when one is due; returns the seq."""
    from webhooks.audit_sqlite import CHECKPOINT_FILE, append_sqlite

    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    seq, _leaf = append_sqlite(directory / AUDIT_FILE, "agent_action", fields, time=now)
    if (seq + 1) % CHECKPOINT_EVERY == 0 or not (directory / CHECKPOINT_FILE).exists():
        sign_checkpoint(directory, now=now, every=1)
    return seq


def sign_checkpoint(directory: Path, *, now: datetime, every: int = CHECKPOINT_EVERY) -> None:
    """Sign the local log's head with the state directory's key (generated on first use)."""
    import platform

    from webhooks.audit_sqlite import CHECKPOINT_FILE, checkpoint_sqlite
    from webhooks.audit_store import FileCheckpointSink
    from webhooks.keys import load_keyring

    checkpoint_sqlite(
        directory / AUDIT_FILE,
        sink=FileCheckpointSink(directory / CHECKPOINT_FILE),
        keyring=load_keyring(data_dir=directory),
        origin=f"merge-gate/hook@{platform.node() or 'local'}",
        now=now,
        every=every,
        seconds=CHECKPOINT_SECONDS,
    )


# --- the run ---------------------------------------------------------------------------------


def _can_ask(args: argparse.Namespace, env: Mapping[str, str]) -> bool:
    # Nobody answers a question in CI (Copilot's cloud agent runs in GitHub Actions).
    return not (args.no_ask or env.get("GITHUB_ACTIONS") == "true")


def evaluate(
    agent: str,
    raw: bytes,
    *,
    base_ref: str | None,
    env: Mapping[str, str],
    now: datetime,
    cwd: Path | None = None,
) -> tuple[Verdict, dict[str, object]]:
    """Decide on one event and log it; never raises (every failure is a deny).

    ``cwd`` is the hook process's working directory (the daemon passes its client's),
    used when the event names none."""
    from gate.agents.protocols import parse_event
    from gate.agents.shell import analyse
    from webhooks.commands.hook_cache import PolicyUnreadable

    action: Action | None = None
    base: Base | None = None
    org: OrgPolicy | None = None
    try:
        cwd = cwd or Path.cwd()
    except OSError as error:
        verdict = deny(f"the working directory cannot be read ({error})")
        return verdict, audit_fields(
            agent=agent, action=None, verdict=verdict, base=None, cwd=Path("/")
        )
    try:
        action = parse_event(agent, raw)
        cwd = Path(action.cwd) if action.cwd else cwd
        root = find_root(cwd.resolve())
        base = read_base(root, base_ref)
        command = action.command
        facts = analyse(command, base_branches=base.branches) if command is not None else None
        writes = bool(action.writes or (facts is not None and facts.writes))
        cache_dir = state_dir(env) / "policy-cache"
        rules = load_rules(base, cache_dir=cache_dir, writes=writes)
        rules, floor, org = with_org(rules, base, env=env, cache_dir=cache_dir)
        verdict = decide(
            action,
            rules,
            facts=facts,
            cwd=cwd,
            root=root.resolve(),
            state=state_dir(env).resolve(),
            floor=floor,
        )
    except BadEvent as error:
        verdict = deny(str(error), rule="hook.event")
    except OrgPolicyError as error:
        verdict = deny(str(error), rule="hook.org_policy")
    except (HookError, PolicyUnreadable) as error:
        verdict = deny(str(error))
    except Exception as error:
        verdict = deny(f"internal error: {type(error).__name__}: {error}")
    fields = audit_fields(agent=agent, action=action, verdict=verdict, base=base, cwd=cwd)
    if org is not None:
        fields["org_policy"] = f"{org.path}@sha256:{org.sha}"
    try:
        fields["seq"] = record(fields, directory=state_dir(env), now=now)
    except Exception as error:
        if verdict.decision is not Decision.DENY:
            verdict = deny(f"the audit log could not be written ({type(error).__name__}: {error})")
    return verdict, fields


def emit(answer: Answer) -> None:
    if answer.stdout:
        sys.stdout.write(answer.stdout + "\n")
    if answer.stderr:
        sys.stderr.write(answer.stderr)
    sys.stdout.flush()
    sys.stderr.flush()


def respond(
    args: argparse.Namespace,
    raw: bytes,
    *,
    env: Mapping[str, str],
    now: datetime,
    cwd: Path | None = None,
) -> tuple[Answer, dict[str, object] | None]:
    """The answer to one event in the agent's protocol, and the logged entry to forward
    (None when deciding itself failed); never raises."""
    protocol = AGENTS[args.agent]
    try:
        verdict, fields = evaluate(args.agent, raw, base_ref=args.base, env=env, now=now, cwd=cwd)
        return protocol.answer(verdict, can_ask=_can_ask(args, env)), fields
    except BaseException as error:
        return protocol.answer(deny(f"internal error: {type(error).__name__}")), None


def forward_entry(fields: Mapping[str, object], *, env: Mapping[str, str], now: datetime) -> str:
    """Forward the entry when ``$GATE_AUDIT_URL`` is set; a warning for stderr, or ""."""
    if not (env.get(AUDIT_URL_ENV) and env.get(TOKEN_ENV)):
        return ""
    try:
        from webhooks.commands.hook_forward import forward

        forward(
            {**fields, "time": now.strftime("%Y-%m-%dT%H:%M:%SZ")},
            url=env[AUDIT_URL_ENV],
            token=env[TOKEN_ENV],
            outbox=state_dir(env) / OUTBOX_FILE,
            timeout=FORWARD_TIMEOUT,
        )
    except Exception as error:
        return f"gate hook: forwarding failed: {error}\n"
    return ""


def run(args: argparse.Namespace, raw: bytes | None = None) -> int:
    """``gate hook --agent NAME``: answer, then forward within the time budget.

    ``raw``: the event when the caller has read stdin already."""
    env = os.environ
    now = datetime.now(UTC)
    try:
        event = sys.stdin.buffer.read() if raw is None else raw
    except BaseException as error:
        answer = AGENTS[args.agent].answer(deny(f"internal error: {type(error).__name__}"))
        emit(answer)
        return answer.exit_code
    answer, fields = respond(args, event, env=env, now=now)
    emit(answer)
    if fields is not None:
        warning = forward_entry(fields, env=env, now=now)
        if warning:
            sys.stderr.write(warning)
    return answer.exit_code


def add_run_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--agent", required=True, choices=sorted(AGENTS), help="the agent's protocol"
    )
    parser.add_argument(
        "--base", help="base ref the policy is read from (default: origin/HEAD, then main, master)"
    )
    parser.add_argument(
        "--no-ask", action="store_true", help="nobody can answer a question: ask becomes deny"
    )


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``gate hook`` (with ``install`` and ``doctor``) and ``gate agent-token``."""
    from webhooks.commands import hook_install, hook_tokens

    hook = subparsers.add_parser(
        "hook",
        help="judge an agent's tool call before it runs (agent hook protocol on stdin/stdout)",
        description="Read an agent's pre-tool hook event on stdin and answer allow, ask or "
        "deny in its protocol, from the base branch's merge-gate policy.",
    )
    sub = hook.add_subparsers(dest="hook_command", metavar="install|doctor")
    hook_install.register(sub)
    hook.add_argument("--agent", choices=sorted(AGENTS), help="the agent's protocol")
    hook.add_argument(
        "--base", help="base ref the policy is read from (default: origin/HEAD, then main, master)"
    )
    hook.add_argument(
        "--no-ask", action="store_true", help="nobody can answer a question: ask becomes deny"
    )
    hook.set_defaults(func=_run_or_usage)
    hook_tokens.register(subparsers)


def _run_or_usage(args: argparse.Namespace) -> int:
    if not args.agent:
        print("gate hook: --agent is required", file=sys.stderr)
        return _EXIT_USAGE
    return run(args)


def decide_here_on(argv: Sequence[str], raw: bytes) -> int:
    """``gate-hook`` in this process, on an event already read from stdin."""
    if len(argv) == 2 and argv[0] == "--agent" and argv[1] in AGENTS:
        return run(
            cast("argparse.Namespace", SimpleNamespace(agent=argv[1], base=None, no_ask=False)),
            raw,
        )
    import argparse

    parser = argparse.ArgumentParser(prog="gate-hook", description=__doc__.split("\n", 1)[0])
    add_run_arguments(parser)
    return run(parser.parse_args(argv), raw)


def main(argv: Sequence[str] | None = None) -> int:
    """``gate hook`` without the rest of the CLI, deciding in this process."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if len(argv) == 2 and argv[0] == "--agent" and argv[1] in AGENTS:
        # The common case, without building a parser (argparse costs a few ms per call).
        return run(
            cast("argparse.Namespace", SimpleNamespace(agent=argv[1], base=None, no_ask=False))
        )
    import argparse

    parser = argparse.ArgumentParser(prog="gate-hook", description=__doc__.split("\n", 1)[0])
    add_run_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
