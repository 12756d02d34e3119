"""Paging fixtures: a real local HTTP receiver, a movable clock, a seeded store."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from gateway.model import Condition, Enrollment, Patient, Practice, Program
from gateway.store import Store
from tests.support.http import LocalServer, QuietHandler

T0 = datetime(2026, 3, 10, 14, 0, tzinfo=UTC)


@dataclass
class Received:
    """One request as the receiver saw it."""

    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Receiver:
    """A threaded HTTP server recording requests, deduping by Idempotency-Key."""

    url: str = ""
    requests: list[Received] = field(default_factory=list)
    unique: dict[str, Received] = field(default_factory=dict)
    fail_next: int = 0  # answer 503 to this many requests first
    lock: threading.Lock = field(default_factory=threading.Lock)

    def handle(self, r: Received) -> int:
        with self.lock:
            self.requests.append(r)
            if self.fail_next > 0:
                self.fail_next -= 1
                return 503
            key = r.headers.get("idempotency-key")
            if key:
                self.unique.setdefault(key, r)
            return 202

    def paths(self) -> list[str]:
        return [r.path for r in self.unique.values()]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    rec = Receiver()

    class Handler(QuietHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            code = rec.handle(Received(self.path, {k.lower(): v for k, v in
                                                   self.headers.items()}, body))
            self.send_json(code, {"status": "success" if code < 300 else "error",
                                  "dedup_key": "x"})

    server = LocalServer(Handler)
    rec.url = server.url
    try:
        yield rec
    finally:
        server.close()


class Clock:
    """A clock tests move by hand."""

    def __init__(self, now: datetime = T0) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **kw: float) -> datetime:
        self.now += timedelta(**kw)
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def seeded(store: Store) -> Store:
    """Practice p1, patient pt1 (Alice Zephyrine, MRN ...3456) supervised by dr_sup."""
    store.upsert_practice(Practice("p1", "Clinic"))
    store.upsert_patient(Patient("pt1", "p1", "MRN00123456", "Alice", "Zephyrine",
                                 date(1950, 1, 2), "America/New_York"))
    store.upsert_enrollment(Enrollment("pt1", "p1", frozenset({Program.RPM}),
                                       frozenset({Condition.CHF}), date(2026, 1, 1),
                                       supervising_physician_id="dr_sup"))
    return store
