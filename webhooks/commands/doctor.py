"""``gate doctor``: is merge-gate installed so that its check actually gates merges?

A required check only protects a branch if (a) the App can do its job, (b) the
branch requires the ``merge-gate`` check *from this App*, and (c) nobody who
is an agent can skip the requirement. Each check prints a fix when it fails.

What it reads (with the App's own credentials, GATE_APP_ID + private key):

- the installation: ``GET /repos/{owner}/{repo}/installation`` or
  ``GET /app/installations`` (https://docs.github.com/rest/apps/apps), whose
  ``permissions``/``events`` are compared with :mod:`webhooks.permissions`;
- active rules on the default branch: ``GET /repos/{owner}/{repo}/rules/branches/{branch}``
  (https://docs.github.com/rest/repos/rules#get-rules-for-a-branch, metadata: read)
  and each ruleset's ``bypass_actors`` via ``GET /repos/{owner}/{repo}/rulesets/{id}``;
- classic branch protection, ``GET /repos/{owner}/{repo}/branches/{branch}/protection``
  (https://docs.github.com/rest/branches/branch-protection), which needs
  administration: read. merge-gate does not ask for that, so doctor usually
  cannot see classic protection and says so instead of guessing.

- the agents the base policy names: their role (``GET .../collaborators/{username}/permission``),
  classic bypass allowances, ``require_last_push_approval``, and whether GitHub
  Actions may approve pull requests (``GET .../actions/permissions/workflow``,
  actions: read, optional like administration: not visible is a warning).

Why the pin matters: a required status check named ``merge-gate`` without a
source (``app_id`` in branch protection, ``integration_id`` in a ruleset) is
satisfied by *any* App's check run or any commit status of that name, which an
agent with ``statuses: write`` can post itself.

Exit codes: 0 all good, 1 problems found, 2 configuration error.
"""

from __future__ import annotations

import argparse
import asyncio
import enum
import os
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any, TextIO

import httpx

from gate.defaults import load_policy
from gate.policy import InvalidPolicy, Policy
from webhooks.github import Backoff, GitHubApp, GitHubError, NotFound
from webhooks.permissions import (
    ALL_EVENTS,
    ALL_OPERATIONS,
    AUTOMATIC_EVENTS,
    covers,
    needed_permissions,
    permission_shortfall,
)
from webhooks.reader import ConfigReader

__all__ = [
    "CHECK_NAME",
    "ConfigError",
    "DoctorConfig",
    "Finding",
    "Status",
    "branch_findings",
    "installation_findings",
    "load_config",
    "main",
    "register",
    "run",
]

#: The check run merge-gate posts; the required check must carry this name.
CHECK_NAME = "merge-gate"
EXIT_OK, EXIT_PROBLEMS, EXIT_CONFIG = 0, 1, 2

#: Permissions doctor tolerates beyond the needed set: administration read only
#: lets doctor itself see classic branch protection, actions read whether Actions
#: may approve pull requests, issues write lets break-glass open review issues.
TOLERATED_EXTRA = {"administration": "read", "actions": "read", "issues": "write"}


class ConfigError(Exception):
    """Settings are missing or wrong; exit code 2. The message holds no secret."""


class Status(enum.StrEnum):
    OK = "ok"
    WARN = "warn"
    FAIL = "FAIL"


@dataclass(frozen=True, slots=True)
class Finding:
    check: str
    status: Status
    message: str
    fix: str = ""


@dataclass(frozen=True, slots=True)
class DoctorConfig:
    app_id: int
    api_url: str
    private_key: str = field(repr=False)


def load_config(env: Mapping[str, str]) -> DoctorConfig:
    """The service's own settings (:mod:`webhooks.settings`), so doctor fails where it would.

    Reads GATE_APP_ID, GATE_PRIVATE_KEY_FILE | GATE_PRIVATE_KEY and
    GATE_GITHUB_API_URL (and validates the rest the service needs).
    """
    from webhooks.settings import SettingsError, load

    try:
        settings = load(env)
        key = settings.app_key_pem()
    except SettingsError as exc:
        raise ConfigError(str(exc)) from None
    return DoctorConfig(
        app_id=settings.app_id, api_url=settings.github_api_url.rstrip("/"), private_key=key
    )


# --- pure analysis (no I/O) ----------------------------------------------------------


def installation_findings(
    installation: Mapping[str, Any],
    *,
    needed: Mapping[str, str] | None = None,
    events: Iterable[str] = ALL_EVENTS,
) -> list[Finding]:
    """Compare an installation's granted permissions and events with the needed ones."""
    needed = needed if needed is not None else needed_permissions(ALL_OPERATIONS)
    account = (installation.get("account") or {}).get("login", "?")
    where = f"installation {installation.get('id')} on {account}"
    settings = installation.get("html_url") or "the organization's Settings > GitHub Apps"
    findings: list[Finding] = []
    if installation.get("suspended_at"):
        findings.append(
            Finding(
                "installation",
                Status.FAIL,
                f"{where} is suspended: GitHub sends no webhooks and merge-gate posts no checks",
                f"Unsuspend it in {settings}",
            )
        )
    granted: Mapping[str, str] = installation.get("permissions") or {}
    gaps = permission_shortfall(granted, needed)
    if gaps:
        listed = ", ".join(
            f"{name}: {want} (granted: {have or 'none'})"
            for name, (have, want) in sorted(gaps.items())
        )
        findings.append(
            Finding(
                "permissions",
                Status.FAIL,
                f"{where} lacks {listed}",
                "An organization owner must accept the App's requested permissions in "
                f"{settings} (GitHub asks after the App's permissions change); if the App "
                "itself lacks them, edit it under Settings > Developer settings > GitHub Apps "
                "> Permissions & events to match app-manifest.yml",
            )
        )
    else:
        findings.append(Finding("permissions", Status.OK, f"{where} grants everything needed"))
    extra = sorted(
        name
        for name, level in granted.items()
        if name not in needed and TOLERATED_EXTRA.get(name) != level
    )
    # A level above the one needed is privilege too (contents: write where read does).
    extra += sorted(
        f"{name}: {level} where {needed[name]} suffices"
        for name, level in granted.items()
        if name in needed
        and not covers({name: needed[name]}, permission=name, access=level)
        and TOLERATED_EXTRA.get(name) != level
    )
    if extra:
        findings.append(
            Finding(
                "least privilege",
                Status.WARN,
                f"{where} also grants {', '.join(extra)}, which merge-gate never uses",
                "Remove them from the App's permissions (a leaked key can do less)",
            )
        )
    wanted = [e for e in events if e not in AUTOMATIC_EVENTS]
    have_events = set(installation.get("events") or [])
    missing = [e for e in wanted if e not in have_events]
    if missing:
        findings.append(
            Finding(
                "events",
                Status.FAIL,
                f"{where} is not subscribed to {', '.join(missing)}: those changes never "
                "re-evaluate the gate",
                "Subscribe to them under the App's Permissions & events > Subscribe to events, "
                f"then accept the change in {settings}",
            )
        )
    else:
        findings.append(
            Finding("events", Status.OK, f"{where} receives every event merge-gate handles")
        )
    return findings


@dataclass(frozen=True, slots=True)
class BranchFacts:
    """What doctor could read about a branch's rules."""

    owner: str
    repo: str
    branch: str
    #: Active rules from ``GET .../rules/branches/{branch}``.
    rules: Sequence[Mapping[str, Any]] = ()
    #: ruleset id -> ruleset JSON (``None`` when it could not be read).
    rulesets: Mapping[int, Mapping[str, Any] | None] = field(default_factory=dict)
    #: Classic protection JSON; ``None`` if the branch has none.
    protection: Mapping[str, Any] | None = None
    #: False when classic protection could not be read (no administration: read).
    protection_visible: bool = False
    #: False when the rules API answered 404 (GitHub Enterprise Server < 3.9).
    rules_visible: bool = True


def _pin_fix(facts: BranchFacts, *, app_id: int, slug: str) -> str:
    repo = f"{facts.owner}/{facts.repo}"
    return (
        f"Require the {CHECK_NAME} check with this App as its source. Ruleset (preferred; "
        f"doctor can verify it): Settings > Rules > Rulesets > a ruleset targeting "
        f"{facts.branch} > Require status checks to pass > add '{CHECK_NAME}' from "
        f"'{slug}', i.e. the rule "
        f'{{"type": "required_status_checks", "parameters": {{"required_status_checks": '
        f'[{{"context": "{CHECK_NAME}", "integration_id": {app_id}}}], '
        f'"strict_required_status_checks_policy": false}}}}. '
        f"Classic protection: gh api -X PATCH repos/{repo}/branches/{facts.branch}"
        f"/protection/required_status_checks -f 'checks[][context]={CHECK_NAME}' "
        f"-F 'checks[][app_id]={app_id}'"
    )


def _ruleset_label(facts: BranchFacts, ruleset_id: object) -> str:
    ruleset = facts.rulesets.get(ruleset_id) if isinstance(ruleset_id, int) else None
    name = ruleset.get("name") if ruleset else None
    return f"ruleset {ruleset_id}" + (f" ({name})" if name else "")


def _pin_findings(facts: BranchFacts, *, app_id: int, slug: str) -> list[Finding]:
    pinned: list[str] = []
    loose: list[str] = []
    wrong: list[str] = []
    for rule in facts.rules:
        if rule.get("type") != "required_status_checks":
            continue
        where = _ruleset_label(facts, rule.get("ruleset_id"))
        for check in (rule.get("parameters") or {}).get("required_status_checks") or []:
            if check.get("context") != CHECK_NAME:
                continue
            source = check.get("integration_id")
            if source == app_id:
                pinned.append(where)
            elif source in (None, -1):
                loose.append(where)
            else:
                wrong.append(f"{where} (integration_id {source})")
    checks = (facts.protection or {}).get("required_status_checks") or {}
    for check in checks.get("checks") or []:
        if check.get("context") != CHECK_NAME:
            continue
        source = check.get("app_id")
        if source == app_id:
            pinned.append("branch protection")
        elif source in (None, -1):
            loose.append("branch protection")
        else:
            wrong.append(f"branch protection (app_id {source})")
    if CHECK_NAME in (checks.get("contexts") or []) and "branch protection" not in pinned:
        loose.append("branch protection (contexts)")

    name = "required check pinned"
    if pinned:
        return [
            Finding(
                name,
                Status.OK,
                f"{CHECK_NAME} is required from App {app_id} by {', '.join(sorted(set(pinned)))}",
            )
        ]
    fix = _pin_fix(facts, app_id=app_id, slug=slug)
    if wrong:
        return [
            Finding(
                name,
                Status.FAIL,
                f"{CHECK_NAME} is required from another App in {', '.join(wrong)}: this "
                f"App ({app_id}) cannot satisfy it, or an impostor can",
                fix,
            )
        ]
    if loose:
        return [
            Finding(
                name,
                Status.FAIL,
                f"{CHECK_NAME} is required by {', '.join(loose)} but not pinned to this App: "
                f"any App or commit status named {CHECK_NAME} satisfies it",
                fix,
            )
        ]
    unseen = (
        ""
        if facts.protection_visible
        else " (classic branch protection is not visible: the App has no administration: read)"
    )
    return [
        Finding(
            name,
            Status.FAIL,
            f"no active rule requires {CHECK_NAME} on {facts.branch}{unseen}: merges do not wait "
            "for the gate",
            fix,
        )
    ]


def _stale_findings(facts: BranchFacts) -> list[Finding]:
    name = "stale reviews dismissed"
    for rule in facts.rules:
        if rule.get("type") == "pull_request" and (rule.get("parameters") or {}).get(
            "dismiss_stale_reviews_on_push"
        ):
            return [
                Finding(
                    name,
                    Status.OK,
                    f"{_ruleset_label(facts, rule.get('ruleset_id'))} dismisses stale approvals "
                    "on push",
                )
            ]
    reviews = (facts.protection or {}).get("required_pull_request_reviews") or {}
    if reviews.get("dismiss_stale_reviews"):
        return [Finding(name, Status.OK, "branch protection dismisses stale approvals on push")]
    unseen = "" if facts.protection_visible else " (classic branch protection not visible)"
    return [
        Finding(
            name,
            Status.FAIL,
            f"approvals survive new pushes on {facts.branch}{unseen}: an agent can push after a "
            "human approved",
            "In the ruleset's 'Require a pull request before merging', enable 'Dismiss stale pull "
            "request approvals when new commits are pushed' (dismiss_stale_reviews_on_push), or "
            "in classic protection enable 'Dismiss stale pull request approvals' "
            "(dismiss_stale_reviews)",
        )
    ]


def _bypass_findings(facts: BranchFacts) -> list[Finding]:
    name = "bypass lists"
    problems: list[str] = []
    unseen: list[str] = []
    for ruleset_id, ruleset in sorted(facts.rulesets.items()):
        label = _ruleset_label(facts, ruleset_id)
        if ruleset is None or "bypass_actors" not in ruleset:
            unseen.append(label)
            continue
        for actor in ruleset.get("bypass_actors") or []:
            kind = actor.get("actor_type")
            mode = actor.get("bypass_mode") or "always"  # the API's default
            who = (
                f"{kind} {actor.get('actor_id')}"
                if actor.get("actor_id") is not None
                else str(kind)
            )
            if kind == "Integration":
                problems.append(f"{label} lets {who} (an App) bypass it ({mode})")
            elif mode in ("always", "exempt"):
                problems.append(f"{label} lets {who} bypass it {mode}")
    allowances = ((facts.protection or {}).get("required_pull_request_reviews") or {}).get(
        "bypass_pull_request_allowances"
    ) or {}
    for app in allowances.get("apps") or []:
        problems.append(
            f"branch protection lets App {app.get('slug') or app.get('id')} bypass reviews"
        )
    for user in allowances.get("users") or []:
        login = str(user.get("login", ""))
        if login.endswith("[bot]") or user.get("type") == "Bot":
            problems.append(f"branch protection lets {login} bypass reviews")
    findings: list[Finding] = []
    if problems:
        findings.append(
            Finding(
                name,
                Status.FAIL,
                "; ".join(problems),
                "Remove Apps and bots from the bypass lists (ruleset > Bypass list; classic "
                "protection > 'Allow specified actors to bypass required pull requests'), and "
                "give remaining human bypassers 'For pull requests only' rather than 'Always'",
            )
        )
    if unseen:
        findings.append(
            Finding(
                name,
                Status.WARN,
                f"cannot see who may bypass {', '.join(unseen)}: GitHub shows bypass lists "
                "only to those who can edit the ruleset",
                "Review the bypass list in the ruleset settings by hand",
            )
        )
    if not findings:
        findings.append(
            Finding(name, Status.OK, "no App, bot or 'always' bypass on the visible rules")
        )
    return findings


def branch_findings(facts: BranchFacts, *, app_id: int, slug: str = "merge-gate") -> list[Finding]:
    """Every branch check: the pin, stale-review dismissal, bypass lists, visibility."""
    findings = [
        *_pin_findings(facts, app_id=app_id, slug=slug),
        *_stale_findings(facts),
        *_bypass_findings(facts),
    ]
    if not facts.rules_visible:
        findings.append(
            Finding(
                "rulesets",
                Status.WARN,
                "this GitHub has no rules API (GET /repos/{owner}/{repo}/rules/branches/{branch}); "
                "rulesets were not checked",
                "Upgrade GitHub Enterprise Server to 3.9 or later, or use classic protection",
            )
        )
    if not facts.protection_visible:
        findings.append(
            Finding(
                "classic branch protection",
                Status.WARN,
                f"not visible on {facts.branch} without administration: read; the checks above "
                "used rulesets only",
                "Prefer rulesets (visible with metadata: read), "
                "or check Settings > Branches by hand",
            )
        )
    return findings


# --- least-privilege agents ------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AgentFacts:
    """What doctor read about the agent identities the base policy names."""

    #: Literal agent logins of the policy (``agents.logins`` and ``agents.delegates``
    #: without wildcards: a pattern names no account to look up).
    logins: tuple[str, ...] = ()
    #: login -> its role on the repository (admin, maintain, write, triage, read, none).
    roles: Mapping[str, str] = field(default_factory=dict)
    #: "Allow GitHub Actions to create and approve pull requests"; None: not visible.
    actions_can_approve: bool | None = None
    #: Why the policy could not be read, when it could not.
    policy_problem: str = ""


def _agent_role_findings(agents: AgentFacts) -> list[Finding]:
    name = "agent permissions"
    if agents.policy_problem:
        return [Finding(name, Status.WARN, agents.policy_problem, "Fix the policy file")]
    if not agents.logins:
        return [Finding(name, Status.OK, "the policy names agents by pattern only")]
    strong = [
        f"{login} has {agents.roles[login]}"
        for login in agents.logins
        if agents.roles.get(login) in ("admin", "maintain")
    ]
    if strong:
        return [
            Finding(
                name,
                Status.FAIL,
                "; ".join(strong) + ": an agent that administers or maintains the repository "
                "can change its rules and merge around the gate",
                "Give agents at most write: Settings > Collaborators and teams (and the teams "
                "that grant the role); an App agent: narrow its installation's permissions",
            )
        ]
    roles = ", ".join(f"{login}: {agents.roles.get(login) or 'none'}" for login in agents.logins)
    return [Finding(name, Status.OK, f"agents hold at most write ({roles})")]


def _agent_bypass_findings(facts: BranchFacts, agents: AgentFacts) -> list[Finding]:
    """Agents (or their Apps) a classic protection lets skip review.

    Ruleset bypass lists name Apps, teams and roles, not users: an App there is
    already a failure of "bypass lists".
    """
    name = "agent bypass"
    allowances = ((facts.protection or {}).get("required_pull_request_reviews") or {}).get(
        "bypass_pull_request_allowances"
    ) or {}
    wanted = {login.lower() for login in agents.logins}
    wanted |= {login.lower().removesuffix("[bot]") for login in agents.logins}
    found = [
        str(u.get("login"))
        for u in allowances.get("users") or []
        if str(u.get("login", "")).lower() in wanted
    ]
    found += [
        f"App {a.get('slug')}"
        for a in allowances.get("apps") or []
        if str(a.get("slug", "")).lower() in wanted
    ]
    if found:
        return [
            Finding(
                name,
                Status.FAIL,
                f"branch protection lets the agent {', '.join(found)} bypass required reviews",
                "Remove it from 'Allow specified actors to bypass required pull requests'",
            )
        ]
    return [Finding(name, Status.OK, "no agent the policy names is in a visible bypass list")]


def _last_push_findings(facts: BranchFacts) -> list[Finding]:
    name = "last pusher approval"
    for rule in facts.rules:
        if rule.get("type") == "pull_request" and (rule.get("parameters") or {}).get(
            "require_last_push_approval"
        ):
            label = _ruleset_label(facts, rule.get("ruleset_id"))
            return [Finding(name, Status.OK, f"{label} requires another person's approval")]
    reviews = (facts.protection or {}).get("required_pull_request_reviews") or {}
    if reviews.get("require_last_push_approval"):
        return [Finding(name, Status.OK, "branch protection requires another person's approval")]
    return [
        Finding(
            name,
            Status.FAIL,
            f"on {facts.branch} whoever pushed last may approve their own push: a human who "
            "pushes an agent's commits can approve them in GitHub's own review count",
            "In the ruleset's 'Require a pull request before merging', enable 'Require approval "
            "of the most recent reviewable push' (require_last_push_approval), or the same in "
            "classic protection",
        )
    ]


def _actions_findings(agents: AgentFacts) -> list[Finding]:
    name = "actions approve"
    if agents.actions_can_approve is None:
        return [
            Finding(
                name,
                Status.WARN,
                "cannot see whether GitHub Actions may approve pull requests (actions: read)",
                "Check Settings > Actions > General > Workflow permissions by hand, or grant "
                "the App actions: read",
            )
        ]
    if agents.actions_can_approve:
        return [
            Finding(
                name,
                Status.FAIL,
                "GitHub Actions may create and approve pull requests: a workflow's token "
                "counts as an approving review",
                "Settings > Actions > General: clear 'Allow GitHub Actions to create and "
                "approve pull requests' (PUT /repos/{owner}/{repo}/actions/permissions/workflow "
                "can_approve_pull_request_reviews=false)",
            )
        ]
    return [Finding(name, Status.OK, "GitHub Actions cannot approve pull requests")]


def agent_findings(facts: BranchFacts, agents: AgentFacts) -> list[Finding]:
    """Least privilege for agents: roles, bypass, last-push approval, Actions approvals."""
    return [
        *_agent_role_findings(agents),
        *_agent_bypass_findings(facts, agents),
        *_last_push_findings(facts),
        *_actions_findings(agents),
    ]


def literal_agents(policy: Policy | None) -> tuple[str, ...]:
    """The agent logins a policy (None: the built-in one) names without wildcards."""
    agents = (policy or load_policy(None).policy).agents
    named = [*agents.logins, *agents.delegates]
    return tuple(dict.fromkeys(n for n in named if "*" not in n and "?" not in n))


# --- I/O ----------------------------------------------------------------------------


def _as_dict(value: object) -> dict[str, Any]:
    return dict(value) if isinstance(value, Mapping) else {}


async def _get(
    gh: GitHubApp, url: str, *, installation_id: int | None, route: str, **params: Any
) -> Any:
    answer = await gh.call("GET", url, installation_id=installation_id, params=params, route=route)
    return answer.data


async def read_branch(gh: GitHubApp, *, installation_id: int, owner: str, repo: str) -> BranchFacts:
    """Read the default branch's rules; raises :class:`GitHubError` for the caller."""
    get = partial(_get, gh, installation_id=installation_id)
    base = f"/repos/{owner}/{repo}"
    branch = str(_as_dict(await get(base, route="GET /repos")).get("default_branch") or "main")
    rules_visible = True
    try:
        raw_rules = await get(
            f"{base}/rules/branches/{branch}", route="GET /rules/branches", per_page=100
        )
    except NotFound:
        # GitHub Enterprise Server before 3.9 has no rules API.
        raw_rules, rules_visible = [], False
    rules = [_as_dict(r) for r in raw_rules or []]
    rulesets: dict[int, Mapping[str, Any] | None] = {}
    for rule in rules:
        rid = rule.get("ruleset_id")
        if isinstance(rid, int) and rid not in rulesets:
            try:
                rulesets[rid] = _as_dict(await get(f"{base}/rulesets/{rid}", route="GET /rulesets"))
            except GitHubError:
                rulesets[rid] = None
    protection: Mapping[str, Any] | None = None
    visible = True
    try:
        protection = _as_dict(
            await get(f"{base}/branches/{branch}/protection", route="GET /protection")
        )
    except GitHubError as exc:
        # 404 "Branch not protected" is an answer; 403/other 404s mean we may not look.
        if exc.status == 404 and "not protected" in str(exc).lower():
            protection = None
        elif exc.status in (403, 404):
            visible = False
        else:
            raise
    return BranchFacts(
        owner=owner,
        repo=repo,
        branch=branch,
        rules=rules,
        rulesets=rulesets,
        protection=protection,
        protection_visible=visible,
        rules_visible=rules_visible,
    )


def diagnose(config: DoctorConfig, *, repo: str | None) -> tuple[list[Finding], str]:
    """Run every check; returns findings and the App's slug. Raises ConfigError."""
    return asyncio.run(_diagnose(config, repo=repo))


async def _diagnose(config: DoctorConfig, *, repo: str | None) -> tuple[list[Finding], str]:
    # A client of its own: doctor always proves *this* key works, afresh.
    gh = GitHubApp(app_id=config.app_id, private_key=config.private_key, base_url=config.api_url)
    try:
        return await _checks(gh, config, repo=repo)
    except GitHubError as exc:
        raise ConfigError(f"talking to {config.api_url} failed: {exc}") from None
    except (Backoff, httpx.HTTPError) as exc:
        raise ConfigError(f"talking to {config.api_url} failed: {type(exc).__name__}") from None
    finally:
        await gh.close()


async def _checks(
    gh: GitHubApp, config: DoctorConfig, *, repo: str | None
) -> tuple[list[Finding], str]:
    findings: list[Finding] = []
    try:
        app = _as_dict(await _get(gh, "/app", installation_id=None, route="GET /app"))
    except GitHubError as exc:
        if exc.status in (401, 403, 404):
            raise ConfigError(
                f"GitHub at {config.api_url} rejected the App's JWT (HTTP {exc.status}): "
                "check GATE_APP_ID and the private key"
            ) from None
        raise
    slug = str(app.get("slug") or "merge-gate")
    findings.append(Finding("app", Status.OK, f"authenticated as App {slug} (id {config.app_id})"))
    if repo is None:
        installations = [
            _as_dict(i)
            for i in await gh.paginate(
                "/app/installations", installation_id=None, route="/app/installations"
            )
        ]
        if not installations:
            findings.append(
                Finding(
                    "installation",
                    Status.FAIL,
                    "the App is installed nowhere",
                    f"Install it: {app.get('html_url', 'the App page')}/installations/new",
                )
            )
        for inst in installations:
            findings.extend(installation_findings(inst))
        findings.append(
            Finding("branch rules", Status.WARN, "not checked: pass --repo OWNER/NAME", "")
        )
        return findings, slug
    owner, name = repo.split("/", 1)
    try:
        inst = _as_dict(
            await _get(
                gh,
                f"/repos/{owner}/{name}/installation",
                installation_id=None,
                route="GET /installation",
            )
        )
    except NotFound:
        findings.append(
            Finding(
                "installation",
                Status.FAIL,
                f"the App is not installed on {repo}",
                f"Install it on {owner} (all repositories, or include {name}): "
                f"{app.get('html_url', 'the App page')}/installations/new",
            )
        )
        return findings, slug
    findings.extend(installation_findings(inst))
    facts = await read_branch(gh, installation_id=int(inst["id"]), owner=owner, repo=name)
    findings.extend(branch_findings(facts, app_id=config.app_id, slug=slug))
    agents = await read_agents(gh, installation_id=int(inst["id"]), facts=facts)
    findings.extend(agent_findings(facts, agents))
    return findings, slug


async def read_agents(gh: GitHubApp, *, installation_id: int, facts: BranchFacts) -> AgentFacts:
    """The base policy's agents, their roles, and whether Actions may approve."""
    get = partial(_get, gh, installation_id=installation_id)
    base = f"/repos/{facts.owner}/{facts.repo}"
    # The policy as the service reads it: .github/merge-gate.yml on the branch.
    config = await ConfigReader(gh).read(
        installation_id=installation_id, repo=f"{facts.owner}/{facts.repo}", sha=facts.branch
    )
    if isinstance(config.parsed, InvalidPolicy):
        problem = f"the policy on {facts.branch} is invalid: {config.parsed}"
        return AgentFacts(policy_problem=problem)
    logins = literal_agents(config.parsed.policy if config.parsed else None)
    roles: dict[str, str] = {}
    for login in logins:
        try:
            answer = _as_dict(
                await get(f"{base}/collaborators/{login}/permission", route="GET /permission")
            )
            roles[login] = str(answer.get("role_name") or answer.get("permission") or "none")
        except GitHubError:
            roles[login] = "none"
    can_approve: bool | None
    try:
        workflow = _as_dict(
            await get(f"{base}/actions/permissions/workflow", route="GET /actions/permissions")
        )
        can_approve = bool(workflow.get("can_approve_pull_request_reviews"))
    except GitHubError:
        can_approve = None
    return AgentFacts(logins=logins, roles=roles, actions_can_approve=can_approve)


def report(findings: Sequence[Finding], *, out: TextIO) -> int:
    """Print findings, fixes indented under failures; return the exit code."""
    width = max(len(f.check) for f in findings) if findings else 0
    for f in findings:
        print(f"[{f.status.value:>4}] {f.check:<{width}}  {f.message}", file=out)
        if f.fix and f.status is not Status.OK:
            print(f"       {'':<{width}}  fix: {f.fix}", file=out)
    failed = sum(f.status is Status.FAIL for f in findings)
    warned = sum(f.status is Status.WARN for f in findings)
    print(f"\n{failed} problem(s), {warned} warning(s)", file=out)
    return EXIT_PROBLEMS if failed else EXIT_OK


def run(args: argparse.Namespace) -> int:
    repo: str | None = args.repo
    if repo is not None and (repo.count("/") != 1 or not all(repo.split("/"))):
        print(f"gate doctor: --repo wants OWNER/NAME, got {repo!r}", file=sys.stderr)
        return EXIT_CONFIG
    try:
        config = load_config(os.environ)
        findings, _slug = diagnose(config, repo=repo)
    except ConfigError as exc:
        print(f"gate doctor: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    return report(findings, out=sys.stdout)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--repo",
        metavar="OWNER/NAME",
        help="also check this repository's default branch (required check pin, bypass lists)",
    )


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``gate doctor`` to the ``gate`` CLI."""
    parser = subparsers.add_parser(
        "doctor",
        help="check the installation and branch rules; prints a fix for each problem",
        description="Exit 0: all good; 1: problems found; 2: configuration error.",
    )
    add_arguments(parser)
    parser.set_defaults(func=run)


def main(argv: Sequence[str] | None = None) -> int:
    """Stand-alone entry point: ``python -m webhooks.commands.doctor``."""
    parser = argparse.ArgumentParser(prog="gate doctor")
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
