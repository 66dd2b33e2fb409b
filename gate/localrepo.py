"""Facts from a local git repository, read the way the service reads GitHub.

Policy and CODEOWNERS come from the base ref; the diff runs from the merge base
to the head, listed as GitHub lists a pull request's files
(https://docs.github.com/rest/pulls/pulls#list-pull-requests-files): status,
rename source, hunks-only patch, at most 3000 files. With ``gate/cli.py`` this is
the one module of ``gate/`` that does I/O (git subprocesses).

File names are read NUL-separated (``-z``), exactly as stored, never from git's
quoted display form; text that is not UTF-8 is never guessed at: such a file is
left without a patch, so the engine counts its content as unseen.
"""

from __future__ import annotations

import dataclasses
import subprocess
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from gate.codeowners import LOCATIONS, CodeOwners
from gate.decide import Config
from gate.detectors.manifests import Package
from gate.engine import Needs
from gate.model import (
    GITHUB_FILE_LIMIT,
    ChangedFile,
    CoAuthor,
    Contents,
    FileStatus,
    PullSnapshot,
    ScanResult,
    Teams,
)
from gate.policy import POLICY_PATH


class GitError(Exception):
    """git failed or the repository or a ref cannot be read."""


def git(repo: Path, *args: str) -> bytes:
    try:
        done = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, check=False)
    except FileNotFoundError:
        raise GitError("git is not installed") from None
    if done.returncode != 0:
        message = done.stderr.decode("utf-8", "replace").strip()
        raise GitError(message or f"git {' '.join(args)} failed")
    return done.stdout


def resolve(repo: Path, ref: str) -> str:
    try:
        return git(repo, "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}").decode().strip()
    except GitError:
        raise GitError(f"unknown ref {ref!r} in {repo}") from None


def show(repo: Path, sha: str, path: str, *, strict: bool = False) -> str | None:
    """A file's text at ``sha``; None when absent.

    ``strict``: text that is not UTF-8 is an error (rules are never guessed at);
    otherwise undecodable bytes are replaced, so detectors still see the rest.
    """
    try:
        data = git(repo, "cat-file", "-p", f"{sha}:{path}")
    except GitError:
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        if strict:
            raise GitError(f"{path} at {sha[:12]} is not UTF-8 text") from None
        return data.decode("utf-8", "replace")


def blob_id(repo: Path, sha: str, path: str) -> str:
    try:
        return git(repo, "rev-parse", f"{sha}:{path}").decode().strip()
    except GitError:
        return ""


_STATUS = {
    "A": FileStatus.ADDED,
    "M": FileStatus.MODIFIED,
    "D": FileStatus.REMOVED,
    "R": FileStatus.RENAMED,
    "C": FileStatus.COPIED,
    "T": FileStatus.MODIFIED,
}


@dataclass(frozen=True, slots=True)
class _Entry:
    status: str
    path: str
    previous: str | None


def _name(raw: bytes) -> str:
    # A name that is not UTF-8 keeps every byte's position visible (U+FFFD), so
    # its directories still match the policy's globs.
    return raw.decode("utf-8", "replace")


def _entries(raw: bytes) -> list[_Entry]:
    """``git diff --raw -z``: ``:modes shas STATUS\\0path\\0[path\\0]`` per file."""
    fields = raw.split(b"\0")
    out: list[_Entry] = []
    i = 0
    while i < len(fields) - 1:
        meta = fields[i].decode("ascii", "replace")
        if not meta.startswith(":"):
            i += 1
            continue
        code = meta.split()[-1][:1]
        if code in ("R", "C"):
            out.append(_Entry(code, _name(fields[i + 2]), _name(fields[i + 1])))
            i += 3
        else:
            out.append(_Entry(code, _name(fields[i + 1]), None))
            i += 2
    return out


def _sections(patch: bytes) -> Iterator[list[bytes]]:
    """The patch split per file at its ``diff --git`` lines, in git's order."""
    section: list[bytes] = []
    for line in patch.splitlines(keepends=True):
        if line.startswith(b"diff --git ") and section:
            yield section
            section = []
        section.append(line)
    if section:
        yield section


def _hunks(section: Sequence[bytes]) -> tuple[bytes, int, int, bool]:
    """(hunk text, added, removed, binary) of one file's section."""
    hunk: list[bytes] = []
    added = removed = 0
    binary = False
    started = False
    for line in section:
        if not started:
            if line.startswith(b"@@"):
                started = True
            elif line.startswith(b"Binary files ") or line.startswith(b"GIT binary patch"):
                binary = True
                continue
            else:
                continue
        hunk.append(line)
        if line.startswith(b"+"):
            added += 1
        elif line.startswith(b"-"):
            removed += 1
    return b"".join(hunk).rstrip(b"\n"), added, removed, binary


def changed_files(repo: Path, base: str, head: str) -> tuple[tuple[ChangedFile, ...], bool]:
    """(files as GitHub lists them, complete): more than 3000 files are cut, as GitHub does."""
    args = ("diff", "--no-color", "--no-ext-diff", "--no-textconv", "-M", "--unified=3")
    entries = _entries(git(repo, *args, "--raw", "-z", base, head))
    sections = list(_sections(git(repo, *args, "--patch", base, head)))
    files: list[ChangedFile] = []
    at = 0
    for entry in entries:
        # A type change (file <-> symlink) is two sections under one header: one file.
        parts = sections[at : at + 1]
        at += 1
        typechange = entry.status == "T" and parts and at < len(sections)
        if typechange and sections[at][:1] == parts[0][:1]:
            parts.append(sections[at])
            at += 1
        texts = [_hunks(p) for p in parts]
        hunks = b"\n".join(t[0] for t in texts if t[0])
        try:
            patch: str | None = hunks.decode("utf-8") if hunks else None
        except UnicodeDecodeError:
            patch = None  # not UTF-8: its content is unseen, never guessed at
        if any(t[3] for t in texts):
            patch = None
        files.append(
            ChangedFile(
                path=entry.path,
                status=_STATUS.get(entry.status, FileStatus.MODIFIED),
                previous_path=entry.previous,
                patch=patch,
                additions=sum(t[1] for t in texts),
                deletions=sum(t[2] for t in texts),
            )
        )
    complete = len(files) <= GITHUB_FILE_LIMIT
    return tuple(files[:GITHUB_FILE_LIMIT]), complete


def commit_facts(
    repo: Path, base: str, head: str
) -> tuple[frozenset[str], tuple[CoAuthor, ...], frozenset[str]]:
    """(commit author names, ``Co-authored-by`` trailers, git e-mails) of ``base..head``."""
    fmt = "%an%x00%ae%x00%(trailers:key=Co-authored-by,valueonly,separator=%x01)%x00%ce%x02"
    log = git(repo, "log", f"--format={fmt}", f"{base}..{head}").decode("utf-8", "replace")
    authors: set[str] = set()
    emails: set[str] = set()
    co: list[CoAuthor] = []
    for record in log.split("\x02"):
        fields = record.strip("\n").split("\x00")
        if len(fields) < 4:
            continue
        name, email, trailers, committer = fields[:4]
        if name:
            authors.add(name)
        emails |= {e for e in (email, committer) if e}
        for value in filter(None, (t.strip() for t in trailers.split("\x01"))):
            who, _, email = value.partition("<")
            co.append(CoAuthor(name=who.strip(), email=email.rstrip(">").strip()))
    return frozenset(authors), tuple(dict.fromkeys(co)), frozenset(emails)


class LocalFacts:
    """:class:`gate.decide.Facts` over a local repository (``gate check``)."""

    def __init__(self, *, repo: Path, pull: PullSnapshot, merge_base: str, teams: Teams) -> None:
        self._repo = repo
        self._pull = pull
        self._merge_base = merge_base
        self._teams = teams

    async def pull(self) -> PullSnapshot:
        return self._pull

    async def config(self, *, base_sha: str) -> Config:
        codeowners = CodeOwners.empty()
        codeowners_blob = ""
        for location in LOCATIONS:
            text = show(self._repo, base_sha, location, strict=True)
            if text is not None:
                codeowners = CodeOwners.parse(text, path=location)
                codeowners_blob = blob_id(self._repo, base_sha, location)
                break
        return Config(
            policy_text=show(self._repo, base_sha, POLICY_PATH, strict=True),
            policy_blob=blob_id(self._repo, base_sha, POLICY_PATH),
            codeowners=codeowners,
            codeowners_blob=codeowners_blob,
        )

    async def inputs(self, *, needs: Needs, pull: PullSnapshot) -> tuple[Teams, Contents]:
        def ref(side: str) -> str:
            return self._merge_base if side == "base" else pull.head_sha

        texts = {(side, path): show(self._repo, ref(side), path) for side, path in needs.contents}
        # Offline, whoever ``--approved-by`` names is taken to have write access.
        teams = dataclasses.replace(self._teams, writers=needs.writers)
        return teams, Contents(texts=texts)

    async def scan(self, *, packages: Sequence[Package], head_sha: str) -> ScanResult | None:
        # Offline: no registry is asked; the supply-chain gate stays open.
        return None
