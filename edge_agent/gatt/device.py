"""Battery Level (0x2A19) and Device Information strings (0x2A29/24/25/26)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from edge_agent.gatt.numbers import Reader
from gateway.units import Unit

BATTERY_LEVEL = 0x2A19
MANUFACTURER_NAME = 0x2A29
MODEL_NUMBER = 0x2A24
SERIAL_NUMBER = 0x2A25
FIRMWARE_REVISION = 0x2A26
DEVICE_INFO_STRINGS = {
    MANUFACTURER_NAME: "manufacturer_name",
    MODEL_NUMBER: "model_number",
    SERIAL_NUMBER: "serial_number",
    FIRMWARE_REVISION: "firmware_revision",
}


@dataclass(frozen=True, slots=True)
class BatteryLevel:
    """Battery Level (0x2A19), percent 0-100."""

    characteristic: ClassVar[int] = BATTERY_LEVEL

    level: int

    def canonical(self) -> dict[str, float | None]:
        """Battery in %."""
        return {"battery": float(self.level)}

    def json_fields(self) -> dict[str, object]:
        """Fields for :func:`edge_agent.gatt.to_json_dict`."""
        return {
            "unit": Unit.PERCENT.value,
            "values": {"battery": self.level},
            "canonical": self.canonical(),
        }


def decode_battery_level(data: bytes) -> BatteryLevel:
    """Decode Battery Level (0x2A19): exactly one byte, 0..100; anything else is refused.

    A longer value means the wrong characteristic was read (e.g. a vendor
    status), so it is not silently truncated.
    """
    r = Reader(BATTERY_LEVEL, data)
    level = r.u8("battery_level")
    if level > 100:
        raise r.error(f"battery level {level} is outside 0..100", 0)
    if r.remaining():
        raise r.error(f"battery level is 1 byte, got {len(r.data)}")
    return BatteryLevel(level)


@dataclass(frozen=True, slots=True)
class DeviceInformationString:
    """A Device Information UTF-8 string; invalid bytes are replaced, NUL padding dropped."""

    characteristic: int
    text: str
    raw: bytes

    @property
    def field(self) -> str:
        """``manufacturer_name``, ``model_number``, ``serial_number`` or ``firmware_revision``."""
        return DEVICE_INFO_STRINGS.get(self.characteristic, "string")

    @property
    def valid_utf8(self) -> bool:
        """False if any byte had to be replaced."""
        try:
            self.raw.decode("utf-8")
        except UnicodeDecodeError:
            return False
        return True

    def json_fields(self) -> dict[str, object]:
        """Fields for :func:`edge_agent.gatt.to_json_dict`."""
        return {"field": self.field, "text": self.text, "valid_utf8": self.valid_utf8}


def decode_device_information_string(characteristic: int, data: bytes) -> DeviceInformationString:
    """Decode a Device Information string characteristic."""
    raw = bytes(data)
    text = raw.decode("utf-8", errors="replace").rstrip("\x00")
    return DeviceInformationString(characteristic, text, raw)
