"""Gateway commands: ``vitalgate db migrate|status``."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from gateway.settings import Settings, load_settings, redact_url
from gateway.store import Store, open_store


def settings_from(args: argparse.Namespace, **overrides: Any) -> Settings:
    """Settings from ``--config`` (if given), the environment and overrides."""
    return load_settings(getattr(args, "config", None), **overrides)


def store_from(args: argparse.Namespace) -> Store:
    """Open the store named by ``--database`` or the settings."""
    settings = settings_from(args)
    url = getattr(args, "database", None) or settings.resolved_database_url
    return open_store(url, pool_size=settings.db_pool_size)


def add_database_option(parser: argparse.ArgumentParser) -> None:
    """``--database URL`` (overrides VITALGATE_DATABASE_URL)."""
    parser.add_argument("--database", metavar="URL",
                        help="sqlite:///path.db or postgresql://...; default from settings")


def _migrate(args: argparse.Namespace) -> int:
    with store_from(args) as store:
        applied = store.migrate()
        version = store.schema_version()  # type: ignore[attr-defined]
    print(json.dumps({"applied": applied, "schema_version": version}))
    return 0


def _status(args: argparse.Namespace) -> int:
    with store_from(args) as store:
        version = store.schema_version()  # type: ignore[attr-defined]
        out = {"url_scheme": store.url.split(":", 1)[0], "schema_version": version,
               "readings": store.count_readings(),
               "timescale": bool(getattr(store, "timescale", False))}
    print(json.dumps(out))
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``db`` command group and ``up``."""
    register_up(sub)
    db = sub.add_parser("db", help="database schema commands",
                        description="Create or inspect the Vitalgate database schema.")
    dbsub = db.add_subparsers(dest="db_command", metavar="SUBCOMMAND", required=True)
    mig = dbsub.add_parser("migrate", help="apply pending migrations",
                           description="Apply pending migrations (SQLite or PostgreSQL).")
    add_database_option(mig)
    mig.set_defaults(func=_migrate)
    st = dbsub.add_parser("status", help="schema version and row counts",
                          description="Print the schema version and reading count as JSON.")
    add_database_option(st)
    st.set_defaults(func=_status)


def fail(message: str, code: int = 2) -> int:
    """Print an error for a person (no traceback) and return the exit code."""
    print(f"vitalgate: error: {message}", file=sys.stderr)
    return code


def _up(args: argparse.Namespace) -> int:
    import logging

    from gateway.process import Gateway, serve

    logging.basicConfig(level=logging.DEBUG if args.verbose > 1 else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s %(message)s")
    overrides: dict[str, Any] = {}
    if args.database:
        overrides["database_url"] = args.database
    if args.broker:
        overrides["broker_url"] = args.broker
    if args.port is not None:
        overrides["api_port"] = args.port
    settings = settings_from(args, **overrides)
    gateway = Gateway(settings)
    gateway.start()
    if args.no_api:
        return _run_headless(gateway)
    print(f"Vitalgate is up: web app and API at http://{settings.api_host}:{settings.api_port}/ "
          f"(OpenAPI docs at /docs); broker {redact_url(settings.resolved_broker_url)}",
          flush=True)
    serve(settings, gateway)
    return 0


def _run_headless(gateway: Any) -> int:
    """Run ingest + rules + timers until SIGTERM/SIGINT, then stop cleanly."""
    import signal
    import threading

    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    print("Vitalgate worker running (ingest + rules + timers, no API)", flush=True)
    stop.wait()
    gateway.stop()
    return 0


def register_up(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``up``."""
    up = sub.add_parser("up", help="run ingest + rules + API in one process",
                        description="Run the gateway: embedded broker (unless a broker URL is "
                                    "set), ingest, rules engine, timers, paging and the API.")
    add_database_option(up)
    up.add_argument("--broker", metavar="URL", help="external broker (default: embedded)")
    up.add_argument("--port", type=int, help="API port (default from settings)")
    up.add_argument("--no-api", action="store_true",
                    help="worker mode: ingest + rules + timers only (scale-out)")
    up.set_defaults(func=_up)
