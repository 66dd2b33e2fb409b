"""Property: no file name lowers a gated or denied file's tier.

Git allows any character but NUL in a path, and GitHub lists paths as they are:
whatever an agent names its files (newlines, control characters, look-alike
Unicode, dots), a file under a gated glob of the default policy gets at least
that glob's tier, and a file under a denied glob is denied, through the whole
engine. Renames are judged by both names, so a gated name on either side counts.
"""

from __future__ import annotations

from collections.abc import Callable

from hypothesis import given, settings
from hypothesis import strategies as st

from gate.defaults import default_policy
from gate.detectors import builtin
from gate.model import ChangedFile, Contents, FileStatus
from tests.factories import QUIET, decide, pull

POLICY = default_policy()
RANK = POLICY.policy.rank

#: One path segment: any character but NUL and '/', never '.' or '..' (git refuses them).
SEGMENT = st.text(
    alphabet=st.characters(blacklist_characters="\x00/", blacklist_categories=("Cs",)),
    min_size=1,
    max_size=12,
).filter(lambda s: s not in (".", ".."))
DIRS = st.lists(SEGMENT, max_size=3).map(lambda parts: "".join(p + "/" for p in parts))
TAIL = st.lists(SEGMENT, min_size=1, max_size=3).map("/".join)

Maker = Callable[[str, str, str], str]

#: (tier the path requires, how to build a path under the glob from random parts).
GATED: list[tuple[str, Maker]] = [
    ("high", lambda d, s, t: f"{d}auth/{t}"),
    ("high", lambda d, s, t: f"{d}billing/{t}"),
    ("high", lambda d, s, t: f"{d}security/{t}"),
    ("migrations", lambda d, s, t: f"{d}migrations/{t}"),
    ("migrations", lambda d, s, t: f"{d}{s}.sql"),
    ("migrations", lambda d, s, t: f"alembic/{t}"),
    ("agent-config", lambda d, s, t: f"{d}AGENTS.md"),
    ("agent-config", lambda d, s, t: f"{d}CLAUDE.md"),
    ("agent-config", lambda d, s, t: f"{d}.claude/{t}"),
    ("agent-config", lambda d, s, t: f"{d}.cursor/{t}"),
    ("agent-config", lambda d, s, t: f".github/instructions/{t}"),
    ("agent-config", lambda d, s, t: f".github/hooks/{t}"),
    ("agent-config", lambda d, s, t: f"{d}.mcp.json"),
    ("governance", lambda d, s, t: ".github/merge-gate.yml"),
]
DENIED: list[Maker] = [
    lambda d, s, t: f".github/workflows/{t}",
    lambda d, s, t: f".github/actions/{t}",
]

STATUS = st.sampled_from(["modified", "added", "renamed-to", "renamed-from"])


def change(path: str, other: str, how: str) -> ChangedFile:
    patch = "@@ -0,0 +1 @@\n+x = 1"
    if how == "renamed-to":
        return ChangedFile(other, FileStatus.RENAMED, previous_path=path, patch=patch, additions=1)
    if how == "renamed-from":
        return ChangedFile(path, FileStatus.RENAMED, previous_path=other, patch=patch, additions=1)
    status = FileStatus.ADDED if how == "added" else FileStatus.MODIFIED
    return ChangedFile(path, status, patch=patch, additions=1)


@settings(max_examples=200, deadline=None)
@given(
    gated=st.sampled_from(GATED),
    dirs=DIRS,
    segment=SEGMENT,
    tail=TAIL,
    other=st.tuples(DIRS, SEGMENT).map("".join),
    how=STATUS,
)
def test_a_gated_path_never_gets_a_lower_tier(
    gated: tuple[str, Maker], dirs: str, segment: str, tail: str, other: str, how: str
) -> None:
    tier, make = gated
    path = make(dirs, segment, tail)
    decision = decide(POLICY, pull([change(path, other, how)]), detectors=QUIET)
    (result,) = decision.files
    assert RANK(result.tier) >= RANK(tier), (path, result.tier)


@settings(max_examples=150, deadline=None)
@given(
    make=st.sampled_from(DENIED),
    dirs=DIRS,
    segment=SEGMENT,
    tail=TAIL,
    other=st.tuples(DIRS, SEGMENT).map("".join),
    how=STATUS,
)
def test_a_denied_path_is_always_denied_for_an_agent(
    make: Maker, dirs: str, segment: str, tail: str, other: str, how: str
) -> None:
    path = make(dirs, segment, tail)
    decision = decide(POLICY, pull([change(path, other, how)]), detectors=QUIET)
    (result,) = decision.files
    assert result.denied, path
    assert decision.outcome.value == "denied"


@settings(max_examples=60, deadline=None)
@given(gated=st.sampled_from(GATED), dirs=DIRS, segment=SEGMENT, tail=TAIL)
def test_with_every_detector_and_no_patch_the_tier_still_holds(
    gated: tuple[str, Maker], dirs: str, segment: str, tail: str
) -> None:
    # Content GitHub did not show and nobody read: still at least the path's tier.
    tier, make = gated
    path = make(dirs, segment, tail)
    file = ChangedFile(path, FileStatus.MODIFIED, patch=None, additions=1)
    decision = decide(POLICY, pull([file]), detectors=builtin(), contents=Contents())  # type: ignore[arg-type]
    (result,) = decision.files
    assert RANK(result.tier) >= RANK(tier), (path, result.tier)
