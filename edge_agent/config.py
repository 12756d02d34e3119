"""``hub.toml``: the edge agent's one settings object, validated at start-up.

Example::

    [hub]
    id = "hub-0001"                  # letters, digits, _ . - (the MQTT topic id)
    timezone = "America/New_York"    # IANA zone device clocks are read in
    clock_bound_s = 120              # set a device clock off by more than this

    [broker]
    url = "mqtts://broker.example.org:8883"
    username = "hub-0001"
    password_file = "/etc/vitalgate/broker-password"   # or password = "..."
    ca_file = "/etc/vitalgate/ca.pem"
    cert_file = "/etc/vitalgate/hub.pem"               # client certificate (optional)
    key_file = "/etc/vitalgate/hub.key"

    [outbox]
    path = "/var/lib/vitalgate/outbox.db"
    cap = 200000

    [publish]
    batch_size = 50
    window = 100

    [[devices]]
    address = "A4:C1:38:00:11:22"
    kind = "bp_cuff"                 # scale | bp_cuff | pulse_oximeter | glucometer
    name = "cuff"                    # optional, never PHI
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from edge_agent.clock import DEFAULT_CLOCK_BOUND_S
from edge_agent.outbox import DEFAULT_CAP
from edge_agent.publisher import DEFAULT_BATCH, DEFAULT_WINDOW, BrokerSettings
from edge_agent.session import PairedDevice
from gateway.model import DeviceKind
from gateway.topics import valid_hub_id
from gateway.wire import MAX_READINGS_PER_PAYLOAD


class ConfigError(ValueError):
    """hub.toml is missing, unreadable or invalid; the message names the field."""


@dataclass(frozen=True, slots=True)
class HubConfig:
    """Everything the agent needs, validated."""

    hub_id: str
    tz: ZoneInfo
    broker: BrokerSettings
    outbox_path: Path
    devices: tuple[PairedDevice, ...]
    outbox_cap: int = DEFAULT_CAP
    clock_bound_s: float = DEFAULT_CLOCK_BOUND_S
    batch_size: int = DEFAULT_BATCH
    window: int = DEFAULT_WINDOW


def _table(doc: dict[str, Any], name: str, required: bool = True) -> dict[str, Any]:
    value = doc.get(name, {} if not required else None)
    if not isinstance(value, dict):
        raise ConfigError(f"[{name}] table is missing")
    return value


def _int(table: dict[str, Any], key: str, default: int, where: str, *, lo: int, hi: int) -> int:
    value = table.get(key, default)
    if not isinstance(value, int) or isinstance(value, bool) or not lo <= value <= hi:
        raise ConfigError(f"{where}.{key} must be an integer in {lo}..{hi}")
    return value


def _opt_str(table: dict[str, Any], key: str, where: str) -> str | None:
    value = table.get(key)
    if value is not None and not isinstance(value, str):
        raise ConfigError(f"{where}.{key} must be a string")
    return value


def parse_config(doc: dict[str, Any], base: Path | None = None) -> HubConfig:
    """Validate a parsed TOML document; relative paths are resolved against ``base``."""
    base = base or Path.cwd()

    def path(p: str) -> Path:
        return (base / p) if not Path(p).is_absolute() else Path(p)

    hub = _table(doc, "hub")
    hub_id = hub.get("id")
    if not isinstance(hub_id, str) or not valid_hub_id(hub_id):
        raise ConfigError("hub.id must be 1-64 letters, digits, '_', '.', '-'")
    try:
        tz = ZoneInfo(str(hub.get("timezone", "")))
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError("hub.timezone must be an IANA zone such as 'America/New_York'") from None
    bound = hub.get("clock_bound_s", DEFAULT_CLOCK_BOUND_S)
    if not isinstance(bound, int | float) or bound < 1:
        raise ConfigError("hub.clock_bound_s must be a number >= 1")

    b = _table(doc, "broker")
    url = b.get("url")
    if not isinstance(url, str) or not url.startswith(("mqtt://", "mqtts://")):
        raise ConfigError("broker.url must look like mqtt://host:1883 or mqtts://host:8883")
    password = _opt_str(b, "password", "broker")
    password_file = _opt_str(b, "password_file", "broker")
    if password_file is not None:
        try:
            password = path(password_file).read_text().strip()
        except OSError as exc:
            raise ConfigError(f"broker.password_file: {exc.strerror}") from None
    def file(key: str) -> str | None:
        value = _opt_str(b, key, "broker")
        return None if value is None else str(path(value))

    broker = BrokerSettings(
        url=url,
        username=_opt_str(b, "username", "broker"),
        password=password,
        client_id=_opt_str(b, "client_id", "broker"),
        ca_file=file("ca_file"),
        cert_file=file("cert_file"),
        key_file=file("key_file"),
    )

    o = _table(doc, "outbox", required=False)
    outbox_path = path(str(o.get("path", "outbox.db")))
    cap = _int(o, "cap", DEFAULT_CAP, "outbox", lo=1, hi=100_000_000)
    p = _table(doc, "publish", required=False)
    batch = _int(p, "batch_size", DEFAULT_BATCH, "publish", lo=1, hi=MAX_READINGS_PER_PAYLOAD)
    window = _int(p, "window", DEFAULT_WINDOW, "publish", lo=1, hi=60_000)

    raw_devices = doc.get("devices", [])
    if not isinstance(raw_devices, list):
        raise ConfigError("[[devices]] must be an array of tables")
    devices = []
    for i, d in enumerate(raw_devices):
        where = f"devices[{i}]"
        if not isinstance(d, dict) or not isinstance(d.get("address"), str):
            raise ConfigError(f"{where}.address is required")
        try:
            kind = DeviceKind(str(d.get("kind")))
        except ValueError:
            raise ConfigError(
                f"{where}.kind must be one of {', '.join(k.value for k in DeviceKind)}"
            ) from None
        devices.append(PairedDevice(address=d["address"].upper(), kind=kind,
                                    name=str(d.get("name", ""))))
    if len({d.address for d in devices}) != len(devices):
        raise ConfigError("a device address is listed twice")
    return HubConfig(hub_id=hub_id, tz=tz, broker=broker, outbox_path=outbox_path,
                     devices=tuple(devices), outbox_cap=cap, clock_bound_s=float(bound),
                     batch_size=batch, window=window)


def load_config(path: str | Path) -> HubConfig:
    """Read and validate ``hub.toml``."""
    p = Path(path)
    try:
        doc = tomllib.loads(p.read_text())
    except OSError as exc:
        raise ConfigError(f"{p}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{p}: not valid TOML ({exc})") from None
    return parse_config(doc, p.parent)
