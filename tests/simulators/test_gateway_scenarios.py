"""Every shipped scenario against a running gateway: Mosquitto (shipped ACL) +
``gateway.process.Gateway`` (ingest + rules) on SQLite, hubs logged in as themselves."""

from __future__ import annotations

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
