"""Simulated devices exercise the GATT decoders: >= 95 % line coverage of edge_agent/gatt.

Runs the simulator device and edge-path tests (only simulated devices feed the
decoders there) under coverage in a subprocess and checks the total.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]


def test_simulated_devices_cover_the_decoders(tmp_path: Path) -> None:
    env = {**os.environ, "COVERAGE_FILE": str(tmp_path / ".coverage")}
    run = subprocess.run(
        [sys.executable, "-m", "coverage", "run", "--source=edge_agent/gatt", "-m", "pytest",
         "-q", "-p", "no:cacheprovider", "tests/simulators/test_devices.py",
         "tests/simulators/test_edge_path.py"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
    report = subprocess.run([sys.executable, "-m", "coverage", "report", "--format=total"],
                            cwd=ROOT, env=env, capture_output=True, text=True, check=True)
    total = float(report.stdout.strip())
    print(f"edge_agent/gatt line coverage from simulated devices: {total:.0f} %")
    assert total >= 95, total
