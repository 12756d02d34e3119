"""Fixtures for simulator tests: a Mosquitto with the shipped config, and a plain one."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.mosquitto import Mosquitto, PlainMosquitto, running_mosquitto


@pytest.fixture(scope="module")
def shipped() -> Iterator[Mosquitto]:
    """Mosquitto with the shipped config (auth + ACL) on a free port, shared by a module."""
    with running_mosquitto() as broker:
        yield broker


@pytest.fixture(scope="module")
def plain(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """An anonymous Mosquitto on a free port; yields its URL."""
    broker = PlainMosquitto(tmp_path_factory.mktemp("plain"))
    broker.start()
    try:
        yield broker.url
    finally:
        broker.stop()
