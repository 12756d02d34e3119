"""TimescaleDB specifics: hypertable, licence detection, retention fallback.

Runs when ``VITALGATE_TEST_TIMESCALE_URL`` names a TimescaleDB server
(``scripts/timescaledb-dev.sh start`` gives one; ``.ci/run`` sets it).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from gateway.store.postgres import PostgresStore
from tests.gateway.factories import seed_patient, weight
from tests.support.services import temporary_database, timescale_admin_url


@pytest.fixture
def ts_store() -> Iterator[PostgresStore]:
    with temporary_database(timescale_admin_url()) as url:
        store = PostgresStore(url)
        store.migrate()
        try:
            yield store
        finally:
            store.close()


def test_readings_is_a_hypertable(ts_store: PostgresStore) -> None:
    assert ts_store.timescale
    assert ts_store.timescale_license in ("apache", "timescale")
    with ts_store._tx() as cur:
        cur.execute("SELECT hypertable_name FROM timescaledb_information.hypertables")
        assert [r[0] for r in cur.fetchall()] == ["readings"]
    # a second migrate is a no-op on the hypertable
    assert ts_store.migrate() == []


def test_apache_build_degrades_without_error(ts_store: PostgresStore) -> None:
    if ts_store.timescale_license != "apache":
        pytest.skip("full TimescaleDB edition: compression is expected to be on")
    assert ts_store.compression is False


def test_retention_drops_old_chunks(ts_store: PostgresStore) -> None:
    seed_patient(ts_store)
    old = datetime(2025, 1, 1, tzinfo=UTC)
    new = datetime(2026, 3, 1, tzinfo=UTC)
    ts_store.add_readings([weight("old", old), weight("new", new)], new)
    ts_store.drop_readings_before(new - timedelta(days=60))
    assert [r.id for r in ts_store.get_readings("pt1")] == ["new"]
