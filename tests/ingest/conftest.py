"""Fixtures for ingest tests: a private Mosquitto (shipped config) and stores."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.store import Store, open_store


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
