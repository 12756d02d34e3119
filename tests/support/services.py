"""Access to the real services tests need (PostgreSQL, Mosquitto).

Tests use the real servers, never mocks.  When a service is unreachable the
test is skipped with the reason -- unless ``VITALGATE_REQUIRE_SERVICES=1``
(set by ``.ci/run``), which turns that skip into a failure.
"""

from __future__ import annotations

import os
import shutil
import socket
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

PG_ADMIN_URL = os.environ.get(
    "VITALGATE_TEST_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)


def services_required() -> bool:
    """True when a missing service must fail the run instead of skipping."""
    return os.environ.get("VITALGATE_REQUIRE_SERVICES", "") not in ("", "0", "false")


def require_service(name: str, reason: str) -> None:
    """Skip (or, under VITALGATE_REQUIRE_SERVICES=1, fail) because ``name`` is missing."""
    msg = f"{name} not available: {reason}"
    if services_required():
        pytest.fail(f"{msg} (VITALGATE_REQUIRE_SERVICES=1 makes this a failure)")
    pytest.skip(msg)


def timescale_admin_url() -> str:
    """``VITALGATE_TEST_TIMESCALE_URL``, or skip (fail under VITALGATE_REQUIRE_SERVICES=1)."""
    url = os.environ.get("VITALGATE_TEST_TIMESCALE_URL")
    if not url:
        require_service("TimescaleDB", "VITALGATE_TEST_TIMESCALE_URL not set "
                        "(run scripts/timescaledb-dev.sh start)")
    assert url
    return url


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def port_open(host: str, port: int, timeout: float = 0.5) -> bool:
    """True when something accepts TCP connections at host:port."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def mosquitto_binary() -> str | None:
    """Path of the mosquitto broker binary, if installed."""
    return shutil.which("mosquitto") or (
        "/usr/sbin/mosquitto" if os.path.exists("/usr/sbin/mosquitto") else None
    )


@contextmanager
def temporary_database(admin_url: str = PG_ADMIN_URL) -> Iterator[str]:
    """Create a fresh PostgreSQL database, yield its URL, drop it afterwards.

    The admin connection is not held while the test runs, so a test may
    restart the server (fault tests) and the database is still dropped.
    """
    import psycopg

    try:
        with psycopg.connect(admin_url, autocommit=True, connect_timeout=3) as admin:
            name = f"vitalgate_t_{uuid.uuid4().hex[:12]}"
            admin.execute(f'CREATE DATABASE "{name}"')
    except psycopg.OperationalError as exc:
        require_service("PostgreSQL", f"{admin_url}: {str(exc).strip()[:200]}")
        raise AssertionError("unreachable") from exc
    base = admin_url.rsplit("/", 1)[0]
    try:
        yield f"{base}/{name}"
    finally:
        for _ in range(50):  # the server may be coming back from a restart
            try:
                with psycopg.connect(admin_url, autocommit=True, connect_timeout=3) as admin:
                    admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
                break
            except psycopg.OperationalError:
                import time

                time.sleep(0.2)
