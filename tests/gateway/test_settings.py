"""Settings: embedded defaults, env and TOML sources, secure defaults."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from gateway.settings import load_settings


def test_defaults_are_embedded(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("VITALGATE_DATABASE_URL", "VITALGATE_BROKER_URL", "VITALGATE_CONFIG"):
        monkeypatch.delenv(var, raising=False)
    s = load_settings()
    assert s.embedded_broker
    assert s.resolved_database_url.startswith("sqlite:///")


def test_env_and_toml(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    cfg = tmp_path / "v.toml"
    cfg.write_text('api_port = 9100\nbroker_url = "mqtt://broker:1883"\n')
    monkeypatch.setenv("VITALGATE_API_PORT", "9200")
    s = load_settings(cfg)
    assert s.api_port == 9200  # environment beats the file
    assert s.broker_url == "mqtt://broker:1883"


def test_production_refuses_default_secret() -> None:
    with pytest.raises(ValidationError, match="development default"):
        load_settings(mode="production")
    ok = load_settings(mode="production", secret_key="x" * 40)
    assert ok.mode == "production"


def test_unknown_setting_refused(tmp_path: Path) -> None:
    cfg = tmp_path / "v.toml"
    cfg.write_text("api_prot = 1\n")
    with pytest.raises(ValidationError):
        load_settings(cfg)


def test_redact_url_hides_passwords() -> None:
    from gateway.settings import redact_url

    assert redact_url("mqtt://ingest:s3cret@127.0.0.1:1883") == "mqtt://ingest:***@127.0.0.1:1883"
    assert redact_url("postgresql://u:p@db/x") == "postgresql://u:***@db/x"
    assert redact_url("mqtt://127.0.0.1:1883") == "mqtt://127.0.0.1:1883"
