"""Service settings, read once from a mapping (the environment in production).

Secrets are ``SecretStr``: they never appear in reprs or logs. The service
refuses to start, naming the variable, when the webhook secret, the App id or
the App key is missing or malformed.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Literal

from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey
from cryptography.hazmat.primitives.serialization import load_pem_private_key
from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

DEFAULT_API_URL = "https://api.github.com"


class SettingsError(ValueError):
    """Settings that cannot be used; the message names the variable."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="GATE_", extra="ignore", frozen=True)

    app_id: int = Field(gt=0)
    private_key: SecretStr | None = None
    private_key_file: Path | None = None
    webhook_secret: SecretStr
    github_api_url: str = DEFAULT_API_URL
    public_url: str = "http://localhost:8080"
    data_dir: Path = Path(".gate")
    redis_url: SecretStr | None = None
    #: Key prefix in Redis, so several deployments (or tests) can share a server.
    redis_prefix: str = Field("merge-gate", pattern=r"^[A-Za-z0-9_.-]{1,64}$")
    signing_key_file: Path | None = None
    #: Supply-chain scan endpoints; ``{name}`` is the package name.
    osv_url: str = "https://api.osv.dev/v1/querybatch"
    pypi_url: str = "https://pypi.org/pypi/{name}/json"
    npm_url: str = "https://registry.npmjs.org/{name}"
    workers: int = Field(4, ge=1, le=64)
    #: Worker tasks per process beyond ``workers`` that only take a repository no
    #: worker is busy with: a flood in one repository cannot make another wait for
    #: a free worker (``Store.claim(spare=True)``).
    spare_workers: int = Field(1, ge=0, le=16)
    max_attempts: int = Field(5, ge=1, le=100)
    #: Short, since a running job's heartbeat renews it every third: a killed
    #: worker's job is taken over within seconds, not after a minute.
    lease_seconds: float = Field(10.0, gt=0)
    #: Debounce window of the queue (0: off): a pull request is evaluated once its
    #: deliveries paused this long, but no later than ``debounce_max_seconds`` after
    #: the first of them (see ``webhooks.store.base``).
    debounce_seconds: float = Field(2.0, ge=0, le=60)
    debounce_max_seconds: float = Field(10.0, ge=0, le=600)
    #: Rate-limit calls kept back per installation and resource: a job whose
    #: installation has fewer left waits in the queue for the reset (webhooks.budget).
    rate_limit_reserve: int = Field(50, ge=0, le=5000)
    #: GATE_LOG_LEVEL: debug, info, warning or error (any case).
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    #: The App's OAuth client: with both set, decision pages need a GitHub sign-in by
    #: someone who can read the repository (webhooks/details.py).
    github_client_id: str | None = Field(None, pattern=r"^[A-Za-z0-9._-]{1,100}$")
    github_client_secret: SecretStr | None = None
    #: Signs session cookies; derived from the webhook secret when unset.
    session_secret: SecretStr | None = None
    #: GitHub's web UI (sign-in, links); derived from GATE_GITHUB_API_URL when unset.
    github_url: str | None = None

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Only the mapping handed to load(): the process environment is read by the
        # caller, once, so tests and replicas see exactly what they pass.
        return (init_settings,)

    @field_validator("log_level", mode="before")
    @classmethod
    def _level(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value

    @field_validator("webhook_secret")
    @classmethod
    def _strong_secret(cls, value: SecretStr) -> SecretStr:
        if len(value.get_secret_value()) < 16:
            raise ValueError("must be at least 16 characters")
        return value

    @field_validator("session_secret")
    @classmethod
    def _strong_session_secret(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < 32:
            raise ValueError("must be at least 32 characters")
        return value

    @field_validator("github_api_url", "public_url", "osv_url", "pypi_url", "npm_url", "github_url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if not value.startswith(("https://", "http://")):
            raise ValueError("must be an http(s) URL")
        return value.rstrip("/")

    @model_validator(mode="after")
    def _key(self) -> Settings:
        if self.private_key is None and self.private_key_file is None:
            raise ValueError("GATE_PRIVATE_KEY_FILE or GATE_PRIVATE_KEY is required")
        if (self.github_client_id is None) != (self.github_client_secret is None):
            raise ValueError(
                "GATE_GITHUB_CLIENT_ID and GATE_GITHUB_CLIENT_SECRET go together: "
                "set both (sign-in on decision pages) or neither"
            )
        return self

    @property
    def oauth(self) -> bool:
        """Whether decision pages require a GitHub sign-in."""
        return self.github_client_id is not None

    @property
    def web_url(self) -> str:
        """GitHub's web UI: GATE_GITHUB_URL, else https://github.com for api.github.com
        and ``https://HOST`` for Enterprise Server's ``https://HOST/api/v3``."""
        if self.github_url:
            return self.github_url
        if self.github_api_url == DEFAULT_API_URL:
            return "https://github.com"
        return self.github_api_url.removesuffix("/api/v3")

    def app_key_pem(self) -> str:
        """The App's private key (PEM), checked to be an RSA key."""
        if self.private_key is not None:
            pem, name = self.private_key.get_secret_value(), "GATE_PRIVATE_KEY"
        else:
            assert self.private_key_file is not None
            name = "GATE_PRIVATE_KEY_FILE"
            try:
                pem = self.private_key_file.read_text()
            except OSError as error:
                raise SettingsError(
                    f"{name}: cannot read {self.private_key_file}: {error.strerror}"
                ) from None
        try:
            key = load_pem_private_key(pem.encode(), password=None)
        except (ValueError, TypeError):
            raise SettingsError(f"{name}: not a PEM private key") from None
        if not isinstance(key, RSAPrivateKey):
            raise SettingsError(f"{name}: a GitHub App key is an RSA key")
        return pem

    @property
    def redis(self) -> str | None:
        return self.redis_url.get_secret_value() if self.redis_url else None


def load(environ: Mapping[str, str]) -> Settings:
    """Settings from ``environ``; raises ``SettingsError`` naming each bad variable."""
    values = {
        k[len("GATE_") :].lower(): v
        for k, v in environ.items()
        if k.startswith("GATE_") and v != ""
    }
    try:
        settings = Settings.model_validate(values)
    except ValidationError as error:
        problems = []
        for item in error.errors():
            field = ".".join(str(p) for p in item["loc"])
            name = f"GATE_{field.upper()}" if field else "settings"
            message = str(item["msg"]).removeprefix("Value error, ")
            if item["type"] == "missing":
                message = "is required"
            problems.append(f"{name}: {message}")
        raise SettingsError("; ".join(problems)) from None
    settings.app_key_pem()
    return settings
