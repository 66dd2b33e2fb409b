"""Auth, crypto and permission code wherever it lives, and tests inside gated areas."""

from __future__ import annotations

import random
import string

import pytest

from gate.defaults import default_policy, load_policy
from gate.detectors import builtin
from gate.detectors.auth import AuthDetector, auth_word, path_words
from gate.detectors.base import ScanInput
from gate.diff import added_lines
from gate.model import ChangedFile, Contents, FileStatus
from gate.policy import InvalidPolicy
from gate.result import Outcome
from tests.factories import changed, decide, pull

DETECTOR = AuthDetector()


def patch_of(*lines: str) -> str:
    return f"@@ -0,0 +1,{len(lines)} @@\n" + "\n".join("+" + line for line in lines)


def findings(path: str, *lines: str) -> list[tuple[str, str]]:
    file = ChangedFile(path, FileStatus.ADDED, patch=patch_of(*lines) if lines else None)
    added = added_lines(file.patch) if file.patch else ()
    return [(f.rule, f.message) for f in DETECTOR.scan(ScanInput(file, added, Contents()))]


@pytest.mark.parametrize(
    ("path", "word"),
    [
        ("src/main/java/com/acme/JwtAuthFilter.java", "jwt"),
        ("lib/OAuth2Client.ts", "oauth2"),
        ("app/policies/post_policy.rb", "policy"),
        ("django/contrib/auth/hashers.py", "auth"),
        ("internal/api/tokens.go", "token"),
        ("app/password_reset.py", "password"),
        ("web/src/components/LoginForm.tsx", "login"),
        ("pkg/acl.go", "acl"),
        ("app/controllers/sessions_controller.rb", "session"),
        ("config/initializers/devise.rb", "devise"),
        ("services/saml/metadata.py", "saml"),
        ("app/permissions.py", "permission"),
    ],
)
def test_auth_path_words(path: str, word: str) -> None:
    assert findings(path) == [("path", f"{path}: path word {word!r}")]


@pytest.mark.parametrize(
    "path",
    [
        "app/tokenizer.py",
        "app/author.py",
        "lib/authority_index.rb",
        "src/passwordless_banner_copy.txt",
        "src/sessionize.go",
        "tests/test_jwt.py",
        "docs/oauth.md",
        "app/views.py",
    ],
)
def test_not_auth_paths(path: str) -> None:
    assert findings(path) == []


def test_words_split_at_punctuation_and_camel_case() -> None:
    assert path_words("a/OAuth2Client/JwtAuth-filter_v2.ts") == [
        "a",
        "oauth2",
        "client",
        "jwt",
        "auth",
        "filter",
        "v2",
    ]
    assert auth_word("policies") == "policy"
    assert auth_word("tokenizer") is None


@pytest.mark.parametrize(
    ("line", "kind"),
    [
        ("import jwt", "a JWT library"),
        ('import "github.com/golang-jwt/jwt/v5"', "a JWT library"),
        ("const jwt = require('jsonwebtoken')", "a JWT library"),
        ("hashed = bcrypt.hashpw(pw, bcrypt.gensalt())", "password hashing"),
        ("user.set_password(raw)", "password hashing"),
        ("from cryptography.hazmat.primitives.ciphers import Cipher", "a cipher"),
        ("const c = crypto.createCipheriv('aes-256-gcm', key, iv)", "a cipher"),
        ("@permission_required('polls.add_choice')", "a permission or login framework"),
        ("  before_action :authenticate_user!", "a permission or login framework"),
        ("    permission_classes = [IsAuthenticated]", "a permission or login framework"),
    ],
)
def test_auth_code_in_added_lines(line: str, kind: str) -> None:
    (found,) = findings("app/service.py" if "require" not in line else "app/service.js", line)
    assert found[0] == "code"
    assert found[1].startswith(f"uses {kind}")


def test_auth_code_in_tests_docs_and_data_is_not_auth_code() -> None:
    assert findings("tests/test_service.py", "import jwt") == []
    assert findings("docs/guide.md", "import jwt") == []
    assert findings("app/fixtures.json", '"import jwt"') == []


def test_many_auth_lines_are_capped() -> None:
    lines = [f"h{i} = bcrypt.hashpw(p, s)" for i in range(9)]
    found = findings("app/service.py", *lines)
    assert len(found) == 6
    assert found[-1] == ("code", "4 more such lines")


def test_auth_code_anywhere_needs_code_owners() -> None:
    file = changed("app/utils.py", patch=patch_of("import jwt", "x = jwt.decode(t, k)"))
    decision = decide(default_policy(), pull([file]), detectors=builtin())
    assert decision.files[0].tier == "high"
    reasons = [r.detail for r in decision.files[0].reasons]
    assert any("auth:code (line 1): uses a JWT library (import jwt)" in r for r in reasons)


# --- tests and docs inside gated areas ---------------------------------------------------

TEST_BODY = ("def test_refund_is_capped():", "    assert refund(10) <= 10")
HELPER_BODY = ("def charge(card, amount):", "    return gateway.charge(card, amount)")


def tier_of(path: str, *lines: str, head: str | None = None, policy=None) -> str:  # type: ignore[no-untyped-def]
    file = changed(path, patch=patch_of(*lines))
    texts = {} if head is None else {("head", path): head}
    decision = decide(
        policy or default_policy(),
        pull([file]),
        detectors=builtin(),
        contents=Contents(texts=texts),
    )
    return decision.files[0].tier


def test_test_in_a_gated_area_takes_the_low_tier() -> None:
    assert tier_of("payment/tests/test_refund.py", *TEST_BODY) == "low"
    assert tier_of("app/auth/tests/test_login.py", *TEST_BODY) == "low"


def test_prose_docs_in_a_gated_area_take_the_low_tier() -> None:
    assert tier_of("auth/docs/flows.md", "How login works.") == "low"
    # Code under docs/ is not prose.
    assert tier_of("auth/docs/conf.py", "x = 1") == "high"


def test_a_file_in_tests_that_declares_no_test_keeps_the_area_tier() -> None:
    assert tier_of("payment/tests/charge.py", *HELPER_BODY, head="\n".join(HELPER_BODY)) == "high"


def test_a_test_whose_patch_shows_no_test_is_judged_by_its_head_text() -> None:
    head = "\n".join(TEST_BODY) + "\nLIMIT = 10\n"
    assert tier_of("payment/tests/test_refund.py", "LIMIT = 10", head=head) == "low"
    detector = builtin()["tests"]
    file = changed("payment/tests/test_refund.py", patch=patch_of("LIMIT = 10"))
    assert detector.wanted(file) == {("head", "payment/tests/test_refund.py")}
    # Without the head text it is not known to be a test: no discount.
    assert tier_of("payment/tests/test_refund.py", "LIMIT = 10") == "high"


@pytest.mark.parametrize(
    ("path", "lines"),
    [
        ("web/src/payment/__tests__/Checkout.test.tsx", ("describe('checkout', () => {",)),
        ("internal/auth/session_test.go", ("func TestSessionExpiry(t *testing.T) {",)),
        ("spec/auth/login_spec.rb", ('RSpec.describe "login" do',)),
        ("src/test/java/com/acme/auth/LoginTest.java", ("    @Test",)),
    ],
)
def test_test_conventions_of_other_languages(path: str, lines: tuple[str, ...]) -> None:
    assert tier_of(path, *lines) == "low"


def test_discount_is_configurable_and_can_be_turned_off() -> None:
    off = load_policy("version: 1\ngated_tests: {}\n")
    assert tier_of("payment/tests/test_refund.py", *TEST_BODY, policy=off) == "high"
    medium = load_policy("version: 1\ngated_tests: {tier: medium, from: [high]}\n")
    assert tier_of("payment/tests/test_refund.py", *TEST_BODY, policy=medium) == "medium"
    with pytest.raises(InvalidPolicy, match="gated_tests names 'nope'"):
        load_policy("version: 1\ngated_tests: {tier: low, from: [nope]}\n")


def test_own_tiers_do_not_inherit_the_default_discount() -> None:
    policy = load_policy(
        "version: 1\ndefault_tier: code\nunseen_content_tier: code\n"
        "tiers:\n  - {name: code, require: {approvals: 1}}\n"
    )
    assert policy.policy.gated_tests.tier is None


def test_a_secret_in_a_gated_test_still_denies() -> None:
    rng = random.Random("gated-secret")
    secret = "".join(rng.choice(string.ascii_letters + string.digits) for _ in range(34))
    decision = decide(
        default_policy(),
        pull(
            [
                changed(
                    "payment/tests/test_refund.py",
                    patch=patch_of(*TEST_BODY, f'API_KEY = "{secret}"'),
                )
            ]
        ),
        detectors=builtin(),
    )
    assert decision.outcome is Outcome.DENIED


def test_keyring_and_secret_key_code_is_auth() -> None:
    assert findings("crates/uv-keyring/src/secret_service.rs")[0][0] == "path"
    assert findings("netbox/utilities/secret_key.py")[0][0] == "path"


def test_removing_or_renaming_code_into_tests_gets_no_discount() -> None:
    removed = changed("payment/tests/test_refund.py", status=FileStatus.REMOVED, patch=None)
    decision = decide(default_policy(), pull([removed]), detectors=builtin())
    assert decision.files[0].tier == "high"
    moved = changed(
        "payment/tests/test_charge.py",
        status=FileStatus.RENAMED,
        previous="payment/charge.py",
        patch=patch_of(*TEST_BODY),
    )
    decision = decide(default_policy(), pull([moved]), detectors=builtin())
    assert decision.files[0].tier == "high"
