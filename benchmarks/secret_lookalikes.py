"""Realistic things that look like secrets and are not, and real ones in test files.

Written for this project after what replays of real repositories flagged: URL
credentials with placeholder or local-only values, schema references in
``password`` fields, jwt.io's public sample token, fixtures in tests, key
headers without a usable body, translated interface text. ``LOOKALIKES`` must
not deny; ``REAL_IN_FIXTURES`` (generated per run, long and random) must, even
in test and docs files. Used by ``bench_secrets`` (figure e) and the tests.
"""

from __future__ import annotations

import random
import string
from dataclasses import dataclass

# jwt.io's sample token: its header, payload and signature are published on the site.
JWT_IO_SAMPLE = (
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9"
    ".eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiaWF0IjoxNTE2MjM5MDIyfQ"
    ".SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c"
)


@dataclass(frozen=True, slots=True)
class Sample:
    path: str
    text: str
    why: str


LOOKALIKES: tuple[Sample, ...] = (
    Sample("config/mail.py", 'EMAIL_URL = "smtp://user:pass@smtp.mailhost.io:587"\n', "words"),
    Sample(
        "docker-compose.yml",
        "    environment:\n      DATABASE_URL: postgres://user:password@localhost:5432/app\n",
        "the word password as the password",
    ),
    Sample(
        "settings/dev.py",
        'DATABASE_URL = "postgres://shop:devpass42@localhost/shop"\n',
        "a short password for the developer's own database",
    ),
    Sample(
        ".env.example",
        "REDIS_URL=redis://default:localdev@127.0.0.1:6379/0\n",
        "a local default",
    ),
    Sample(
        "api/openapi.yaml",
        "        password: '#/components/schemas/UserPassword'\n",
        "a JSON-Schema reference",
    ),
    Sample(
        "schemas/client.json",
        '  "client_secret": "#/definitions/ClientSecret",\n',
        "a JSON-Schema reference",
    ),
    Sample(
        "README.md",
        f"curl -H 'Authorization: Bearer {JWT_IO_SAMPLE}' https://api.local/me\n",
        "jwt.io's sample token",
    ),
    Sample(
        "internal/auth/jwt.go",
        f'const exampleToken = "{JWT_IO_SAMPLE}"\n',
        "jwt.io's sample token in code",
    ),
    Sample(
        "cli/keys.py",
        'HELP = """Paste the key:\n-----BEGIN RSA PRIVATE KEY-----\n'
        '...\n-----END RSA PRIVATE KEY-----"""\n',
        "a key header without a body",
    ),
    Sample(
        "cli/check.py",
        'if text.startswith("-----BEGIN RSA PRIVATE KEY-----"):\n',
        "a key header as a string constant",
    ),
    Sample(
        "docs/signing.rst",
        "    -----BEGIN PRIVATE KEY-----\n"
        "    MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQCiStSwvoSk61uf\n"
        "    cQvkGDmR6gsM2QjVgKxCTPtg3tMhMO7kXq3PPMEiWlF49JicjPWs5vkYcLAsWNVE\n"
        "    ...\n"
        "    gtUcukumVPtrDhGK9i/PG3Q=\n"
        "    -----END PRIVATE KEY-----\n",
        "a key shown cut short",
    ),
    Sample(
        "tests/test_login.py",
        'PASSWORD = "Tr0ub4dor&3"\n',
        "a short password in a test",
    ),
    Sample(
        "internal/webhook/webhook_test.go",
        '\t\t{name: "printable ascii", secret: "abcDEF123!@#", wantErr: false},\n',
        "a short value in a Go test",
    ),
    Sample(
        "internal/webhook/webhook_test.go",
        '\t\t{name: "bad base64", secret: "whsec_not!base64", wantErr: true},\n',
        "a made-up value of 16 characters in a Go test",
    ),
    Sample(
        "spec/models/user_spec.rb",
        'user = User.new(email: "a@b.example", password: "Passw0rd!23")\n',
        "a short password in a spec",
    ),
    Sample(
        "tests/fixtures/users.json",
        '  {"username": "bob", "password": "hunter2hunter2"},\n',
        "a plain password in a fixture",
    ),
    Sample(
        "web/src/locales/ja.json",
        '  "password-description": "パスワードを入力",\n  "secret-key": "秘密キー",\n',
        "translated interface text",
    ),
    Sample(
        "web/src/locales/ru.json",
        '  "access-token": "Сгенерировать",\n',
        "translated interface text",
    ),
    Sample(
        "web/src/locales/en.json",
        '  "secretkey-description": "Secret_access_key_of_the_bucket",\n',
        "a description key",
    ),
    Sample(
        "docs/api.md",
        "export API_TOKEN=ghp_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\n",
        "a placeholder token in docs",
    ),
    Sample(
        "web/src/Login.tsx",
        'const passwordMask = "••••••••";\n',
        "a mask, not a value",
    ),
)


def real_in_fixtures(seed: int = 11) -> tuple[Sample, ...]:
    """Long, random credentials in test and docs files: each must still deny."""
    rng = random.Random(seed)
    alnum = string.ascii_letters + string.digits

    def s(n: int) -> str:
        return "".join(rng.choice(alnum) for _ in range(n))

    key_body = "".join(f"    {s(64)}\n" for _ in range(6))
    return (
        Sample("tests/test_client.py", f'API_SECRET = "{s(40)}"\n', "generated secret"),
        Sample("spec/fixtures/config.yml", f"client_secret: {s(32)}\n", "generated secret"),
        Sample("tests/test_github.py", f'TOKEN = "ghp_{s(36)}"\n', "vendor token"),
        Sample(
            "tests/conftest.py",
            f'DB = "postgres://app:{s(20)}@db.internal/app"\n',
            "generated URL password",
        ),
        Sample(
            "docs/setup.md",
            f"    -----BEGIN PRIVATE KEY-----\n{key_body}    -----END PRIVATE KEY-----\n",
            "a whole key in docs",
        ),
        Sample(
            "settings/dev.py",
            f'DATABASE_URL = "postgres://shop:{s(24)}@localhost/shop"\n',
            "a generated password even for localhost",
        ),
    )
