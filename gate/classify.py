"""Every changed file gets a tier, and the reasons for it."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from functools import lru_cache
from typing import TYPE_CHECKING

from gate.codeowners import CodeOwners
from gate.detectors.base import Detector, Finding, ScanInput
from gate.detectors.secrets import redact_text
from gate.detectors.testfiles import RULE as TEST_FILE
from gate.diff import PatchError, added_lines, first_added_range
from gate.filekinds import DOC_SUFFIXES
from gate.globs import GlobSet
from gate.model import ChangedFile, Contents
from gate.result import FileFinding, FileResult, Reason

if TYPE_CHECKING:  # the policy model is only a type here: the hook runs without pydantic
    from gate.policy import LoadedPolicy, Policy


@lru_cache(maxsize=512)
def _globs(patterns: tuple[str, ...]) -> GlobSet:
    return GlobSet.compile(patterns)


def active_detectors(policy: Policy, detectors: Mapping[str, Detector]) -> tuple[Detector, ...]:
    return tuple(detectors[name] for name in sorted(policy.detector_names()) if name in detectors)


def _ref_index(refs: Sequence[str], finding: Finding) -> int | None:
    """Index of the first ``detector`` or ``detector:rule`` reference the finding matches."""
    for index, ref in enumerate(refs):
        name, _, rule = ref.partition(":")
        if name == finding.detector and (not rule or rule == finding.rule):
            return index
    return None


def classify_files(
    *,
    policy: LoadedPolicy,
    codeowners: CodeOwners,
    files: Sequence[ChangedFile],
    contents: Contents,
    detectors: Mapping[str, Detector],
    agent: bool,
    cleared: str = "",
) -> tuple[FileResult, ...]:
    """``cleared``: who cleared this head's secret findings and when ("" for nobody):
    such findings are listed, no longer deny, and set no tier."""
    active = active_detectors(policy.policy, detectors)
    return tuple(
        _classify(
            policy=policy,
            codeowners=codeowners,
            file=file,
            contents=contents,
            active=active,
            agent=agent,
            cleared=cleared,
        )
        for file in sorted(files, key=lambda f: f.path)
    )


def _classify(
    *,
    policy: LoadedPolicy,
    codeowners: CodeOwners,
    file: ChangedFile,
    contents: Contents,
    active: Sequence[Detector],
    agent: bool,
    cleared: str = "",
) -> FileResult:
    rules = policy.policy
    unseen: str | None = None
    try:
        added = added_lines(file.patch) if file.patch else ()
    except PatchError:
        added, unseen = (), "the patch could not be parsed"
    findings: list[Finding] = []
    data = ScanInput(file=file, added=added, contents=contents)
    for detector in active:
        findings.extend(_allowed(policy, finding) for finding in detector.scan(data))
    if cleared:
        findings = [_cleared(f, cleared) for f in findings]
    # Messages quote pull-request text (a package URL, an operation's name) and reach
    # the check run and the signed record: no secret may ride along, whatever found it.
    findings = [replace(f, message=redact_text(f.message)) for f in findings]
    if unseen is None and file.content_unseen:
        if ("head", file.path) in contents.too_large:
            unseen = "GitHub sent no patch (binary or large) and the file is too large to read"
        elif contents.get("head", file.path) is None:
            unseen = "GitHub sent no patch (binary or large) and the content was not inspected"

    deny_reasons = _deny_reasons(policy=policy, file=file, findings=findings, agent=agent)

    best_rank = -1
    best_reasons: list[Reason] = []
    for rank in range(len(rules.tiers)):
        reasons = _tier_reasons(policy=policy, rank=rank, file=file, findings=findings)
        if reasons and rank >= best_rank:
            best_rank, best_reasons = rank, reasons
    if best_rank < 0:
        best_rank = rules.rank(rules.default_tier)
        best_reasons = [
            Reason(
                rule="default_tier",
                detail=f"no tier matches; default tier {rules.default_tier!r}",
                source=policy.cite("default_tier"),
            )
        ]
    stepped = _gated_test(policy=policy, file=file, findings=findings, rank=best_rank)
    if stepped is not None:
        best_rank, best_reasons = stepped
    if unseen is not None:
        ceiling, why = _unseen_tier(policy=policy, file=file)
        if best_rank < ceiling:
            best_rank, best_reasons = ceiling, []
        best_reasons = [
            *best_reasons,
            Reason(
                rule="unseen_content_tier",
                detail=f"{unseen}; never assumed safe: {why}",
                source=policy.cite("unseen_content_tier"),
            ),
        ]
    match = codeowners.match(file.path)
    return FileResult(
        path=file.path,
        status=file.status.value,
        previous_path=file.previous_path,
        tier=rules.tiers[best_rank].name,
        denied=bool(deny_reasons),
        reasons=tuple(deny_reasons + best_reasons),
        findings=tuple(
            FileFinding(
                detector=f.detector,
                rule=f.rule,
                line=f.line,
                message=f.message,
                deny=f.deny,
                fingerprint=f.fingerprint,
            )
            for f in findings
        ),
        owners=match.owners if match else (),
        owners_source=f"{codeowners.path}:{match.line}" if match else "",
        lines=first_added_range(added),
    )


def _gated_test(
    *, policy: LoadedPolicy, file: ChangedFile, findings: Sequence[Finding], rank: int
) -> tuple[int, list[Reason]] | None:
    """The lower tier of a test or prose doc in a gated area (policy ``gated_tests``)."""
    rules = policy.policy
    gated = rules.gated_tests
    if gated.tier is None or rules.tiers[rank].name not in gated.from_:
        return None
    target = rules.rank(gated.tier)
    if target >= rank:
        return None
    prose = all(p.lower().endswith(DOC_SUFFIXES) for p in file.paths)
    test = any(f.detector == "tests" and f.rule == TEST_FILE for f in findings)
    if not (prose or test):
        return None
    what = "prose documentation" if prose else "a test file that declares tests"
    reason = Reason(
        rule="gated_tests",
        detail=f"{what} in a {rules.tiers[rank].name!r} area takes tier {gated.tier!r}",
        source=policy.cite("gated_tests"),
    )
    return target, [reason]


def _cleared(finding: Finding, by: str) -> Finding:
    """A secret finding a qualifying human cleared on this head: listed, never denying."""
    if finding.detector != "secrets" or finding.informational:
        return finding
    return replace(
        finding, deny=False, informational=True, message=f"{finding.message} [cleared by {by}]"
    )


def _allowed(policy: LoadedPolicy, finding: Finding) -> Finding:
    """``finding``, made informational when the base policy allows its fingerprint.

    The allowlist lives in the policy, which is read from the base branch, so a
    pull request cannot allow its own secret; there is no inline marker.
    """
    if not finding.fingerprint or finding.informational:
        return finding
    allowed = policy.policy.secrets.allowed_fingerprints
    for index, entry in enumerate(allowed):
        if finding.fingerprint.startswith(entry):
            where = policy.cite("secrets", "allowed_fingerprints", index)
            return replace(
                finding,
                deny=False,
                informational=True,
                message=f"{finding.message} [informational: fingerprint allowed by {where}]",
            )
    return finding


def _unseen_tier(*, policy: LoadedPolicy, file: ChangedFile) -> tuple[int, str]:
    """The tier a file whose content was not inspected takes, and why.

    Its content could be anything its path allows, so it takes the highest tier
    whose path globs match it, exclusions ignored (an exclusion vouches for the
    content, which nobody saw), and at least ``unseen_content_tier``.
    """
    rules = policy.policy
    rank = rules.rank(rules.unseen_content_tier)
    why = f"tier {rules.unseen_content_tier!r} (unseen_content_tier)"
    for index, tier in enumerate(rules.tiers):
        if index > rank and any(_globs(tier.paths).matches(path) for path in file.paths):
            rank, why = index, f"tier {tier.name!r}, the highest its path matches"
    return rank, why


def _deny_reasons(
    *, policy: LoadedPolicy, file: ChangedFile, findings: Sequence[Finding], agent: bool
) -> list[Reason]:
    reasons: list[Reason] = []
    findings = [f for f in findings if not f.informational]
    for finding in findings:
        if finding.deny:
            where = f"line {finding.line}" if finding.line else "file"
            reasons.append(
                Reason(
                    rule=f"{finding.detector}:{finding.rule}",
                    detail=f"{where}: {finding.message}",
                    source=f"detector {finding.detector}",
                )
            )
    if not agent:
        return reasons
    for index, rule in enumerate(policy.policy.scope.deny):
        for path in file.paths:
            pattern = _globs(rule.paths).which(path)
            if pattern is not None:
                at = rule.paths.index(pattern)
                reasons.append(
                    Reason(
                        rule="scope.deny",
                        detail=f"{path} matches {pattern!r}: {rule.reason}",
                        source=policy.cite("scope", "deny", index, "paths", at),
                    )
                )
                break
        for finding in findings:
            at_ref = _ref_index(rule.detectors, finding)
            if at_ref is not None and not finding.deny:
                reasons.append(
                    Reason(
                        rule="scope.deny",
                        detail=f"{finding.detector}:{finding.rule}: {rule.reason}",
                        source=policy.cite("scope", "deny", index, "detectors", at_ref),
                    )
                )
    return reasons


def _tier_reasons(
    *, policy: LoadedPolicy, rank: int, file: ChangedFile, findings: Sequence[Finding]
) -> list[Reason]:
    tier = policy.policy.tiers[rank]
    reasons: list[Reason] = []
    for path in file.paths:
        pattern = _globs(tier.paths).which(path)
        if pattern is not None and not _globs(tier.exclude).matches(path):
            reasons.append(
                Reason(
                    rule=f"tiers.{tier.name}.paths",
                    detail=f"{path} matches {pattern!r}",
                    source=policy.cite("tiers", rank, "paths", tier.paths.index(pattern)),
                )
            )
    for finding in findings:
        if finding.informational:
            continue
        at = _ref_index(tier.detectors, finding)
        if at is not None:
            where = f" (line {finding.line})" if finding.line else ""
            reasons.append(
                Reason(
                    rule=f"tiers.{tier.name}.detectors",
                    detail=f"{finding.detector}:{finding.rule}{where}: {finding.message}",
                    source=policy.cite("tiers", rank, "detectors", at),
                )
            )
    return reasons
