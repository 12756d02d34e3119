"""Publisher against a REAL mosquitto: batching, window, PUBACK-only delete, outage, LWT."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from edge_agent.outbox import Outbox
from edge_agent.publisher import BrokerSettings, Publisher, batches
from gateway.model import DeviceKind
from tests.edge_agent.broker import Consumer, Mosquitto
from tests.edge_agent.test_outbox import item

pytestmark = [pytest.mark.anyio, pytest.mark.services]
HUB = "hub-test-1"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Mosquitto]:
    b = Mosquitto(tmp_path / "broker")
    b.start()
    yield b
    b.stop()


@pytest.fixture
def consumer(broker: Mosquitto) -> Iterator[Consumer]:
    c = Consumer(broker.port, HUB)
    assert c.subscribed.wait(10), "consumer subscription not acknowledged"
    yield c
    c.close()


def now() -> datetime:
    return datetime.now(UTC)


async def until(predicate, within: float, what: str) -> None:
    deadline = time.monotonic() + within
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {within}s waiting for {what}")
        await asyncio.sleep(0.02)


def test_batches_group_per_device_and_chunk(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "o.db")
    box.add_many([item(n, serial="A" if n % 3 else "B") for n in range(10)])
    groups = list(batches(box.pending(), 3))
    assert [(s, len(g)) for s, g in groups] == [("B", 3), ("B", 1), ("A", 3), ("A", 3)]


async def test_drain_batched_windowed_acked(tmp_path: Path, broker: Mosquitto,
                                            consumer: Consumer) -> None:
    box = Outbox(tmp_path / "o.db")
    box.add_many([item(n, serial="SN-A") for n in range(130)])
    box.add_many([item(n, serial="SN-B", kind=DeviceKind.SCALE) for n in range(100)])
    box.set_state("device:AA", {"device": {"serial": "SN-A", "kind": "bp_cuff", "battery": 50}})
    expected = {r.reading_id for r in box.pending(limit=1000)}
    pub = Publisher(box, hub_id=HUB, broker=BrokerSettings(broker.url), now=now,
                    window=3, batch_size=20, jitter=None)
    stop = asyncio.Event()
    task = asyncio.create_task(pub.run(stop))
    await until(lambda: box.depth() == 0, 15, "outbox drained")
    await until(lambda: consumer.count() == len(expected), 5, "consumer got every id")
    await until(lambda: consumer.devices, 5, "devices payload")
    stop.set()
    await task
    assert set(consumer.ids) == expected
    assert not consumer.errors
    assert all(len(p.readings) <= 20 for p in consumer.payloads)
    assert all(len({r.id.split("-")[0] for r in p.readings}) == 1 for p in consumer.payloads)
    assert {p.device.serial for p in consumer.payloads} == {"SN-A", "SN-B"}
    assert pub.peak_inflight <= 3 + 1  # window (+1: one payload per extra device in a fetch)
    online = [s for s in consumer.statuses if s[0] == "online"]
    assert online and online[0][2] == 230  # depth reported on connect
    assert online[-1][2] == 0  # refreshed once the backlog was delivered
    assert consumer.statuses[-1][0] == "offline"  # clean stop says goodbye
    assert box.get_state("broker")["state"] == "stopped"
    assert box.was_published(next(iter(expected)))


async def test_broker_outage_then_recovery(tmp_path: Path, broker: Mosquitto,
                                           consumer: Consumer) -> None:
    box = Outbox(tmp_path / "o.db")
    pub = Publisher(box, hub_id=HUB, broker=BrokerSettings(broker.url), now=now,
                    window=10, batch_size=10, jitter=None, max_delay_s=0.2)
    stop = asyncio.Event()
    task = asyncio.create_task(pub.run(stop))
    box.add_many([item(n) for n in range(50)])
    pub.notify()
    await until(lambda: consumer.count() == 50, 10, "first 50")
    await asyncio.to_thread(broker.stop)
    await until(lambda: not pub.connected, 5, "publisher notices the outage")
    box.add_many([item(n) for n in range(50, 150)])
    pub.notify()
    await asyncio.sleep(0.5)  # several failed reconnect attempts
    assert box.depth() == 100
    assert box.get_state("broker")["state"] in ("connecting", "disconnected")
    await asyncio.to_thread(broker.start)
    await until(lambda: box.depth() == 0, 15, "backlog drained after restart")
    await until(lambda: consumer.count() == 150, 10,
                f"consumer got every id ({consumer.count()} {consumer.client.is_connected()})")
    stop.set()
    await task
    assert set(consumer.ids) == {item(n).id for n in range(150)}
