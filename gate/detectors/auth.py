"""Auth, crypto and permission code, wherever it lives: by path words and by what it uses.

Real repositories rarely keep such code under ``auth/``: Django has
``contrib/auth/hashers.py``, Rails apps ``app/policies/`` and Devise
initializers, Go services ``internal/jwt.go``. Two rules find it:

- ``path``: a path segment has a word of the list below as a whole word.
  Segments split at punctuation and at camelCase (``JwtAuthFilter.java`` is
  jwt, auth, filter), plurals are folded, so ``tokenizer.py`` or ``author.py``
  are not auth code but ``tokens.py`` and ``password_reset.py`` are.
- ``code``: an added line of source code imports or calls a JWT library,
  password hashing, a cipher or a permission framework
  (``import jwt``, ``bcrypt``, ``Crypto.Cipher``, ``@permission_required``,
  ``before_action :authenticate_user!``...).

Test and documentation files are left to their own tier: their words and
imports describe auth code, they do not change it (see ``gate.filekinds``).
Findings never deny; the built-in policy puts them in tier ``high``.
"""

from __future__ import annotations

import posixpath
from collections.abc import Sequence

import re2

from gate.detectors.base import Finding, ScanInput, head_text_wanted, inspected_lines
from gate.filekinds import is_test_or_doc_path
from gate.model import ChangedFile

#: Content findings listed per file; one is enough to set the tier.
MAX_CODE_FINDINGS = 5

# Whole words of path segments that name auth, crypto or permission code.
WORDS = frozenset(
    {
        *("auth", "authn", "authz", "authentication", "authorization", "authorize"),
        *("authenticate", "authenticator", "oauth", "oauth2", "oidc", "openid", "saml"),
        *("sso", "jwt", "jwk", "jws", "jwe", "session", "password", "passwd", "passphrase"),
        *("hasher", "permission", "policy", "rbac", "abac", "acl", "crypto", "cryptography"),
        *("cipher", "encryption", "encrypt", "decrypt", "token", "credential", "devise"),
        *("pundit", "cancancan", "login", "logout", "signin", "mfa", "totp", "otp"),
        *("webauthn", "passkey", "keystore", "keychain", "keyring", "csrf", "privilege", "kms"),
        *("hmac", "secret"),
    }
)

_SOURCE_EXTENSIONS = frozenset(
    {".py", ".go", ".rb", ".js", ".jsx", ".ts", ".tsx", ".mjs", ".cjs", ".java", ".kt"}
    | {".cs", ".php", ".rs", ".scala", ".ex", ".exs", ".swift", ".erb", ".vue", ".svelte"}
)

# What an added line uses, by kind; case-sensitive, as the languages are.
_USES = {
    "a JWT library": (
        r"\bimport jwt\b|\bfrom jwt\b|\bfrom jose\b|\bjsonwebtoken\b|golang-jwt/jwt"
        r"|dgrijalva/jwt-go|lestrrat-go/jwx|\bio\.jsonwebtoken\b|\bcom\.auth0\.jwt\b"
        r"|require[ (]['\"]jwt['\"]|\bJWT\.(?:encode|decode)\b"
        r"|\bjwt\.(?:encode|decode|sign|verify)\("
        r"|from ['\"]jose['\"]|\bjsonwebtoken::"
    ),
    "password hashing": (
        r"\bbcrypt\b|\bBCrypt\b|\bargon2\b|\bArgon2\b|\bpasslib\b|\bscrypt\b|\bpbkdf2\b"
        r"|\bPBKDF2\b|\bmake_password\(|\bcheck_password\(|\bset_password\(|\bpassword_hash\("
        r"|\bpassword_verify\(|\bhas_secure_password\b|\bPasswordHasher\b"
    ),
    "a cipher or signing primitive": (
        r"\bfrom cryptography\b|\bimport cryptography\b|\bCrypto(?:dome)?\.(?:Cipher|PublicKey)\b"
        r"|\"crypto/(?:aes|cipher|rsa|ecdsa|ed25519|hmac|x509)\"|\bcreate(?:De)?[Cc]ipheriv\("
        r"|\bcreateHmac\(|\bcreateSign\(|\bcrypto\.subtle\b|\bjavax\.crypto\b|\bOpenSSL::Cipher\b"
        r"|\bnacl\b|\blibsodium\b|\bhmac\.new\(|\bhmac\.compare_digest\("
        r"|\bSystem\.Security\.Cryptography\b|\baes_gcm\b"
    ),
    "a permission or login framework": (
        r"@permission_required\b|\bPermissionRequiredMixin\b|\bpermission_classes\b"
        r"|\bhas_perm\(|\bhas_object_permission\(|\bPundit\b|\bload_and_authorize_resource\b"
        r"|\bCanCan\b|before_action :authenticate_|@PreAuthorize\b|@Secured\b|@RolesAllowed\b"
        r"|\bcasbin\b|@login_required\b|\bLoginRequiredMixin\b|\bIsAuthenticated\b"
        r"|\[Authorize\b|\bpassport\.(?:use|authenticate)\(|\bdjango\.contrib\.auth\b"
        r"|\bflask_login\b|\bdevise\b|\bomniauth\b|\bauthlib\b|\boauthlib\b"
        r"|golang\.org/x/oauth2|['\"]next-auth|\bRequireAuth\b"
    ),
}
_KINDS = tuple(_USES)
_ANY_USE = re2.compile("|".join(f"({pattern})" for pattern in _USES.values()))


def path_words(path: str) -> list[str]:
    """Lower-case words of every segment of ``path`` (the extension dropped)."""
    segments = path.split("/")
    segments[-1] = posixpath.splitext(segments[-1])[0]
    words: list[str] = []
    for segment in segments:
        for run in _runs(segment):
            words.extend(_camel(run))
    return [word.lower() for word in words]


def _runs(segment: str) -> list[str]:
    runs, current = [], []
    for ch in segment:
        if ch.isascii() and ch.isalnum():
            current.append(ch)
        elif current:
            runs.append("".join(current))
            current = []
    if current:
        runs.append("".join(current))
    return runs


def _camel(run: str) -> list[str]:
    """``JwtAuthFilter`` -> Jwt, Auth, Filter; ``OAuth2Client`` -> OAuth2, Client."""
    parts: list[str] = []
    start = 0
    for i in range(1, len(run)):
        prev, ch = run[i - 1], run[i]
        nxt = run[i + 1] if i + 1 < len(run) else ""
        if ch.isupper() and (
            prev.islower() or prev.isdigit() or (prev.isupper() and nxt.islower())
        ):
            parts.append(run[start:i])
            start = i
    parts.append(run[start:])
    # A lone capital joins the next part: "O" + "Auth2" is OAuth2.
    merged: list[str] = []
    for part in parts:
        if merged and len(merged[-1]) == 1 and merged[-1].isupper():
            merged[-1] += part
        else:
            merged.append(part)
    return merged


def auth_word(word: str) -> str | None:
    """The listed word ``word`` is a form of (plural, trailing digits), or ``None``."""
    candidates = [word, word.rstrip("0123456789")]
    for candidate in list(candidates):
        if candidate.endswith("ies"):
            candidates.append(candidate[:-3] + "y")
        if candidate.endswith("s"):
            candidates.append(candidate[:-1])
    return next((c for c in candidates if c in WORDS), None)


class AuthDetector:
    """Findings ``path`` (a path word) and ``code`` (what added lines use)."""

    name: str = "auth"

    def wanted(self, file: ChangedFile) -> frozenset[tuple[str, str]]:
        # Without a patch, what the change adds is the whole head text.
        return head_text_wanted(file)

    def scan(self, data: ScanInput) -> Sequence[Finding]:
        file = data.file
        findings: list[Finding] = []
        for path in file.paths:
            if is_test_or_doc_path(path):
                continue
            hit = next((w for w in map(auth_word, path_words(path)) if w), None)
            if hit is not None:
                findings.append(
                    self._finding("path", file.path, None, f"{path}: path word {hit!r}")
                )
                break
        if is_test_or_doc_path(file.path):
            return tuple(findings)
        if posixpath.splitext(file.path)[1].lower() not in _SOURCE_EXTENSIONS:
            return tuple(findings)
        shown = 0
        for added in inspected_lines(data) or ():
            match = _ANY_USE.search(added.text)
            if match is None:
                continue
            kind = next(k for i, k in enumerate(_KINDS, 1) if match.group(i) is not None)
            used = " ".join(str(match.group(0)).split())[:60]
            shown += 1
            if shown > MAX_CODE_FINDINGS:
                continue
            findings.append(self._finding("code", file.path, added.number, f"uses {kind} ({used})"))
        if shown > MAX_CODE_FINDINGS:
            more = shown - MAX_CODE_FINDINGS
            findings.append(self._finding("code", file.path, None, f"{more} more such lines"))
        return tuple(findings)

    def _finding(self, rule: str, path: str, line: int | None, message: str) -> Finding:
        return Finding(detector=self.name, rule=rule, path=path, line=line, message=message)
