"""Publisher over TLS with a client certificate and username/password, against real mosquitto."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from edge_agent.outbox import Outbox
from edge_agent.publisher import BrokerSettings, Publisher
from tests.edge_agent.broker import Mosquitto
from tests.edge_agent.test_outbox import item
from tests.support.services import require_service

pytestmark = [pytest.mark.anyio, pytest.mark.services]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def make_pki(d: Path) -> None:
    """A CA, a server certificate for 127.0.0.1 and a client certificate."""
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=test-ca",
             "-keyout", "ca.key", "-out", "ca.pem", cwd=d)
    for name, cn, ext in (("server", "127.0.0.1", "subjectAltName=IP:127.0.0.1"),
                          ("client", "hub-tls-1", "extendedKeyUsage=clientAuth")):
        _openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={cn}",
                 "-keyout", f"{name}.key", "-out", f"{name}.csr", cwd=d)
        (d / f"{name}.ext").write_text(ext + "\n")
        _openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
                 "-CAcreateserial", "-days", "2", "-extfile", f"{name}.ext",
                 "-out", f"{name}.pem", cwd=d)


async def until(predicate, within: float) -> bool:
    deadline = time.monotonic() + within
    while not predicate():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.02)
    return True


@pytest.fixture
def pki(tmp_path: Path) -> Path:
    if shutil.which("openssl") is None or shutil.which("mosquitto_passwd") is None:
        require_service("openssl/mosquitto_passwd", "needed to build the test PKI")
    d = tmp_path / "pki"
    d.mkdir()
    make_pki(d)
    subprocess.run(["mosquitto_passwd", "-c", "-b", str(d / "passwd"), "hub-tls-1", "s3cret"],
                   check=True, capture_output=True)
    return d


async def test_tls_client_cert_and_password(tmp_path: Path, pki: Path) -> None:
    passwd = pki / "passwd"
    listener = (f"cafile {pki}/ca.pem\ncertfile {pki}/server.pem\nkeyfile {pki}/server.key\n"
                f"require_certificate true\nallow_anonymous false\npassword_file {passwd}\n")
    broker = Mosquitto(tmp_path / "broker", listener=listener)
    broker.start()
    try:
        url = f"mqtts://127.0.0.1:{broker.port}"
        good = BrokerSettings(url, username="hub-tls-1", password="s3cret",
                              ca_file=str(pki / "ca.pem"), cert_file=str(pki / "client.pem"),
                              key_file=str(pki / "client.key"))
        box = Outbox(tmp_path / "o.db")
        box.add_many([item(n) for n in range(40)])
        stop = asyncio.Event()
        pub = Publisher(box, hub_id="hub-tls-1", broker=good, now=lambda: datetime.now(UTC),
                        jitter=None, max_delay_s=0.2)
        task = asyncio.create_task(pub.run(stop))
        assert await until(lambda: box.depth() == 0, 15), box.get_state("broker")
        stop.set()
        await task

        # wrong password: refused, nothing deleted, state says why
        bad = BrokerSettings(url, username="hub-tls-1", password="nope", ca_file=good.ca_file,
                             cert_file=good.cert_file, key_file=good.key_file)
        box.add(item(99))
        stop = asyncio.Event()
        pub = Publisher(box, hub_id="hub-tls-1", broker=bad, now=lambda: datetime.now(UTC),
                        jitter=None, max_delay_s=0.1)
        task = asyncio.create_task(pub.run(stop))
        assert await until(lambda: "refused" in str(box.get_state("broker").get("error")), 10)
        stop.set()
        await task
        assert box.depth() == 1
    finally:
        broker.stop()
