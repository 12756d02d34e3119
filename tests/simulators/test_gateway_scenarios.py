"""Every shipped scenario against a running gateway: Mosquitto (shipped ACL) +
``gateway.process.Gateway`` (ingest + rules) on SQLite, hubs logged in as themselves."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from gateway.settings import Settings
from simulators.scenario import load_scenario, run_against_gateway, shipped_scenarios
from tests.support.mosquitto import Mosquitto, MosquittoError, mosquitto_binary
from tests.support.services import require_service

pytestmark = [pytest.mark.services, pytest.mark.slow]

SHIPPED = shipped_scenarios()


@pytest.fixture(scope="module")
def broker() -> Iterator[Mosquitto]:
    if mosquitto_binary() is None:
        require_service("Mosquitto", "no mosquitto binary (apt install mosquitto)")
    try:
        b = Mosquitto()
        b.start()
    except (MosquittoError, OSError) as exc:
        require_service("Mosquitto", str(exc)[:300])
        raise
    try:
        yield b
    finally:
        b.close()


@pytest.mark.parametrize("path", SHIPPED, ids=[p.stem for p in SHIPPED])
def test_scenario_against_gateway(path: Path, broker: Mosquitto, tmp_path: Path) -> None:
    from gateway.process import Gateway

    sc = load_scenario(path)
    creds = broker.add_hub_users([h.id for h in sc.panel().hubs])
    db = f"sqlite:///{tmp_path / 'gateway.db'}"
    settings = Settings(broker_url=broker.url(), database_url=db, data_dir=tmp_path,
                        mqtt_client_id=f"ingest-{path.stem}")
    with Gateway(settings):
        result = run_against_gateway(sc, broker_url=f"mqtt://{broker.host}:{broker.port}",
                                     database_url=db, now=datetime.now(UTC),
                                     credentials=creds, timeout_s=60)
    assert result.ok, result.report()
    assert result.checks[0].what == "readings acknowledged by the broker"


@pytest.mark.xfail(reason="rules runtime: stepping a batch of history with now >> measured_at "
                          "(catch_up or on_committed) opens adherence.no_data and hub.offline "
                          "for every patient, due at the start of the history (overdue timers "
                          "fire inline); reported to the rules owner", strict=False)
def test_demo_history_through_a_gateway_opens_only_story_escalations(
        broker: Mosquitto, tmp_path: Path) -> None:
    from collections import Counter

    from gateway.escalations import Status
    from gateway.process import Gateway
    from gateway.store import open_store
    from simulators.demo import build_demo_panel, provision_demo, run_demo

    now = datetime.now(UTC)
    demo = build_demo_panel(1, n_patients=12, days=14, now=now)
    db = f"sqlite:///{tmp_path / 'demo.db'}"
    with open_store(db) as s:
        s.migrate()
        provision_demo(s, demo)
    creds = broker.add_hub_users([h.id for h in demo.panel.hubs])
    with Gateway(Settings(broker_url=broker.url(), database_url=db, data_dir=tmp_path,
                          mqtt_client_id="ingest-demo")) as gw:
        stats = run_demo(demo, f"mqtt://{broker.host}:{broker.port}", live=False,
                         credentials=creds)
        deadline = datetime.now(UTC).timestamp() + 30
        while gw.store.count_readings() < stats.readings_acked:
            assert datetime.now(UTC).timestamp() < deadline
            time.sleep(0.2)
        time.sleep(1.5)  # a timer tick
        escalations = gw.store.list_escalations("demo", status=list(Status), limit=1000)
    opened = Counter(e.rule_id for e in escalations)
    assert opened["hub.offline"] == 0, opened
    assert opened["adherence.no_data"] <= 3, opened
