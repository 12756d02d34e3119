"""``vitalgate paging``: who is on call, run the dispatcher, show a trace.

    vitalgate paging oncall --policy policy.yaml [--practice p1] [--at 2026-03-08T09:00-04:00]
    vitalgate paging dispatch --once [--policy policy.yaml] [--database URL]
    vitalgate paging trace ESCALATION_ID [--database URL]

The policy defaults to ``$VITALGATE_PAGING_POLICY``.  A bad policy or time is
one message on stderr and exit status 2.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any

from rules.paging.policy import PolicyError, load_policy_file, on_call_at
from rules.paging.wiring import POLICY_ENV, TICK_S, build_channels


def _policy_path(args: argparse.Namespace) -> str:
    path = args.policy or os.environ.get(POLICY_ENV)
    if not path:
        raise PolicyError(f"no policy: pass --policy FILE or set {POLICY_ENV}")
    return str(path)


def _oncall(args: argparse.Namespace) -> int:
    try:
        policies, _raw = load_policy_file(_policy_path(args))
        at = datetime.fromisoformat(args.at) if args.at else datetime.now(UTC)
        if at.tzinfo is None:
            raise PolicyError(f"--at needs a UTC offset: {args.at}")
    except (PolicyError, ValueError) as exc:
        print(f"vitalgate paging oncall: {exc}", file=sys.stderr)
        return 2
    policy = policies(args.practice)
    person = on_call_at(policy.oncall, at)
    contact = policy.contacts.get(person) if person else None
    print(json.dumps({"at": at.isoformat(), "practice": args.practice, "person": person,
                      "name": contact.name if contact else None}))
    return 0


def _dispatch(args: argparse.Namespace) -> int:
    from gateway.commands import settings_from, store_from
    from rules.paging.dispatcher import Dispatcher
    from rules.paging.outbox import install_paging

    try:
        policies, raw = load_policy_file(_policy_path(args))
        settings = settings_from(args)
        channels = build_channels(raw.get("channels") or {}, settings.secret_key)
    except (PolicyError, ValueError) as exc:
        print(f"vitalgate paging dispatch: {exc}", file=sys.stderr)
        return 2
    with store_from(args) as store:
        install_paging(store, policies, public_url=settings.public_url,
                       secret_key=settings.secret_key)
        d = Dispatcher(store, channels, worker=f"cli-{os.getpid()}")
        while True:
            stats = d.run_once()
            print(json.dumps(asdict(stats)), flush=True)
            if args.once:
                return 0
            time.sleep(TICK_S)


def _trace(args: argparse.Namespace) -> int:
    from gateway.commands import store_from

    with store_from(args) as store:
        entries: Any = store.notification_trace(args.escalation_id)  # type: ignore[attr-defined]
        for e in entries:
            row = asdict(e)
            row["at"] = e.at.isoformat()
            print(json.dumps(row))
    return 0


def register(subparsers: Any) -> None:
    """Add ``paging oncall|dispatch|trace`` to the ``vitalgate`` command line."""
    paging = subparsers.add_parser("paging", help="physician paging tools")
    sub = paging.add_subparsers(dest="paging_command", metavar="SUBCOMMAND")
    p = sub.add_parser("oncall", help="who is on call at an instant")
    p.add_argument("--policy", help=f"policy YAML (default ${POLICY_ENV})")
    p.add_argument("--practice", default="", help="practice id (per-practice policies)")
    p.add_argument("--at", help="ISO 8601 instant with offset (default now)")
    p.set_defaults(func=_oncall)
    p = sub.add_parser("dispatch", help="deliver due pages and advance policies")
    p.add_argument("--policy", help=f"policy YAML (default ${POLICY_ENV})")
    p.add_argument("--database", metavar="URL", help="default from settings")
    p.add_argument("--once", action="store_true", help="one pass, then exit")
    p.set_defaults(func=_dispatch)
    p = sub.add_parser("trace", help="every page attempt and policy note of an escalation")
    p.add_argument("escalation_id")
    p.add_argument("--database", metavar="URL", help="default from settings")
    p.set_defaults(func=_trace)
    paging.set_defaults(func=lambda _args: (paging.print_help(), 2)[1])
