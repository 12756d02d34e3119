"""Run the whole edge agent with scripted FakeLink devices (used as a subprocess by tests).

    python -m tests.edge_agent.agent_proc HUB_TOML RECORDS_PER_DEVICE

The scripted devices are deterministic (fixed device times and values), so
every run produces the same reading ids; :func:`scripted_devices` is also used
by the test to compute the ids it expects.
"""

from __future__ import annotations

import asyncio
import signal
import sys
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from edge_agent.agent import Agent
from edge_agent.agent_cli import setup_logging
from edge_agent.config import load_config
from edge_agent.link import FakeLink, ScriptedDevice
from edge_agent.session import PairedDevice
from gateway.model import DeviceKind
from tests.edge_agent.scripted import bp, device, glucose, spo2, weight

FIRST = datetime(2026, 1, 1, 6, 0)  # device wall time of the first stored record
ADDRESSES = {
    DeviceKind.BP_CUFF: "AA:00:00:00:00:01",
    DeviceKind.SCALE: "AA:00:00:00:00:02",
    DeviceKind.PULSE_OXIMETER: "AA:00:00:00:00:03",
    DeviceKind.GLUCOMETER: "AA:00:00:00:00:04",
}


def scripted_devices(n: int, tz: ZoneInfo) -> dict[str, ScriptedDevice]:
    """Four devices, each with ``n`` stored records; the cuff's clock is an hour ahead."""

    def wall() -> datetime:
        return datetime.now(UTC).astimezone(tz).replace(tzinfo=None)

    def at(i: int) -> datetime:
        return FIRST + timedelta(minutes=20 * i)

    cuff = device(DeviceKind.BP_CUFF, ADDRESSES[DeviceKind.BP_CUFF], "BP-1", wall, 3600.0)
    cuff.backlog = [bp(at(i), sys_=100 + i % 60, failed=i % 97 == 0) for i in range(n)]
    scale = device(DeviceKind.SCALE, ADDRESSES[DeviceKind.SCALE], "SC-1", wall)
    scale.backlog = [weight(at(i), kg=f"{70 + (i % 200) * 0.05:.2f}") for i in range(n)]
    ox = device(DeviceKind.PULSE_OXIMETER, ADDRESSES[DeviceKind.PULSE_OXIMETER], "OX-1", wall,
                resend_memory=True)
    ox.backlog = [spo2(at(i), pct=90 + i % 10) for i in range(n)]
    meter = device(DeviceKind.GLUCOMETER, ADDRESSES[DeviceKind.GLUCOMETER], "GL-1", wall)
    meter.stored = [(i, glucose(i, at(i), mg_dl=80 + i % 100)) for i in range(n)]
    return {d.address: d for d in (cuff, scale, ox, meter)}


async def main(config_path: str, n: int) -> None:
    cfg = load_config(config_path)
    devices = scripted_devices(n, cfg.tz)

    async def factory(paired: PairedDevice) -> FakeLink:
        return FakeLink(devices[paired.address])

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    agent = Agent(cfg, link_factory=factory, ble_base_s=0.5, ble_max_s=1.0,
                  after_session_s=0.5, glucose_resync_s=1.0, broker_max_delay_s=0.2)
    await agent.run(stop)


if __name__ == "__main__":
    setup_logging()
    asyncio.run(main(sys.argv[1], int(sys.argv[2])))
