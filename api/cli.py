"""``vitalgate users create`` and ``vitalgate api`` (serve the HTTP app).

Registered through ``gateway.cli.COMMAND_MODULES``.  Handlers build settings
and the store when they run, never at import time.
"""

from __future__ import annotations

import argparse
import getpass
import logging
import sys
import uuid
from datetime import UTC, datetime
from typing import Any

from api.security import Role, hash_password
from gateway.model import Practice
from gateway.settings import load_settings
from gateway.store import Conflict, NotFound, open_store
from gateway.store.api_store import User

log = logging.getLogger(__name__)

MIN_PASSWORD = 12


def register(sub: Any) -> None:
    """Add the ``users`` and ``api`` commands."""
    users = sub.add_parser("users", help="manage API users")
    users_sub = users.add_subparsers(dest="users_command", metavar="ACTION", required=True)
    create = users_sub.add_parser("create", help="create a user of a practice")
    create.add_argument("--practice", required=True, help="practice id")
    create.add_argument("--practice-name", help="create the practice with this name if missing")
    create.add_argument("--email", required=True)
    create.add_argument("--role", required=True,
                        choices=[r.value for r in Role if r is not Role.HUB])
    create.add_argument("--name", default="", help="full name")
    create.add_argument("--password-stdin", action="store_true",
                        help="read the password from standard input (else prompt)")
    create.set_defaults(func=cmd_users_create)

    api = sub.add_parser("api", help="serve the HTTP API and web pages")
    api.add_argument("--host", help="bind address (default: settings.api_host)")
    api.add_argument("--port", type=int, help="port (default: settings.api_port)")
    api.set_defaults(func=cmd_api)


def _read_password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    first = getpass.getpass("Password: ")
    if first != getpass.getpass("Repeat password: "):
        raise SystemExit("passwords differ")
    return first


def cmd_users_create(args: argparse.Namespace) -> int:
    """Create a user (and, with --practice-name, the practice)."""
    settings = load_settings(args.config)
    password = _read_password(args.password_stdin)
    if len(password) < MIN_PASSWORD:
        print(f"password must have at least {MIN_PASSWORD} characters", file=sys.stderr)
        return 2
    store = open_store(settings.resolved_database_url, settings.db_pool_size)
    try:
        store.migrate()
        try:
            store.get_practice(args.practice)
        except NotFound:
            if not args.practice_name:
                print(f"practice {args.practice!r} does not exist (use --practice-name to "
                      "create it)", file=sys.stderr)
                return 2
            store.upsert_practice(Practice(id=args.practice, name=args.practice_name))
        user = User(id=uuid.uuid4().hex, practice_id=args.practice, email=args.email.lower(),
                    role=args.role, full_name=args.name, password_hash=hash_password(password),
                    created_at=datetime.now(UTC))
        try:
            store.create_user(user)  # type: ignore[attr-defined]
        except Conflict:
            print("a user with this e-mail exists", file=sys.stderr)
            return 1
        print(user.id)
        return 0
    finally:
        store.close()


def cmd_api(args: argparse.Namespace) -> int:
    """Serve the API with uvicorn until interrupted."""
    import uvicorn

    from api.app import create_app

    settings = load_settings(args.config)
    store = open_store(settings.resolved_database_url, settings.db_pool_size)
    try:
        store.migrate()
        app = create_app(settings, store)
        uvicorn.run(app, host=args.host or settings.api_host, port=args.port or settings.api_port,
                    proxy_headers=False, server_header=False, log_level="info")
    finally:
        store.close()
    return 0
