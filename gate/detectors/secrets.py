"""The secrets detector: a pull request that adds a credential is denied.

What it reads: every line the change adds (``ScanInput.added``); for a file
GitHub sends without a patch (binary, or a diff too large to show) it asks the
edge for the whole head text instead, and fails closed when that text is not
there or was too large to read (rule ``unscannable``).

How it matches, and why it stays fast on hostile input (every step is linear
in the text, and a 1 MB line of crafted input is scanned in well under 50 ms):

1. The added lines are joined into one UTF-8 buffer, so the per-line cost in
   Python is a join, not a loop of regex calls. No line is cut or windowed: RE2
   (https://github.com/google/re2/wiki/WhyRE2) matches in time linear in the
   text, so a line of any length is searched whole.
2. Keyword pre-filter: one case-insensitive ``re2.Set`` pass over the buffer
   tells which rule keywords occur; a rule runs only if one of its keywords
   does. RE2's ``Set::Match`` answers "no match" when its DFA gives up, which
   would fail open, so the set holds a sentinel that matches every text; when
   the sentinel is missing the keywords are looked up one by one instead.
3. Rules run as RE2 searches without capture groups (DFA only). The rules
   whose match starts at the token's own prefix (``ghp_``, ``AKIA``...) share
   one search, a union; the keyword-led ones (``password = ...``) run alone.
4. Where the secret sits in a match is learnt afterwards, by the one rule's
   regex with captures, on that match only; a match longer than
   ``EXTRACT_LIMIT`` bytes is judged by its first ``EXTRACT_LIMIT`` bytes.
   The Python work per file is bounded: at most ``MAX_CANDIDATES`` matches and
   ``EXTRACT_BUDGET`` bytes of them are examined; past either, or when a long
   match cannot be judged by its head, the file is denied as ``unscannable``
   (fail closed) instead of being skimmed. At most ``MAX_FINDINGS`` findings
   are listed per file, the file being denied by the first.
5. A match is a finding unless it is plausibly not a secret: a placeholder
   (``EXAMPLE``, ``xxxx``, ``${VAR}``, ``{{ x }}``, ``${{ secrets.X }}``,
   ``<your-key>``, ``changeme``, ``dummy``, and for generic assignments also
   ``test``, ``fake``...), too little Shannon entropy for its rule, or, for a
   generic assignment, a value that reads as something else (an identifier, a
   constant's name, a date, a short hex id, a UUID, an expression, a path or
   URL) or a name that is about a credential rather than one (``token_url``,
   ``secret_name``, ``next_token``). These follow ideas of gitleaks'
   allowlists (see ``secret_rules``).

A finding never carries the secret. Its message shows the redacted form from
``redact``: the first four characters, an ellipsis, and ``sha256:`` with the
first 12 hex digits of the SHA-256 of the secret's UTF-8 bytes; enough to find
the credential in a vault and rotate it, not enough to use it.

``gate`` is pure: this module reads no files, clock or environment.
"""

from __future__ import annotations

import base64
import binascii
import bisect
import hashlib
import itertools
import json
import math
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import re2

from gate.detectors.base import Finding, ScanInput
from gate.detectors.secret_rules import RULES, Check, Rule
from gate.diff import AddedLine
from gate.filekinds import is_test_or_doc_path
from gate.model import ChangedFile

#: Matches examined per file before the file is denied as unscannable.
MAX_CANDIDATES = 1000
#: Bytes of one match from which its secret is extracted (see ``_which``).
EXTRACT_LIMIT = 1024
#: Bytes of matches extracted from per file before it is denied as unscannable.
EXTRACT_BUDGET = 128 * 1024
# How far left of a credential word an identifier is followed, and its bytes.
_NAME_REACH = 64
_IDENTIFIER_BYTES = frozenset(b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-")
# Bytes of a match shown to the union's start set to pick the member to try first.
_HEAD = 256
#: Characters of a secret whose entropy is measured.
CHECKED_PREFIX = 256
#: Findings listed per file; one is enough to deny.
MAX_FINDINGS = 20
#: Rule id of the fail-closed finding.
UNSCANNABLE = "unscannable"

# Words that mark a value as a stand-in in any rule. Kept to words long enough
# (or distinctive enough) that a random token almost never contains one.
_PLACEHOLDER_MARKERS = (
    *("example", "placeholder", "redacted", "changeme", "change_me", "change-me", "dummy"),
    *("your", "xxxx", "****", "...", "…", "abcdefgh", "12345678"),
    # Template syntax: ${VAR}, {{ var }}, ${{ secrets.X }}, <your-key>, %(name)s.
    *("${", "{{", "}}", "<", ">", "%("),
)
# Extra words for values that have no format to vouch for them (generic
# assignments, URL passwords): short, but a human-chosen value containing
# them is a fixture, not a credential.
_WEAK_MARKERS = (
    *("test", "fake", "sample", "mock", "demo", "secret", "passw", "token", "foobar"),
    *("admin", "default", "none", "null", "undefined", "insert", "replace", "todo"),
    *("fixme", "notreal", "not_real", "not-real", "invalid"),
    # Format strings and shell variables: "{}", "%s", "$HOME".
    *("{", "}", "%s", "%d", "$"),
)
# A generic value made only of these is an identifier or a word, not a secret
# (gitleaks' generic-api-key allowlist, ``^[a-zA-Z_.-]+$``).
_IDENTIFIER_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_.-")

_CONSTANT_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_")
_TIMESTAMP_CHARS = frozenset("0123456789-:+.TZ/")
_HEX_CHARS = frozenset("0123456789abcdefABCDEF")
_DIGITS = frozenset("0123456789")
# Identifiers, separators removed, that hold something about a credential, not
# one: ``token_url``, ``secret_name``, ``password_field``, ``key_id``.
_NAME_SUFFIXES = (
    *("id", "ids", "name", "names", "type", "url", "uri", "endpoint", "file", "path", "dir"),
    *("length", "len", "size", "count", "field", "header", "prefix", "suffix", "policy"),
    *("rule", "arn", "ref", "expiration", "expiry", "expires", "ttl", "version", "format"),
    *("regex", "pattern", "label", "env", "var", "hash", "question", "hint", "prompt"),
    # Interface text about a credential (translation files): ``password-description``.
    *("description", "desc", "title", "placeholder", "tooltip", "text", "message", "help"),
    *("error", "caption"),
)
# Tokens that are not credentials: page cursors, idempotency and CSRF tokens.
_NAME_WORDS = (
    *("nexttoken", "pagetoken", "continuationtoken", "paginationtoken", "clienttoken"),
    *("idempotency", "changetoken", "locktoken", "synctoken", "csrf", "xsrf"),
    *("canceltoken", "cancellationtoken", "resumetoken", "verificationtoken"),
)

# URL passwords that are the word for a password, as in ``http://user:pass@host``.
_PASSWORD_WORDS = frozenset({"pass", "pw", "pwd", "passwd", "password", "user", "username"})

# Hosts of a developer's own machine: a URL password for them is a local default.
_LOCAL_HOSTS = frozenset({"localhost", "127.0.0.1", "[::1]", "host.docker.internal"})
_LOCAL_SUFFIXES = (".localhost", ".local", ".test", ".invalid", ".example")
#: A value with no vendor format in a test or docs file denies only when it looks
#: generated: at least this long and this random (bits per character). Shorter or
#: plainer ones (``abcDEF123!@#``) are fixtures, reported as informational.
FIXTURE_MIN_LENGTH = 20
FIXTURE_MIN_ENTROPY = 3.5
# The claims of jwt.io's sample token, published in every JWT tutorial.
_SAMPLE_JWT_CLAIMS = (("sub", "1234567890"), ("name", "John Doe"))
# How far after a private key's first line of key material its END line is looked for.
_PEM_REACH = 16 * 1024

# File names whose values are written unquoted (``KEY=value``).
_CONFIG_SUFFIXES = (
    ".env",
    ".ini",
    ".cfg",
    ".conf",
    ".config",
    ".properties",
    ".yaml",
    ".yml",
    ".toml",
    ".tfvars",
    ".sh",
    ".bash",
    ".zsh",
    ".envrc",
    ".npmrc",
    ".pypirc",
    ".netrc",
)
_CONFIG_NAMES = frozenset({"dockerfile", "containerfile", "makefile"})


@dataclass(frozen=True, slots=True)
class _Member:
    """One rule of a pass: its own regex, with the groups that hold the secret."""

    rule: Rule
    #: Run anchored on a span the pass found, to learn where the secret is.
    regex: Any
    #: Group indices holding the secret, one per alternative of the rule.
    secret_groups: tuple[int, ...]
    #: Named groups that are context for the check (``user``, ``host``, ``name``).
    context_groups: tuple[tuple[str, int], ...]


@dataclass(frozen=True, slots=True)
class _Pass:
    """One RE2 search over the text: one rule, or the union of the combinable ones.

    The search regex has no capture groups, so RE2 finds each match span with
    its DFAs alone, and a union of 20 vendor formats costs what one pattern
    does (about 1.5 ms per MB here). Captures are taken afterwards by the one
    member whose own regex matches the span exactly; RE2 extracts submatches
    with its slower NFA, so that runs on the span only, with a small program.
    """

    search: Any
    members: tuple[_Member, ...]
    #: For a union: which members can match at the start of a span (a superset,
    #: as it sees the span without the text around it), so only those are tried.
    starts: Any
    keywords: frozenset[str]
    config_only: bool


def _options(*, case_sensitive: bool = True) -> Any:
    options = re2.Options()
    # RE2 logs to stderr on its own; a pure module stays silent.
    options.log_errors = False
    options.case_sensitive = case_sensitive
    return options


def _without_captures(pattern: str) -> str:
    # Rules capture only through named groups (a convention of secret_rules).
    return "(?:".join(
        part if i == 0 else part.split(">", 1)[1] for i, part in enumerate(pattern.split("(?P<"))
    )


def _member(rule: Rule) -> _Member:
    regex = re2.compile(rule.pattern, _options())
    index: dict[str, int] = regex.groupindex
    secret_groups = tuple(at for name, at in sorted(index.items()) if name.startswith("secret"))
    if not secret_groups:
        raise ValueError(f"rule {rule.id} has no secret group")
    context = tuple(
        (name, at) for name, at in sorted(index.items()) if name in ("user", "host", "name")
    )
    return _Member(rule, regex, secret_groups, context)


def _compile(rules: Sequence[Rule]) -> _Pass:
    search = re2.compile(
        "|".join(f"(?:{_without_captures(rule.pattern)})" for rule in rules), _options()
    )
    if search.groups:
        raise ValueError(f"unnamed capture group in one of {[r.id for r in rules]}")
    starts = None
    if len(rules) > 1:
        starts = re2.Set.MatchSet(_options())
        for rule in rules:
            starts.Add(_without_captures(rule.pattern))
        starts.Compile()
    return _Pass(
        search=search,
        members=tuple(_member(rule) for rule in rules),
        starts=starts,
        keywords=frozenset(keyword for rule in rules for keyword in rule.keywords),
        config_only=all(rule.config_only for rule in rules),
    )


def _passes(rules: Sequence[Rule]) -> tuple[_Pass, ...]:
    # The union takes the place of its first member, so table order (specific
    # rules first) still decides which rule reports an overlapping match.
    combinable = [rule for rule in rules if rule.combinable]
    passes = []
    for rule in rules:
        if not rule.combinable:
            passes.append(_compile([rule]))
        elif rule is combinable[0]:
            passes.append(_compile(combinable))
    return tuple(passes)


def _keyword_set(keywords: Sequence[str]) -> Any:
    found = re2.Set.SearchSet(_options(case_sensitive=False))
    # The sentinel matches every text, so its absence from a result means the
    # DFA gave up (RE2 then reports no match at all) and the caller must not
    # trust the empty answer.
    found.Add(r"\z")
    for keyword in keywords:
        found.Add(re2.escape(keyword))
    found.Compile()
    return found


_PASSES = _passes(RULES)
_KEYWORDS = tuple(sorted({keyword for rule in RULES for keyword in rule.keywords}))
_KEYWORD_SET = _keyword_set(_KEYWORDS)


def _present_keywords(data: bytes) -> frozenset[str]:
    """Rule keywords occurring in ``data``, case-insensitively, in one RE2 pass."""
    hits = _KEYWORD_SET.Match(data)
    if hits and 0 in hits:
        return frozenset(_KEYWORDS[i - 1] for i in hits if i)
    # Fail closed: the one-pass search did not finish, so look each keyword up.
    lowered = data.lower()
    return frozenset(k for k in _KEYWORDS if k.encode() in lowered)


class SecretsDetector:
    """Denies a change that adds a credential; see the module docstring."""

    name = "secrets"

    def wanted(self, file: ChangedFile) -> frozenset[tuple[str, str]]:
        # Without a patch the added lines are unknown: read the whole head text.
        if file.content_unseen:
            return frozenset({("head", file.path)})
        return frozenset()

    def scan(self, data: ScanInput) -> Sequence[Finding]:
        file = data.file
        if file.patch is not None:
            return scan_lines(path=file.path, lines=data.added)
        if not file.content_unseen:
            return ()
        key = ("head", file.path)
        text = data.contents.get("head", file.path)
        if key in data.contents.too_large or text is None:
            why = "too large to read" if key in data.contents.too_large else "not fetched"
            return (_unscannable(file.path, f"the head version is {why}"),)
        return scan_text(path=file.path, text=text)


def scan_lines(*, path: str, lines: Sequence[AddedLine]) -> tuple[Finding, ...]:
    """Findings in added ``lines``, each at its line number in the head version."""
    if not lines:
        return ()
    encoded = "\n".join([line.text for line in lines]).encode("utf-8", "replace")
    starts: list[int] = []

    def line_at(offset: int) -> int:
        # Built only once a secret is confirmed: most files have none.
        if not starts:
            lengths = (len(line.text.encode("utf-8", "replace")) + 1 for line in lines)
            starts.extend(itertools.accumulate(lengths, initial=0))
        return lines[bisect.bisect_right(starts, offset) - 1].number

    return _scan(path=path, data=encoded, line_at=line_at)


def scan_text(*, path: str, text: str) -> tuple[Finding, ...]:
    """Findings in a whole file ``text``; line numbers count from 1."""
    encoded = text.encode("utf-8", "replace")

    def line_at(offset: int) -> int:
        return encoded.count(b"\n", 0, offset) + 1

    return _scan(path=path, data=encoded, line_at=line_at)


def redact(secret: str) -> str:
    """The form of ``secret`` a message may show: ``abcd…sha256:0123456789ab``.

    First four characters, then the first 12 hex digits of the SHA-256 of the
    secret's UTF-8 bytes: who holds the credential can recognise it, nobody else
    learns more than four characters of it.
    """
    digest = hashlib.sha256(secret.encode("utf-8", "replace")).hexdigest()[:12]
    return f"{secret[:4]}…sha256:{digest}"


def shannon_entropy(value: str) -> float:
    """Shannon entropy of ``value`` in bits per character (0 for the empty string)."""
    if not value:
        return 0.0
    size = len(value)
    return -sum(n / size * math.log2(n / size) for n in Counter(value).values())


def is_placeholder(value: str, *, strict: bool = False) -> bool:
    """True when ``value`` reads as a stand-in (``EXAMPLE``, ``${X}``, ``xxxx``...).

    ``strict`` adds the short words (``test``, ``fake``...) that only make sense
    for values no token format vouches for.
    """
    lowered = value.lower()
    if any(_has(value, lowered, marker) for marker in _PLACEHOLDER_MARKERS):
        return True
    return strict and any(_has(value, lowered, marker) for marker in _WEAK_MARKERS)


def _has(value: str, lowered: str, marker: str) -> bool:
    # A word of four letters or fewer turns up in random text by chance (about
    # once in 10^4 long base64 keys for "xxxx" in any case), so short words
    # count only as people write them: xxxx, XXXX, Your, YOUR.
    if len(marker) > 4 or not marker.isalpha():
        return marker in lowered
    return marker in value or marker.upper() in value or marker.title() in value


def is_config_path(path: str) -> bool:
    """True for files that write values unquoted: ``.env``, INI, YAML, shell, Dockerfile."""
    name = path.rsplit("/", 1)[-1].lower()
    return name.startswith(".env") or name.endswith(_CONFIG_SUFFIXES) or name in _CONFIG_NAMES


@dataclass(frozen=True, slots=True)
class _Hit:
    rule: Rule
    secret: str
    #: Byte span of the secret in the scanned buffer.
    span: tuple[int, int]
    #: Byte offset the finding's line is counted from.
    offset: int


@dataclass(frozen=True, slots=True)
class _Search:
    """Every plausible secret in a buffer, or where and why the search gave up."""

    hits: tuple[_Hit, ...]
    unscannable: str | None = None
    unscannable_at: int | None = None


def _search(data: bytes, *, config: bool) -> _Search:
    present = _present_keywords(data)
    if not present:
        return _Search(hits=())
    hits: list[_Hit] = []
    claimed: list[tuple[int, int]] = []
    budget = MAX_CANDIDATES
    extract_budget = EXTRACT_BUDGET
    for one in _PASSES:
        if present.isdisjoint(one.keywords) or (one.config_only and not config):
            continue
        position = 0
        while (found := one.search.search(data, position)) is not None:
            budget -= 1
            if budget < 0:
                return _Search(tuple(hits), f"more than {MAX_CANDIDATES} candidate secrets")
            start, end = found.span()
            extract_budget -= min(end - start, EXTRACT_LIMIT)
            if extract_budget < 0:
                reason = f"more than {EXTRACT_BUDGET} bytes of candidate secrets"
                return _Search(tuple(hits), reason)
            which = _which(one, data, start, end)
            if which is None:
                return _Search(tuple(hits), "a candidate secret too long to inspect", start)
            member, match, span, base = which
            # Resume at the end of the secret, not of the match: a delimiter the
            # pattern consumed after this token may be the one before the next.
            # Past a long match, resume at its end so no byte is searched twice.
            position = end if end - start > EXTRACT_LIMIT else max(span[1], start + 1)
            if any(span[0] < stop and begin < span[1] for begin, stop in claimed):
                continue  # an earlier, more specific rule already reported it
            secret = data[span[0] : span[1]].decode("utf-8", "replace")
            context = _context(member, match, data, base)
            if not _plausible(member.rule, secret, context=context):
                continue
            if member.rule.id == "private-key" and _truncated_key(data, span[1]):
                continue
            claimed.append(span)
            offset = start if member.rule.multiline else span[0]
            hits.append(_Hit(member.rule, secret, span, offset))
            if len(hits) >= MAX_FINDINGS:
                return _Search(tuple(hits))
    return _Search(tuple(hits))


def _scan(*, path: str, data: bytes, line_at: Callable[[int], int]) -> tuple[Finding, ...]:
    found = _search(data, config=is_config_path(path))
    fixture = is_test_or_doc_path(path)
    findings = [
        _finding(
            path,
            hit.rule,
            hit.secret,
            line_at(hit.offset),
            informational=fixture and _fixture_value(hit.rule, hit.secret),
        )
        for hit in found.hits
    ]
    if found.unscannable is not None:
        at = None if found.unscannable_at is None else line_at(found.unscannable_at)
        findings = [*_ordered(findings), _unscannable(path, found.unscannable, line=at)]
        return tuple(findings)
    return _ordered(findings)


#: Credentials a URL carries outside any vendor format: user-info
#: (``https://user:token@host``) and query values (``?token=...``); RFC 3986 §3.2.1, §3.4.
_URL_USERINFO = re2.compile(r"(://)([^/?#@\s]+)@")
_URL_QUERY_VALUE = re2.compile(r"([?&;][^=&#;\s]*=)([^&#;\s]+)")


def redact_text(text: str) -> str:
    """``text`` with every secret in the redacted form of ``redact``.

    For messages built from pull-request text (a package spec, a migration's
    operation, a Kubernetes kind): whatever the rules of this detector find,
    with the keyword rules of configuration files included, and every URL
    credential. Already-redacted forms are left alone (they read as placeholders),
    so applying it twice changes nothing.
    """
    text = str(_URL_USERINFO.sub(lambda m: f"{m.group(1)}{_once(m.group(2))}@", text))
    text = str(_URL_QUERY_VALUE.sub(lambda m: f"{m.group(1)}{_once(m.group(2))}", text))
    data = text.encode("utf-8", "surrogatepass")
    hits = sorted(_search(data, config=True).hits, key=lambda hit: hit.span)
    if not hits:
        return text
    out: list[bytes] = []
    at = 0
    for hit in hits:
        out += [data[at : hit.span[0]], redact(hit.secret).encode()]
        at = hit.span[1]
    out.append(data[at:])
    return b"".join(out).decode("utf-8", "surrogatepass")


def _once(value: str) -> str:
    return value if "…sha256:" in value else redact(value)


def _which(
    one: _Pass, data: bytes, start: int, end: int
) -> tuple[_Member, Any, tuple[int, int], int] | None:
    """The member that matched ``data[start:end]``, its match, its secret's span in
    ``data``, and the offset in ``data`` of the text the match's own spans count from.

    Captures come from RE2's NFA, whose cost grows with the text, so a match
    longer than ``EXTRACT_LIMIT`` is re-matched on its first ``EXTRACT_LIMIT``
    bytes only (copied, so the copy's end can end a run): its secret is judged
    by its head. ``None`` when no member matches that head.
    """
    base = 0
    if end - start <= EXTRACT_LIMIT:
        text, first, last = data, start, end
    else:
        # Keep one byte before the match: \b and ^ look at it.
        base = max(0, start - 1)
        text, first, last = data[base : start + EXTRACT_LIMIT], start - base, -1
    for member in _candidates(one, data[start : min(end, start + _HEAD)]):
        if last < 0:
            match = member.regex.match(text, first)
        else:
            match = member.regex.fullmatch(text, first, last)
        if match is None:
            continue
        for group in member.secret_groups:
            span: tuple[int, int] = match.span(group)
            if span[0] >= 0:
                return member, match, (span[0] + base, span[1] + base), base
    # Only a long match's head can fail: a whole span is some member's match by
    # construction of the union. Either way the caller fails closed.
    return None


def _context(member: _Member, match: Any, data: bytes, base: int) -> dict[str, str]:
    """The context groups of ``match``; ``name`` grows left to the whole identifier."""
    context = {}
    for name, at in member.context_groups:
        begin, end = match.span(at)
        if begin < 0:
            continue
        begin, end = begin + base, end + base
        if name == "name":
            # ``NextToken``: the credential word is not always where the name starts.
            floor = max(0, begin - _NAME_REACH)
            while begin > floor and data[begin - 1] in _IDENTIFIER_BYTES:
                begin -= 1
        context[name] = data[begin:end].decode("utf-8", "replace")
    return context


def _candidates(one: _Pass, head: bytes) -> Sequence[_Member]:
    """Members of ``one`` in the order to try them on a span beginning with ``head``.

    Those that match a prefix of ``head`` come first; the rest follow, since a
    member's match may be longer than ``head`` (or RE2's DFA may have given up).
    """
    if one.starts is None:
        return one.members
    hits = sorted(one.starts.Match(head) or ())
    if not hits:
        return one.members
    rest = [member for i, member in enumerate(one.members) if i not in hits]
    return [one.members[i] for i in hits] + rest


def _plausible(rule: Rule, secret: str, *, context: dict[str, str]) -> bool:
    """Whether a pattern match is worth denying for: not a placeholder, random enough."""
    if rule.check is Check.BASIC_AUTH:
        return _plausible_password(
            secret, user=context.get("user", ""), host=context.get("host", "")
        )
    if rule.check is Check.JWT:
        return not is_placeholder(secret) and _jwt_header_ok(secret) and not _sample_jwt(secret)
    if secret.startswith("eyJ") and _sample_jwt(secret):
        return False
    strict = rule.check is Check.GENERIC
    if is_placeholder(secret, strict=strict):
        return False
    if strict and (_not_a_value(secret) or _not_a_credential_name(context.get("name", ""))):
        return False
    return shannon_entropy(secret[:CHECKED_PREFIX]) >= rule.min_entropy


def _plausible_password(password: str, *, user: str, host: str) -> bool:
    if password.lower() in _PASSWORD_WORDS or password == user:
        return False
    if is_placeholder(password, strict=True) or is_placeholder(user) or is_placeholder(host):
        return False
    # ``host:8080@`` is a port, not a password.
    if password.isdigit() and len(password) <= 5:
        return False
    # A local database's default (``postgres://app:devpass@localhost``) unless it looks generated.
    lowered = host.lower()
    if lowered in _LOCAL_HOSTS or lowered.endswith(_LOCAL_SUFFIXES):
        return len(password) >= FIXTURE_MIN_LENGTH and _random_enough(password)
    return True


def _not_a_value(value: str) -> bool:
    """True for generic values that read as something other than a credential."""
    chars = set(value)
    return (
        # An identifier or a word (gitleaks' allowlist ``^[a-zA-Z_.-]+$``).
        chars <= _IDENTIFIER_CHARS
        # A constant's name: SOME_SETTING_V2.
        or ("_" in chars and chars <= _CONSTANT_CHARS)
        # A number, date or time: 2024-01-31T12:00:00+00:00.
        or chars <= _TIMESTAMP_CHARS
        # A short hex digest or id; hex credentials are longer.
        or (len(value) < 24 and chars <= _HEX_CHARS)
        # A UUID: request and client ids far more often than credentials.
        or _is_uuid(value)
        # An expression (``Jobs[-1].JobId``), not a literal.
        or not chars.isdisjoint("[]()")
        # Where a secret lives rather than what it is: paths, URLs, ARNs.
        or value.startswith(("/", "./", "../", "~/", "%", "@", "arn:"))
        or "://" in value
        # Text in a language other than English (translation files): credentials are ASCII.
        or not value.isascii()
        # A JSON-Schema or OpenAPI reference: ``#/components/schemas/Password``.
        or value.startswith(("#/", "$ref", "$defs/", "definitions/"))
        # A colour or an anchor: #a1b2c3, #ansiblue.
        or (value[0] == "#" and set(value[1:]) <= _IDENTIFIER_CHARS | _DIGITS)
    )


def _is_uuid(value: str) -> bool:
    parts = value.split("-")
    return [len(part) for part in parts] == [8, 4, 4, 4, 12] and set("".join(parts)) <= _HEX_CHARS


def _not_a_credential_name(name: str) -> bool:
    """True when the identifier holding a value names something about a credential."""
    normal = name.lower().replace("_", "").replace("-", "").replace(".", "")
    return normal.endswith(_NAME_SUFFIXES) or any(word in normal for word in _NAME_WORDS)


def _jwt_header_ok(token: str) -> bool:
    header = token.split(".", 1)[0]
    if len(header) > 2048:
        return False
    try:
        raw = base64.urlsafe_b64decode(header + "=" * (-len(header) % 4))
        # Most look-alikes lack the one member RFC 7515 requires; skip parsing them.
        decoded = json.loads(raw) if b'"alg"' in raw else None
    except (binascii.Error, ValueError):
        return False
    return isinstance(decoded, dict) and decoded.get("alg", "none") not in ("none", "None")


def _random_enough(value: str) -> bool:
    return shannon_entropy(value[:CHECKED_PREFIX]) >= FIXTURE_MIN_ENTROPY


def _fixture_value(rule: Rule, secret: str) -> bool:
    """True when a match in a test or docs file is a fixture, not a credential.

    Only values no vendor format vouches for (generic assignments, URL
    passwords, bearer values) qualify, and only short or plain ones: a long,
    random value in a test is as real as anywhere else and still denies.
    """
    if rule.check not in (Check.GENERIC, Check.BASIC_AUTH):
        return False
    return len(secret) < FIXTURE_MIN_LENGTH or not _random_enough(secret)


def _truncated_key(data: bytes, after: int) -> bool:
    """True when a private key's material stops at an ellipsis before its END line.

    Help text and docs show keys cut short (``MIIE...``): a key with a gap in
    it cannot be used. A body that runs on to END, or past what is shown, is
    judged whole.
    """
    window = data[after : after + _PEM_REACH]
    end = window.find(b"-----END")
    body = window if end < 0 else window[:end]
    return b"..." in body or "…".encode() in body


def _sample_jwt(token: str) -> bool:
    """True for jwt.io's public sample token (and its variants): its claims are known."""
    parts = token.split(".", 2)
    payload = parts[1] if len(parts) > 1 else ""
    if not payload or len(payload) > 2048:
        return False
    try:
        raw = base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
        claims = json.loads(raw)
    except (binascii.Error, ValueError):
        return False
    return isinstance(claims, dict) and all(claims.get(k) == v for k, v in _SAMPLE_JWT_CLAIMS)


def _finding(
    path: str, rule: Rule, secret: str, line: int, *, informational: bool = False
) -> Finding:
    fingerprint = "sha256:" + hashlib.sha256(secret.encode("utf-8", "replace")).hexdigest()
    message = (
        f"{rule.title} ({redact(secret)}) in an added line: revoke it, then remove it "
        "from the branch history"
    )
    if informational:
        message = (
            f"{rule.title} ({redact(secret)}) in a test or docs file, short or plain: "
            "a fixture, listed but not denied [informational]"
        )
    return Finding(
        detector=SecretsDetector.name,
        rule=rule.id,
        path=path,
        line=line,
        message=message,
        deny=not informational,
        informational=informational,
        fingerprint=fingerprint,
    )


def _unscannable(path: str, reason: str, *, line: int | None = None) -> Finding:
    return Finding(
        detector=SecretsDetector.name,
        rule=UNSCANNABLE,
        path=path,
        line=line,
        message=f"content not inspected: fail closed ({reason})",
        deny=True,
    )


def _ordered(findings: list[Finding]) -> tuple[Finding, ...]:
    return tuple(sorted(findings, key=lambda f: (f.line or 0, f.rule)))
