"""``vitalgate simulate`` and ``vitalgate scenario``: simulators on the command line.

``simulate`` runs N simulated hubs against a broker: the full edge path by
default (devices -> GATT bytes -> edge session -> outbox -> MQTT), the fast
path with ``--fast`` (physiology -> wire payloads), or a synthetic load with
``--load READINGS`` for benchmarks.  ``--database`` first provisions the
simulated practice so that ingest accepts the readings.  A progress line
goes to stderr and a summary (sent, acknowledged, by device kind) to stdout.

``scenario run FILE...`` runs scenario files in-process through the rules
engine (default) or, with ``--broker`` and ``--database``, against a running
gateway; it prints expected vs actual and exits 1 on any mismatch.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from datetime import UTC, date, datetime, timedelta
from typing import Any, TextIO

from simulators.fleet import (
    FleetError,
    Progress,
    publish_panel,
    read_credentials,
    run_full_path,
    run_load,
)
from simulators.panel import Panel, build_panel, provision
from simulators.physiology import stable_profile
from simulators.scenario import (
    ScenarioError,
    load_scenario,
    run_against_gateway,
    run_in_process,
    shipped_scenarios,
)

#: Condition sets cycled over simulated patients (``simulate``).
SIMULATE_MIX = (("CHF",), ("CHF", "HTN"), ("COPD",), ("HTN",), ("DM",), ("DM", "HTN"))


def register(subparsers: Any) -> None:
    """Add ``simulate`` and ``scenario`` to the ``vitalgate`` command line."""
    p = subparsers.add_parser("simulate", help="simulated hubs publishing to a broker",
                              description=__doc__,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--broker", required=True, help="broker URL, e.g. mqtt://127.0.0.1:1883")
    p.add_argument("--patients", type=int, default=10, help="simulated patients/hubs (10)")
    p.add_argument("--days", type=int, default=30, help="days of readings (30)")
    p.add_argument("--speed", type=float, default=0.0,
                   help="simulated seconds per real second (1 = real time, 86400 = a day "
                        "per second; 0 = as fast as possible, the default)")
    p.add_argument("--seed", type=int, default=0, help="random seed (0)")
    p.add_argument("--start", type=date.fromisoformat,
                   help="first simulated day, YYYY-MM-DD (default: DAYS days before today)")
    p.add_argument("--fast", action="store_true",
                   help="fast path: physiology -> wire payloads, no GATT/edge agent")
    p.add_argument("--load", type=int, metavar="READINGS",
                   help="load mode: publish this many synthetic readings (benchmarks)")
    p.add_argument("--rate", type=float, help="readings per second limit (load and fast path)")
    p.add_argument("--window", type=int, default=100,
                   help="unacknowledged QoS 1 publishes allowed at once (100)")
    p.add_argument("--batch", type=int, default=1, help="readings per payload (fast/load; 1)")
    p.add_argument("--database", help="provision the simulated practice into this store first")
    p.add_argument("--hub-credentials", metavar="FILE",
                   help="hub_id:password lines: each hub connects as itself (shipped ACL)")
    p.add_argument("--mqtt5", action="store_true",
                   help="MQTT 5: count PUBACK reason codes (ACL refusals show as rejected)")
    p.add_argument("--quiet", action="store_true", help="no progress line")
    p.set_defaults(func=simulate_command)

    s = subparsers.add_parser("scenario", help="run scenario files and check their outcomes")
    sub = s.add_subparsers(dest="scenario_command", metavar="SUBCOMMAND")
    r = sub.add_parser("run", help="run scenarios (in-process unless --broker/--database)")
    r.add_argument("files", nargs="*", help="scenario YAML files (default: the shipped ones)")
    r.add_argument("--broker", help="broker of a running gateway")
    r.add_argument("--database", help="database URL of that gateway")
    r.add_argument("--hub-credentials", metavar="FILE",
                   help="hub_id:password lines: each hub connects as itself (shipped ACL)")
    r.add_argument("--timeout", type=float, default=120.0,
                   help="seconds to wait for the gateway to store everything (120)")
    r.set_defaults(func=scenario_run_command)
    ls = sub.add_parser("list", help="list the shipped scenarios")
    ls.set_defaults(func=scenario_list_command)
    s.set_defaults(func=lambda _args: (s.print_help(), 2)[1])


def simulated_panel(patients: int, days: int, seed: int, start: date) -> Panel:
    """The ``simulate`` command's panel: ``patients`` stable patients, mixed conditions."""
    profiles = [stable_profile(f"sim{i + 1:05d}", SIMULATE_MIX[i % len(SIMULATE_MIX)],
                               seed=seed) for i in range(patients)]
    return build_panel(profiles, start=start, days=days, seed=seed)


def simulate_command(args: argparse.Namespace, out: TextIO | None = None,
                     err: TextIO | None = None) -> int:
    """Handler of ``vitalgate simulate``."""
    out = out or sys.stdout
    err = err or sys.stderr
    if args.patients < 1 or args.days < 1:
        print("vitalgate simulate: --patients and --days must be >= 1", file=err)
        return 2
    speed = args.speed or None
    progress = Progress(args.load, out=err, enabled=not args.quiet)
    try:
        creds = read_credentials(args.hub_credentials) if args.hub_credentials else None
        if args.load:
            stats = run_load(args.broker, readings=args.load, hubs=args.patients,
                             rate=args.rate, window=args.window, batch=args.batch,
                             seed=args.seed, credentials=creds, mqtt5=args.mqtt5,
                             progress=progress)
        else:
            start = args.start or (datetime.now(UTC).date() - timedelta(days=args.days))
            panel = simulated_panel(args.patients, args.days, args.seed, start)
            if args.database:
                from gateway.store import open_store

                with open_store(args.database) as store:
                    provision(store, panel)
            if args.fast:
                stats = publish_panel(panel, args.broker, speed=speed, batch=args.batch,
                                      window=args.window, rate=args.rate, progress=progress,
                                      credentials=creds, mqtt5=args.mqtt5)
            else:
                with tempfile.TemporaryDirectory(prefix="vitalgate-sim-") as work:
                    stats = run_full_path(panel, args.broker, work, speed=speed,
                                          window=args.window, progress=progress,
                                          credentials=creds, mqtt5=args.mqtt5)
    except (FleetError, OSError) as e:
        progress.done()
        print(f"vitalgate simulate: {e}", file=err)
        return 1
    except KeyboardInterrupt:
        progress.done()
        print("vitalgate simulate: interrupted", file=err)
        return 130
    progress.done()
    print(stats.summary(), file=out)
    return 0 if stats.readings_acked == stats.readings_sent else 1


def scenario_run_command(args: argparse.Namespace, out: TextIO | None = None,
                         err: TextIO | None = None) -> int:
    """Handler of ``vitalgate scenario run``."""
    out = out or sys.stdout
    err = err or sys.stderr
    if bool(args.broker) != bool(args.database):
        print("vitalgate scenario run: --broker and --database go together", file=err)
        return 2
    files = args.files or [str(p) for p in shipped_scenarios()]
    failed = 0
    for f in files:
        try:
            sc = load_scenario(f)
            if args.broker:
                creds = read_credentials(args.hub_credentials) if args.hub_credentials else None
                result = run_against_gateway(sc, broker_url=args.broker,
                                             database_url=args.database,
                                             now=datetime.now(UTC),
                                             timeout_s=args.timeout, credentials=creds)
            else:
                result = run_in_process(sc)
        except ScenarioError as e:
            print(f"vitalgate scenario run: {e}", file=err)
            return 2
        except (FleetError, OSError) as e:
            print(f"vitalgate scenario run: {e}", file=err)
            return 1
        print(result.report(), file=out)
        failed += not result.ok
    return 1 if failed else 0


def scenario_list_command(args: argparse.Namespace, out: TextIO | None = None) -> int:
    """Handler of ``vitalgate scenario list``."""
    out = out or sys.stdout
    for p in shipped_scenarios():
        sc = load_scenario(p)
        first = " ".join(sc.description.split()).split(". ")[0]
        print(f"{p.name:<26} {first[:100]}", file=out)
    return 0


def main(argv: list[str] | None = None) -> int:
    """Stand-alone entry point (``python -m simulators.cli simulate ...``)."""
    parser = argparse.ArgumentParser(prog="vitalgate")
    register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(argv)
    if not hasattr(args, "func"):
        parser.print_help()
        return 2
    return int(args.func(args))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
