"""Fixtures for end-to-end tests: a private Mosquitto with the shipped config."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

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
