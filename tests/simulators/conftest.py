"""Fixtures for simulator tests: a Mosquitto with the shipped config, and a plain one."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator

import pytest

from tests.support.mosquitto import Mosquitto, mosquitto_binary, running_mosquitto
from tests.support.services import free_port, port_open, require_service


@pytest.fixture(scope="module")
def shipped() -> Iterator[Mosquitto]:
    """Mosquitto with the shipped config (auth + ACL) on a free port, shared by a module."""
    with running_mosquitto() as broker:
        yield broker


@pytest.fixture(scope="module")
def plain(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """An anonymous Mosquitto on a free port; yields its URL."""
    binary = mosquitto_binary()
    if binary is None:
        require_service("Mosquitto", "no mosquitto binary (apt install mosquitto)")
        raise AssertionError("unreachable")
    port = free_port()
    conf = tmp_path_factory.mktemp("plain") / "mosquitto.conf"
    conf.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n"
                    "max_queued_messages 0\n")
    proc = subprocess.Popen([binary, "-c", str(conf)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while not port_open("127.0.0.1", port):
            if time.monotonic() > deadline or proc.poll() is not None:
                require_service("Mosquitto", f"did not listen on {port}")
            time.sleep(0.05)
        yield f"mqtt://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(10)
