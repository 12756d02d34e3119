"""``vitalgate edge run|status`` commands.

``run`` starts the agent with the bleak transport and JSON logs on stderr
(no PHI: readings are never logged at INFO).  ``status`` reads the outbox
database -- the agent keeps its broker state, device snapshots and sync
anchors there -- and prints devices, last reading, outbox depth and age,
broker connection state and clock offsets, without touching BLE or MQTT.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import signal
import sys
import time
from typing import Any

from edge_agent.config import ConfigError, HubConfig, load_config
from edge_agent.outbox import Outbox

EXIT_OK = 0
EXIT_CONFIG = 2

_STD_ATTRS = set(vars(logging.makeLogRecord({}))) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message and ``extra`` fields."""

    def format(self, record: logging.LogRecord) -> str:
        """Format ``record`` as JSON."""
        doc: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + "Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STD_ATTRS and not key.startswith("_"):
                doc[key] = value if isinstance(value, int | float | str | bool) else str(value)
        if record.exc_info:
            doc["exc"] = self.formatException(record.exc_info)
        return json.dumps(doc)


def setup_logging(verbose: int = 0) -> None:
    """JSON logs on stderr; ``-v`` for debug."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    logging.getLogger("bleak").setLevel(logging.WARNING)


def _config(args: argparse.Namespace) -> HubConfig | None:
    path = args.hub_config or getattr(args, "config", None)
    if not path:
        print("error: --config hub.toml is required", file=sys.stderr)
        return None
    try:
        return load_config(path)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return None


def cmd_run(args: argparse.Namespace) -> int:
    """Run the agent until SIGINT/SIGTERM."""
    cfg = _config(args)
    if cfg is None:
        return EXIT_CONFIG
    setup_logging(getattr(args, "verbose", 0))
    from edge_agent.agent import Agent
    from edge_agent.bleak_link import bleak_link_factory

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await Agent(cfg, link_factory=bleak_link_factory).run(stop)

    asyncio.run(main())
    return EXIT_OK


def status_report(cfg: HubConfig) -> dict[str, Any]:
    """The status document ``vitalgate edge status`` prints."""
    box = Outbox(cfg.outbox_path, cap=cfg.outbox_cap)
    try:
        stats = box.stats()
        devices = []
        for d in cfg.devices:
            snap = box.get_state(f"device:{d.address}") or {}
            dev = snap.get("device", {})
            devices.append({
                "address": d.address, "kind": d.kind.value, "name": d.name,
                "serial": dev.get("serial"), "battery": dev.get("battery"),
                "clock_offset_s": dev.get("clock_offset_s"),
                "clock_set": snap.get("clock_set"), "last_seen": snap.get("seen_at"),
                "last_reading": box.get_state(f"last_reading:{d.address}"),
            })
        return {
            "hub_id": cfg.hub_id,
            "broker": box.get_state("broker", {"state": "unknown"}),
            "outbox": {"depth": stats.depth, "oldest_age_s": stats.oldest_age_s,
                       "dropped_total": stats.dropped_total, "cap": cfg.outbox_cap},
            "devices": devices,
        }
    finally:
        box.close()


def cmd_status(args: argparse.Namespace) -> int:
    """Print the agent's status (JSON with ``--json``)."""
    cfg = _config(args)
    if cfg is None:
        return EXIT_CONFIG
    doc = status_report(cfg)
    if args.json:
        print(json.dumps(doc, indent=2))
        return EXIT_OK
    b, o = doc["broker"], doc["outbox"]
    print(f"hub {doc['hub_id']}")
    print(f"broker   {b.get('state')} since {b.get('since', '-')} ({b.get('url', '')})")
    age = "-" if o["oldest_age_s"] is None else f"{o['oldest_age_s']:.0f} s"
    print(f"outbox   depth {o['depth']}, oldest {age}, dropped {o['dropped_total']}")
    for d in doc["devices"]:
        offset = "-" if d["clock_offset_s"] is None else f"{d['clock_offset_s']:+.0f} s"
        print(f"device   {d['address']} {d['kind']:<14} serial {d['serial'] or '-'}"
              f"  battery {d['battery'] if d['battery'] is not None else '-'}"
              f"  clock {offset}  last reading {d['last_reading'] or '-'}")
    return EXIT_OK


def cmd_scan(args: argparse.Namespace) -> int:
    """List nearby BLE health devices (address, name, services) to fill hub.toml."""
    from edge_agent.bleak_link import scan
    from edge_agent.link import LinkError

    try:
        found = asyncio.run(scan(args.seconds))
    except LinkError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    for address, name, services in found:
        print(f"{address}  {name or '-'}  {' '.join(s[4:8] for s in services)}")
    return EXIT_OK


def register(subparsers: Any) -> None:
    """Add ``vitalgate edge run|status|scan``."""
    edge = subparsers.add_parser("edge", help="home hub edge agent (BLE -> outbox -> MQTT)")
    sub = edge.add_subparsers(dest="edge_command", metavar="SUBCOMMAND", required=True)
    for name, func, text in (("run", cmd_run, "run the agent"),
                             ("status", cmd_status, "show devices, outbox and broker state")):
        p = sub.add_parser(name, help=text)
        p.add_argument("--config", dest="hub_config", metavar="HUB_TOML", help="hub.toml path")
        if name == "status":
            p.add_argument("--json", action="store_true", help="machine-readable output")
        p.set_defaults(func=func)
    scan = sub.add_parser("scan", help="list nearby BLE health devices (needs an adapter)")
    scan.add_argument("--seconds", type=float, default=10.0, help="scan duration")
    scan.set_defaults(func=cmd_scan)
