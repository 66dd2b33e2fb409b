"""The ``gate`` command. The one module of ``gate/`` that does I/O.

``gate check`` reads a local git repository the way the service reads GitHub:
policy and CODEOWNERS from the base ref, the diff from the merge base to the
head, and prints the decision.
"""

from __future__ import annotations

import argparse
import importlib
import json
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from gate import __version__, engine, render
from gate.codeowners import LOCATIONS, CodeOwners
from gate.defaults import DEFAULT_POLICY, load_policy
from gate.detectors import builtin
from gate.model import (
    ChangedFile,
    CoAuthor,
    Contents,
    FileStatus,
    PullSnapshot,
    Review,
    ReviewState,
    Teams,
    UserType,
)
from gate.policy import POLICY_PATH, InvalidPolicy, json_schema

#: Subcommands that live with the service: name -> (module with register(), help).
#: Only the module of the command being run is imported, so `gate check` stays light.
SERVICE_COMMANDS = {
    "serve": ("webhooks.commands.serve", "run the webhook receiver (and workers)"),
    "worker": ("webhooks.commands.serve", "run workers only"),
    "verify": ("webhooks.commands.verify", "verify a signed decision record"),
    "keygen": ("webhooks.commands.keygen", "create or rotate the signing key"),
    "audit": ("webhooks.commands.audit", "query or verify the audit log"),
    "redeliver": ("webhooks.commands.redeliver", "redeliver failed webhook deliveries"),
    "setup": ("webhooks.commands.setup", "register the GitHub App from its manifest"),
    "doctor": ("webhooks.commands.doctor", "check an installation and branch protection"),
    "bench": ("benchmarks.__main__", "run every benchmark and print ratios"),
    "hook": ("webhooks.commands.hook", "judge an agent's tool call before it runs"),
    "agent-token": ("webhooks.commands.hook", "issue or revoke agents' audit tokens"),
}

EXIT_PASS, EXIT_BLOCKED, EXIT_USAGE = 0, 1, 2


class UsageError(Exception):
    """A problem with the command line or the repository; exit code 2."""


# --- git -------------------------------------------------------------------------------


def _git(repo: Path, *args: str, check: bool = True) -> str:
    try:
        done = subprocess.run(
            ["git", "-C", str(repo), *args],
            capture_output=True,
            check=False,
            text=True,
            encoding="utf-8",
            errors="surrogateescape",
        )
    except FileNotFoundError:
        raise UsageError("git is not installed") from None
    if check and done.returncode != 0:
        raise UsageError(done.stderr.strip() or f"git {' '.join(args)} failed")
    return done.stdout


def _resolve(repo: Path, ref: str) -> str:
    out = _git(repo, "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}", check=False)
    if not out.strip():
        raise UsageError(f"unknown ref {ref!r} in {repo}")
    return out.strip()


def _show(repo: Path, sha: str, path: str) -> str | None:
    done = subprocess.run(
        ["git", "-C", str(repo), "cat-file", "-p", f"{sha}:{path}"],
        capture_output=True,
        check=False,
    )
    if done.returncode != 0:
        return None
    return done.stdout.decode("utf-8", "replace")


def _blob(repo: Path, sha: str, path: str) -> str:
    return _git(repo, "rev-parse", f"{sha}:{path}", check=False).strip()


_STATUS = {
    "A": FileStatus.ADDED,
    "M": FileStatus.MODIFIED,
    "D": FileStatus.REMOVED,
    "R": FileStatus.RENAMED,
    "C": FileStatus.COPIED,
    "T": FileStatus.MODIFIED,
}


def _changed_files(repo: Path, base: str, head: str) -> tuple[ChangedFile, ...]:
    """Files as GitHub lists them: status, rename source, hunks-only patch, counts."""
    from unidiff.patch import PatchSet

    raw = _git(repo, "diff", "--no-color", "--no-ext-diff", "-M", "--unified=3", base, head)
    names = _git(repo, "diff", "--name-status", "-M", "-z", base, head).split("\0")
    statuses: dict[str, tuple[FileStatus, str | None]] = {}
    i = 0
    while i < len(names) - 1:
        code = names[i]
        if code[:1] in ("R", "C"):
            statuses[names[i + 2]] = (_STATUS[code[0]], names[i + 1])
            i += 3
        elif code:
            statuses[names[i + 1]] = (_STATUS.get(code[0], FileStatus.MODIFIED), None)
            i += 2
        else:
            i += 1
    files: list[ChangedFile] = []
    for patched in PatchSet(raw):
        path = patched.path
        if patched.is_removed_file:
            path = patched.source_file.removeprefix("a/")
        status, previous = statuses.get(path, (FileStatus.MODIFIED, None))
        hunks = "".join(str(h) for h in patched).rstrip("\n")
        files.append(
            ChangedFile(
                path=path,
                status=status,
                previous_path=previous,
                patch=None if patched.is_binary_file or not hunks else hunks,
                additions=patched.added,
                deletions=patched.removed,
            )
        )
    return tuple(files)


def _commit_facts(repo: Path, base: str, head: str) -> tuple[frozenset[str], tuple[CoAuthor, ...]]:
    log = _git(
        repo,
        "log",
        "--format=%an%x00%(trailers:key=Co-authored-by,valueonly,separator=%x01)%x02",
        f"{base}..{head}",
    )
    authors: set[str] = set()
    co: list[CoAuthor] = []
    for record in log.split("\x02"):
        name, _, trailers = record.strip("\n").partition("\x00")
        if name:
            authors.add(name)
        for value in filter(None, (t.strip() for t in trailers.split("\x01"))):
            who, _, email = value.partition("<")
            co.append(CoAuthor(name=who.strip(), email=email.rstrip(">").strip()))
    return frozenset(authors), tuple(dict.fromkeys(co))


# --- commands --------------------------------------------------------------------------


def _parse_teams(values: Sequence[str]) -> Teams:
    members: dict[str, list[str]] = {}
    for value in values:
        team, sep, logins = value.partition("=")
        if not sep or "/" not in team:
            raise UsageError(f"--team wants ORG/TEAM=login,login; got {value!r}")
        members[team] = [login for login in logins.split(",") if login]
    return Teams.of(members)


def cmd_check(args: argparse.Namespace) -> int:
    repo = Path(args.repo)
    if not (repo / ".git").exists() and _git(repo, "rev-parse", "--git-dir", check=False) == "":
        raise UsageError(f"{repo} is not a git repository")
    base_tip = _resolve(repo, args.base)
    head = _resolve(repo, args.head)
    merge_base = _git(repo, "merge-base", base_tip, head).strip()
    policy_text = _show(repo, base_tip, POLICY_PATH)
    try:
        policy = load_policy(policy_text, blob=_blob(repo, base_tip, POLICY_PATH))
    except InvalidPolicy as error:
        for problem in error.errors:
            print(problem.format(f"{args.base}:{POLICY_PATH}"), file=sys.stderr)
        raise UsageError(f"the policy on {args.base} is invalid") from None
    codeowners = CodeOwners.empty()
    codeowners_blob = ""
    for location in LOCATIONS:
        text = _show(repo, base_tip, location)
        if text is not None:
            codeowners = CodeOwners.parse(text, path=location)
            codeowners_blob = _blob(repo, base_tip, location)
            break
    files = _changed_files(repo, merge_base, head)
    commit_authors, co_authors = _commit_facts(repo, merge_base, head)
    author = args.author or _git(repo, "log", "-1", "--format=%an", head).strip()
    reviews = tuple(
        Review(
            id=index + 1,
            user=login,
            user_type=UserType.USER,
            state=ReviewState.APPROVED,
            commit_id=head,
            submitted_at="1970-01-01T00:00:00Z",
            author_association="MEMBER",
        )
        for index, login in enumerate(args.approved_by)
    )
    pull = PullSnapshot(
        repo=str(repo.resolve().name),
        number=0,
        author=author,
        author_type=UserType.BOT if author.endswith("[bot]") else UserType.USER,
        head_sha=head,
        base_ref=args.base,
        base_sha=base_tip,
        files=files,
        reviews=reviews,
        commit_authors=commit_authors,
        co_authors=co_authors,
    )
    detectors = builtin()
    needed = engine.needs(policy=policy, codeowners=codeowners, pull=pull, detectors=detectors)
    texts = {
        (side, path): _show(repo, merge_base if side == "base" else head, path)
        for side, path in needed.contents
    }
    decision = engine.evaluate(
        policy=policy,
        codeowners=codeowners,
        pull=pull,
        teams=_parse_teams(args.team),
        contents=Contents(texts=texts),
        detectors=detectors,
        codeowners_blob=codeowners_blob,
    )
    if args.format == "json":
        sys.stdout.buffer.write(decision.canonical_json() + b"\n")
    elif args.format == "markdown":
        print(render.markdown(decision))
    else:
        print(render.text(decision))
    if decision.outcome.value == "pass":
        return EXIT_PASS
    if decision.outcome.value == "error":
        return EXIT_USAGE
    return EXIT_BLOCKED


def cmd_policy_validate(args: argparse.Namespace) -> int:
    status = EXIT_PASS
    for name in args.files:
        try:
            text = Path(name).read_text(encoding="utf-8")
        except OSError as error:
            raise UsageError(f"{name}: {error.strerror}") from None
        try:
            load_policy(text, path=name)
        except InvalidPolicy as error:
            for problem in error.errors:
                print(problem.format(name), file=sys.stderr)
            status = EXIT_BLOCKED
        else:
            print(f"{name}: ok")
    return status


def cmd_policy_schema(args: argparse.Namespace) -> int:
    print(json.dumps(json_schema(), indent=2, sort_keys=True))
    return EXIT_PASS


def cmd_policy_default(args: argparse.Namespace) -> int:
    print(DEFAULT_POLICY, end="")
    return EXIT_PASS


def build_parser(argv: Sequence[str] = ()) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gate", description="merge-gate: govern pull requests opened by AI coding agents."
    )
    parser.add_argument("--version", action="version", version=f"merge-gate {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    check = sub.add_parser("check", help="decide on a local branch as the service would")
    check.add_argument("--repo", default=".", help="path of the git repository (default: .)")
    check.add_argument(
        "--base", required=True, help="base ref: policy and CODEOWNERS come from here"
    )
    check.add_argument("--head", default="HEAD", help="head ref (default: HEAD)")
    check.add_argument(
        "--author", help="login of the PR author (default: the head commit's author)"
    )
    check.add_argument(
        "--approved-by",
        action="append",
        default=[],
        metavar="LOGIN",
        help="pretend LOGIN approved the head (repeatable)",
    )
    check.add_argument(
        "--team",
        action="append",
        default=[],
        metavar="ORG/TEAM=a,b",
        help="team members, for team owners (repeatable)",
    )
    check.add_argument("--format", choices=("text", "json", "markdown"), default="text")
    check.set_defaults(func=cmd_check)

    policy = sub.add_parser("policy", help="work with policy files")
    policy_sub = policy.add_subparsers(dest="policy_command", required=True, metavar="ACTION")
    validate = policy_sub.add_parser("validate", help="report every error as file:line:col")
    validate.add_argument("files", nargs="+", metavar="FILE")
    validate.set_defaults(func=cmd_policy_validate)
    schema = policy_sub.add_parser("schema", help="print the JSON Schema for editors")
    schema.set_defaults(func=cmd_policy_schema)
    default = policy_sub.add_parser("default", help="print the built-in default policy")
    default.set_defaults(func=cmd_policy_default)

    wanted = next((a for a in argv if not a.startswith("-")), None)
    loaded = SERVICE_COMMANDS[wanted][0] if wanted in SERVICE_COMMANDS else None
    for name, (module_name, help_text) in SERVICE_COMMANDS.items():
        if module_name != loaded:
            sub.add_parser(name, help=help_text, add_help=False)
    if loaded is not None:
        try:
            module = importlib.import_module(loaded)
        except ModuleNotFoundError as error:
            if not (error.name and loaded.startswith(error.name)):
                raise
            raise UsageError(f"'{wanted}' is not part of this installation ({loaded})") from None
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        parser = build_parser(argv)
        args = parser.parse_args(argv)
        code: int = args.func(args)
    except UsageError as error:
        print(f"gate: error: {error}", file=sys.stderr)
        return EXIT_USAGE
    return code


if __name__ == "__main__":
    sys.exit(main())
