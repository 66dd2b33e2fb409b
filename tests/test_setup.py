"""``gate setup``: the manifest flow, driven like a browser would drive it.

``gate setup`` runs as a real subprocess; httpx plays the browser (loads the
page, submits the auto-posting form, follows GitHub's redirect). GitHub's form
is ``tests/simulators/appform.py``; the code exchange is the fake GitHub's
``POST /app-manifests/{code}/conversions``.
"""

from __future__ import annotations

import os
import re
import secrets
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from tests.fakegithub.server import FakeGitHub
from tests.simulators.appform import AppForm, appform, validate_manifest
from webhooks.commands import setup
from webhooks.permissions import ALL_OPERATIONS, manifest_events, needed_permissions

ROOT = Path(__file__).resolve().parent.parent
PUBLIC_URL = "https://gate.example.com"


class _FormParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.action = ""
        self.method = ""
        self.fields: dict[str, str] = {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form":
            self.action, self.method = a.get("action", ""), a.get("method", "get")
        elif tag == "input" and "name" in a:
            self.fields[a["name"]] = a.get("value", "")


def parse_form(page: str) -> _FormParser:
    parser = _FormParser()
    parser.feed(page)
    return parser


@dataclass
class SetupProcess:
    proc: subprocess.Popen[str]
    url: str
    data_dir: Path

    def finish(self, timeout: float = 20) -> tuple[int, str, str]:
        out, err = self.proc.communicate(timeout=timeout)
        return self.proc.returncode, out, err


def start_setup(tmp_path: Path, *args: str) -> SetupProcess:
    """``python -m webhooks setup ...``; returns once it prints its loopback URL."""
    data_dir = tmp_path / "data"
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATE_")}
    env["PYTHONPATH"] = str(ROOT)
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "webhooks",
            "setup",
            "--public-url",
            PUBLIC_URL,
            "--data-dir",
            str(data_dir),
            "--no-browser",
            "--timeout",
            "30",
            *args,
        ],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        match = re.search(r"Open (http://127\.0\.0\.1:\d+)/", line)
        if match:
            return SetupProcess(proc, match.group(1), data_dir)
        if not line and proc.poll() is not None:
            break
    proc.kill()
    _, err = proc.communicate()
    raise AssertionError(f"gate setup did not start: {err}")


@pytest.fixture
def form(fake_github: FakeGitHub) -> Iterator[AppForm]:
    """The simulated GitHub form; each created App gets a code at the fake GitHub."""
    created: dict[str, Any] = {}

    def on_create(manifest: dict[str, Any], org: str | None) -> str:
        code = secrets.token_hex(10)
        created[code] = fake_github.add_manifest_code(
            code, app_id=4242, slug=manifest["name"], owner=org or "octocat"
        )
        return code

    with appform(on_create) as sim:
        yield sim


def browse(flow: SetupProcess, *, client: httpx.Client) -> httpx.Response:
    """What a browser does: load the page, auto-submit the form, follow the redirect."""
    page = client.get(f"{flow.url}/")
    assert page.status_code == 200
    f = parse_form(page.text)
    assert f.method == "post"
    posted = client.post(f.action, data={"manifest": f.fields["manifest"]})
    assert posted.status_code == 302, posted.text
    return client.get(posted.headers["Location"])


def test_flow_registers_the_app_and_writes_private_files(
    tmp_path: Path, form: AppForm, fake_github: FakeGitHub
) -> None:
    flow = start_setup(
        tmp_path, "--github-url", form.url, "--api-url", fake_github.base_url, "--org", "acme"
    )
    try:
        with httpx.Client(timeout=10) as client:
            done = browse(flow, client=client)
        assert done.status_code == 200, done.text
        assert "merge-gate-acme" in done.text
        code, out, err = flow.finish()
    finally:
        flow.proc.kill()
    assert code == 0, err

    # GitHub's form saw the org URL and our manifest, with this run's URLs filled in.
    [(org, manifest)] = form.created
    assert org == "acme"
    assert manifest["hook_attributes"]["url"] == f"{PUBLIC_URL}/api/github/webhooks"
    assert manifest["redirect_url"] == f"{flow.url}/callback"
    assert manifest["default_permissions"] == needed_permissions(ALL_OPERATIONS)
    assert manifest["default_events"] == manifest_events()
    assert manifest["public"] is False

    # Every file is the owner's alone, in an owner-only directory.
    assert stat.S_IMODE(flow.data_dir.stat().st_mode) == 0o700
    for name in setup.CREDENTIAL_FILES:
        assert stat.S_IMODE((flow.data_dir / name).stat().st_mode) == 0o600, name
    assert sorted(p.name for p in flow.data_dir.iterdir()) == sorted(setup.CREDENTIAL_FILES)

    pem = (flow.data_dir / "private-key.pem").read_text()
    assert pem.strip() == fake_github.app_private_key_pem.strip()
    secret = (flow.data_dir / "webhook-secret").read_text().strip()
    env = dict(
        line.split("=", 1)
        for line in (flow.data_dir / "app.env").read_text().splitlines()
        if line and not line.startswith("#")
    )
    assert env["GATE_APP_ID"] == "'4242'"
    assert env["GATE_WEBHOOK_SECRET"] == f"'{secret}'"
    assert env["GATE_PRIVATE_KEY_FILE"] == f"'{(flow.data_dir / 'private-key.pem').resolve()}'"
    assert env["GATE_GITHUB_API_URL"] == f"'{fake_github.base_url}'"
    # The App's OAuth client: decision pages then require a GitHub sign-in.
    assert env["GATE_GITHUB_CLIENT_ID"].startswith("'Iv1.")
    client_secret = env["GATE_GITHUB_CLIENT_SECRET"].strip("'")
    assert len(client_secret) >= 20

    # Next steps are printed; secrets never are.
    assert "installations/new" in out
    assert "gate doctor" in out
    for text in (out, err, done.text):
        assert secret not in text
        assert client_secret not in text
        assert "PRIVATE KEY" not in text


def test_a_wrong_state_is_refused_and_nothing_is_written(
    tmp_path: Path, form: AppForm, fake_github: FakeGitHub
) -> None:
    flow = start_setup(tmp_path, "--github-url", form.url, "--api-url", fake_github.base_url)
    try:
        with httpx.Client(timeout=10) as client:
            f = parse_form(client.get(f"{flow.url}/").text)
            real_state = parse_qs(urlsplit(f.action).query)["state"][0]
            assert len(real_state) >= 32
            # Without --org the manifest goes to the personal account's settings.
            assert urlsplit(f.action).path == "/settings/apps/new"
            # A forged callback (say, a link on a web page) with someone's valid code.
            forged_code = "forged"
            fake_github.add_manifest_code(forged_code, app_id=666)
            forged = client.get(f"{flow.url}/callback", params={"code": forged_code, "state": "x"})
            assert forged.status_code == 400
            assert not flow.data_dir.exists() or not any(flow.data_dir.iterdir())
            assert fake_github.manifest_codes.get(forged_code), "the code must not be spent"

            # DNS rebinding: another host name pointing at 127.0.0.1 gets nothing.
            rebound = client.get(f"{flow.url}/", headers={"Host": "evil.example"})
            assert rebound.status_code == 403
            assert real_state not in rebound.text

            # The genuine redirect still completes the same run.
            done = browse(flow, client=client)
            assert done.status_code == 200
        code, _out, err = flow.finish()
    finally:
        flow.proc.kill()
    assert code == 0, err
    assert "wrong state" in err
    assert [(org, m["name"]) for org, m in form.created] == [(None, "merge-gate")]
    assert "GATE_APP_ID='4242'" in (flow.data_dir / "app.env").read_text()


def test_a_spent_code_fails_without_writing(tmp_path: Path, fake_github: FakeGitHub) -> None:
    # The form hands out a code the fake GitHub does not know (expired or used).
    with appform(lambda manifest, org: "expired-code") as sim:
        flow = start_setup(tmp_path, "--github-url", sim.url, "--api-url", fake_github.base_url)
        try:
            with httpx.Client(timeout=10) as client:
                done = browse(flow, client=client)
            assert done.status_code == 502
            code, _, err = flow.finish()
        finally:
            flow.proc.kill()
    assert code == 1
    assert "HTTP 404" in err
    assert not flow.data_dir.exists() or not any(flow.data_dir.iterdir())


# --- in-process: argument handling ---------------------------------------------------


def _args(tmp_path: Path, **over: Any) -> Any:
    import argparse

    parser = argparse.ArgumentParser()
    setup.add_arguments(parser)
    ns = parser.parse_args(["--data-dir", str(tmp_path / "data"), "--no-browser"])
    for key, value in over.items():
        setattr(ns, key, value)
    return ns


def test_public_url_is_required(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("GATE_PUBLIC_URL", raising=False)
    assert setup.run(_args(tmp_path)) == 2
    assert "--public-url" in capsys.readouterr().err


def test_existing_credentials_are_not_overwritten(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "private-key.pem").write_text("old key")
    assert setup.run(_args(tmp_path, public_url=PUBLIC_URL)) == 2
    assert "--force" in capsys.readouterr().err
    assert (data / "private-key.pem").read_text() == "old key"


def test_a_flow_nobody_completes_times_out(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert setup.run(_args(tmp_path, public_url=PUBLIC_URL, timeout=0.2)) == 1
    assert "timed out" in capsys.readouterr().err
    assert not (tmp_path / "data").exists()


@pytest.mark.parametrize(
    ("github_url", "api_url"),
    [
        ("https://github.com", "https://api.github.com"),
        ("https://github.com/", "https://api.github.com"),
        ("https://ghe.example.com", "https://ghe.example.com/api/v3"),
    ],
)
def test_api_url_follows_the_github_url(github_url: str, api_url: str) -> None:
    assert setup.default_api_url(github_url) == api_url


def test_the_manifest_passes_githubs_form_rules() -> None:
    manifest = setup.build_manifest(
        public_url=PUBLIC_URL, redirect_url="http://127.0.0.1:1/callback", name="merge-gate-x"
    )
    validate_manifest(manifest)


def test_the_new_app_url_escapes_the_org_and_carries_the_state() -> None:
    url = setup.new_app_url(github_url="https://github.com/", org="a b", state="s t")
    assert url == "https://github.com/organizations/a%20b/settings/apps/new?state=s+t"


def test_long_org_names_keep_the_app_name_within_githubs_limit() -> None:
    assert len(setup.default_name("x" * 60)) == setup.MAX_NAME


def test_credentials_repr_hides_secrets() -> None:
    creds = setup.Credentials(
        app_id=1, slug="s", html_url="h", owner="o", pem="PEMDATA", webhook_secret="WHSEC"
    )
    assert "PEMDATA" not in repr(creds)
    assert "WHSEC" not in repr(creds)


def test_a_manifest_file_overrides_fields_but_not_this_runs_urls(tmp_path: Path) -> None:
    override = tmp_path / "manifest.yml"
    override.write_text(
        "name: acme-gate\nurl: https://elsewhere.example\ndescription: ours\n", encoding="utf-8"
    )
    built = setup.build_manifest(public_url=PUBLIC_URL, redirect_url="http://127.0.0.1:9/callback")
    merged = setup._load_manifest_override(override, built)
    assert merged["name"] == "acme-gate"
    assert merged["description"] == "ours"
    assert merged["url"] == PUBLIC_URL
    assert merged["redirect_url"] == "http://127.0.0.1:9/callback"
    assert merged["default_permissions"] == built["default_permissions"]
