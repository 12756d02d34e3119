"""The BLE transport seam: :class:`GattLink`, and :class:`FakeLink` over a scripted device.

Everything above this seam (sessions, the agent) talks to a device only
through :class:`GattLink`, with characteristics named by their 16-bit SIG
UUIDs and data as ``bytes``.  :mod:`edge_agent.bleak_link` is the one real
implementation; :class:`FakeLink` is the real fake the tests use: it talks to
a :class:`ScriptedDevice` that behaves like the devices in BLE.md ("Behaviour
of real devices") -- it indicates its stored backlog when the hub subscribes,
answers Record Access Control Point requests with stored glucose records, has
its own (wrong) clock that the hub can read and set, repeats the last record
of the previous burst at the start of a new one, can reset its glucose
sequence counter, and refuses RACP writes before the hub subscribed.

A new link object is made for every connection (bleak clients must not be
reused); the device's state lives in the :class:`ScriptedDevice`.
"""

from __future__ import annotations

import asyncio
import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol, runtime_checkable

#: (characteristic uuid16, data) -> None; called on the event loop.
NotifyCallback = Callable[[int, bytes], None]

# Characteristic uuid16s the seam and the fake need.
MANUFACTURER_NAME = 0x2A29
MODEL_NUMBER = 0x2A24
SERIAL_NUMBER = 0x2A25
FIRMWARE_REVISION = 0x2A26
BATTERY_LEVEL = 0x2A19
DATE_TIME = 0x2A08
CURRENT_TIME = 0x2A2B
RACP = 0x2A52
GLUCOSE_MEASUREMENT = 0x2A18

_CURRENT_TIME = struct.Struct("<HBBBBBBBB")


class LinkError(Exception):
    """The BLE link failed: not found, connect refused, dropped, or an operation failed.

    ``transient`` tells the caller whether retrying soon is reasonable.
    """

    def __init__(self, message: str, *, transient: bool = True) -> None:
        super().__init__(message)
        self.transient = transient


@runtime_checkable
class GattLink(Protocol):
    """One connection to one BLE device (make a new one per connection)."""

    address: str

    async def connect(self, on_disconnect: Callable[[], None] | None = None) -> None:
        """Connect (and resolve services); ``on_disconnect`` fires if the link drops."""
        ...

    async def disconnect(self) -> None:
        """Disconnect; safe to call when already disconnected."""
        ...

    @property
    def is_connected(self) -> bool:
        """True while connected."""
        ...

    @property
    def services(self) -> frozenset[int]:
        """uuid16s of the characteristics the device exposes."""
        ...

    async def read(self, char: int) -> bytes:
        """Read a characteristic."""
        ...

    async def write(self, char: int, data: bytes, *, response: bool = True) -> None:
        """Write a characteristic (with response by default)."""
        ...

    async def start_notify(self, char: int, callback: NotifyCallback) -> None:
        """Subscribe to notifications or indications of ``char``."""
        ...


def encode_current_time(dt: datetime) -> bytes:
    """Current Time (0x2A2B) bytes for a naive local wall time (adjust reason: manual)."""
    return _CURRENT_TIME.pack(
        dt.year, dt.month, dt.day, dt.hour, dt.minute, dt.second, dt.isoweekday(),
        dt.microsecond * 256 // 1_000_000, 0x01,
    )


def _decode_wall(data: bytes) -> datetime:
    year, month, day, hour, minute, second = struct.unpack_from("<HBBBBB", data)
    return datetime(year, month, day, hour, minute, second)  # noqa: DTZ001 (device wall time)


@dataclass
class ScriptedDevice:
    """A BLE health device in memory, driven by tests (see module docstring).

    ``wall_clock`` returns the true local wall time (naive) -- inject the same
    clock the hub uses.  ``clock_offset_s`` is the device clock minus the true
    time; writing Current Time (or Date Time) moves it.
    """

    address: str
    measurement_char: int
    readable: dict[int, bytes] = field(default_factory=dict)
    wall_clock: Callable[[], datetime] | None = None
    clock_offset_s: float = 0.0
    clock_char: int | None = CURRENT_TIME
    clock_writable: bool = True
    #: Records not yet transferred (indicated when the hub subscribes).
    backlog: list[bytes] = field(default_factory=list)
    #: Glucose: (sequence, bytes) of every stored record, served through RACP.
    stored: list[tuple[int, bytes]] = field(default_factory=list)
    #: The first record of a new burst repeats the last one of the previous burst.
    repeat_last_on_burst: bool = True
    #: Re-send the whole memory on every connection (some devices do).
    resend_memory: bool = False
    #: Drop the link after the backlog was sent (as most BP cuffs and scales do).
    disconnect_after_backlog: bool = True
    #: Refuse this many connection attempts first.
    connect_failures: int = 0
    writes: list[tuple[int, bytes]] = field(default_factory=list)
    connections: int = 0
    _sent: list[bytes] = field(default_factory=list)
    _link: FakeLink | None = None

    # -- test controls -------------------------------------------------------

    def device_now(self) -> datetime:
        """The device's own (possibly wrong) wall time."""
        if self.wall_clock is None:
            raise RuntimeError("ScriptedDevice needs wall_clock for clock operations")
        return self.wall_clock() + timedelta(seconds=self.clock_offset_s)

    def measure(self, data: bytes, sequence: int | None = None) -> None:
        """The patient takes a measurement: indicate it now if connected, else store it."""
        if sequence is not None:
            self.stored.append((sequence, data))
            return
        link = self._link
        if link is not None and link.is_connected and self.measurement_char in link.subscribed:
            self._sent.append(data)
            link._indicate(self.measurement_char, data)
        else:
            self.backlog.append(data)

    def reset_counter(self, keep: bool = False) -> None:
        """Glucose: the sequence counter restarts (memory cleared unless ``keep``)."""
        if not keep:
            self.stored.clear()

    def drop_link(self) -> None:
        """The device goes away (out of range, powered off)."""
        if self._link is not None:
            self._link._dropped()

    # -- behaviour, called by FakeLink -----------------------------------------

    def _read(self, char: int) -> bytes:
        if char == self.clock_char and char is not None:
            now = self.device_now()
            if char == CURRENT_TIME:
                return encode_current_time(now)
            return encode_current_time(now)[:7]
        try:
            return self.readable[char]
        except KeyError:
            raise LinkError(f"characteristic 0x{char:04X} not readable", transient=False) from None

    def _write(self, link: FakeLink, char: int, data: bytes) -> None:
        self.writes.append((char, bytes(data)))
        if char == self.clock_char and char is not None:
            if not self.clock_writable:
                raise LinkError("write not permitted", transient=False)
            assert self.wall_clock is not None
            self.clock_offset_s = (_decode_wall(data) - self.wall_clock()).total_seconds()
            return
        if char == RACP:
            self._racp(link, bytes(data))
            return
        raise LinkError(f"characteristic 0x{char:04X} not writable", transient=False)

    def _racp(self, link: FakeLink, req: bytes) -> None:
        if RACP not in link.subscribed or GLUCOSE_MEASUREMENT not in link.subscribed:
            # A real meter answers nothing a hub could see: the hub never subscribed.
            raise LinkError("RACP written before subscribing to indications", transient=False)
        opcode, operator = req[0], req[1]
        floor = int.from_bytes(req[3:5], "little") if operator == 3 and len(req) >= 5 else None
        chosen = [(s, d) for s, d in self.stored if floor is None or s >= floor]
        if opcode == 4:  # report number of stored records
            link._indicate(RACP, bytes((5, 0)) + len(chosen).to_bytes(2, "little"))
            return
        if opcode != 1:
            link._indicate(RACP, bytes((6, 0, opcode, 2)))  # op code not supported
            return
        if floor is not None and self.repeat_last_on_burst:
            before = [(s, d) for s, d in self.stored if s == floor - 1]
            chosen = before + chosen
        for _, data in chosen:
            link._indicate(GLUCOSE_MEASUREMENT, data)
        link._indicate(RACP, bytes((6, 0, 1, 1 if chosen else 6)))

    def _on_subscribe(self, link: FakeLink, char: int) -> None:
        if char != self.measurement_char or char == GLUCOSE_MEASUREMENT:
            return
        burst: list[bytes] = []
        if self.resend_memory:
            burst = [*self._sent, *self.backlog]
        else:
            if self.repeat_last_on_burst and self._sent and self.backlog:
                burst.append(self._sent[-1])
            burst.extend(self.backlog)
        self._sent.extend(self.backlog)
        self.backlog.clear()
        for data in burst:
            link._indicate(char, data)
        if self.disconnect_after_backlog:
            link._schedule(link._dropped)


class FakeLink:
    """A :class:`GattLink` connected to a :class:`ScriptedDevice` (one per connection)."""

    def __init__(self, device: ScriptedDevice) -> None:
        self.device = device
        self.address = device.address
        self.subscribed: dict[int, NotifyCallback] = {}
        self._connected = False
        self._on_disconnect: Callable[[], None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    async def connect(self, on_disconnect: Callable[[], None] | None = None) -> None:
        """Connect unless the device is scripted to refuse."""
        await asyncio.sleep(0)
        if self.device.connect_failures > 0:
            self.device.connect_failures -= 1
            raise LinkError(f"{self.address}: device not found")
        self._loop = asyncio.get_running_loop()
        self._on_disconnect = on_disconnect
        self._connected = True
        self.device.connections += 1
        self.device._link = self

    async def disconnect(self) -> None:
        """Disconnect (idempotent); does not fire ``on_disconnect``, like bleak."""
        self._connected = False
        if self.device._link is self:
            self.device._link = None

    @property
    def is_connected(self) -> bool:
        """True while connected."""
        return self._connected

    @property
    def services(self) -> frozenset[int]:
        """Characteristics the scripted device exposes."""
        chars = {*self.device.readable, self.device.measurement_char}
        if self.device.clock_char is not None:
            chars.add(self.device.clock_char)
        if self.device.measurement_char == GLUCOSE_MEASUREMENT:
            chars.add(RACP)
        return frozenset(chars)

    async def read(self, char: int) -> bytes:
        """Read from the device."""
        self._check()
        await asyncio.sleep(0)
        return self.device._read(char)

    async def write(self, char: int, data: bytes, *, response: bool = True) -> None:
        """Write to the device (RACP writes trigger scripted indications)."""
        self._check()
        await asyncio.sleep(0)
        self.device._write(self, char, data)

    async def start_notify(self, char: int, callback: NotifyCallback) -> None:
        """Subscribe; subscribing to a measurement may release the backlog."""
        self._check()
        if char not in self.services:
            raise LinkError(f"characteristic 0x{char:04X} not found", transient=False)
        self.subscribed[char] = callback
        await asyncio.sleep(0)
        self.device._on_subscribe(self, char)

    def _check(self) -> None:
        if not self._connected:
            raise LinkError(f"{self.address}: not connected")

    def _schedule(self, fn: Callable[[], None]) -> None:
        assert self._loop is not None
        self._loop.call_soon(fn)

    def _indicate(self, char: int, data: bytes) -> None:
        def deliver() -> None:
            cb = self.subscribed.get(char)
            if self._connected and cb is not None:
                cb(char, bytes(data))

        self._schedule(deliver)

    def _dropped(self) -> None:
        if not self._connected:
            return
        self._connected = False
        if self.device._link is self:
            self.device._link = None
        if self._on_disconnect is not None:
            self._on_disconnect()
