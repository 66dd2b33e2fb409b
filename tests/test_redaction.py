"""No secret from a pull request reaches any output, whichever detector quoted it."""

from __future__ import annotations

import json
import random
import string

import pytest

from gate import render
from gate.defaults import default_policy
from gate.detectors import builtin
from gate.detectors.secrets import redact, redact_text
from gate.model import Contents, FileStatus, ScanResult, ScanStatus
from tests.factories import HEAD, changed, decide, pull


def github_token(seed: int) -> str:
    rng = random.Random(seed)
    return "ghp_" + "".join(rng.choice(string.ascii_letters + string.digits) for _ in range(36))


def aws_key_id(seed: int) -> str:
    rng = random.Random(seed)
    return "AKIA" + "".join(rng.choice(string.ascii_uppercase + "234567") for _ in range(16))


def added(text: str) -> str:
    lines = text.splitlines()
    return f"@@ -0,0 +1,{len(lines)} @@\n" + "\n".join("+" + line for line in lines)


def test_redact_text_replaces_vendor_tokens_and_url_credentials() -> None:
    token = github_token(1)
    text = (
        f"spec https://e.com/{token}/pkg.tgz, https://user:{token}@host/x "
        f"and https://host/simple?private_token={token}&ref=main"
    )
    out = redact_text(text)
    assert token not in out
    assert redact(token) in out
    assert redact(f"user:{token}") in out
    assert "https://host/simple?private_token=" in out
    assert redact_text(out) == out  # idempotent: the redacted form reads as a placeholder


def test_redact_text_leaves_ordinary_text_alone() -> None:
    text = "new pypi package requests (==2.32.0) from https://pypi.org/simple"
    assert redact_text(text) == text


CASES = {
    "requirements.txt": lambda t, a: (
        f"https://e.com/{t}/pkg-1.0.tar.gz\n"
        f"foo @ https://e.com/foo-{a}.whl\n"
        f"--extra-index-url https://e.com/simple?key={t}\n"
    ),
    "web/package.json": lambda t, a: json.dumps(
        {"dependencies": {"y": f"https://e.com/{t}.tgz", a: "1.0.0"}}
    ),
    "go.mod": lambda t, a: f"module m\n\nrequire example.com/{t} v1.0.0\n",
    "db/migrations/0001_init.cs": lambda t, a: f"migrationBuilder.{a}(name: x);\n",
    "k8s/app.yaml": lambda t, a: f"apiVersion: v1\nkind: {a}\n",
    "app/settings.py": lambda t, a: f'GITHUB = "{t}"\nAWS = "{a}"\n',
}


@pytest.mark.parametrize("path", sorted(CASES))
def test_a_planted_secret_appears_in_no_output(path: str) -> None:
    token, key = github_token(len(path)), aws_key_id(len(path))
    text = CASES[path](token, key)
    file = changed(path, status=FileStatus.ADDED, patch=added(text))
    decision = decide(
        default_policy(),
        pull([file]),
        detectors=builtin(),  # type: ignore[arg-type]
        contents=Contents(texts={("head", path): text}),
    )
    # The detectors saw the planted text: something was found in it.
    assert decision.files[0].findings
    outputs = [
        json.dumps(decision.to_dict(), ensure_ascii=False),
        render.markdown(decision),
        render.text(decision),
        render.title(decision),
        json.dumps([a.to_github() for a in render.annotate(decision)], ensure_ascii=False),
    ]
    for output in outputs:
        assert token not in output
        assert key not in output
    assert redact(token) in outputs[0] or redact(key) in outputs[0]


def test_a_secret_cut_by_the_message_limit_is_redacted_before_the_cut() -> None:
    token = github_token(7)
    text = json.dumps({"dependencies": {"y": "https://e.com/" + "a" * 90 + "/" + token}})
    file = changed("package.json", status=FileStatus.ADDED, patch=added(text))
    decision = decide(
        default_policy(),
        pull([file]),
        detectors=builtin(),  # type: ignore[arg-type]
        contents=Contents(texts={("head", "package.json"): text}),
    )
    dumped = json.dumps(decision.to_dict(), ensure_ascii=False)
    assert "new npm package y" in dumped
    assert token[:12] not in dumped


def test_a_scan_summary_naming_a_secret_is_redacted() -> None:
    token = github_token(9)
    text = json.dumps({"dependencies": {token: "1.0.0"}})
    file = changed("package.json", status=FileStatus.ADDED, patch=added(text))
    scan = ScanResult(
        gate="supply_chain_scan",
        head_sha=HEAD,
        status=ScanStatus.FAILED,
        summary=f"1 problem in 1 new package: npm {token} does not exist",
    )
    decision = decide(
        default_policy(),
        pull([file], scans=(scan,)),
        detectors=builtin(),  # type: ignore[arg-type]
        contents=Contents(texts={("head", "package.json"): text}),
    )
    explanation = next(
        r.explanation for r in decision.requirements if r.kind == "supply_chain_scan"
    )
    assert "does not exist" in explanation
    assert token not in json.dumps(decision.to_dict()) + render.markdown(decision)
