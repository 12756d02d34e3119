"""The one I/O seam of ingest: where MQTT messages come from and are acknowledged.

:class:`MessageSource` is what the pipeline needs from a broker connection:
``start(deliver)`` begins calling ``deliver(msg)`` with
:class:`InboundMessage` values (on any thread), ``ack(msg)`` acknowledges one
message to the broker (only ever after its readings are committed),
``pause()`` stops delivery without acknowledging (messages not yet handed over
stay with the broker) and ``stop()`` closes the connection.  The paho
implementation lives in :mod:`ingest.mqtt`; :class:`FakeSource` is the
in-memory fake for pipeline unit tests.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol


@dataclass(frozen=True, slots=True)
class InboundMessage:
    """One MQTT message as ingest sees it (no paho object crosses this line).

    ``session`` is the broker connection it arrived on: an acknowledgement
    for a message of an earlier connection is not sent (the broker
    redelivers it, and dedupe counts the repeat).
    """

    topic: str
    payload: bytes
    mid: int
    qos: int
    received_at: datetime
    session: int = 0


Deliver = Callable[[InboundMessage], None]


class MessageSource(Protocol):
    """A broker connection delivering messages and taking acknowledgements."""

    def start(self, deliver: Deliver) -> None:
        """Connect and start calling ``deliver`` for each message."""

    def ack(self, msg: InboundMessage) -> None:
        """Acknowledge ``msg`` to the broker (after its readings are committed)."""

    def pause(self) -> None:
        """Stop handing over messages (they stay unacknowledged at the broker)."""

    def stop(self) -> None:
        """Disconnect."""


@dataclass
class FakeSource:
    """In-memory :class:`MessageSource`: tests push messages and read the acks."""

    acked: list[InboundMessage] = field(default_factory=list)
    on_ack: Callable[[InboundMessage], None] | None = None
    _deliver: Deliver | None = None
    _mid: int = 0
    _paused: bool = False
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def start(self, deliver: Deliver) -> None:
        """Remember where to deliver."""
        self._deliver = deliver

    def push(self, topic: str, payload: bytes | str, received_at: datetime,
             qos: int = 1) -> InboundMessage:
        """Deliver a message as the broker would; return it."""
        with self._lock:
            self._mid = self._mid % 65535 + 1
            msg = InboundMessage(topic, payload.encode() if isinstance(payload, str) else payload,
                                 self._mid, qos, received_at)
        if self._deliver is not None and not self._paused:
            self._deliver(msg)
        return msg

    def ack(self, msg: InboundMessage) -> None:
        """Record the acknowledgement."""
        if self.on_ack is not None:
            self.on_ack(msg)
        with self._lock:
            self.acked.append(msg)

    def pause(self) -> None:
        """Stop delivering."""
        self._paused = True

    def stop(self) -> None:
        """Nothing to close."""
        self._paused = True
