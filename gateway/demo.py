"""``vitalgate demo``: the whole product on one machine with nothing installed.

Starts the gateway (embedded MQTT broker, SQLite store under ``var/demo``,
ingest, rules, timers, API and web app), creates a demo practice with users
(the login is printed), provisions ~50 simulated patients with their hubs and
devices, publishes 30 days of compressed history and then live readings, and
serves until Ctrl-C.  Escalations from the scripted patient courses (CHF
weight gain, COPD exacerbation, hypertension, diabetic lows) appear in the
queue within a minute.  Each run starts from a fresh demo database.
"""

from __future__ import annotations

import argparse
import logging
import secrets
import socket
import threading
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

DEMO_USERS = (
    ("coordinator", "coordinator@demo.vitalgate.local", "Casey Coordinator"),
    ("physician", "physician@demo.vitalgate.local", "Dr. Pat Physician"),
    ("admin", "admin@demo.vitalgate.local", "Alex Admin"),
    ("biller", "biller@demo.vitalgate.local", "Blake Biller"),
)


def _free(port: int, host: str = "127.0.0.1") -> int:
    """``port`` if free, else any free port."""
    with socket.socket() as s:
        try:
            s.bind((host, port))
            return port
        except OSError:
            s.bind((host, 0))
            return int(s.getsockname()[1])


def prepare(data_dir: Path, api_port: int, broker_port: int, **extra: Any) -> Any:
    """Settings for a fresh demo under ``data_dir`` (removes the previous demo database)."""
    from gateway.settings import load_settings

    data_dir.mkdir(parents=True, exist_ok=True)
    db = data_dir / "vitalgate.db"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    port = _free(api_port)
    return load_settings(mode="dev", data_dir=data_dir, database_url=f"sqlite:///{db}",
                         broker_url=None, embedded_broker_port=_free(broker_port),
                         api_port=port, public_url=f"http://127.0.0.1:{port}", **extra)


def create_users(store: Any, practice_id: str, password: str) -> list[tuple[str, str]]:
    """Demo users of every human role; returns (role, email)."""
    from api.security import hash_password
    from gateway.store.api_store import User

    hashed = hash_password(password)
    out = []
    for role, email, name in DEMO_USERS:
        store.create_user(User(id=f"u-{uuid.uuid4().hex[:10]}", practice_id=practice_id,
                               email=email, role=role, full_name=name, password_hash=hashed,
                               active=True, created_at=datetime.now(UTC)))
        out.append((role, email))
    return out


def start_demo(settings: Any, *, patients: int = 50, days: int = 30, seed: int = 7,
               live_speed: float = 60.0) -> tuple[Any, threading.Event, threading.Thread, str]:
    """Start gateway + simulated panel; return (gateway, stop event, publisher thread, password)."""
    from gateway.process import Gateway
    from simulators.demo import DEMO_PRACTICE_ID, build_demo_panel, provision_demo, run_demo

    gateway = Gateway(settings)
    gateway.start()
    demo = build_demo_panel(seed, n_patients=patients, days=days, now=datetime.now(UTC))
    provision_demo(gateway.store, demo)
    password = secrets.token_urlsafe(9)
    create_users(gateway.store, DEMO_PRACTICE_ID, password)
    stop = threading.Event()

    def publish() -> None:
        try:
            run_demo(demo, settings.resolved_broker_url, live=True, live_speed=live_speed,
                     stop=stop, mqtt5=False)
        except Exception:  # the demo keeps serving what it has
            log.exception("demo publisher stopped")

    thread = threading.Thread(target=publish, name="demo-publisher", daemon=True)
    thread.start()
    return gateway, stop, thread, password


def _cmd(args: argparse.Namespace) -> int:
    from gateway.process import serve

    logging.basicConfig(level=logging.WARNING if not args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s %(message)s")
    settings = prepare(Path(args.data_dir), args.port, args.broker_port)
    print("Starting the Vitalgate demo (embedded broker, SQLite, simulated patients)...",
          flush=True)
    gateway, stop, thread, password = start_demo(settings, patients=args.patients,
                                                  days=args.days, seed=args.seed,
                                                  live_speed=args.speed)
    url = f"http://127.0.0.1:{settings.api_port}/"

    def banner() -> None:  # printed once the web server accepts connections
        print(f"\n  Vitalgate demo is running: {url}\n")
        print(f"  Log in as {DEMO_USERS[0][1]} (coordinator) or {DEMO_USERS[1][1]} "
              "(physician)")
        print(f"  Password for every demo user: {password}")
        print(f"  API docs: {url}docs    Metrics: {url}metrics")
        print(f"  {args.patients} simulated patients: {args.days} days of history are being "
              f"replayed now; live readings follow at {args.speed:g}x real time.")
        print("  Press Ctrl-C to stop.\n", flush=True)

    def stop_publishing() -> None:
        stop.set()
        thread.join(10)

    try:
        serve(settings, gateway, on_started=banner, before_stop=stop_publishing)
    finally:  # uvicorn re-raises Ctrl-C after its graceful shutdown
        print("Vitalgate demo stopped.", flush=True)
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``demo``."""
    p = sub.add_parser("demo", help="run the whole product with simulated patients",
                       description="Start the embedded broker, SQLite store, ingest, rules, "
                                   "API and web app, with a simulated panel of patients.")
    p.add_argument("--patients", type=int, default=50, help="simulated patients (default 50)")
    p.add_argument("--days", type=int, default=30, help="days of history (default 30)")
    p.add_argument("--seed", type=int, default=7, help="simulation seed")
    p.add_argument("--speed", type=float, default=60.0,
                   help="live readings at this multiple of real time (default 60)")
    p.add_argument("--port", type=int, default=8000, help="web/API port (default 8000)")
    p.add_argument("--broker-port", type=int, default=18830, help="embedded broker port")
    p.add_argument("--data-dir", default="var/demo", help="where the demo database lives")
    p.set_defaults(func=_cmd)
