"""Embedded MQTT broker (amqtt) for the zero-install demo set-up.

When ``settings.broker_url`` is ``None`` Vitalgate runs amqtt in-process on
``settings.embedded_broker_host:embedded_broker_port``.  amqtt needs an
asyncio loop; :class:`EmbeddedBroker` owns one in a daemon thread so the
synchronous ingest worker (and paho) can use it like any external broker.

Verified against amqtt 0.12.1: ``Broker(config_dict)`` must be constructed
inside a running loop (it calls ``asyncio.get_running_loop()``),
``await broker.start()`` opens the listener and ``await broker.shutdown()``
closes it.  amqtt speaks MQTT 3.1.1 only, so clients use ``clean_session=False``
(no v5 session expiry or shared subscriptions); persistent sessions and
QoS 1 redelivery of messages published while a client was away work within
one broker process (amqtt keeps sessions in memory, so a broker restart
loses them; use Mosquitto for anything that must survive restarts).
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import threading
from concurrent.futures import Future
from typing import Any

from gateway.settings import SetupError

log = logging.getLogger(__name__)

#: How long start/stop wait for the broker loop before giving up.
START_TIMEOUT_S = 10.0


class EmbeddedBrokerError(SetupError):
    """The embedded broker could not start (e.g. the port is taken)."""


def is_loopback(host: str) -> bool:
    """True for ``localhost`` and loopback addresses (127.0.0.0/8, ::1)."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def broker_config(host: str, port: int) -> dict[str, Any]:
    """amqtt configuration: one TCP listener, username required (no password), no $SYS."""
    return {
        "listeners": {
            "default": {"type": "tcp", "bind": f"{host}:{port}", "max_connections": 1000},
        },
        "plugins": {
            # Any client that names a user is accepted (loopback demo broker); a
            # username is required because amqtt keeps QoS 1 messages for an offline
            # persistent session only when the session is not anonymous.
            "amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": False},
        },
    }


class EmbeddedBroker:
    """amqtt running on its own event loop thread; ``start()`` / ``stop()``."""

    def __init__(self, host: str = "127.0.0.1", port: int = 18830) -> None:
        self.host = host
        self.port = port
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._broker: Any = None

    def start(self) -> None:
        """Start the broker and return once it accepts connections.

        Refuses a non-loopback address: this broker takes any client that names
        a user, with no password and no per-hub topic rights, so on a network
        any device could publish readings as any hub.
        """
        if self._thread is not None:
            return
        if not is_loopback(self.host):
            raise EmbeddedBrokerError(
                f"the embedded broker checks no passwords, so it listens on loopback only "
                f"(asked for {self.host!r}); for hubs on a network run Mosquitto with the "
                f"shipped configuration (deploy/mosquitto: passwords and a per-hub ACL) and "
                f"set VITALGATE_BROKER_URL")
        loop = asyncio.new_event_loop()
        self._loop = loop
        self._thread = threading.Thread(target=loop.run_forever, name="amqtt-broker",
                                        daemon=True)
        self._thread.start()
        fut: Future[None] = asyncio.run_coroutine_threadsafe(self._start(), loop)
        try:
            fut.result(timeout=START_TIMEOUT_S)
        except Exception as exc:
            self._stop_loop()
            raise EmbeddedBrokerError(
                f"embedded broker failed to start on {self.host}:{self.port}: {exc}") from exc
        log.info("embedded MQTT broker listening on %s:%d", self.host, self.port)

    async def _start(self) -> None:
        from amqtt.broker import Broker

        # quiet amqtt's per-packet logging
        logging.getLogger("amqtt").setLevel(logging.WARNING)
        logging.getLogger("transitions").setLevel(logging.WARNING)
        self._broker = Broker(broker_config(self.host, self.port))
        await self._broker.start()

    def stop(self) -> None:
        """Shut the broker down and join its thread."""
        if self._loop is None:
            return
        if self._broker is not None:
            fut = asyncio.run_coroutine_threadsafe(self._broker.shutdown(), self._loop)
            try:
                fut.result(timeout=START_TIMEOUT_S)
            except Exception:  # shutting down anyway
                log.warning("embedded broker did not shut down cleanly", exc_info=True)
            self._broker = None
        self._stop_loop()

    def _stop_loop(self) -> None:
        loop, thread = self._loop, self._thread
        if loop is not None:
            loop.call_soon_threadsafe(loop.stop)
        if thread is not None:
            thread.join(timeout=START_TIMEOUT_S)
        if loop is not None and not loop.is_running():
            loop.close()
        self._loop = None
        self._thread = None

    def __enter__(self) -> EmbeddedBroker:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
