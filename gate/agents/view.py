"""A parsed policy as plain data, for the hook's cache.

``gate hook`` runs once per agent action, so its cold start counts. Parsing a policy
needs the pydantic model (:mod:`gate.policy`), whose import alone costs more than the
whole decision. The hook therefore parses each base policy once, turns it into this
view (plain frozen dataclasses with the same attributes the classifier reads, and
every line citation precomputed), stores it as JSON keyed by the policy's blob sha,
and later calls run the merge gate's classifier on the view without importing pydantic.

Tests check that the classifier gives identical results on a policy and on its view.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from gate.policy import LoadedPolicy

#: Bump when the shape below changes: cached views of another version are rebuilt.
VIEW_VERSION = 3


@dataclass(frozen=True, slots=True)
class TierView:
    name: str
    description: str
    paths: tuple[str, ...]
    exclude: tuple[str, ...]
    detectors: tuple[str, ...]
    agent_edit: str


@dataclass(frozen=True, slots=True)
class DenyView:
    paths: tuple[str, ...]
    detectors: tuple[str, ...]
    reason: str


@dataclass(frozen=True, slots=True)
class ScopeView:
    deny: tuple[DenyView, ...]
    deny_read: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class SecretsView:
    allowed_fingerprints: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class GatedTestsView:
    tier: str | None = None
    from_: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class PolicyView:
    tiers: tuple[TierView, ...]
    scope: ScopeView
    default_tier: str
    unseen_content_tier: str
    secrets: SecretsView = SecretsView()
    gated_tests: GatedTestsView = GatedTestsView()
    #: ``"org"``: the organisation's policy applies too, as a floor (``extend: org``).
    extend: str | None = None

    def rank(self, tier: str) -> int:
        return [t.name for t in self.tiers].index(tier)

    def tier(self, name: str) -> TierView:
        return next(t for t in self.tiers if t.name == name)

    def detector_names(self) -> frozenset[str]:
        refs = [ref for tier in self.tiers for ref in tier.detectors]
        refs += [ref for rule in self.scope.deny for ref in rule.detectors]
        if self.gated_tests.tier and self.gated_tests.from_:
            refs.append("tests")
        return frozenset(ref.split(":", 1)[0] for ref in refs)


@dataclass(frozen=True, slots=True)
class LoadedView:
    """The counterpart of :class:`gate.policy.LoadedPolicy` the classifier reads."""

    policy: PolicyView
    path: str
    blob: str
    cites: Mapping[tuple[str | int, ...], str] = field(default_factory=dict)

    def cite(self, *key: str | int) -> str:
        return self.cites.get(tuple(key), self.path)


def _keys(policy: PolicyView) -> list[tuple[str | int, ...]]:
    """Every key the classifier and the hook cite."""
    keys: list[tuple[str | int, ...]] = [("default_tier",), ("unseen_content_tier",)]
    for rank, tier in enumerate(policy.tiers):
        keys.append(("tiers", rank, "agent_edit"))
        keys += [("tiers", rank, "paths", i) for i in range(len(tier.paths))]
        keys += [("tiers", rank, "detectors", i) for i in range(len(tier.detectors))]
    for index, rule in enumerate(policy.scope.deny):
        keys += [("scope", "deny", index, "paths", i) for i in range(len(rule.paths))]
        keys += [("scope", "deny", index, "detectors", i) for i in range(len(rule.detectors))]
    keys += [("scope", "deny_read", i) for i in range(len(policy.scope.deny_read))]
    keys.append(("gated_tests",))
    fingerprints = policy.secrets.allowed_fingerprints
    keys += [("secrets", "allowed_fingerprints", i) for i in range(len(fingerprints))]
    return keys


def view_of(loaded: LoadedPolicy) -> LoadedView:
    """The view of a parsed policy, citations included."""
    rules = loaded.policy
    policy = PolicyView(
        tiers=tuple(
            TierView(
                name=t.name,
                description=t.description,
                paths=t.paths,
                exclude=t.exclude,
                detectors=t.detectors,
                agent_edit=t.agent_edit,
            )
            for t in rules.tiers
        ),
        scope=ScopeView(
            deny=tuple(
                DenyView(paths=d.paths, detectors=d.detectors, reason=d.reason)
                for d in rules.scope.deny
            ),
            deny_read=rules.scope.deny_read,
        ),
        default_tier=rules.default_tier,
        unseen_content_tier=rules.unseen_content_tier,
        secrets=SecretsView(allowed_fingerprints=rules.secrets.allowed_fingerprints),
        gated_tests=GatedTestsView(tier=rules.gated_tests.tier, from_=rules.gated_tests.from_),
        extend=rules.extend,
    )
    cites = {key: loaded.cite(*key) for key in _keys(policy)}
    return LoadedView(policy=policy, path=loaded.path, blob=loaded.blob, cites=cites)


def to_json(view: LoadedView) -> dict[str, Any]:
    p = view.policy
    return {
        "version": VIEW_VERSION,
        "path": view.path,
        "blob": view.blob,
        "tiers": [
            {
                "name": t.name,
                "description": t.description,
                "paths": list(t.paths),
                "exclude": list(t.exclude),
                "detectors": list(t.detectors),
                "agent_edit": t.agent_edit,
            }
            for t in p.tiers
        ],
        "deny": [
            {"paths": list(d.paths), "detectors": list(d.detectors), "reason": d.reason}
            for d in p.scope.deny
        ],
        "deny_read": list(p.scope.deny_read),
        "default_tier": p.default_tier,
        "unseen_content_tier": p.unseen_content_tier,
        "allowed_fingerprints": list(p.secrets.allowed_fingerprints),
        "gated_tests": {"tier": p.gated_tests.tier, "from": list(p.gated_tests.from_)},
        "extend": p.extend,
        "cites": [[list(key), text] for key, text in view.cites.items()],
    }


def from_json(data: Mapping[str, Any]) -> LoadedView:
    """Inverse of :func:`to_json`; raises ``ValueError`` on another version or shape."""
    if data.get("version") != VIEW_VERSION:
        raise ValueError("cached policy view of another version")
    try:
        policy = PolicyView(
            tiers=tuple(
                TierView(
                    name=str(t["name"]),
                    description=str(t["description"]),
                    paths=tuple(t["paths"]),
                    exclude=tuple(t["exclude"]),
                    detectors=tuple(t["detectors"]),
                    agent_edit=str(t["agent_edit"]),
                )
                for t in data["tiers"]
            ),
            scope=ScopeView(
                deny=tuple(
                    DenyView(
                        paths=tuple(d["paths"]),
                        detectors=tuple(d["detectors"]),
                        reason=str(d["reason"]),
                    )
                    for d in data["deny"]
                ),
                deny_read=tuple(data["deny_read"]),
            ),
            default_tier=str(data["default_tier"]),
            unseen_content_tier=str(data["unseen_content_tier"]),
            secrets=SecretsView(
                allowed_fingerprints=tuple(str(f) for f in data["allowed_fingerprints"])
            ),
            gated_tests=GatedTestsView(
                tier=None
                if data["gated_tests"]["tier"] is None
                else str(data["gated_tests"]["tier"]),
                from_=tuple(str(t) for t in data["gated_tests"]["from"]),
            ),
            extend=None if data["extend"] is None else str(data["extend"]),
        )
        cites = {tuple(key): str(text) for key, text in data["cites"]}
        return LoadedView(
            policy=policy, path=str(data["path"]), blob=str(data["blob"]), cites=cites
        )
    except (KeyError, TypeError) as error:
        raise ValueError(f"cached policy view is malformed: {error}") from None
