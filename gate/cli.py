"""The ``gate`` commands of the pure package: ``check`` and ``policy``.

``gate check`` reads a local git repository the way the service reads GitHub:
policy and CODEOWNERS from the base ref, the diff from the merge base to the
head; it decides through the same pipeline as the service (:func:`gate.decide.decide`)
and prints the decision. The console script's composition root
(``webhooks.main``) registers these commands beside the service's.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from gate import __version__, render
from gate.decide import decide
from gate.defaults import DEFAULT_POLICY, load_policy
from gate.detectors import builtin
from gate.localrepo import GitError, LocalFacts, changed_files, commit_facts, git, resolve
from gate.model import (
    PullSnapshot,
    Review,
    ReviewState,
    Teams,
    UserType,
)
from gate.policy import InvalidPolicy, json_schema
from gate.result import VOCABULARY, Outcome

EXIT_PASS, EXIT_BLOCKED, EXIT_USAGE = 0, 1, 2


class UsageError(Exception):
    """A problem with the command line or the repository; exit code 2."""


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
    try:
        return _check(args)
    except GitError as error:
        raise UsageError(str(error)) from None


def _check(args: argparse.Namespace) -> int:
    repo = Path(args.repo)
    try:
        git(repo, "rev-parse", "--git-dir")
    except GitError:
        raise UsageError(f"{repo} is not a git repository") from None
    base_tip = resolve(repo, args.base)
    head = resolve(repo, args.head)
    merge_base = git(repo, "merge-base", base_tip, head).decode().strip()
    files, complete = changed_files(repo, merge_base, head)
    commit_authors, co_authors, emails = commit_facts(repo, merge_base, head)
    author = (
        args.author
        or git(repo, "log", "-1", "--format=%an", head).decode("utf-8", "replace").strip()
    )
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
        files_complete=complete,
        reviews=reviews,
        commit_authors=commit_authors,
        commit_emails=emails,
        co_authors=co_authors,
    )
    facts = LocalFacts(repo=repo, pull=pull, merge_base=merge_base, teams=_parse_teams(args.team))
    decision = asyncio.run(decide(facts=facts, detectors=builtin()))
    if decision.outcome is Outcome.ERROR and decision.notes:
        for note in decision.notes:
            print(note, file=sys.stderr)
    if args.format == "json":
        sys.stdout.buffer.write(decision.canonical_json() + b"\n")
    elif args.format == "markdown":
        print(render.markdown(decision))
    else:
        print(render.text(decision))
    return VOCABULARY[decision.outcome].exit_code


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


def new_parser() -> tuple[argparse.ArgumentParser, argparse._SubParsersAction[Any]]:
    parser = argparse.ArgumentParser(
        prog="gate", description="merge-gate: govern pull requests opened by AI coding agents."
    )
    parser.add_argument("--version", action="version", version=f"merge-gate {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    return parser, sub


def build_parser() -> argparse.ArgumentParser:
    """The parser of this package's commands alone (``python -m gate``)."""
    parser, sub = new_parser()
    register(sub)
    return parser


def register(sub: argparse._SubParsersAction[Any]) -> None:
    """Add ``check`` and ``policy`` to a ``gate`` parser."""

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


def run(parser: argparse.ArgumentParser, argv: Sequence[str]) -> int:
    """Parse and run one command; a :class:`UsageError` is exit code 2 with its message."""
    try:
        args = parser.parse_args(list(argv))
        code: int = args.func(args)
    except UsageError as error:
        print(f"gate: error: {error}", file=sys.stderr)
        return EXIT_USAGE
    return code


def main(argv: Sequence[str] | None = None) -> int:
    return run(build_parser(), sys.argv[1:] if argv is None else argv)


if __name__ == "__main__":
    sys.exit(main())
