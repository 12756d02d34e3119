#!/usr/bin/env python3
"""Run every benchmark under bench/ and write BENCHMARKS.md.

Each benchmark is a script that prints a markdown section to stdout (and
progress to stderr).  They run one after another in one invocation, so the
ratios between them hold on a noisy machine.  ``--only NAME`` runs a subset;
``--out FILE`` writes elsewhere (default BENCHMARKS.md at the repository root).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"

#: (name, script, timeout seconds) in run order.
BENCHMARKS: list[tuple[str, str, int]] = [
    ("compare", "bench/pipeline_compare.py", 900),
    ("ingest", "bench/ingest_throughput.py", 900),
    ("rules", "bench/rules_engine.py", 600),
    ("paging", "bench/paging_latency.py", 300),
    ("billing", "bench/billing_month.py", 600),
    ("queue", "bench/queue_page.py", 300),
    ("callprep", "bench/callprep_page.py", 120),
    ("timescale", "bench/timescale_compare.py", 600),
]


def _cmd(*args: str) -> str:
    try:
        out = subprocess.run(args, capture_output=True, text=True, timeout=10, check=False)
        return (out.stdout or out.stderr).strip().splitlines()[0]
    except (OSError, IndexError, subprocess.TimeoutExpired):
        return "n/a"


def _commit() -> str:
    return _cmd("git", "-C", str(ROOT), "rev-parse", "--short", "HEAD")


def machine() -> str:
    """A markdown description of this machine."""
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = "unknown"
    try:
        kb = int(Path("/proc/meminfo").read_text().split()[1])
        mem = f"{kb / 1024 / 1024:.1f} GiB"
    except (OSError, ValueError, IndexError):
        pass
    commit = _commit()
    return "\n".join([
        f"- date: {dt.datetime.now(dt.UTC).strftime('%Y-%m-%d %H:%M UTC')}",
        f"- commit: {commit}",
        f"- CPU: {cpu}, {os.cpu_count()} cores; memory {mem}",
        f"- OS: {platform.platform()}; Python {platform.python_version()}",
        f"- PostgreSQL: {_cmd('psql', '--version')}; Mosquitto: {_cmd('mosquitto', '-h')}",
    ])


def main() -> int:
    """Run the benchmarks and write the report."""
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--only", action="append", help="run only these (repeatable)")
    ap.add_argument("--out", default=str(ROOT / "BENCHMARKS.md"))
    args = ap.parse_args()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    RESULTS.mkdir(exist_ok=True)
    ran = False
    for name, script, timeout in BENCHMARKS:
        if args.only and name not in args.only:
            continue
        path = ROOT / script
        if not path.exists():
            (RESULTS / f"{name}.md").write_text(f"## {name}\n\nnot run: {script} is missing.\n")
            continue
        print(f"== {name}: {script}", file=sys.stderr, flush=True)
        ran = True
        started = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
        try:
            res = subprocess.run([sys.executable, str(path)], cwd=ROOT, env=env, text=True,
                                 stdout=subprocess.PIPE, timeout=timeout, check=False)
            body = res.stdout.strip() or "(no output)"
            if res.returncode != 0:
                body += f"\n\n**failed with exit code {res.returncode}** (see stderr of the run)."
        except subprocess.TimeoutExpired:
            body = f"## {name}\n\n**timed out after {timeout} s**"
        (RESULTS / f"{name}.md").write_text(
            f"{body}\n\n_Measured {started} on commit {_commit()}, kernel {platform.release()}._\n")
    # BENCHMARKS.md is composed from the latest result of every benchmark, so
    # `--only NAME` re-measures one section and keeps the others as measured.
    sections = [(RESULTS / f"{name}.md").read_text() for name, _, _ in BENCHMARKS
                if (RESULTS / f"{name}.md").exists()]
    # The machine block describes the latest run that measured something: composing
    # alone (no benchmark selected) keeps the one recorded then.
    machine_file = RESULTS / "machine.md"
    if ran or not machine_file.exists():
        machine_file.write_text(machine() + "\n")
    header = ("# Benchmarks\n\nProduced by `python3 dev.py bench` (`bench/run_all.py`); every "
              "number below was measured by it (each section says when, on which commit and "
              "kernel; `--only NAME` re-measures one section). Targets come from the issues; a "
              "missed target is stated as missed.\n\nThe machines are shared virtual machines "
              "with the same CPU name whose speed differs from one to the next (the kernel "
              "build string tells them apart). Two earlier runs of this script's rules "
              "section, on code with the same instruction count per reading, measured 68,928 "
              "readings/s on kernel 6.18.44-fc-v782 (commit 24bd752; recorded in commit ce6e1a3) "
              "and 114,404 on 6.18.44-fc-v669 (commit 97823a6; recorded in commit f00c7e1). "
              "Compare sections measured on the same kernel.\n\n## Machine of the latest run\n\n"
              + machine_file.read_text())
    Path(args.out).write_text(header + "\n" + "\n".join(sections))
    print(f"wrote {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
