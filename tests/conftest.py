"""Shared fixtures: real PostgreSQL databases, stores of every kind."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import settings as hyp_settings

from gateway.store import Store, open_store
from tests.support.mosquitto import Mosquitto, running_mosquitto
from tests.support.services import temporary_database, timescale_admin_url

hyp_settings.register_profile("ci", deadline=None, print_blob=True, derandomize=False)
hyp_settings.register_profile("dev", deadline=None, print_blob=True)
hyp_settings.load_profile("ci" if os.environ.get("CI") else "dev")


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    """URL of a fresh PostgreSQL database for this test session (dropped after)."""
    with temporary_database() as url:
        yield url


@pytest.fixture
def pg_db() -> Iterator[str]:
    """URL of a fresh PostgreSQL database for one test (dropped after)."""
    with temporary_database() as url:
        yield url


@pytest.fixture(params=["sqlite", "postgres", "timescale"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    """A migrated, empty store of each kind (SQLite, PostgreSQL[, TimescaleDB])."""
    if request.param == "sqlite":
        s = open_store(f"sqlite:///{tmp_path / 'store.db'}")
        s.migrate()
        yield s
        s.close()
        return
    admin = timescale_admin_url() if request.param == "timescale" else None
    ctx = temporary_database(admin) if admin else temporary_database()
    with ctx as url:
        s = open_store(url)
        s.migrate()
        try:
            yield s
        finally:
            s.close()


@pytest.fixture
def mosquitto() -> Iterator[Mosquitto]:
    """A fresh Mosquitto running the shipped deploy/mosquitto config on a free port."""
    with running_mosquitto() as broker:
        yield broker
