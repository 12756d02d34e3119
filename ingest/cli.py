"""``vitalgate ingest`` and ``vitalgate quarantine list|release|discard``."""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import threading
from datetime import UTC, datetime
from typing import Any

from gateway.commands import add_database_option, settings_from
from gateway.settings import Settings
from gateway.store import NotFound, open_store


def register(sub: Any) -> None:
    """Add the ingest and quarantine commands."""
    p = sub.add_parser("ingest", help="run MQTT ingest (until SIGINT/SIGTERM)")
    add_database_option(p)
    p.add_argument("--broker", metavar="URL", help="mqtt[s]://user:pass@host:port (else settings;"
                   " none = embedded broker)")
    p.set_defaults(func=_ingest)

    q = sub.add_parser("quarantine", help="review quarantined payloads")
    qsub = q.add_subparsers(dest="quarantine_command", metavar="ACTION", required=True)
    ql = qsub.add_parser("list", help="list quarantined items (JSON lines)")
    add_database_option(ql)
    ql.add_argument("--status", default="pending",
                    choices=["pending", "released", "discarded", "all"])
    ql.add_argument("--limit", type=int, default=100)
    ql.add_argument("--payload", action="store_true", help="include the payload text")
    ql.set_defaults(func=_list)
    for name, helptext in (("release", "re-validate and store an item's readings"),
                           ("discard", "discard an item (recorded with who)")):
        qp = qsub.add_parser(name, help=helptext)
        add_database_option(qp)
        qp.add_argument("item_id", type=int)
        qp.add_argument("--by", required=True, help="who reviewed it (recorded)")
        qp.set_defaults(func=_release if name == "release" else _discard)


def _settings(args: argparse.Namespace) -> Settings:
    overrides: dict[str, Any] = {}
    if getattr(args, "database", None):
        overrides["database_url"] = args.database
    if getattr(args, "broker", None):
        overrides["broker_url"] = args.broker
    return settings_from(args, **overrides)


def _ingest(args: argparse.Namespace) -> int:
    from ingest.service import IngestService

    logging.basicConfig(level=logging.DEBUG if args.verbose > 1 else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    settings = _settings(args)
    done = threading.Event()

    def _signal(signum: int, frame: Any) -> None:
        done.set()

    signal.signal(signal.SIGTERM, _signal)
    signal.signal(signal.SIGINT, _signal)
    service = IngestService(settings)
    service.start()
    logging.getLogger("ingest").info("ingest running (database %s)",
                                     settings.resolved_database_url.split("@")[-1])
    done.wait()
    service.stop()
    m = service.metrics
    print(json.dumps({"stored": m.value("vitalgate_ingest_readings_stored_total"),
                      "duplicates": m.value("vitalgate_ingest_readings_duplicate_total")}))
    return 0


def _list(args: argparse.Namespace) -> int:
    settings = _settings(args)
    with open_store(settings.resolved_database_url) as store:
        status = None if args.status == "all" else args.status
        for item in store.list_quarantine(status=status, limit=args.limit):
            row = {"id": item.id, "status": item.status, "reason_code": item.reason_code,
                   "reason": item.reason, "field": item.field, "hub_id": item.hub_id,
                   "reading_id": item.reading_id, "topic": item.topic,
                   "payload_size": item.payload_size,
                   "received_at": item.received_at.isoformat(),
                   "resolved_by": item.resolved_by}
            if args.payload:
                row["payload"] = item.payload
            print(json.dumps(row))
    return 0


def _release(args: argparse.Namespace) -> int:
    from ingest.quarantine import ReviewError, release

    settings = _settings(args)
    with open_store(settings.resolved_database_url) as store:
        try:
            res = release(store, args.item_id, by=args.by, now=datetime.now(UTC),
                          future_tolerance_s=settings.future_tolerance_s,
                          late_bound_hours=settings.late_bound_hours,
                          max_payload_bytes=settings.max_payload_bytes)
        except (ReviewError, NotFound) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
    if res.still_refused is not None:
        r = res.still_refused
        print(f"not released: {r.code}: {r.reason} ({r.field})", file=sys.stderr)
        return 1
    print(json.dumps({"released": res.item_id, "stored": res.stored,
                      "duplicates": res.duplicates}))
    return 0


def _discard(args: argparse.Namespace) -> int:
    from ingest.quarantine import ReviewError, discard

    settings = _settings(args)
    with open_store(settings.resolved_database_url) as store:
        try:
            discard(store, args.item_id, by=args.by, now=datetime.now(UTC))
        except ReviewError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
    print(json.dumps({"discarded": args.item_id, "by": args.by}))
    return 0
