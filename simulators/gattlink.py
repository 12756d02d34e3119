"""The edge agent's :class:`~edge_agent.link.GattLink` seam over a simulated device.

:class:`SimGattLink` lets the real :class:`~edge_agent.session.DeviceSession`
talk to a :class:`~simulators.devices.SimulatedDevice` exactly as it talks to
bleak: reads, writes (clock, RACP) and indications, all on the event loop.
Like most cuffs, scales and oximeters, the device indicates its backlog as
soon as the hub subscribes to the measurement characteristic and then drops
the link; glucose meters answer RACP and stay connected until the hub leaves.
Make one link per connection (as with bleak); the device keeps its state.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime
from functools import partial

from edge_agent.link import LinkError, NotifyCallback
from gateway.model import DeviceKind
from simulators.devices import DeviceSimulationError, Notification, SimulatedDevice


class SimGattLink:
    """A :class:`~edge_agent.link.GattLink` connected to one simulated device.

    ``now`` is the true (simulated) UTC time, used for the device clock.
    ``connect_failures`` connection attempts are refused first (transient).
    """

    def __init__(self, device: SimulatedDevice, now: Callable[[], datetime], *,
                 drop_after_backlog: bool = True, connect_failures: int = 0) -> None:
        self.device = device
        self.address = device.address
        self.now = now
        self.drop_after_backlog = drop_after_backlog
        self.connect_failures = connect_failures
        self.subscribed: dict[int, NotifyCallback] = {}
        self.delivered = 0
        self._connected = False
        self._on_disconnect: Callable[[], None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    async def connect(self, on_disconnect: Callable[[], None] | None = None) -> None:
        """Connect (unless scripted to refuse)."""
        await asyncio.sleep(0)
        if self.connect_failures > 0:
            self.connect_failures -= 1
            raise LinkError(f"{self.address}: device not found")
        self._loop = asyncio.get_running_loop()
        self._on_disconnect = on_disconnect
        self._connected = True

    async def disconnect(self) -> None:
        """Disconnect (idempotent; does not fire ``on_disconnect``, like bleak)."""
        self._connected = False

    @property
    def is_connected(self) -> bool:
        """True while connected."""
        return self._connected

    @property
    def services(self) -> frozenset[int]:
        """Characteristics the device exposes."""
        return frozenset(self.device.characteristics())

    async def read(self, char: int) -> bytes:
        """Read a characteristic of the device."""
        self._check()
        await asyncio.sleep(0)
        try:
            return self.device.read(char, self.now())
        except DeviceSimulationError as e:
            raise LinkError(str(e), transient=False) from None

    async def write(self, char: int, data: bytes, *, response: bool = True) -> None:
        """Write to the device; its answers (RACP) arrive as indications."""
        self._check()
        await asyncio.sleep(0)
        try:
            answers = self.device.write(char, bytes(data), self.now())
        except DeviceSimulationError as e:
            raise LinkError(str(e), transient=False) from None
        self._indicate_all(answers)

    async def start_notify(self, char: int, callback: NotifyCallback) -> None:
        """Subscribe; subscribing to the measurement releases the backlog."""
        self._check()
        if char not in self.services:
            raise LinkError(f"characteristic 0x{char:04X} not found", transient=False)
        self.subscribed[char] = callback
        await asyncio.sleep(0)
        if char == self.device.measurement_uuid and self.device.kind is not DeviceKind.GLUCOMETER:
            self._indicate_all(self.device.connect(self.now()))
            if self.drop_after_backlog:
                self._schedule(self._dropped)

    def _check(self) -> None:
        if not self._connected:
            raise LinkError(f"{self.address}: not connected")

    def _schedule(self, fn: Callable[[], None]) -> None:
        assert self._loop is not None
        self._loop.call_soon(fn)

    def _indicate_all(self, notifications: list[Notification]) -> None:
        for char, data in notifications:
            self._schedule(partial(self._deliver, char, data))

    def _deliver(self, char: int, data: bytes) -> None:
        cb = self.subscribed.get(char)
        if self._connected and cb is not None:
            self.delivered += 1
            cb(char, data)

    def _dropped(self) -> None:
        if not self._connected:
            return
        self._connected = False
        if self._on_disconnect is not None:
            self._on_disconnect()
