"""Fixtures for ingest tests: a private Mosquitto (shipped config) and stores."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.store import Store, open_store
from tests.support.mosquitto import Mosquitto, MosquittoError, mosquitto_binary
from tests.support.services import require_service


@pytest.fixture
def mosquitto() -> Iterator[Mosquitto]:
    """A fresh Mosquitto running deploy/mosquitto/mosquitto.conf on a free port."""
    if mosquitto_binary() is None:
        require_service("Mosquitto", "no mosquitto binary (apt install mosquitto)")
    try:
        broker = Mosquitto()
        broker.start()
    except (MosquittoError, OSError) as exc:
        require_service("Mosquitto", str(exc)[:300])
        raise
    try:
        yield broker
    finally:
        broker.close()


@pytest.fixture
def pg_store(pg_db: str) -> Iterator[Store]:
    """A migrated store on a fresh PostgreSQL database."""
    s = open_store(pg_db)
    s.migrate()
    yield s
    s.close()


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """URL of a SQLite file in the test's temp dir."""
    return f"sqlite:///{tmp_path / 'ingest.db'}"
