"""The ``vitalgate`` command line.

Each package contributes its commands through a module exposing
``register(subparsers)``; the module adds argparse sub-parsers and sets
``func`` (``handler(args) -> int`` exit code) with ``set_defaults``.
Command modules are imported lazily only when building the parser, so
``vitalgate --help`` stays cheap and no engine is created at import time.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from gateway.settings import SetupError

#: Modules that contribute sub-commands (each has ``register(subparsers)``).
COMMAND_MODULES: tuple[str, ...] = (
    "gateway.commands",
    "simulators.cli",
    "gateway.billing.cli",
    "gateway.callprep",
    "gateway.demo",
    "api.fhir_cli",
    "edge_agent.cli",
    "edge_agent.agent_cli",
    "rules.cli",
    "rules.paging.cli",
    "ingest.cli",
    "api.cli",
)


def build_parser() -> argparse.ArgumentParser:
    """Build the full argument parser with every package's commands."""
    parser = argparse.ArgumentParser(
        prog="vitalgate",
        description="Vitalgate remote patient monitoring gateway.",
    )
    parser.add_argument("--config", help="TOML settings file (else VITALGATE_* env vars)")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more logging")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``vitalgate`` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    func = getattr(args, "func", None)
    if func is None:
        parser.print_help()
        return 0 if args.command is None else 2
    try:
        return int(func(args) or 0)
    except KeyboardInterrupt:
        return 130
    except SetupError as exc:  # the operator must change something: say it, no traceback
        print(f"vitalgate: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
