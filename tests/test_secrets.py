"""SecretsDetector: credentials in added lines deny the pull request.

No realistic secret is written in this file: every test token is built at run
time from a vendor prefix and a deterministic pseudo-random body, so secret
scanners (this one included) find nothing here.
"""

from __future__ import annotations

import base64
import json
import random
import string
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gate.detectors import secrets
from gate.detectors.base import Detector, Finding, ScanInput
from gate.detectors.secret_rules import RULES
from gate.detectors.secrets import (
    MAX_CANDIDATES,
    MAX_FINDINGS,
    UNSCANNABLE,
    SecretsDetector,
    is_placeholder,
    redact,
    scan_lines,
    scan_text,
    shannon_entropy,
)
from gate.diff import AddedLine, added_lines
from gate.model import ChangedFile, Contents, FileStatus

DETECTOR: Detector = SecretsDetector()
FIXTURES = Path(__file__).parent / "fixtures" / "secrets"

ALNUM = string.ascii_letters + string.digits
UPPER_DIGITS = string.ascii_uppercase + string.digits
BASE64 = ALNUM + "+/"
URLSAFE = ALNUM + "_-"
HEX = "0123456789abcdef"


def rand(n: int, alphabet: str = ALNUM, *, seed: str = "") -> str:
    """A random-looking string, the same on every run for the same arguments."""
    rng = random.Random(f"{seed}|{n}|{alphabet}")
    return "".join(rng.choice(alphabet) for _ in range(n))


def b64url(value: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()


def jwt(alg: str = "HS256") -> str:
    header = b64url({"alg": alg, "typ": "JWT"})
    payload = b64url({"sub": rand(10, seed="sub"), "iat": 1700000000})
    return f"{header}.{payload}.{rand(43, URLSAFE, seed='sig')}"


def scan(path: str, *lines: str) -> list[Finding]:
    """Scan ``lines`` as the added lines 1..n of ``path``."""
    file = ChangedFile(path, FileStatus.MODIFIED, patch="@@")
    added = tuple(AddedLine(number, text) for number, text in enumerate(lines, 1))
    return list(DETECTOR.scan(ScanInput(file=file, added=added, contents=Contents())))


def rules(path: str, *lines: str) -> list[tuple[str, int | None]]:
    return [(f.rule, f.line) for f in scan(path, *lines)]


# Vendor prefixes, split so that this file holds no scannable token.
P = {
    "akia": "AK" + "IA",
    "asia": "AS" + "IA",
    "ghp": "gh" + "p_",
    "gho": "gh" + "o_",
    "ghu": "gh" + "u_",
    "ghs": "gh" + "s_",
    "ghr": "gh" + "r_",
    "pat": "github" + "_pat_",
    "glpat": "gl" + "pat-",
    "glrt": "gl" + "rt-",
    "glptt": "gl" + "ptt-",
    "xoxb": "xo" + "xb-",
    "xoxp": "xo" + "xp-",
    "xapp": "xa" + "pp-1-A",
    "hook": "hooks." + "slack.com/services/T",
    "sk_live": "sk" + "_live_",
    "rk_live": "rk" + "_live_",
    "aiza": "AI" + "za",
    "acct": "Account" + "Key=",
    "sas": "SharedAccess" + "Key=",
    "npm": "np" + "m_",
    "pypi": "py" + "pi-AgEIcHlwaS5vcmc",
    "ant": "sk" + "-ant-api03-",
    "proj": "sk" + "-proj-",
    "oai": "T3Blbk" + "FJ",
    "sg": "S" + "G.",
    "hf": "h" + "f_",
    "shpat": "shp" + "at_",
    "dop": "do" + "p_v1_",
    "hvs": "hv" + "s.",
    "dapi": "da" + "pi",
    "age": "AGE-SECRET" + "-KEY-1",
    "discord": "discord.com/api/web" + "hooks/",
}
B32 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
BECH32 = "QPZRY9X8GF2TVDW0S3JN54KHCE6MUA7L"
DIGITS = string.digits

# One realistic use per rule: (rule id, path, line), bodies built at run time.
TRUE_CASES: list[tuple[str, str, str]] = [
    ("aws-access-key-id", "app.py", f"AWS_KEY = '{P['akia']}{rand(16, B32)}'"),
    ("aws-access-key-id", "app.py", f"sts = '{P['asia']}{rand(16, B32, seed='s')}'"),
    ("aws-secret-access-key", "settings.py", f"aws_secret_access_key = '{rand(40, BASE64)}'"),
    ("aws-secret-access-key", "creds.json", f'"SecretAccessKey": "{rand(40, BASE64, seed="j")}",'),
    (
        "aws-secret-access-key",
        ".aws/credentials",
        f"aws_secret_access_key={rand(40, BASE64, seed='i')}",
    ),
    ("github-token", "ci.py", f'token = "{P["ghp"]}{rand(36)}"'),
    ("github-token", "ci.py", f'token = "{P["gho"]}{rand(36, seed="o")}"'),
    ("github-token", "ci.py", f'token = "{P["ghu"]}{rand(36, seed="u")}"'),
    ("github-token", "ci.py", f'token = "{P["ghs"]}{rand(36, seed="s")}"'),
    ("github-token", "ci.py", f'token = "{P["ghr"]}{rand(36, seed="r")}"'),
    ("github-fine-grained-pat", "ci.sh", f"export GH_PAT={P['pat']}{rand(22)}_{rand(59)}"),
    ("gitlab-token", "ci.yml", f"GITLAB_TOKEN: {P['glpat']}{rand(20, URLSAFE)}"),
    ("gitlab-token", "ci.yml", f"RUNNER: {P['glrt']}{rand(20, URLSAFE, seed='rt')}"),
    ("gitlab-token", "ci.yml", f"TRIGGER: {P['glptt']}{rand(40, HEX)}"),
    ("slack-token", "bot.py", f'S = "{P["xoxb"]}{rand(11, DIGITS)}-{rand(13, DIGITS)}-{rand(24)}"'),
    (
        "slack-token",
        "bot.py",
        f'S = "{P["xoxp"]}{rand(11, DIGITS)}-{rand(12, DIGITS)}-{rand(32, HEX)}"',
    ),
    (
        "slack-token",
        "bot.py",
        f'A = "{P["xapp"]}{rand(10, UPPER_DIGITS)}-{rand(13, DIGITS)}-{rand(64, HEX)}"',
    ),
    (
        "slack-webhook",
        "notify.py",
        f'URL = "https://{P["hook"]}{rand(10, UPPER_DIGITS)}/B{rand(10, UPPER_DIGITS)}/'
        + rand(24)
        + '"',
    ),
    ("stripe-live-key", "pay.py", f'stripe.api_key = "{P["sk_live"]}{rand(24)}"'),
    ("stripe-live-key", "pay.py", f'KEY = "{P["rk_live"]}{rand(99, seed="rk")}"'),
    ("google-api-key", "maps.js", f'const key = "{P["aiza"]}{rand(35, URLSAFE)}";'),
    ("azure-storage-key", "app.config", f'c = "AccountName=a;{P["acct"]}{rand(86, BASE64)}==;"'),
    (
        "azure-storage-key",
        "bus.py",
        f'c = "SharedAccessKeyName=root;{P["sas"]}{rand(43, BASE64)}="',
    ),
    ("azure-storage-key", "infra.tf", f'azure_storage_key = "{rand(86, BASE64, seed="tf")}=="'),
    (
        "azure-ad-client-secret",
        "auth.py",
        f'client_credential = "{rand(3)}8Q~{rand(34, ALNUM + "_~.-")}"',
    ),
    ("npm-token", ".npmrc", f"//registry.npmjs.org/:_authToken={P['npm']}{rand(36)}"),
    ("pypi-token", ".pypirc", f"password = {P['pypi']}{rand(150, URLSAFE)}"),
    (
        "anthropic-api-key",
        "llm.py",
        f'client = Anthropic(api_key="{P["ant"]}{rand(93, URLSAFE)}AA")',
    ),
    ("openai-api-key", "llm.py", f'OPENAI_API_KEY = "{P["proj"]}{rand(156, URLSAFE)}"'),
    ("openai-api-key", "llm.py", f'openai.api_key = "sk-{rand(20)}{P["oai"]}{rand(20, seed="2")}"'),
    (
        "sendgrid-api-key",
        "mail.py",
        f'SENDGRID = "{P["sg"]}{rand(22, URLSAFE)}.{rand(43, URLSAFE)}"',
    ),
    ("huggingface-token", "hub.py", f'HF_TOKEN = "{P["hf"]}{rand(34, string.ascii_letters)}"'),
    ("shopify-token", "shop.py", f'TOKEN = "{P["shpat"]}{rand(32, HEX)}"'),
    ("digitalocean-token", "do.sh", f"DO_TOKEN={P['dop']}{rand(64, HEX)}"),
    ("vault-token", "vault.sh", f"VAULT_TOKEN={P['hvs']}{rand(95, URLSAFE)}"),
    ("databricks-token", "dbx.py", f'TOKEN = "{P["dapi"]}{rand(32, HEX)}"'),
    ("age-secret-key", "keys.txt", f"{P['age']}{rand(58, BECH32)}"),
    (
        "discord-webhook",
        "hook.py",
        f'URL = "https://{P["discord"]}{rand(18, DIGITS)}/{rand(68, URLSAFE)}"',
    ),
    ("jwt", "client.py", f'session = "{jwt()}"'),
    ("basic-auth-url", "db.py", f'DATABASE_URL = "postgres://app:{rand(16)}@db.internal:5432/app"'),
    (
        "basic-auth-url",
        "Dockerfile",
        f"RUN pip install -i https://ci:{rand(20)}@pypi.corp.net/simple x",
    ),
    (
        "bearer-token",
        "api.py",
        f'headers = {{"Authorization": "Bearer {rand(40, URLSAFE + ".")}"}}',
    ),
    ("generic-secret", "settings.py", f'SECRET_KEY = "{rand(50, ALNUM + "!@#^&*-_=+")}"'),
    ("generic-secret", "db.py", f"connect(host='db', password='{rand(16)}')"),
    ("generic-secret", "config.json", f'  "api_key": "{rand(32)}",'),
    ("generic-secret", "config.ts", f"const clientSecret = `{rand(24)}`;"),
    ("generic-secret-unquoted", ".env", f"DB_PASSWORD={rand(16)}"),
    ("generic-secret-unquoted", "app.yaml", f"  api_key: {rand(32, seed='yaml')}  # prod"),
    ("generic-secret-unquoted", "deploy.sh", f"export STRIPE_TOKEN={rand(28, seed='sh')}"),
]

PRIVATE_KEY_KINDS = ["RSA ", "EC ", "DSA ", "OPENSSH ", "ENCRYPTED ", ""]


def pem(kind: str, *, lines: int = 3) -> list[str]:
    body = [rand(64, BASE64, seed=f"{kind}{i}") for i in range(lines)]
    return [f"-----BEGIN {kind}PRIVATE" + " KEY-----", *body, f"-----END {kind}PRIVATE KEY-----"]


def test_name_and_wanted() -> None:
    assert DETECTOR.name == "secrets"
    assert DETECTOR.wanted(ChangedFile("a.py", FileStatus.MODIFIED, patch="@@")) == frozenset()
    no_patch = ChangedFile("blob.bin", FileStatus.ADDED, additions=1)
    assert DETECTOR.wanted(no_patch) == frozenset({("head", "blob.bin")})
    assert DETECTOR.wanted(ChangedFile("gone.py", FileStatus.REMOVED)) == frozenset()
    moved = ChangedFile("new.py", FileStatus.RENAMED, previous_path="old.py")
    assert DETECTOR.wanted(moved) == frozenset()


@pytest.mark.parametrize(("rule", "path", "line"), TRUE_CASES)
def test_each_rule_finds_its_format(rule: str, path: str, line: str) -> None:
    findings = scan(path, "x = 1", line)
    assert [(f.rule, f.line, f.deny, f.detector) for f in findings] == [(rule, 2, True, "secrets")]


def test_every_rule_has_a_true_case() -> None:
    tested = {rule for rule, _, _ in TRUE_CASES} | {"private-key"}
    assert tested == {rule.id for rule in RULES}


@pytest.mark.parametrize(("rule", "path", "line"), TRUE_CASES)
def test_every_match_contains_a_keyword_of_its_rule(rule: str, path: str, line: str) -> None:
    # The keyword pre-filter may only skip rules that cannot match.
    keywords = next(r.keywords for r in RULES if r.id == rule)
    assert any(keyword in line.lower() for keyword in keywords)


@pytest.mark.parametrize("kind", PRIVATE_KEY_KINDS)
def test_private_key_blocks_are_reported_at_their_begin_line(kind: str) -> None:
    assert rules("deploy/key.pem", "# key", *pem(kind)) == [("private-key", 2)]


def test_pgp_private_key_block_with_armor_headers() -> None:
    block = [
        "-----BEGIN PGP PRIVATE" + " KEY BLOCK-----",
        "Version: GnuPG v2",
        "Comment: deploy key",
        "",
        rand(64, BASE64, seed="pgp"),
        "=" + rand(4, BASE64),
        "-----END PGP PRIVATE KEY BLOCK-----",
    ]
    assert rules("key.asc", *block) == [("private-key", 1)]


def test_private_key_pasted_into_source_with_escapes() -> None:
    body = rand(64, BASE64, seed="inline")
    line = (
        'KEY = "-----BEGIN RSA PRIVATE'
        + " KEY-----\\n"
        + body
        + '\\n-----END RSA PRIVATE KEY-----"'
    )
    assert rules("app.py", line) == [("private-key", 1)]
    concatenated = ['KEY = ("-----BEGIN PRIVATE' + ' KEY-----\\n"', f'    "{body}\\n"']
    assert rules("app.py", *concatenated) == [("private-key", 1)]


@pytest.mark.parametrize(
    ("path", "line"),
    [
        # Wrong lengths, alphabets or boundaries for each format.
        ("a.py", 'x = "gh' + "p_" + rand(35) + '"'),
        ("a.py", 'x = "gh' + "x_" + rand(36) + '"'),
        ("a.py", "x = 'AK" + "IA" + rand(15, UPPER_DIGITS) + "'"),
        ("a.py", "x = 'AK" + "IA" + rand(16, "abcdefghijklmnop") + "'"),
        ("a.py", 'x = "sk' + "_test_" + rand(24) + '"'),
        ("a.py", 'x = "AI' + "za" + rand(30, URLSAFE) + '"'),
        ("a.py", 'x = "np' + "m_" + rand(30) + '"'),
        ("a.py", 'x = "gl' + "pat-" + rand(10) + '"'),
        ("a.py", 'x = "xo' + "xb-" + rand(8) + '"'),
        ("a.py", 'x = "sk' + "-" + rand(30) + '"'),
        ("a.py", 'x = "da' + "pi" + rand(32, "ghijklmnop") + '"'),
        ("a.py", "x = '-----BEGIN RSA PRIVATE" + " KEY-----'"),
        ("a.py", "    if line.startswith('-----BEGIN OPENSSH PRIVATE" + " KEY-----'):"),
        # An unsigned JWT, and eyJ strings whose header is not JSON.
        ("a.py", 'x = "' + jwt(alg="none") + '"'),
        ("a.py", 'x = "eyJ' + rand(20) + ".eyJ" + rand(20) + "." + rand(20) + '"'),
        # Generic values that are not secrets.
        ("a.py", 'password = "' + "a" * 16 + '"'),
        ("a.py", 'password = "correct-horse-battery"'),
        ("a.py", 'api_key = "API_KEY_FROM_VAULT_V2"'),
        ("a.py", 'token = "2024-01-31T12:00:00+00:00"'),
        ("a.py", 'key_id = "' + rand(32, HEX) + '"'),
        ("a.py", 'secret = "' + rand(16, HEX) + '"'),
        ("a.py", 'client_token = "123e4567-e89b-12d3-a456-426614174000"'),
        ("a.py", '"NextToken": "' + rand(40, BASE64) + '",'),
        ("a.py", 'password_hash = "' + rand(40, BASE64) + '"'),
        ("a.py", 'token_url = "https://' + rand(20) + '.example/token"'),
        ("a.py", 'output_token = "Jobs[-1].JobId"'),
        ("a.py", "if token == '" + rand(16) + "':"),
        # Unquoted values count only in configuration files.
        ("app.py", "DB_PASSWORD=" + rand(16)),
        ("README.md", "api_key: " + rand(32)),
        # URL credentials that are stand-ins.
        ("a.py", 'url = "https://user:pass@' + "internal.corp/x" + '"'),
        ("a.py", 'url = "https://' + rand(8) + ":" + rand(12) + '@example.com/"'),
        ("a.py", 'url = "https://app:app@db/x"'),
        ("a.py", 'url = "http://host:8080@other/"'),
        ("a.py", 'url = "https://deploy:${DEPLOY_PASSWORD}@pypi.corp.net/simple"'),
        ("a.py", 'url = "https://user:%(password)s@host/"'),
    ],
)
def test_near_misses_are_not_flagged(path: str, line: str) -> None:
    assert scan(path, line) == []


def corpus(name: str) -> list[str]:
    text = (FIXTURES / name).read_text(encoding="utf-8")
    return [line for line in text.splitlines() if line.strip() and not line.startswith("#")]


@pytest.mark.parametrize("path", ["settings.py", ".env", "values.yaml", "main.go"])
def test_placeholders_are_not_flagged(path: str) -> None:
    flagged = [(line, f.rule) for line in corpus("placeholders.txt") for f in scan(path, line)]
    assert flagged == []


@pytest.mark.parametrize("path", ["app.py", ".env"])
def test_ordinary_code_around_credentials_is_clean(path: str) -> None:
    assert scan(path, *corpus("clean_code.txt")) == []


@pytest.mark.parametrize(
    "value",
    [
        "AKIAIOSFODNN7EXAMPLE",
        "${API_KEY}",
        "{{ api_key }}",
        "${{ secrets.API_KEY }}",
        "<your-key>",
        "xxxxxxxxxxxx",
        "changeme",
        "dummy-value",
        "%(password)s",
        "YOUR_TOKEN",
    ],
)
def test_placeholder_words(value: str) -> None:
    assert is_placeholder(value)


def test_weak_placeholder_words_only_for_generic_values() -> None:
    assert not is_placeholder("test1234")
    assert is_placeholder("test1234", strict=True)
    # A random body does not read as a placeholder.
    assert not is_placeholder("gh" + "p_" + rand(36), strict=False)


def test_short_placeholder_words_count_only_as_people_write_them() -> None:
    # Random text holds "xXXx" or "yOuR" now and then; placeholders do not.
    assert not is_placeholder("A1b2" + "xXXx" + "C3d4")
    assert not is_placeholder("A1b2" + "yOuR" + "C3d4")
    assert is_placeholder("sk_live_" + "XXXX" + "1234")
    assert is_placeholder("Your-Token-1")
    assert is_placeholder("TEST-value-9", strict=True)


@pytest.mark.parametrize(
    ("value", "flagged"),
    [("#2HuF&X3kr&r=1", True), ("#a1b2c3", False), ("#ansiblue", False)],
)
def test_values_starting_with_a_hash(value: str, flagged: bool) -> None:
    assert bool(scan("a.py", f'password = "{value}"')) is flagged


def test_shannon_entropy() -> None:
    assert shannon_entropy("") == 0.0
    assert shannon_entropy("aaaa") == 0.0
    assert shannon_entropy("abcd") == 2.0
    assert shannon_entropy(rand(64)) > 5.0


def test_vendor_token_assigned_to_a_credential_name_is_reported_once() -> None:
    token = "gh" + "p_" + rand(36)
    assert rules("a.py", f'GITHUB_TOKEN = "{token}"') == [("github-token", 1)]
    assert rules("a.env", f"GITHUB_TOKEN={token}") == [("github-token", 1)]


def test_token_inside_a_url_is_found_by_its_own_rule() -> None:
    token = "gh" + "p_" + rand(36)
    line = f"git clone https://x-access-token:{token}@github.com/o/r.git"
    assert rules("ci.sh", line) == [("github-token", 1)]


def test_adjacent_tokens_sharing_one_delimiter_are_both_found() -> None:
    # The first token's pattern consumes the space that the second one needs
    # before it; the scan resumes at the end of the secret, not of the match.
    google = "AI" + "za" + rand(35, URLSAFE, seed="g")
    openai = "sk" + "-proj-" + rand(60, URLSAFE, seed="o")
    assert rules("a.py", f"{google} {openai}") == [
        ("google-api-key", 1),
        ("openai-api-key", 1),
    ]


def test_several_secrets_on_several_lines() -> None:
    lines = [
        "import os",
        'GH = "gh' + "p_" + rand(36, seed="1") + '"',
        "",
        'NPM = "np' + "m_" + rand(36, seed="2") + '"',
        'password = "' + rand(20, seed="3") + '"',
    ]
    assert rules("a.py", *lines) == [
        ("github-token", 2),
        ("npm-token", 4),
        ("generic-secret", 5),
    ]


def test_line_numbers_follow_the_head_file_not_the_patch() -> None:
    token = "gh" + "p_" + rand(36, seed="ln")
    patch = "\n".join(
        [
            "@@ -10,2 +10,4 @@ def f():",
            " context = 'é' * 3",
            "+added = 'ü∂ƒ' + 'more non-ascii'",
            " unchanged = 1",
            f"+TOKEN = '{token}'",
            "@@ -40,1 +41,2 @@",
            " x = 1",
            f"+again = '{token}'",
        ]
    )
    lines = added_lines(patch)
    assert [line.number for line in lines] == [11, 13, 42]
    assert [(f.rule, f.line) for f in scan_lines(path="a.py", lines=lines)] == [
        ("github-token", 13),
        ("github-token", 42),
    ]


def test_whole_text_line_numbers_with_crlf() -> None:
    token = "np" + "m_" + rand(36, seed="crlf")
    text = "a = 1\r\nb = 'é'\r\n\r\nNPM = " + token + "\r\n"
    assert [(f.rule, f.line) for f in scan_text(path="a.sh", text=text)] == [("npm-token", 4)]


def test_redacted_form() -> None:
    token = "gh" + "p_" + rand(36, seed="red")
    shown = redact(token)
    assert shown.startswith(token[:4] + "…sha256:")
    assert len(shown.split("sha256:")[1]) == 12
    (finding,) = scan("a.py", f"t = '{token}'")
    assert shown in finding.message
    assert token not in finding.message
    assert token[4:] not in finding.message


def no_leak(token: str, messages: list[str]) -> None:
    windows = {token[i : i + 8] for i in range(len(token) - 7)}
    for message in messages:
        assert token not in message
        assert not any(window in message for window in windows), message


TOKEN_FORMATS: dict[str, Callable[[str], str]] = {
    "github": lambda body: "gh" + "p_" + body[:36].ljust(36, "Q"),
    "npm": lambda body: "np" + "m_" + body[:36].ljust(36, "Q"),
    "openai": lambda body: "sk" + "-proj-" + body,
    "aws": lambda body: (
        "AK"
        + "IA"
        + "".join(c for c in body.upper() if c in "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567")[:16].ljust(
            16, "Q"
        )
    ),
}


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    kind=st.sampled_from(sorted(TOKEN_FORMATS)),
    body=st.text(alphabet=ALNUM, min_size=36, max_size=80),
    template=st.sampled_from(['TOKEN = "{}"', "token: {}", "curl -H 'Authorization: Bearer {}'"]),
)
def test_no_message_leaks_a_token(kind: str, body: str, template: str) -> None:
    token = TOKEN_FORMATS[kind](body)
    findings = scan("a.yaml", template.format(token))
    no_leak(token, [f.message for f in findings])
    # Not vacuous: every token that is random enough is found.
    if not is_placeholder(token) and shannon_entropy(token) >= 3.0:
        assert findings


GENERIC_ALPHABET = string.ascii_letters + string.digits + "!#%&*+,-./:;=?@^_|~"


@settings(max_examples=150, deadline=None)
@given(
    value=st.text(alphabet=GENERIC_ALPHABET, min_size=8, max_size=64),
    template=st.sampled_from(['password = "{}"', "DB_PASSWORD={}", "postgres://app:{}@db/x"]),
)
def test_no_message_leaks_a_generic_value(value: str, template: str) -> None:
    findings = scan(".env", template.format(value))
    no_leak(value, [f.message for f in findings])


def test_unscannable_when_head_text_is_missing_or_too_large() -> None:
    file = ChangedFile("big.json", FileStatus.ADDED, additions=10)
    missing = DETECTOR.scan(ScanInput(file=file, added=(), contents=Contents()))
    key = ("head", "big.json")
    too_large = DETECTOR.scan(
        ScanInput(file=file, added=(), contents=Contents({key: None}, frozenset({key})))
    )
    absent = DETECTOR.scan(ScanInput(file=file, added=(), contents=Contents({key: None})))
    for findings in (missing, too_large, absent):
        (finding,) = findings
        assert (finding.rule, finding.line, finding.deny) == (UNSCANNABLE, None, True)
        assert finding.message.startswith("content not inspected: fail closed")


def test_head_text_is_scanned_when_there_is_no_patch() -> None:
    file = ChangedFile("secrets.bin", FileStatus.MODIFIED, additions=3)
    token = "gh" + "p_" + rand(36, seed="head")
    text = f"line one\nline two\nTOKEN={token}\n"
    contents = Contents({("head", "secrets.bin"): text})
    findings = DETECTOR.scan(ScanInput(file=file, added=(), contents=contents))
    assert [(f.rule, f.line) for f in findings] == [("github-token", 3)]
    clean = Contents({("head", "secrets.bin"): "nothing here\n"})
    assert DETECTOR.scan(ScanInput(file=file, added=(), contents=clean)) == ()


def test_removed_and_pure_renamed_files_are_not_scanned() -> None:
    for file in (
        ChangedFile("gone.py", FileStatus.REMOVED),
        ChangedFile("new.py", FileStatus.RENAMED, previous_path="old.py"),
    ):
        assert DETECTOR.scan(ScanInput(file=file, added=(), contents=Contents())) == ()


def test_patch_files_are_judged_by_added_lines_only() -> None:
    token = "gh" + "p_" + rand(36, seed="patch")
    file = ChangedFile("a.py", FileStatus.MODIFIED, patch="@@")
    contents = Contents({("head", "a.py"): f"T = '{token}'\n"})
    assert DETECTOR.scan(ScanInput(file=file, added=(), contents=contents)) == ()


def test_findings_per_file_are_capped() -> None:
    lines = ['T = "gh' + "p_" + rand(36, seed=str(i)) + '"' for i in range(MAX_FINDINGS + 5)]
    findings = scan("a.py", *lines)
    assert len(findings) == MAX_FINDINGS
    assert [f.line for f in findings] == list(range(1, MAX_FINDINGS + 1))


def test_too_many_candidates_fail_closed() -> None:
    lines = [f'password = "changeme{i:04d}"' for i in range(MAX_CANDIDATES + 1)]
    findings = scan("a.py", *lines)
    assert [(f.rule, f.deny) for f in findings] == [(UNSCANNABLE, True)]
    assert "candidate" in findings[0].message


def test_a_match_too_long_to_judge_fails_closed_at_its_line() -> None:
    line = 'auth_token = "' + rand(3000, BASE64, seed="long") + '"'
    assert rules("a.py", "x = 1", line) == [(UNSCANNABLE, 2)]


def test_a_long_token_is_judged_by_its_head() -> None:
    token = "py" + "pi-AgEIcHlwaS5vcmc" + rand(2000, URLSAFE, seed="pypi")
    (finding,) = scan(".pypirc", f"password = {token}")
    assert (finding.rule, finding.line) == ("pypi-token", 1)
    assert token[:4] in finding.message
    assert token[4:12] not in finding.message


def test_a_long_unquoted_value_is_judged_by_its_head_and_its_name() -> None:
    value = rand(3000, seed="long-env")
    assert rules(".env", "A=1", f"API_KEY={value}") == [("generic-secret-unquoted", 2)]
    assert rules(".env", "A=1", f"NEXT_TOKEN={value}") == []


def test_keyword_prefilter_falls_back_when_the_set_gives_up(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    class GaveUp:
        def Match(self, text: bytes) -> None:
            return None

    monkeypatch.setattr(secrets, "_KEYWORD_SET", GaveUp())
    token = "gh" + "p_" + rand(36, seed="fallback")
    assert rules("a.py", f"T = '{token}'") == [("github-token", 1)]
    assert rules("a.py", "nothing to see") == []


MB = 1_000_000


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("a" * MB, []),
        ("=" + " " * MB, []),
        ('password = "' + "a1" * (MB // 2), []),
        ("password=" + " " * MB + "x", []),
        ("AKIA" * (MB // 4), []),
        ("gh" + "p_" + "a" * MB, []),
        ("-----BEGIN PRIVATE" + " KEY-----" + "\\n" * (MB // 2), []),
        ("http://" + "a:" * (MB // 2), []),
        ("eyJ" + "a" * MB + ".", []),
        ("token=" * (MB // 6), []),
        ("x" * MB + ' T = "gh' + "p_" + rand(36, seed="tail") + '"', [("github-token", 1)]),
        ('password="abcdefghij" ' * (MB // 22), [(UNSCANNABLE, None)]),
    ],
    ids=[
        "a-run",
        "equals-spaces",
        "unclosed-quote",
        "keyword-spaces",
        "akia-repeated",
        "ghp-run",
        "begin-escapes",
        "url-colons",
        "eyj-run",
        "token-repeated",
        "token-at-end",
        "dense-candidates",
    ],
)
def test_one_megabyte_adversarial_line(line: str, expected: list[tuple[str, int | None]]) -> None:
    # Timing is measured in benchmarks/bench_secrets.py; this checks the answer.
    assert rules("a.py", line) == expected
