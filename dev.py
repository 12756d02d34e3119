#!/usr/bin/env python3
"""Developer entry point: the README's commands.

    python3 dev.py demo     set up .venv and run the demo
    python3 dev.py test     set up .venv and run lint, types and the full test suite
    python3 dev.py bench    set up .venv and run the benchmarks (writes BENCHMARKS.md)

Needs only Python 3.11+.  Creates ``.venv`` next to this file and installs the
project with its dev extras; re-installs when pyproject.toml changes.
"""

from __future__ import annotations

import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PY = BIN / "python"
STAMP = VENV / ".vitalgate-installed"


def run(*cmd: str | Path, check: bool = True, env: dict[str, str] | None = None) -> int:
    """Run a command from the repository root, echoing it."""
    print("+", " ".join(str(c) for c in cmd), flush=True)
    return subprocess.run([str(c) for c in cmd], cwd=ROOT, check=check, env=env).returncode


def ensure_venv() -> None:
    """Create .venv and install the project (+dev extras) when needed."""
    if sys.version_info < (3, 11):  # noqa: UP036 - dev.py may run under an old python3
        sys.exit(f"Vitalgate needs Python 3.11 or newer (this is {sys.version.split()[0]})")
    if not PY.exists():
        try:
            venv.EnvBuilder(with_pip=True).create(VENV)
        except (subprocess.CalledProcessError, OSError):
            # Debian/Ubuntu without python3-venv: no ensurepip.  Fall back to the
            # system pip driving the venv's interpreter (pip >= 22.3).
            venv.EnvBuilder(with_pip=False, clear=True).create(VENV)
            if subprocess.run([sys.executable, "-m", "pip", "--version"],
                              capture_output=True, check=False).returncode != 0:
                sys.exit("cannot create a virtual environment: install python3-venv "
                         "(sudo apt-get install python3-venv) and run again")
    pyproject = ROOT / "pyproject.toml"
    if STAMP.exists() and STAMP.stat().st_mtime >= pyproject.stat().st_mtime:
        return
    pip = [PY, "-m", "pip"] if (BIN / "pip").exists() else [
        sys.executable, "-m", "pip", "--python", PY]
    run(*pip, "install", "--quiet", "--upgrade", "pip")
    run(*pip, "install", "--quiet", "-e", ".[dev]")
    STAMP.touch()


def cmd_test(extra: list[str]) -> int:
    """Lint, type-check and run the whole test suite."""
    ensure_venv()
    run(PY, "-m", "ruff", "check", ".")
    run(PY, "-m", "mypy")
    return run(PY, "-m", "pytest", *extra, check=False)


def cmd_demo(extra: list[str]) -> int:
    """Run the demo (embedded broker, SQLite, API, simulated panel)."""
    ensure_venv()
    return run(BIN / "vitalgate", "demo", *extra, check=False)


def cmd_bench(extra: list[str]) -> int:
    """Run the benchmark suite and write BENCHMARKS.md."""
    ensure_venv()
    return run(PY, "bench/run_all.py", *extra, check=False)


def main() -> int:
    """Dispatch ``demo`` / ``test`` / ``bench``."""
    commands = {"demo": cmd_demo, "test": cmd_test, "bench": cmd_bench}
    if len(sys.argv) < 2 or sys.argv[1] not in commands:
        print(__doc__)
        return 2
    try:
        return commands[sys.argv[1]](sys.argv[2:])
    except subprocess.CalledProcessError as exc:
        return exc.returncode or 1


if __name__ == "__main__":
    sys.exit(main())
