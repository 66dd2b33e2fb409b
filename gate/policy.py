"""The policy file, ``.github/merge-gate.yml``: schema, strict parsing, positioned errors.

The schema is the pydantic model below; ``policy.schema.json`` is generated from
it for editors (``gate policy schema``). Parsing is strict: unknown keys, wrong
types, bad globs and dangling tier names are errors, each reported with the
line and column of the offending node. A section left out of the file takes
the built-in default for that section (``gate.defaults``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, Literal, NoReturn

import rfc8785
import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    StrictStr,
    ValidationError,
    model_validator,
)
from pydantic_core import PydanticCustomError

from gate import globs, owners

POLICY_PATH = ".github/merge-gate.yml"
#: Bounds on a policy document, checked before anything is built from it: the text
#: comes from a repository, and YAML aliases can make a few hundred bytes expand to
#: billions of nodes ("billion laughs"). A real policy is a few KiB, ~1,000 nodes,
#: a handful of levels deep and needs few if any aliases.
MAX_POLICY_BYTES = 256 * 1024
MAX_ALIASES = 100
MAX_NODES = 10_000
MAX_DEPTH = 64
DETECTORS = ("secrets", "dependencies", "migrations", "infra", "auth", "tests")
GATES = ("staged_rollout", "supply_chain_scan")


def _check_glob(pattern: str) -> str:
    problems = globs.validate([pattern])
    if problems:
        raise ValueError(f"bad glob {pattern!r}: {problems[0][1]}")
    return pattern


Glob = Annotated[StrictStr, Field(min_length=1, max_length=1024), AfterValidator(_check_glob)]
#: A login or e-mail pattern: '*' and '?' are wildcards, everything else is literal.
LoginGlob = Annotated[StrictStr, Field(min_length=1, max_length=256, pattern=r"^[^\s]+$")]
Login = Annotated[StrictStr, Field(min_length=1, max_length=256)]
Owner = Annotated[
    StrictStr,
    Field(pattern=r"^@[A-Za-z0-9][A-Za-z0-9-]*(\[bot\])?(/[A-Za-z0-9][A-Za-z0-9._-]*)?$"),
    AfterValidator(owners.Owner),
]


def _check_detector(ref: str) -> str:
    if ref.split(":", 1)[0] not in DETECTORS:
        raise ValueError(f"unknown detector {ref!r}; known: {', '.join(DETECTORS)}")
    return ref


#: A detector, optionally narrowed to one rule; the schema names the known detectors.
DetectorRef = Annotated[
    StrictStr,
    Field(
        pattern=r"^[a-z_]+(:[a-z0-9-]+)?$",
        json_schema_extra={"pattern": rf"^({'|'.join(DETECTORS)})(:[a-z0-9-]+)?$"},
    ),
    AfterValidator(_check_detector),
]


def _rule_error(message: str, *at: str | int) -> PydanticCustomError:
    """A cross-field error; ``at`` is the key path below the model it is about, so the
    parser can point at that key's line rather than at the model's first line."""
    return PydanticCustomError("policy_rule", "{message}", {"message": message, "at": at})


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class Agents(_Section):
    """Who counts as an AI coding agent."""

    bots: StrictBool = Field(True, description="Every Bot account is an agent.")
    logins: tuple[LoginGlob, ...] = Field((), description="Logins or globs such as '*[bot]'.")
    exclude: tuple[LoginGlob, ...] = Field((), description="Logins never treated as agents.")
    co_authors: StrictBool = Field(
        True, description="A PR whose commits an agent authored or co-authored is an agent PR."
    )
    co_author_emails: tuple[LoginGlob, ...] = Field(
        (), description="Co-authored-by e-mail globs that identify an agent."
    )
    labels: tuple[Login, ...] = Field((), description="A PR with one of these labels is governed.")
    delegates: dict[LoginGlob, Login] = Field(
        default_factory=dict,
        description=(
            "Agent login (or glob) -> the human it works for. That human's approval never "
            "counts on the agent's pull requests."
        ),
    )


class DenyRule(_Section):
    """Changes an agent may not make at all."""

    paths: tuple[Glob, ...] = ()
    detectors: tuple[DetectorRef, ...] = ()
    reason: StrictStr = Field(min_length=1)

    @model_validator(mode="after")
    def _something(self) -> DenyRule:
        if not self.paths and not self.detectors:
            raise ValueError("a deny rule needs paths or detectors")
        return self


#: Secret material an agent may not read (``gate hook``): read tools and plain shell reads.
DEFAULT_DENY_READ = (
    ".env",
    ".env.*",
    "*.pem",
    "*.key",
    "id_rsa*",
    "id_ed25519*",
    "secrets/**",
    ".aws/credentials",
    ".netrc",
    ".npmrc",
    ".pypirc",
)


class Scope(_Section):
    deny: tuple[DenyRule, ...] = ()
    deny_read: tuple[Glob, ...] = Field(
        DEFAULT_DENY_READ,
        description="Paths an agent may not read (gate hook): secret material such as .env.",
    )


class Requirement(_Section):
    approvals: StrictInt = Field(ge=0, le=10, description="Distinct human approvals needed.")
    from_: Literal["code_owners"] | tuple[Owner, ...] | None = Field(
        None,
        alias="from",
        description="'code_owners', a list of @users and @org/teams, or absent for any "
        "human with write access.",
    )
    gates: tuple[Literal["staged_rollout", "supply_chain_scan"], ...] = ()

    @model_validator(mode="after")
    def _consistent(self) -> Requirement:
        if self.from_ is not None and self.approvals == 0:
            raise _rule_error("'from' needs at least one approval", "approvals")
        if isinstance(self.from_, tuple) and not self.from_:
            raise _rule_error("'from' lists nobody", "from")
        return self


class Tier(_Section):
    name: Annotated[StrictStr, Field(pattern=r"^[a-z][a-z0-9_-]{0,39}$")]
    description: StrictStr = ""
    paths: tuple[Glob, ...] = ()
    exclude: tuple[Glob, ...] = ()
    detectors: tuple[DetectorRef, ...] = ()
    require: Requirement
    rollout: StrictStr = Field(
        "", description="What a staged rollout means for changes in this tier."
    )
    agent_edit: Literal["allow", "ask", "deny"] = Field(
        "allow",
        description="What gate hook answers when an agent writes a file of this tier: "
        "allow, ask a human first, or deny.",
    )


class BreakGlass(_Section):
    """Who may override a decision in an emergency: off unless teams are named.

    An override turns the check green for the current head, is signed and logged,
    and is followed up by a comment (and, with ``issue``, an issue) for review.
    """

    teams: tuple[Owner, ...] = Field(
        (), description="@org/team whose members may override; none: break-glass is off."
    )
    issue: StrictBool = Field(
        False, description="Open an issue for the post-hoc review (needs issues: write)."
    )

    @model_validator(mode="after")
    def _teams_only(self) -> BreakGlass:
        people = [t for t in self.teams if "/" not in t]
        if people:
            raise ValueError(f"break_glass.teams takes @org/team only, not {people[0]}")
        return self


Fingerprint = Annotated[StrictStr, Field(pattern=r"^sha256:[0-9a-f]{12,64}$")]


class Secrets(_Section):
    """Settings of the secrets detector, read from the base branch like the rest."""

    allowed_fingerprints: tuple[Fingerprint, ...] = Field(
        (),
        description="Fingerprints ('sha256:' and 12 to 64 hex digits, as a finding's "
        "redaction shows them) of known test fixtures: such a finding is listed as "
        "informational and neither denies nor sets the file's tier.",
        max_length=1000,
    )
    cleared_by: tuple[Owner, ...] = Field(
        (),
        description="@users and @org/teams who may clear a secret finding on a pull request "
        "('Not a secret' on the check run: a false alarm, or a secret already revoked). "
        "Empty: fallback_owners, else the code owners of the file, else the repository's "
        "admins.",
    )


class GatedTests(_Section):
    """Tests and docs inside a gated area (``payment/tests/``) take their own tier."""

    tier: StrictStr | None = Field(
        None,
        description="The tier such tests and docs take; absent: they keep the area's tier.",
    )
    from_: tuple[StrictStr, ...] = Field(
        (),
        alias="from",
        description="Tiers whose tests and docs step down to 'tier'. A test file steps "
        "down only when it declares tests; docs when they are prose (.md, .rst, .adoc, .txt).",
    )


class Policy(_Section):
    """A merge-gate policy; tiers are listed from lowest to highest risk."""

    version: Literal[1]
    agents: Agents = Agents()
    govern_humans: StrictBool = False
    scope: Scope = Scope()
    tiers: tuple[Tier, ...] = Field(min_length=1)
    default_tier: StrictStr = Field(description="Tier of a file no tier matches.")
    unseen_content_tier: StrictStr = Field(
        description="Lowest tier of a file whose added content could not be inspected."
    )
    fallback_owners: tuple[Owner, ...] = Field(
        (), description="Owners of gated files that CODEOWNERS leaves unowned."
    )
    secrets: Secrets = Secrets()
    gated_tests: GatedTests = GatedTests()

    extend: Literal["org"] | None = Field(
        None,
        description="'org': the organisation's policy (its .github repository) applies too, "
        "as a floor this file can only tighten.",
    )
    mode: Literal["enforce", "advisory"] = Field(
        "enforce",
        description="'advisory': evaluate, sign, annotate and log everything, but conclude "
        "the check 'success' titled 'would block' (rolling merge-gate out without "
        "stopping work).",
    )
    break_glass: BreakGlass = Field(
        default_factory=lambda: BreakGlass(),
        description="Emergency override by a named team ('/merge-gate override <reason>').",
    )

    @model_validator(mode="after")
    def _gated_tests_known(self) -> Policy:
        names = {tier.name for tier in self.tiers}
        wanted = [self.gated_tests.tier] if self.gated_tests.tier else []
        for name in [*wanted, *self.gated_tests.from_]:
            if name not in names:
                raise ValueError(f"gated_tests names {name!r}, which is not a tier")
        return self

    @model_validator(mode="after")
    def _tiers_known(self) -> Policy:
        problems = _tier_problems(
            {
                "tiers": [{"name": tier.name} for tier in self.tiers],
                "default_tier": self.default_tier,
                "unseen_content_tier": self.unseen_content_tier,
            }
        )
        if problems:
            raise PydanticCustomError(
                "tier_reference",
                "{message}",
                {"message": "; ".join(f"{'.'.join(map(str, loc))}: {m}" for loc, m in problems)},
            )
        return self

    def rank(self, tier: str) -> int:
        return [t.name for t in self.tiers].index(tier)

    def tier(self, name: str) -> Tier:
        return next(t for t in self.tiers if t.name == name)

    def detector_names(self) -> frozenset[str]:
        refs = [ref for tier in self.tiers for ref in tier.detectors]
        refs += [ref for rule in self.scope.deny for ref in rule.detectors]
        if self.gated_tests.tier and self.gated_tests.from_:
            refs.append("tests")
        return frozenset(ref.split(":", 1)[0] for ref in refs)


Loc = tuple[str | int, ...]


def _tier_problems(data: Mapping[str, Any]) -> list[tuple[Loc, str]]:
    """Tier names that repeat and tier references that name no tier, each with its key path.

    It reads raw data (what YAML gave, however malformed) so that the parser reports these
    alongside every other error, not only once the rest of the file is valid; the model
    runs it too, for policies built in code.
    """
    tiers = data.get("tiers")
    if not isinstance(tiers, Sequence) or isinstance(tiers, str):
        return []
    names: list[str] = []
    problems: list[tuple[Loc, str]] = []
    for index, tier in enumerate(tiers):
        name = tier.get("name") if isinstance(tier, Mapping) else None
        if not isinstance(name, str):
            continue
        if name in names:
            problems.append((("tiers", index, "name"), f"tier name {name!r} is used twice"))
        names.append(name)
    for field in ("default_tier", "unseen_content_tier"):
        value = data.get(field)
        if isinstance(value, str) and value not in names:
            problems.append(((field,), f"{value!r} is not a tier"))
    return problems


# --- parsing with positions ------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PolicyError:
    line: int
    column: int
    message: str

    def format(self, filename: str) -> str:
        return f"{filename}:{self.line}:{self.column}: {self.message}"


class InvalidPolicy(ValueError):
    def __init__(self, errors: list[PolicyError]) -> None:
        self.errors = errors
        super().__init__("; ".join(f"{e.line}:{e.column}: {e.message}" for e in errors))


@dataclass(frozen=True, slots=True)
class LoadedPolicy:
    """A validated policy with where it came from, for reasons that cite lines."""

    policy: Policy
    path: str
    #: Git blob sha of the file, or "builtin" for the default policy.
    blob: str
    #: (key path) -> 1-based line of that node in the file.
    lines: Mapping[tuple[str | int, ...], int]
    #: Where top-level sections the file leaves out come from (the built-in policy).
    defaults: LoadedPolicy | None = None

    @property
    def digest(self) -> str:
        """SHA-256 of the canonical (RFC 8785) JSON form of the policy."""
        data = self.policy.model_dump(mode="json", by_alias=True)
        return "sha256:" + hashlib.sha256(rfc8785.dumps(data)).hexdigest()

    def cite(self, *key: str | int) -> str:
        if self.defaults is not None and key and (key[0],) not in self.lines:
            return self.defaults.cite(*key)
        line = self.lines.get(tuple(key))
        return f"{self.path}:{line}" if line else self.path


def _walk(
    node: yaml.Node, path: tuple[str | int, ...]
) -> Iterator[tuple[tuple[str | int, ...], yaml.Node, yaml.Node | None]]:
    """(key path, value node, key node) for every node of the document."""
    yield path, node, None
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            child = (*path, key_node.value)
            yield child, value_node, key_node
            for inner in _walk(value_node, child):
                if inner[0] != child:
                    yield inner
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            yield from _walk(item, (*path, index))


def _duplicate_keys(node: yaml.Node) -> list[PolicyError]:
    errors: list[PolicyError] = []
    if isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        for key_node, value_node in node.value:
            if key_node.value in seen:
                mark = key_node.start_mark
                errors.append(
                    PolicyError(mark.line + 1, mark.column + 1, f"duplicate key {key_node.value!r}")
                )
            seen.add(key_node.value)
            errors += _duplicate_keys(value_node)
    elif isinstance(node, yaml.SequenceNode):
        for item in node.value:
            errors += _duplicate_keys(item)
    return errors


def parse(
    text: str,
    *,
    path: str = POLICY_PATH,
    blob: str = "builtin",
    defaults: LoadedPolicy | None = None,
) -> LoadedPolicy:
    """Parse and validate policy text; raises ``InvalidPolicy`` listing every error.

    Bounded and linear: the size is checked first, then one streaming pass over the
    YAML events counts alias uses, nodes as aliases would expand them, and depth, and
    stops at the first budget exceeded with its position; only then is the document
    composed and constructed.
    """
    size = len(text.encode("utf-8", "surrogatepass"))
    if size > MAX_POLICY_BYTES:
        raise InvalidPolicy(
            [PolicyError(1, 1, f"the policy is {size} bytes; the limit is {MAX_POLICY_BYTES}")]
        )
    try:
        _check_budget(text)
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.SafeLoader("").construct_document(root) if root is not None else None
    except InvalidPolicy:
        raise
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        line, column = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        problem = getattr(error, "problem", None) or str(error)
        raise InvalidPolicy([PolicyError(line, column, f"not valid YAML: {problem}")]) from None
    except ValueError as error:  # a constructor's own limit, e.g. int() of 4300+ digits
        raise InvalidPolicy([PolicyError(1, 1, f"not valid YAML: {error}")]) from None
    if root is None or not isinstance(data, dict):
        raise InvalidPolicy([PolicyError(1, 1, "the policy must be a YAML mapping")])
    errors = _duplicate_keys(root)
    positions: dict[tuple[str | int, ...], tuple[int, int]] = {}
    key_positions: dict[tuple[str | int, ...], tuple[int, int]] = {}
    for key_path, value_node, key_node in _walk(root, ()):
        mark = value_node.start_mark
        positions.setdefault(key_path, (mark.line + 1, mark.column + 1))
        if key_node is not None:
            kmark = key_node.start_mark
            key_positions.setdefault(key_path, (kmark.line + 1, kmark.column + 1))
    inherited = (
        {k: v for k, v in defaults.policy.model_dump(by_alias=True).items() if k != "version"}
        if defaults
        else {}
    )
    if "tiers" in data and "gated_tests" not in data:
        # The default's gated_tests names the default's tiers, not this file's.
        inherited.pop("gated_tests", None)
    merged = {**inherited, **data}
    # Checked on the raw data, so they come with every other error and their own lines.
    for loc, message in _tier_problems(merged):
        if loc[0] in data:
            errors.append(_at(loc, message, positions))
        else:
            # Inherited from the built-in policy: the file's own tiers lack that name.
            line, column = key_positions.get(("tiers",), (1, 1))
            errors.append(
                PolicyError(line, column, f"{loc[0]}: {message} (the built-in value); set {loc[0]}")
            )
    try:
        policy = Policy.model_validate(merged)
    except ValidationError as error:
        items = [item for item in error.errors() if item["type"] != "tier_reference"]
        locs = [_data_path(tuple(item["loc"]), merged) for item in items]
        for item, loc in zip(items, locs, strict=True):
            # A container's "too short after validation" only echoes its items' errors.
            if any(other != loc and other[: len(loc)] == loc for other in locs):
                continue
            errors.append(_positioned(item, loc, positions, key_positions))
    if errors:
        raise InvalidPolicy(sorted(set(errors), key=lambda e: (e.line, e.column, e.message)))
    lines = {key: line for key, (line, _column) in positions.items()}
    return LoadedPolicy(policy=policy, path=path, blob=blob, lines=lines, defaults=defaults)


def _data_path(loc: Loc, data: Any) -> Loc:
    """The key path of a pydantic error location within the data.

    pydantic adds union-branch and validator tags (``function-after[...]``,
    ``literal['code_owners']``, ``str``) to locations; a part that is a key or index
    of the data at that depth is data, whatever it is spelled like, so a key named
    ``str`` stays.
    """
    path: list[str | int] = []
    node: Any = data
    for part in loc:
        if isinstance(node, Mapping) and part in node:
            node = node[part]
        elif isinstance(node, Sequence) and not isinstance(node, str) and isinstance(part, int):
            node = node[part] if 0 <= part < len(node) else None
        elif isinstance(part, str) and (
            "[" in part or part in ("str", "int", "bool", "float", "none")
        ):
            continue
        else:
            node = None
        path.append(part)
    return tuple(path)


def _at(loc: Loc, message: str, positions: Mapping[Loc, tuple[int, int]]) -> PolicyError:
    """``message`` at the node of ``loc``, or of its nearest ancestor in the file."""
    probe = loc
    where = positions.get(probe)
    while where is None and probe:
        probe = probe[:-1]
        where = positions.get(probe)
    line, column = where or (1, 1)
    dotted = ".".join(str(part) for part in loc) or "policy"
    return PolicyError(line, column, f"{dotted}: {message}")


def _check_budget(text: str) -> None:
    """Raise ``InvalidPolicy`` at the first alias, node or level past the budgets.

    Streams parser events (no nodes are built), so it costs one pass whatever the
    aliases would expand to: an anchored node's expanded size is known when it ends
    and each alias adds that size.
    """
    sizes: dict[str, int] = {}
    #: (anchor, expanded node count before it) of each open collection.
    open_nodes: list[tuple[str | None, int]] = []
    total = 0
    aliases = 0

    def fail(event: yaml.Event, message: str) -> NoReturn:
        mark = event.start_mark
        line, column = (mark.line + 1, mark.column + 1) if mark is not None else (1, 1)
        raise InvalidPolicy([PolicyError(line, column, message)])

    for event in yaml.parse(text, Loader=yaml.SafeLoader):
        if isinstance(event, yaml.AliasEvent):
            aliases += 1
            if aliases > MAX_ALIASES:
                fail(event, f"more than {MAX_ALIASES} alias uses ('*name')")
            if any(anchor == event.anchor for anchor, _ in open_nodes):
                fail(event, f"alias '*{event.anchor}' refers to a node that contains it")
            total += sizes.get(str(event.anchor), 1)
        elif isinstance(event, yaml.ScalarEvent):
            total += 1
            if event.anchor is not None:
                sizes[event.anchor] = 1
        elif isinstance(event, yaml.SequenceStartEvent | yaml.MappingStartEvent):
            open_nodes.append((event.anchor, total))
            total += 1
            if len(open_nodes) > MAX_DEPTH:
                fail(event, f"nested more than {MAX_DEPTH} levels deep")
        elif isinstance(event, yaml.SequenceEndEvent | yaml.MappingEndEvent) and open_nodes:
            anchor, before = open_nodes.pop()
            if anchor is not None:
                sizes[anchor] = total - before
        if total > MAX_NODES:
            fail(event, f"more than {MAX_NODES} nodes once aliases are expanded")


def _positioned(
    item: Mapping[str, Any],
    loc: Loc,
    positions: Mapping[Loc, tuple[int, int]],
    key_positions: Mapping[Loc, tuple[int, int]],
) -> PolicyError:
    kind = item["type"]
    message = str(item["msg"]).removeprefix("Value error, ")
    if kind == "extra_forbidden":
        fallback = _at(loc, "", positions)
        line, column = key_positions.get(loc) or (fallback.line, fallback.column)
        return PolicyError(
            line,
            column,
            f"unknown key {loc[-1]!r}"
            + (f" in {'.'.join(map(str, loc[:-1]))}" if loc[:-1] else ""),
        )
    if kind == "missing":
        return _at(loc, "required key is missing", positions)
    if kind == "policy_rule":
        # Point at the key the rule is about (e.g. ``from``), when the file has it.
        at = (*loc, *item["ctx"]["at"])
        error = _at(at, message, positions)
        return PolicyError(error.line, error.column, f"{'.'.join(map(str, loc))}: {message}")
    return _at(loc, message, positions)


def json_schema() -> dict[str, Any]:
    schema = Policy.model_json_schema(by_alias=True)
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "merge-gate policy (.github/merge-gate.yml)"
    # A file may leave any section but the version out: it takes the built-in one.
    schema["required"] = ["version"]
    return schema
