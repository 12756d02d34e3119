"""The edge agent process: one event loop, one TaskGroup, one task per device + the publisher.

Each paired device gets a supervisor task that asks the injectable
``link_factory`` for a fresh :class:`~edge_agent.link.GattLink` (bleak in
production, :class:`~edge_agent.link.FakeLink` in tests), runs a
:class:`~edge_agent.session.DeviceSession` on it and, when the device goes
away, tries again: soon after a clean session (devices advertise briefly
after a measurement), with BLE backoff after failures.  The publisher task
drains the outbox.  ``stop`` ends everything cleanly.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

from edge_agent.backoff import BLE_BASE_DELAY_S, BLE_MAX_DELAY_S, backoff
from edge_agent.config import HubConfig
from edge_agent.link import GattLink, LinkError
from edge_agent.outbox import Outbox
from edge_agent.publisher import Publisher
from edge_agent.session import DeviceSession, PairedDevice
from gateway.model import DeviceKind

log = logging.getLogger(__name__)

#: Builds a new link for one connection attempt (may scan; raises LinkError).
LinkFactory = Callable[[PairedDevice], Awaitable[GattLink]]

AGENT_VERSION = "0.1.0"
#: Pause after a completed session before looking for the device again: cuffs
#: and scales drop the link after their backlog and advertise again only after
#: the next measurement; scanning every few seconds catches that window.
AFTER_SESSION_S = 5.0
#: A glucose meter that stays connectable is re-synced at most this often
#: (each sync is a RACP round trip; new records are rare).
GLUCOSE_RESYNC_S = 300.0


def utc_now() -> datetime:
    """The wall clock, UTC (the one place the agent reads it)."""
    return datetime.now(UTC)


class Agent:
    """Wires outbox, publisher and device sessions for one hub."""

    def __init__(
        self,
        config: HubConfig,
        *,
        link_factory: LinkFactory,
        now: Callable[[], datetime] = utc_now,
        jitter: Callable[[], float] | None = random.random,
        ble_base_s: float = BLE_BASE_DELAY_S,
        ble_max_s: float = BLE_MAX_DELAY_S,
        after_session_s: float = AFTER_SESSION_S,
        glucose_resync_s: float = GLUCOSE_RESYNC_S,
        broker_max_delay_s: float | None = None,
    ) -> None:
        self.config = config
        self.link_factory = link_factory
        self.now = now
        self.jitter = jitter
        self.ble_base_s = ble_base_s
        self.ble_max_s = ble_max_s
        self.broker_max_delay_s = broker_max_delay_s
        self.after_session_s = after_session_s
        self.glucose_resync_s = glucose_resync_s
        self.outbox: Outbox | None = None
        self.publisher: Publisher | None = None

    async def run(self, stop: asyncio.Event) -> None:
        """Run until ``stop`` is set."""
        cfg = self.config
        outbox = Outbox(cfg.outbox_path, cap=cfg.outbox_cap,
                        clock=lambda: self.now().timestamp())
        self.outbox = outbox
        publisher = Publisher(
            outbox, hub_id=cfg.hub_id, broker=cfg.broker, now=self.now, window=cfg.window,
            batch_size=cfg.batch_size, jitter=self.jitter, max_delay_s=self.broker_max_delay_s,
            agent_version=AGENT_VERSION,
        )
        self.publisher = publisher
        outbox.set_state("hub", {"hub_id": cfg.hub_id, "started_at": self.now().isoformat(),
                                 "devices": [d.address for d in cfg.devices]})
        log.info("agent started", extra={"hub": cfg.hub_id, "devices": len(cfg.devices),
                                         "outbox_depth": outbox.depth()})
        try:
            async with asyncio.TaskGroup() as tg:
                tg.create_task(publisher.run(stop), name="publisher")
                for device in cfg.devices:
                    session = DeviceSession(device, outbox, tz=cfg.tz, now=self.now,
                                            clock_bound_s=cfg.clock_bound_s,
                                            on_stored=publisher.notify)
                    tg.create_task(self._device_loop(session, publisher, stop),
                                   name=f"device {device.address}")
        finally:
            outbox.close()
            log.info("agent stopped", extra={"hub": cfg.hub_id})

    async def _device_loop(self, session: DeviceSession, publisher: Publisher,
                           stop: asyncio.Event) -> None:
        attempt = 0
        address = session.device.address
        while not stop.is_set():
            try:
                link = await self.link_factory(session.device)
                result = await session.run(link, stop)
                publisher.devices_changed()
                attempt = 0
                delay = (self.glucose_resync_s if session.device.kind is DeviceKind.GLUCOMETER
                         else self.after_session_s)
                log.info("device session", extra={"device": address, "stored": result.stored,
                                                  "clock_set": result.clock_set})
            except LinkError as exc:
                delay = backoff(attempt, base=self.ble_base_s, cap=self.ble_max_s,
                                floor=min(0.5, self.ble_base_s), jitter=self.jitter)
                attempt += 1
                log.info("device unavailable", extra={"device": address, "attempt": attempt,
                                                      "error": str(exc)[:200]})
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), delay)
