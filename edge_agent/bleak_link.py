"""The real BLE transport: :class:`BleakLink` (bleak 3 + bleak-retry-connector).

The only module that imports bleak.  Follows BLE.md "Behaviour of real
devices": the link is built from the ``BLEDevice`` the scanner returned (never
an address string), a new client per connection, ``establish_connection``
retries transient BlueZ failures, at least :data:`CONNECT_TIMEOUT_S` to
connect, and indications are enabled with ``start_notify`` (bleak 3 refuses
raw CCCD writes).  Bonding is done beforehand (``bluetoothctl``).  bleak
errors become :class:`~edge_agent.link.LinkError` here, once.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

from bleak import BleakClient, BleakScanner
from bleak.backends.characteristic import BleakGATTCharacteristic
from bleak.backends.device import BLEDevice
from bleak.exc import BleakError
from bleak_retry_connector import BleakClientWithServiceCache, establish_connection

from edge_agent.link import LinkError, NotifyCallback
from edge_agent.session import SERVICE, PairedDevice

#: Per-attempt connect timeout: bleak-retry-connector's own BLEAK_TIMEOUT (20 s,
#: BLE.md asks >= 10 s) is used by ``establish_connection``; kept here for reference.
CONNECT_TIMEOUT_S = 20.0
#: How long to scan for a paired device before giving up this attempt; devices
#: advertise for a few seconds after a measurement, so the agent rescans often.
SCAN_TIMEOUT_S = 10.0
#: bleak-retry-connector attempts per connection (transient BlueZ errors).
CONNECT_ATTEMPTS = 3

_BASE_SUFFIX = "-0000-1000-8000-00805f9b34fb"
_BASE_UUID = "0000{:04x}" + _BASE_SUFFIX


def uuid16_to_str(uuid16: int) -> str:
    """Full 128-bit UUID string of a SIG 16-bit UUID."""
    return _BASE_UUID.format(uuid16)


def str_to_uuid16(uuid: str) -> int | None:
    """The 16-bit UUID of a SIG-base UUID string, else ``None``."""
    u = uuid.lower()
    if len(u) == 36 and u[8:] == _BASE_SUFFIX and u.startswith("0000"):
        return int(u[4:8], 16)
    return None


async def find_device(device: PairedDevice, scan_s: float = SCAN_TIMEOUT_S) -> BLEDevice:
    """Scan for a paired device by address, falling back to its profile's service UUID."""
    try:
        found = await BleakScanner.find_device_by_address(device.address, timeout=scan_s)
        if found is None:
            service = uuid16_to_str(SERVICE[device.kind])

            def match(d: BLEDevice, adv: Any) -> bool:
                return d.address.upper() == device.address and service in adv.service_uuids

            found = await BleakScanner.find_device_by_filter(match, timeout=scan_s)
    except (BleakError, OSError) as exc:
        raise LinkError(f"scan failed: {exc}") from exc
    if found is None:
        raise LinkError(f"{device.address} not advertising")
    return found


class BleakLink:
    """:class:`~edge_agent.link.GattLink` over bleak; one instance per connection."""

    def __init__(self, ble_device: BLEDevice, name: str = "") -> None:
        self._ble_device = ble_device
        self.address = ble_device.address.upper()
        self._name = name or self.address
        self._client: BleakClient | None = None
        self._chars: dict[int, BleakGATTCharacteristic] = {}

    async def connect(self, on_disconnect: Callable[[], None] | None = None) -> None:
        """Connect with retries and resolve the characteristics."""

        def dropped(_client: BleakClient) -> None:
            if on_disconnect is not None:
                on_disconnect()

        try:
            client = await establish_connection(
                BleakClientWithServiceCache, self._ble_device, self._name,
                disconnected_callback=dropped, max_attempts=CONNECT_ATTEMPTS,
            )
        except (BleakError, TimeoutError, OSError) as exc:
            raise LinkError(f"connect failed: {exc}") from exc
        self._client = client
        for service in client.services:
            for char in service.characteristics:
                uuid16 = str_to_uuid16(char.uuid)
                if uuid16 is not None:
                    self._chars.setdefault(uuid16, char)

    async def disconnect(self) -> None:
        """Disconnect (idempotent)."""
        client, self._client = self._client, None
        if client is not None:
            with contextlib.suppress(BleakError, TimeoutError, OSError):
                await client.disconnect()

    @property
    def is_connected(self) -> bool:
        """True while connected."""
        return self._client is not None and self._client.is_connected

    @property
    def services(self) -> frozenset[int]:
        """uuid16s of the characteristics found."""
        return frozenset(self._chars)

    def _char(self, uuid16: int) -> tuple[BleakClient, BleakGATTCharacteristic]:
        if self._client is None:
            raise LinkError("not connected")
        try:
            return self._client, self._chars[uuid16]
        except KeyError:
            raise LinkError(f"characteristic 0x{uuid16:04X} not found", transient=False) from None

    async def read(self, char: int) -> bytes:
        """Read a characteristic."""
        client, c = self._char(char)
        try:
            return bytes(await client.read_gatt_char(c))
        except (BleakError, TimeoutError, OSError) as exc:
            raise LinkError(f"read 0x{char:04X} failed: {exc}") from exc

    async def write(self, char: int, data: bytes, *, response: bool = True) -> None:
        """Write a characteristic."""
        client, c = self._char(char)
        try:
            await client.write_gatt_char(c, data, response=response)
        except (BleakError, TimeoutError, OSError) as exc:
            raise LinkError(f"write 0x{char:04X} failed: {exc}") from exc

    async def start_notify(self, char: int, callback: NotifyCallback) -> None:
        """Enable notifications/indications; the callback runs on the event loop."""
        client, c = self._char(char)

        def deliver(_sender: BleakGATTCharacteristic, data: bytearray) -> None:
            callback(char, bytes(data))

        try:
            await client.start_notify(c, deliver)
        except (BleakError, TimeoutError, OSError) as exc:
            raise LinkError(f"subscribe 0x{char:04X} failed: {exc}") from exc


async def bleak_link_factory(device: PairedDevice) -> BleakLink:
    """Agent link factory: scan for the device, then make a fresh link."""
    ble_device = await find_device(device)
    return BleakLink(ble_device, device.name)


async def scan(scan_s: float = SCAN_TIMEOUT_S) -> list[tuple[str, str, list[str]]]:
    """Scan and list (address, name, health services) of nearby health devices."""
    wanted = {uuid16_to_str(s) for s in SERVICE.values()}
    try:
        found = await BleakScanner.discover(timeout=scan_s, return_adv=True)
    except (BleakError, OSError) as exc:
        raise LinkError(f"scan failed: {exc}") from exc
    out = []
    for dev, adv in found.values():
        services = sorted(set(adv.service_uuids) & wanted)
        if services:
            out.append((dev.address, adv.local_name or "", services))
    return out
