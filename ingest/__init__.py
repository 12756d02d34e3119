"""MQTT ingest: validate, quarantine, dedupe, batch commit, then acknowledge.

Public API: :class:`IngestService` (``start``/``stop``), :data:`Consumer`
callbacks, :class:`IngestMetrics`, :class:`EmbeddedBroker`, the
:class:`MessageSource` seam with :class:`FakeSource`.  See ``docs/ingest.md``.
"""

from __future__ import annotations

from ingest.broker import EmbeddedBroker
from ingest.metrics import IngestMetrics
from ingest.pipeline import Consumer, Pipeline
from ingest.service import IngestService
from ingest.source import FakeSource, InboundMessage, MessageSource

__all__ = ["Consumer", "EmbeddedBroker", "FakeSource", "InboundMessage", "IngestMetrics",
           "IngestService", "MessageSource", "Pipeline"]
