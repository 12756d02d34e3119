"""hub.toml validation."""

from __future__ import annotations

from pathlib import Path

import pytest

from edge_agent.config import ConfigError, load_config, parse_config
from gateway.model import DeviceKind

GOOD = {
    "hub": {"id": "hub-1", "timezone": "America/Denver"},
    "broker": {"url": "mqtts://broker.example:8884", "username": "hub-1", "password": "pw",
               "ca_file": "ca.pem"},
    "devices": [{"address": "aa:bb:cc:dd:ee:ff", "kind": "glucometer", "name": "meter"}],
}


def test_good_config(tmp_path: Path) -> None:
    cfg = parse_config(GOOD, tmp_path)
    assert cfg.hub_id == "hub-1" and str(cfg.tz) == "America/Denver"
    assert cfg.broker.tls and cfg.broker.port == 8884 and cfg.broker.host == "broker.example"
    assert cfg.broker.ca_file == str(tmp_path / "ca.pem")
    assert cfg.devices[0].address == "AA:BB:CC:DD:EE:FF"
    assert cfg.devices[0].kind is DeviceKind.GLUCOMETER
    assert cfg.outbox_path == tmp_path / "outbox.db" and cfg.window == 100


def test_password_file(tmp_path: Path) -> None:
    (tmp_path / "pw").write_text("s3cret\n")
    doc = {**GOOD, "broker": {"url": "mqtt://b", "password_file": "pw"}}
    cfg = parse_config(doc, tmp_path)
    assert cfg.broker.password == "s3cret" and not cfg.broker.tls and cfg.broker.port == 1883


@pytest.mark.parametrize(("patch", "message"), [
    ({"hub": {"id": "bad/id", "timezone": "UTC"}}, "hub.id"),
    ({"hub": {"id": "h", "timezone": "Mars/Olympus"}}, "hub.timezone"),
    ({"broker": {"url": "http://x"}}, "broker.url"),
    ({"devices": [{"address": "A", "kind": "toaster"}]}, "devices[0].kind"),
    ({"devices": [{"kind": "scale"}]}, "devices[0].address"),
    ({"devices": [{"address": "A", "kind": "scale"}, {"address": "a", "kind": "scale"}]},
     "twice"),
    ({"publish": {"window": 0}}, "publish.window"),
    ({"outbox": {"cap": "many"}}, "outbox.cap"),
])
def test_invalid(tmp_path: Path, patch: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("]", r"\]")):
        parse_config({**GOOD, **patch}, tmp_path)


def test_load_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="No such file"):
        load_config(tmp_path / "missing.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[hub\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(bad)
