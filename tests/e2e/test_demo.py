"""The README's demo command shows open escalations in the queue within 60 s.

Runs ``vitalgate demo`` as a subprocess (embedded broker, SQLite, simulated
panel), logs in as the printed coordinator and polls the escalation queue
through the API, as a browser would.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.support.services import free_port

pytestmark = pytest.mark.slow


def test_demo_fills_the_queue_within_60_seconds(tmp_path: Path) -> None:
    port, broker_port = free_port(), free_port()
    log = tmp_path / "demo.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "gateway.cli", "demo", "--port", str(port), "--broker-port",
             str(broker_port), "--data-dir", str(tmp_path / "demo")],
            stdout=out, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    started = time.monotonic()
    try:
        password = None
        while password is None and time.monotonic() - started < 60:
            m = re.search(r"Password for every demo user: (\S+)", log.read_text())
            password = m.group(1) if m else None
            assert proc.poll() is None, log.read_text()[-3000:]
            time.sleep(0.2)
        assert password, log.read_text()[-3000:]
        base = f"http://127.0.0.1:{port}"
        token = httpx.post(f"{base}/api/v1/auth/token", data={
            "username": "coordinator@demo.vitalgate.local", "password": password}).json()[
            "access_token"]
        headers = {"Authorization": f"Bearer {token}"}
        queue: list = []
        while time.monotonic() - started < 60:
            queue = httpx.get(f"{base}/api/v1/escalations", headers=headers).json()
            if len({e["rule_id"] for e in queue}) >= 3:
                break
            time.sleep(1)
        elapsed = time.monotonic() - started
        print(f"{len(queue)} open escalations after {elapsed:.0f} s")
        rules = {e["rule_id"] for e in queue}
        assert len(rules) >= 3, (queue, log.read_text()[-2000:])
        assert "chf.weight_gain_24h" in rules
        assert all(e["status"] == "open" for e in queue)
        page = httpx.get(f"{base}/", follow_redirects=True)
        assert page.status_code == 200  # the web app answers (login page)
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
    assert proc.returncode in (0, -signal.SIGINT, 130), log.read_text()[-2000:]
    assert "Vitalgate demo stopped." in log.read_text()
