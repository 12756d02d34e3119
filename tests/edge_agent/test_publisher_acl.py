"""A publish the broker's ACL refuses is never taken as delivered (MQTT 5 reason codes).

Runs against the shipped Mosquitto config (per-hub ACL): a hub configured
with another hub's credentials publishes under its own id, the broker
refuses, and the readings stay in the outbox instead of being deleted.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

import pytest

from edge_agent.outbox import Outbox
from edge_agent.publisher import BrokerSettings, Publisher
from tests.edge_agent.test_outbox import item
from tests.edge_agent.test_publisher import until
from tests.support.mosquitto import Mosquitto

pytestmark = [pytest.mark.anyio, pytest.mark.services]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def now() -> datetime:
    return datetime.now(UTC)


async def test_refused_publishes_stay_in_the_outbox(tmp_path: Path, mosquitto: Mosquitto) -> None:
    user, password = mosquitto.add_hub_user("hub-b")  # credentials of another hub
    box = Outbox(tmp_path / "o.db")
    box.add_many([item(n) for n in range(20)])
    pub = Publisher(box, hub_id="hub-a", now=now, window=5, batch_size=5, jitter=None,
                    max_delay_s=0.2, broker=BrokerSettings(
                        f"mqtt://{mosquitto.host}:{mosquitto.port}", username=user,
                        password=password))
    stop = asyncio.Event()
    task = asyncio.create_task(pub.run(stop))
    await until(lambda: pub.refused > 0, 15, "a refused publish")
    stop.set()
    await task
    assert pub.refused > 0
    assert box.depth() == 20  # nothing deleted: the broker never accepted them


async def test_own_id_is_accepted(tmp_path: Path, mosquitto: Mosquitto) -> None:
    user, password = mosquitto.add_hub_user("hub-a")
    box = Outbox(tmp_path / "o.db")
    box.add_many([item(n) for n in range(20)])
    pub = Publisher(box, hub_id="hub-a", now=now, window=5, batch_size=5, jitter=None,
                    broker=BrokerSettings(f"mqtt://{mosquitto.host}:{mosquitto.port}",
                                          username=user, password=password))
    stop = asyncio.Event()
    task = asyncio.create_task(pub.run(stop))
    await until(lambda: box.depth() == 0, 15, "outbox drained")
    stop.set()
    await task
    assert box.depth() == 0 and pub.refused == 0
