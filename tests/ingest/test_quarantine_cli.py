"""``vitalgate quarantine list|release|discard`` on a real SQLite file."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from gateway.cli import main
from gateway.model import DeviceKind
from gateway.store import open_store
from gateway.topics import readings_topic
from ingest.metrics import IngestMetrics
from ingest.pipeline import Pipeline
from ingest.registry import Registry, WeightHistory
from ingest.source import FakeSource
from simulators.loadgen import readings_payload, seed_fleet


@pytest.fixture
def quarantined(sqlite_url):
    """A store with a future-dated reading (time review) and an implausible one."""
    now = datetime.now(UTC)
    store = open_store(sqlite_url)
    store.migrate()
    (hub,) = seed_fleet(store, 1)
    src = FakeSource()
    p = Pipeline(store, src.ack, registry=Registry(store, lambda: 0.0),
                 weights=WeightHistory(store), metrics=IngestMetrics(), now=lambda: now)
    src.start(p.handle)
    future = readings_payload(hub, DeviceKind.BP_CUFF, ["fut-1"],
                              measured_at=now + timedelta(days=1))
    bad = readings_payload(hub, DeviceKind.BP_CUFF, ["bad-1"]).replace(b'"value":128',
                                                                       b'"value":999')
    src.push(readings_topic(hub.hub_id), future, now)
    src.push(readings_topic(hub.hub_id), bad, now)
    p.flush()
    items = {i.reason_code: i.id for i in store.list_quarantine()}
    store.close()
    return items


def run(capsys, *argv):
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_list_release_discard(quarantined, sqlite_url, capsys):
    code, out, _ = run(capsys, "quarantine", "list", "--database", sqlite_url)
    rows = [json.loads(line) for line in out.splitlines()]
    assert code == 0 and {r["reason_code"] for r in rows} == {"time_future", "implausible"}

    code, out, _ = run(capsys, "quarantine", "release", str(quarantined["time_future"]),
                       "--by", "nurse.k", "--database", sqlite_url)
    assert code == 0 and json.loads(out)["stored"] == 1

    code, _, err = run(capsys, "quarantine", "release", str(quarantined["implausible"]),
                       "--by", "nurse.k", "--database", sqlite_url)
    assert code == 1 and "implausible" in err  # still refused, stays pending

    code, out, _ = run(capsys, "quarantine", "discard", str(quarantined["implausible"]),
                       "--by", "dr.m", "--database", sqlite_url)
    assert code == 0
    code, _, err = run(capsys, "quarantine", "discard", str(quarantined["implausible"]),
                       "--by", "dr.m", "--database", sqlite_url)
    assert code == 1 and "no pending" in err

    with open_store(sqlite_url) as store:
        assert store.reading_ids() == ["fut-1"]
        item = store.get_quarantine(quarantined["implausible"])
        assert item.status == "discarded" and item.resolved_by == "dr.m"
        assert store.get_quarantine(quarantined["time_future"]).resolved_by == "nurse.k"
