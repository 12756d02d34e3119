"""``vitalgate billing ...`` commands: evaluate a month from files, no database.

``evaluate`` prints a JSON list with one report per patient (the shape of
:meth:`MonthReport.to_dict`); ``at-risk`` prints one projection per patient.
Bad input prints one line on stderr naming the file and line and exits 2.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Sequence
from datetime import date
from pathlib import Path
from typing import Any

from gateway.billing.evaluate import evaluate_month
from gateway.billing.inputs import load_patients, load_readings, load_time_entries
from gateway.billing.model import BillingInputError, BillingProfile, JSONDict, TimeEntry, zone
from gateway.billing.periods import RawReading, local_device_days
from gateway.billing.projection import project_at_risk
from gateway.billing.rules import BillingMonth

EXIT_BAD_INPUT = 2

#: Builds one patient's JSON from its profile, device days and time entries.
_Builder = Callable[[BillingProfile, tuple[date, ...], Sequence[TimeEntry]], JSONDict]


def _month(text: str) -> BillingMonth:
    try:
        return BillingMonth.parse(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not YYYY-MM-DD") from None


def register(subparsers: Any) -> None:
    """Add the ``billing`` command and its sub-commands."""
    billing = subparsers.add_parser("billing", help="RPM/CCM/PCM billing from files")
    sub = billing.add_subparsers(dest="billing_command", metavar="SUBCOMMAND", required=True)

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("--patients", required=True, type=Path, help="patients JSON file")
        p.add_argument("--readings", type=Path, help="readings CSV file")
        p.add_argument("--time", type=Path, help="time entries CSV file")
        p.add_argument(
            "--practice-tz", help="practice IANA time zone (default: each patient's own)"
        )

    evaluate = sub.add_parser("evaluate", help="billable codes of one month, as JSON")
    common(evaluate)
    evaluate.add_argument("--month", required=True, type=_month, help="YYYY-MM")
    evaluate.set_defaults(func=evaluate_command)

    at_risk = sub.add_parser("at-risk", help="current period and time projection, as JSON")
    common(at_risk)
    at_risk.add_argument("--today", required=True, type=_date, help="YYYY-MM-DD")
    at_risk.set_defaults(func=at_risk_command)


def _load(
    args: argparse.Namespace,
) -> tuple[list[BillingProfile], dict[str, list[RawReading]], dict[str, list[TimeEntry]]]:
    if args.practice_tz is not None:
        try:
            zone(args.practice_tz)
        except BillingInputError as exc:
            raise BillingInputError(exc.message, source="--practice-tz") from None
    profiles = load_patients(args.patients)
    ids = frozenset(p.patient_id for p in profiles)
    readings = load_readings(args.readings, ids) if args.readings else {}
    entries = load_time_entries(args.time, ids) if args.time else {}
    return profiles, readings, entries


def _run(args: argparse.Namespace, build: _Builder) -> int:
    try:
        profiles, readings, entries = _load(args)
        out: list[JSONDict] = [
            build(
                p,
                local_device_days(readings.get(p.patient_id, ()), p.timezone),
                entries.get(p.patient_id, ()),
            )
            for p in profiles
        ]
    except BillingInputError as exc:
        print(f"vitalgate billing: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except (OSError, UnicodeDecodeError) as exc:
        print(f"vitalgate billing: error: cannot read input: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    text = json.dumps(out, indent=2) + "\n"
    try:
        sys.stdout.write(text)
        sys.stdout.flush()
    except BrokenPipeError:
        # The reader (e.g. ``| head``) went away: not an error of ours, and no traceback
        # at interpreter exit either.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return 0


def evaluate_command(args: argparse.Namespace) -> int:
    """``vitalgate billing evaluate``: one month's report per patient."""

    def build(
        p: BillingProfile, days: tuple[date, ...], entries: Sequence[TimeEntry]
    ) -> JSONDict:
        report = evaluate_month(p, days, entries, args.month, practice_tz=args.practice_tz)
        return report.to_dict()

    return _run(args, build)


def at_risk_command(args: argparse.Namespace) -> int:
    """``vitalgate billing at-risk``: current period standing per patient."""

    def build(
        p: BillingProfile, days: tuple[date, ...], entries: Sequence[TimeEntry]
    ) -> JSONDict:
        return project_at_risk(p, days, entries, args.today, practice_tz=args.practice_tz).to_dict()

    return _run(args, build)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the billing commands alone: ``python -m gateway.billing.cli evaluate ...``."""
    parser = argparse.ArgumentParser(prog="vitalgate")
    sub = parser.add_subparsers(dest="command", required=True)
    register(sub)
    args = parser.parse_args(["billing", *(sys.argv[1:] if argv is None else argv)])
    return int(args.func(args))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
