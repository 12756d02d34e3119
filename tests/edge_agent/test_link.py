"""The transport seam: FakeLink conforms, bleak link imports and maps UUIDs and errors."""

from __future__ import annotations

import pytest

from edge_agent.bleak_link import BleakLink, str_to_uuid16, uuid16_to_str
from edge_agent.link import GattLink, LinkError, ScriptedDevice

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def test_fake_link_is_a_gatt_link() -> None:
    from edge_agent.link import FakeLink

    assert isinstance(FakeLink(ScriptedDevice("AA", 0x2A35)), GattLink)


def test_uuid_mapping() -> None:
    assert uuid16_to_str(0x2A35) == "00002a35-0000-1000-8000-00805f9b34fb"
    assert str_to_uuid16("00002A52-0000-1000-8000-00805F9B34FB") == 0x2A52
    assert str_to_uuid16("6e400001-b5a3-f393-e0a9-e50e24dcca9e") is None


async def test_bleak_link_unconnected_raises_link_error() -> None:
    from bleak.backends.device import BLEDevice

    link = BleakLink(BLEDevice("aa:bb:cc:dd:ee:ff", "cuff", {}))
    assert link.address == "AA:BB:CC:DD:EE:FF" and not link.is_connected
    assert isinstance(link, GattLink)
    with pytest.raises(LinkError, match="not connected"):
        await link.read(0x2A25)
    await link.disconnect()  # idempotent
