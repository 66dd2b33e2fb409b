"""The rule table of the secrets detector: which token formats it knows.

Every pattern is RE2 syntax (https://github.com/google/re2/wiki/Syntax) and is
only ever compiled with ``re2``, never with the stdlib ``re``: the text it runs
on is written by whoever opened the pull request, and RE2 matches in time linear
in that text whatever the pattern. RE2 has no backreferences and no lookaround;
the patterns make do without them (one alternative per quote character, consumed
delimiter classes).

Conventions every rule keeps (``gate.detectors.secrets`` relies on them):

- the secret itself is the named group whose name starts with ``secret``; a rule
  may have several such groups in alternatives (one per quoting style), exactly
  one of them takes part in a match. Other named groups (``user``, ``host``,
  ``name``) are context for the checks; every other group is non-capturing.
- a pattern never matches across a line break, except ``private-key``, whose
  match starts on the ``BEGIN`` line (that is the line reported) and takes the
  first line of key material after it.
- ``keywords`` are lowercase ASCII substrings; a rule runs only on text whose
  lowercased form contains one of them. They are a pre-filter, not the rule: a
  keyword must occur in every match of the pattern, or the rule could miss.

Token formats follow each vendor's documentation where it publishes one:

- GitHub: https://github.blog/2021-04-05-behind-githubs-new-authentication-token-formats/
- GitLab: https://docs.gitlab.com/ee/security/tokens/#token-prefixes
- Slack: https://api.slack.com/authentication/token-types
- Stripe: https://docs.stripe.com/keys
- AWS: https://docs.aws.amazon.com/IAM/latest/UserGuide/security-creds.html
- Google: https://cloud.google.com/docs/authentication/api-keys
- Azure: https://learn.microsoft.com/azure/storage/common/storage-configure-connection-string
- npm: https://github.blog/2021-09-23-announcing-npms-new-access-token-format/
- PyPI: https://pypi.org/help/#apitoken
- JWT: RFC 7519 and RFC 7515 (``alg``); private keys: RFC 7468 (PEM), RFC 4880
  (OpenPGP armor)

Several formats and allowlist ideas were cross-checked against the default rule
set of gitleaks (https://github.com/gitleaks/gitleaks, ``config/gitleaks.toml``,
MIT licensed; see ``LICENSE-gitleaks`` next to this file). The patterns here were
rewritten for RE2 and for this module's conventions rather than copied.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class Check(enum.Enum):
    """How a candidate is judged once its pattern matched (see ``secrets._plausible``)."""

    #: A vendor-prefixed token: reject only obvious placeholders and low entropy.
    VENDOR = "vendor"
    #: A keyword assignment (``password = "..."``): entropy, the value's shape, the
    #: identifier's name and a longer placeholder word list, since the value has no
    #: format to vouch for it.
    GENERIC = "generic"
    #: ``scheme://user:password@host``: reject placeholder and templated passwords.
    BASIC_AUTH = "basic-auth"
    #: A JSON Web Token: its header must decode to a JSON object whose ``alg`` is
    #: not "none" (an unsigned token grants nothing).
    JWT = "jwt"


@dataclass(frozen=True, slots=True)
class Rule:
    id: str
    #: Plain words for the finding's message; never includes the secret.
    title: str
    pattern: str
    keywords: tuple[str, ...]
    check: Check = Check.VENDOR
    #: Minimum Shannon entropy, bits per character, of the secret.
    min_entropy: float = 0.0
    #: Only for configuration-like files, where values are written without quotes.
    config_only: bool = False
    #: The match may span lines; the line it starts on is the one reported. Such a
    #: rule runs alone (``combinable=False``), so the union stays within lines.
    multiline: bool = False
    #: The match starts at the token's own fixed prefix, so the rule can share one
    #: RE2 pass with the other such rules. A rule whose match starts at a keyword
    #: (``password = ...``) must not: in a union, leftmost-first alternation would
    #: let its match swallow a vendor token written after the keyword.
    combinable: bool = True


# What may precede and follow a token whose characters are ``[A-Za-z0-9_-]``:
# anything that cannot continue it. Written as consumed classes (RE2 has no
# lookaround); the scanner resumes at the end of each secret, so a delimiter
# consumed after one token is still there for the next.
#
# ``_START`` is also what keeps the DFA small: a counted run such as
# ``[A-Za-z0-9_-]{20,}`` can then only begin after a character outside the run,
# so no two attempts of one rule overlap. With ``\b`` instead, ``-glpat-`` could
# start a new attempt inside a run, and crafted input could make RE2 track every
# combination of run lengths, overflow its DFA cache and fall back to the much
# slower NFA. The same holds for upper bounds (``{20,300}``), so runs have none.
_START = r"(?:^|[^A-Za-z0-9_-])"
_END = r"(?:[^A-Za-z0-9_-]|\z)"

# ``key = value`` separators of the languages and formats code is written in:
# Python/JS/shell ``=``, YAML/JSON ``:``, Go ``:=``, Ruby/PHP ``=>``, Make ``?=``.
_ASSIGN = r"""["'\]]?[ \t]*(?::=|=>|\?=|=|:)[ \t]*"""

# Words that name a credential in an assignment. ``key`` alone is too common
# (dict keys, sort keys) to be one; it counts only in compounds.
_CREDENTIAL_WORDS = (
    r"(?:passw(?:or)?d|passphrase|pwd|secret|token|api[_.-]?key|apikey|access[_.-]?key"
    r"|auth[_.-]?key|private[_.-]?key|credentials?)"
)
# The identifier that holds the value, from the credential word on, for the
# name checks in ``secrets`` (``next_token`` is a page cursor, ``secret_name``
# a name); the scanner adds the part before the word itself. In the pattern, a
# bounded left part (``[a-z0-9_.-]{0,64}``) would multiply RE2's DFA states by
# 64 and make its first pass over new text several times slower.
_NAME = r"(?P<name>" + _CREDENTIAL_WORDS + r"[a-z0-9_.-]*)"
# Every match of ``_CREDENTIAL_WORDS`` contains one of these.
_CREDENTIAL_KEYWORDS = ("passw", "passphrase", "pwd", "secret", "token", "api", "key", "credential")

RULES: tuple[Rule, ...] = (
    Rule(
        id="private-key",
        title="Private key",
        # The BEGIN line, then optional RFC 1421/4880 header lines, then key
        # material; the gap between allows quotes, ``\n`` escapes and string
        # concatenation, so a key pasted into source code still matches.
        pattern=(
            r"-----BEGIN[ A-Z0-9_-]*PRIVATE KEY(?: BLOCK)?-----"
            r"(?:[\s\"'`+,;|>(){}\[\]]|\\[rn])*"
            r"(?:[A-Za-z][A-Za-z-]*:[^\r\n\\]*(?:[\s\"'`+,;|>(){}\[\]]|\\[rn])+)*"
            r"(?P<secret>[A-Za-z0-9+/=]{40,})"
        ),
        keywords=("private key",),
        multiline=True,
        combinable=False,
    ),
    Rule(
        id="aws-access-key-id",
        title="AWS access key ID",
        pattern=r"\b(?P<secret>(?:A3T[A-Z0-9]|AKIA|ASIA|ABIA|ACCA)[A-Z2-7]{16})\b",
        keywords=("akia", "asia", "abia", "acca", "a3t"),
        min_entropy=3.0,
    ),
    Rule(
        id="aws-secret-access-key",
        title="AWS secret access key",
        pattern=(
            r"(?i)(?:aws[a-z0-9_.-]*(?:secret|sk)|secret_?access_?key)[a-z0-9_.-]*"
            + _ASSIGN
            + r"""["'`]?(?P<secret>[A-Za-z0-9/+]{40})(?:[^A-Za-z0-9/+=]|\z)"""
        ),
        keywords=("aws", "secret"),
        min_entropy=4.0,
        combinable=False,
    ),
    Rule(
        id="github-token",
        title="GitHub token",
        # ghp_ personal, gho_ OAuth, ghu_ user-to-server, ghs_ server-to-server,
        # ghr_ refresh; GitHub reserves lengths up to 255.
        pattern=r"\b(?P<secret>gh[pousr]_[A-Za-z0-9]{36,})\b",
        keywords=("ghp_", "gho_", "ghu_", "ghs_", "ghr_"),
        min_entropy=3.0,
    ),
    Rule(
        id="github-fine-grained-pat",
        title="GitHub fine-grained personal access token",
        pattern=r"\b(?P<secret>github_pat_[A-Za-z0-9_]{70,})\b",
        keywords=("github_pat_",),
        min_entropy=3.0,
    ),
    Rule(
        id="gitlab-token",
        title="GitLab token",
        pattern=(
            _START + r"(?P<secret>gl(?:pat|dt|ft|rt|cbt|soat|imt|agent|oas|ffct)-[A-Za-z0-9_-]{20,}"
            r"|glptt-[0-9a-f]{40}|GR1348941[A-Za-z0-9_-]{20,})" + _END
        ),
        keywords=(
            "glpat-",
            "gldt-",
            "glft-",
            "glrt-",
            "glcbt-",
            "glsoat-",
            "glimt-",
            "glagent-",
            "gloas-",
            "glffct-",
            "glptt-",
            "gr1348941",
        ),
        min_entropy=3.0,
    ),
    Rule(
        id="slack-token",
        title="Slack token",
        pattern=(
            _START + r"(?P<secret>xox[abeoprs]-[0-9A-Za-z][0-9A-Za-z-]{19,}"
            r"|xapp-[0-9]-[A-Z0-9]{6,}-[0-9]{6,}-[a-z0-9]{16,})"
        ),
        keywords=("xoxa-", "xoxb-", "xoxe", "xoxo-", "xoxp-", "xoxr-", "xoxs-", "xapp-"),
        min_entropy=3.0,
    ),
    Rule(
        id="slack-webhook",
        title="Slack webhook URL",
        pattern=(
            r"hooks\.slack\.com/(?:services|workflows|triggers)/"
            r"(?P<secret>[A-Za-z0-9+/]{40,})"
        ),
        keywords=("hooks.slack.com",),
        min_entropy=3.0,
    ),
    Rule(
        id="stripe-live-key",
        title="Stripe live secret or restricted key",
        # Test-mode keys (sk_test_) cannot move money and are left alone.
        pattern=r"\b(?P<secret>(?:sk|rk)_(?:live|prod)_[A-Za-z0-9]{16,})\b",
        keywords=("sk_live_", "rk_live_", "sk_prod_", "rk_prod_"),
        min_entropy=3.0,
    ),
    Rule(
        id="google-api-key",
        title="Google API key",
        pattern=_START + r"(?P<secret>AIza[0-9A-Za-z_-]{35})" + _END,
        keywords=("aiza",),
        min_entropy=3.5,
    ),
    Rule(
        id="azure-storage-key",
        title="Azure storage account key or connection string",
        pattern=(
            r"(?i:accountkey)=(?P<secret>[A-Za-z0-9+/]{86}==)"
            r"|(?i:sharedaccesskey)=(?P<secret_sas>[A-Za-z0-9+/]{43}=)"
            r"|(?i:azure[a-z0-9_.-]*(?:key|secret)[a-z0-9_.-]*)"
            + _ASSIGN
            + r"""["'`]?(?P<secret_kw>[A-Za-z0-9+/]{86}==)"""
        ),
        keywords=("accountkey=", "sharedaccesskey=", "azure"),
        min_entropy=4.0,
        combinable=False,
    ),
    Rule(
        id="azure-ad-client-secret",
        title="Azure AD client secret",
        pattern=(
            r"""(?m)(?:^|[\\'"` \t>=:(,)])"""
            r"(?P<secret>[A-Za-z0-9_~.]{3}[0-9]Q~[A-Za-z0-9_~.-]{31,34})"
            r"""(?:$|[\\'"` \t\r<),])"""
        ),
        keywords=("q~",),
        min_entropy=3.0,
    ),
    Rule(
        id="npm-token",
        title="npm access token",
        pattern=r"\b(?P<secret>npm_[A-Za-z0-9]{36})\b",
        keywords=("npm_",),
        min_entropy=3.0,
    ),
    Rule(
        id="pypi-token",
        title="PyPI upload token",
        # The fixed part is base64 of the macaroon's location, pypi.org or test.pypi.org.
        pattern=(
            _START
            + r"(?P<secret>pypi-(?:AgEIcHlwaS5vcmc|AgENdGVzdC5weXBpLm9yZw)[A-Za-z0-9_-]{50,})"
        ),
        keywords=("pypi-ageichlwas5vcmc", "pypi-agendgvzdc5wexbplm9yzw"),
        min_entropy=3.0,
    ),
    Rule(
        id="anthropic-api-key",
        title="Anthropic API key",
        pattern=_START + r"(?P<secret>sk-ant-(?:api|admin|oat|sid)[0-9]{2}-[A-Za-z0-9_-]{32,})",
        keywords=("sk-ant-",),
        min_entropy=3.0,
    ),
    Rule(
        id="openai-api-key",
        title="OpenAI API key",
        # "T3BlbkFJ" is base64 of "OpenAI", embedded in every key since 2023.
        pattern=(
            _START + r"(?P<secret>sk-(?:proj|svcacct|admin)-[A-Za-z0-9_-]{20,}"
            r"|sk-[A-Za-z0-9]{20}T3BlbkFJ[A-Za-z0-9]{20}|sk-[A-Za-z0-9]{48})" + _END
        ),
        keywords=("sk-",),
        min_entropy=3.0,
    ),
    Rule(
        id="sendgrid-api-key",
        title="SendGrid API key",
        pattern=r"\b(?P<secret>SG\.[A-Za-z0-9_-]{22}\.[A-Za-z0-9_-]{43})" + _END,
        keywords=("sg.",),
        min_entropy=3.0,
    ),
    Rule(
        id="huggingface-token",
        title="Hugging Face access token",
        pattern=r"\b(?P<secret>hf_[A-Za-z]{34})\b",
        keywords=("hf_",),
        min_entropy=3.0,
    ),
    Rule(
        id="shopify-token",
        title="Shopify access token or shared secret",
        pattern=r"\b(?P<secret>shp(?:at|ca|pa|ss)_[a-fA-F0-9]{32})\b",
        keywords=("shpat_", "shpca_", "shppa_", "shpss_"),
        min_entropy=3.0,
    ),
    Rule(
        id="digitalocean-token",
        title="DigitalOcean token",
        pattern=r"\b(?P<secret>do[opr]_v1_[a-f0-9]{64})\b",
        keywords=("doo_v1_", "dop_v1_", "dor_v1_"),
        min_entropy=3.0,
    ),
    Rule(
        id="vault-token",
        title="HashiCorp Vault token",
        pattern=r"\b(?P<secret>hv[sb]\.[A-Za-z0-9_-]{90,})",
        keywords=("hvs.", "hvb."),
        min_entropy=3.5,
    ),
    Rule(
        id="databricks-token",
        title="Databricks API token",
        pattern=r"\b(?P<secret>dapi[a-f0-9]{32}(?:-[0-9])?)\b",
        keywords=("dapi",),
        min_entropy=3.0,
    ),
    Rule(
        id="age-secret-key",
        title="age secret key",
        pattern=r"(?P<secret>AGE-SECRET-KEY-1[QPZRY9X8GF2TVDW0S3JN54KHCE6MUA7L]{58})",
        keywords=("age-secret-key-1",),
    ),
    Rule(
        id="discord-webhook",
        title="Discord webhook URL",
        pattern=(r"discord(?:app)?\.com/api/webhooks/[0-9]+/(?P<secret>[A-Za-z0-9_-]{60,})"),
        keywords=("discord",),
        min_entropy=3.0,
    ),
    Rule(
        id="jwt",
        title="JSON Web Token",
        # Header and payload are base64url JSON objects, so both start "eyJ".
        # The signature is not part of the match: a token is judged by its
        # header (``alg`` "none" is an unsigned token, which grants nothing).
        pattern=_START + r"(?P<secret>eyJ[A-Za-z0-9_-]{10,}\.eyJ[A-Za-z0-9_-]{10,})",
        keywords=("eyj",),
        check=Check.JWT,
    ),
    Rule(
        id="basic-auth-url",
        title="Password in a URL",
        pattern=(
            r"(?i)\b[a-z][a-z0-9+.-]{1,15}://(?P<user>[^\s:@/?#'\"`<>]+)"
            r":(?P<secret>[^\s:@/?#'\"`<>]{3,})@(?P<host>[a-z0-9.\[\]-]+)"
        ),
        keywords=("://",),
        check=Check.BASIC_AUTH,
        combinable=False,
    ),
    Rule(
        id="bearer-token",
        title="Bearer token",
        pattern=(
            r"(?i)\bbearer[ \t]+(?P<secret>[A-Za-z0-9_~+/.-]{20,}=*)(?:[^A-Za-z0-9_~+/.=-]|\z)"
        ),
        keywords=("bearer",),
        check=Check.GENERIC,
        min_entropy=3.5,
        combinable=False,
    ),
    Rule(
        id="generic-secret",
        title="Hard-coded secret assigned to a credential name",
        # A credential word, the rest of its identifier, an assignment, then a
        # quoted value without spaces: one alternative per quote character,
        # since RE2 has no backreference to match the closing quote.
        pattern=(
            r"(?i)" + _NAME + _ASSIGN + r'(?:[a-z]{0,2}"(?P<secret_dq>[^"\s\\]{8,})"'
            r"""|[a-z]{0,2}'(?P<secret_sq>[^'\s\\]{8,})'"""
            r"""|`(?P<secret_bt>[^`\s\\]{8,})`)"""
        ),
        keywords=_CREDENTIAL_KEYWORDS,
        check=Check.GENERIC,
        min_entropy=3.0,
        combinable=False,
    ),
    Rule(
        id="generic-secret-unquoted",
        title="Hard-coded secret assigned to a credential name",
        # .env, INI, YAML and shell files write values bare; the value runs to the
        # end of the line or to a comment.
        pattern=(
            r"(?im)"
            + _NAME
            + _ASSIGN
            + r"""(?P<secret>[^\s"'`#;,{}()\[\]<>$]{8,})[ \t]*(?:[#;].*)?\r?$"""
        ),
        keywords=_CREDENTIAL_KEYWORDS,
        check=Check.GENERIC,
        min_entropy=3.0,
        config_only=True,
        combinable=False,
    ),
)
