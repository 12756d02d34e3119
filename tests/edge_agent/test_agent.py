"""The whole agent (subprocess, FakeLink devices) against a REAL mosquitto.

Scripted sessions of four devices publish; the broker is stopped and
restarted; the agent is SIGKILLed mid-backlog and restarted; a consumer
counting ids must see every id (duplicates allowed on the wire, none lost).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from edge_agent.agent_cli import status_report
from edge_agent.config import load_config
from edge_agent.link import FakeLink
from edge_agent.outbox import Outbox
from edge_agent.session import DeviceSession, PairedDevice
from gateway.cli import main as vitalgate
from tests.edge_agent.agent_proc import ADDRESSES, scripted_devices
from tests.edge_agent.broker import Consumer, wait_for
from tests.support.mosquitto import Mosquitto, MosquittoError
from tests.support.services import require_service

pytestmark = pytest.mark.services
ROOT = Path(__file__).resolve().parents[2]
HUB = "hub-agent-1"
TZ = "America/Chicago"
N = 700  # stored records per device


def write_config(tmp: Path, url: str, username: str = "", password: str = "") -> Path:
    devices = "".join(
        f'\n[[devices]]\naddress = "{addr}"\nkind = "{kind}"\n' for kind, addr in ADDRESSES.items()
    )
    path = tmp / "hub.toml"
    path.write_text(
        f'[hub]\nid = "{HUB}"\ntimezone = "{TZ}"\nclock_bound_s = 120\n'
        f'[broker]\nurl = "{url}"\n'
        + (f'username = "{username}"\npassword = "{password}"\n' if username else "")
        + '[outbox]\npath = "outbox.db"\ncap = 100000\n'
        + f"[publish]\nbatch_size = 5\nwindow = 2\n{devices}"
    )
    return path


def expected_ids(tmp: Path) -> set[str]:
    """Every id the scripted devices produce, computed without a broker."""
    box = Outbox(tmp / "expected.db")
    devices = scripted_devices(N, ZoneInfo(TZ))

    async def run() -> None:
        for kind, addr in ADDRESSES.items():
            s = DeviceSession(PairedDevice(addr, kind), box, tz=ZoneInfo(TZ),
                              now=lambda: datetime.now(UTC))
            await s.run(FakeLink(devices[addr]))

    asyncio.run(run())
    ids = {r.reading_id for r in box.pending(limit=100_000)}
    box.close()
    return ids


def start_agent(config: Path, log: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([sys.executable, "-m", "tests.edge_agent.agent_proc", str(config),
                             str(N)], cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                            stderr=log.open("ab"))


def depth(db: Path) -> int:
    box = Outbox(db)
    try:
        return box.depth()
    finally:
        box.close()


def test_agent_outage_kill_restart_no_id_lost(tmp_path: Path) -> None:
    """Runs against the SHIPPED broker config (ACL: a hub writes only under its own id)."""
    try:
        broker = Mosquitto()
        broker.start()
    except MosquittoError as exc:
        require_service("Mosquitto", str(exc))
    hub_user, hub_password = broker.add_hub_user(HUB)
    service_user, service_password = broker.service_credentials
    consumer = Consumer(broker.port, HUB, service_user, service_password)
    assert consumer.subscribed.wait(10), "consumer subscription not acknowledged"
    config = write_config(tmp_path, f"mqtt://{broker.host}:{broker.port}", hub_user, hub_password)
    db = tmp_path / "outbox.db"
    log = tmp_path / "agent.log"
    expected = expected_ids(tmp_path)
    assert len(expected) == 4 * N
    agent = start_agent(config, log)
    try:
        # 1. readings flow, then the broker goes away for a while
        wait_for(lambda: consumer.count() > 50, 20, "first readings at the consumer")
        broker.stop()
        wait_for(lambda: db.exists() and depth(db) > 0, 10, "backlog builds in the outbox")
        time.sleep(1.0)
        seen_before = consumer.count()
        assert seen_before < len(expected)
        # 2. broker back; kill -9 the agent in the middle of draining the backlog
        broker.start()
        wait_for(lambda: consumer.count() > seen_before + 20, 20, "drain resumes")
        agent.send_signal(signal.SIGKILL)
        agent.wait(10)
        left = depth(db)
        assert left > 0, "agent finished before the kill; make the backlog bigger"
        wait_for(lambda: any(s[0] == "offline" for s in consumer.statuses), 10, "last will")
        # 3. restart: the outbox (and the re-sent device memories) finish the job
        agent = start_agent(config, log)
        wait_for(lambda: set(consumer.ids) >= expected, 40,
                 "every id at the consumer after restart")
        wait_for(lambda: depth(db) == 0, 10, "outbox empty")
    finally:
        if agent.poll() is None:
            agent.send_signal(signal.SIGTERM)
            agent.wait(10)
        consumer.close()
        broker.close()
    missing = expected - set(consumer.ids)
    assert not missing
    assert not consumer.errors
    assert set(consumer.ids) == expected  # nothing unexpected either
    statuses = [s[0] for s in consumer.statuses]
    assert statuses[-1] == "offline" and "online" in statuses
    assert consumer.devices  # battery / clock offsets published
    cuff_readings = [r for p in consumer.payloads if p.device.serial == "BP-1" for r in p.readings]
    first = next(r for r in cuff_readings if r.device_time == "2026-01-01T06:00:00")
    assert first.clock_offset_s is not None and abs(first.clock_offset_s - 3600) < 5
    assert "clock_corrected" in first.flags and "measurement_unsuccessful" in first.flags
    assert first.measured_at is not None
    assert abs((first.measured_at - datetime(2026, 1, 1, 11, 0, tzinfo=UTC)).total_seconds()) < 5
    logtext = log.read_text()
    assert "systolic" not in logtext and "120" not in logtext.replace('"', " ").split()

    # status command reads the same database
    report = status_report(load_config(config))
    assert report["outbox"]["depth"] == 0
    assert report["broker"]["state"] == "stopped"
    cuff = next(d for d in report["devices"] if d["kind"] == "bp_cuff")
    assert cuff["serial"] == "BP-1" and cuff["battery"] == 77
    assert cuff["clock_offset_s"] is not None


def test_status_command_output(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = write_config(tmp_path, "mqtt://127.0.0.1:1")
    assert vitalgate(["edge", "status", "--config", str(config), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["hub_id"] == HUB and doc["outbox"]["depth"] == 0
    assert len(doc["devices"]) == 4
    assert vitalgate(["edge", "status", "--config", str(config)]) == 0
    assert "outbox   depth 0" in capsys.readouterr().out
    assert vitalgate(["edge", "status", "--config", str(tmp_path / "nope.toml")]) == 2
