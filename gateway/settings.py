"""One settings object, validated at start-up and passed explicitly.

Sources, highest priority first: explicit keyword arguments, ``VITALGATE_*``
environment variables, an optional TOML file (``--config`` or
``VITALGATE_CONFIG``), then defaults.  The defaults give the embedded set-up:
a SQLite file under ``./var/`` and an in-process MQTT broker on 127.0.0.1.
Nothing here is created at import time: call :func:`load_settings`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

DEV_SECRET = "vitalgate-development-secret-change-me"  # noqa: S105 - refused outside dev mode


class SetupError(RuntimeError):
    """The set-up cannot work as configured (a port taken, an unsafe address...).

    The operator must change something; ``vitalgate`` prints the message in
    one line and exits 1, without a traceback.
    """


class Settings(BaseSettings):
    """Every tunable of a Vitalgate process."""

    model_config = SettingsConfigDict(env_prefix="VITALGATE_", extra="forbid")

    mode: Literal["dev", "production"] = "dev"
    data_dir: Path = Path("var")
    database_url: str | None = Field(
        default=None,
        description="sqlite:///path/to.db or postgresql://user@host/db; default SQLite in data_dir",
    )
    db_pool_size: int = Field(default=4, ge=1, le=64)

    broker_url: str | None = Field(
        default=None, description="mqtt://[user:pass@]host:port or mqtts://...; default embedded"
    )
    embedded_broker_host: str = "127.0.0.1"
    embedded_broker_port: int = Field(default=18830, ge=0, le=65535)
    mqtt_client_id: str = "vitalgate-ingest"
    mqtt_share_group: str | None = None
    mqtt_ca_file: Path | None = None

    api_host: str = "127.0.0.1"
    api_port: int = Field(default=8000, ge=0, le=65535)
    public_url: str = "http://127.0.0.1:8000"
    secret_key: str = DEV_SECRET
    oidc_issuer: str | None = None
    oidc_audience: str | None = None
    oidc_client_id: str | None = Field(
        default=None, description="web sign-in with the OIDC issuer (authorisation code + "
                                  "PKCE); register public_url + /login/oidc/callback")
    oidc_client_secret: SecretStr | None = Field(
        default=None, description="for a confidential client; unset: public client (PKCE)")

    ingest_batch_max: int = Field(default=2000, ge=1, le=100_000)
    ingest_batch_ms: int = Field(default=50, ge=1, le=10_000)
    max_payload_bytes: int = Field(default=1024 * 1024, ge=1024)
    future_tolerance_s: int = Field(default=600, ge=0)
    late_bound_hours: float = Field(default=12.0, gt=0)
    paging_policy: Path | None = Field(
        default=None, description="paging policy file (YAML); unset: queue only, no pages")
    retention_days: int | None = Field(
        default=None, ge=30,
        description="delete raw readings older than this (None: keep; medical records "
                    "usually must be kept for years); the day rollup is kept",
    )

    @model_validator(mode="after")
    def _secure_defaults(self) -> Settings:
        if self.mode != "dev" and self.secret_key == DEV_SECRET:
            raise ValueError(
                "secret_key is the development default; set VITALGATE_SECRET_KEY "
                "(outside dev mode Vitalgate refuses to start with it)"
            )
        if self.mode != "dev" and len(self.secret_key) < 32:
            raise ValueError("secret_key must be at least 32 characters outside dev mode")
        return self

    @property
    def resolved_database_url(self) -> str:
        """The database URL, defaulting to a SQLite file under ``data_dir``."""
        return self.database_url or f"sqlite:///{self.data_dir / 'vitalgate.db'}"

    @property
    def embedded_broker(self) -> bool:
        """True when no external broker is configured."""
        return self.broker_url is None

    @property
    def resolved_broker_url(self) -> str:
        """Broker URL, the embedded one when none is configured."""
        return self.broker_url or f"mqtt://{self.embedded_broker_host}:{self.embedded_broker_port}"

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Order: init kwargs, environment, TOML file."""
        toml = settings_cls.model_config.get("toml_file") or os.environ.get("VITALGATE_CONFIG")
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        if toml:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=toml))
        return tuple(sources)


def redact_url(url: str) -> str:
    """``scheme://user:***@host:port/...``: a URL safe to log or print."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = f"{parts.username}:***@{parts.hostname}"
    if parts.port is not None:
        netloc += f":{parts.port}"
    return urlunsplit(parts._replace(netloc=netloc))


def load_settings(config_file: str | Path | None = None, **overrides: Any) -> Settings:
    """Build and validate settings; ``config_file`` is an optional TOML file."""
    if config_file is None:
        return Settings(**overrides)
    path = Path(config_file)
    if not path.is_file():
        raise FileNotFoundError(f"settings file not found: {path}")

    class FileSettings(Settings):
        model_config = SettingsConfigDict(
            env_prefix="VITALGATE_", extra="forbid", toml_file=str(path)
        )

    return FileSettings(**overrides)
