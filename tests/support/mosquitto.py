"""Launch a private Mosquitto with the SHIPPED config (deploy/mosquitto) for tests.

The shipped ``mosquitto.conf`` is copied with only the machine-specific
directives rewritten: the listener port (a free one), ``persistence_location``
(a temp dir, kept across :meth:`Mosquitto.restart`), ``password_file`` and
``acl_file`` (generated: the shipped ACL with the ``ingest`` service user;
hub users ``hub-...`` get the ACL's patterns) and ``log_dest``.  Everything
else (queue limits, per-listener settings, ACL patterns) is what production
runs, so tests exercise the real configuration.

Usage::

    with Mosquitto() as broker:
        user, password = broker.add_hub_user("hub-001")
        ... connect to broker.host, broker.port ...
"""

from __future__ import annotations

import os
import pwd
import secrets
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.support.services import free_port, mosquitto_binary, port_open, require_service

ROOT = Path(__file__).resolve().parents[2]
SHIPPED_CONF = ROOT / "deploy" / "mosquitto" / "mosquitto.conf"
SHIPPED_ACL = ROOT / "deploy" / "mosquitto" / "acl"
SERVICE_USER = "ingest"
START_TIMEOUT_S = 10.0


class MosquittoError(RuntimeError):
    """The broker could not be started."""


def render_config(conf: str, *, port: int, workdir: Path) -> str:
    """The shipped config with machine-specific directives pointed at ``workdir``."""
    repl = {
        "listener": f"listener {port} 127.0.0.1",
        "persistence_location": f"persistence_location {workdir / 'data'}/",
        "password_file": f"password_file {workdir / 'passwd'}",
        "acl_file": f"acl_file {workdir / 'acl'}",
        "log_dest": f"log_dest file {workdir / 'mosquitto.log'}",
    }
    seen: set[str] = set()
    out = []
    for line in conf.splitlines():
        key = line.split(maxsplit=1)[0] if line.strip() and not line.startswith("#") else ""
        if key in repl:
            if key in seen:  # one listener only in tests
                continue
            seen.add(key)
            out.append(repl[key])
        elif key == "pid_file":
            continue
        else:
            out.append(line)
    missing = set(repl) - seen
    if missing:
        raise MosquittoError(f"shipped config lacks {sorted(missing)}")
    if os.geteuid() == 0:
        # mosquitto started as root drops to user "mosquitto", which cannot read
        # the temp dir; a test broker keeps the invoking user instead.
        out.append("user root")
    return "\n".join(out) + "\n"


class Mosquitto:
    """A private mosquitto process on a free port, running the shipped config."""

    def __init__(self, port: int | None = None) -> None:
        binary = mosquitto_binary()
        if binary is None:
            raise MosquittoError("mosquitto is not installed")
        self.binary = binary
        self.host = "127.0.0.1"
        self.port = port or free_port()
        self._tmp = tempfile.TemporaryDirectory(prefix="vitalgate-mosquitto-")
        self.workdir = Path(self._tmp.name)
        (self.workdir / "data").mkdir()
        self._proc: subprocess.Popen[bytes] | None = None
        self._service_password = secrets.token_urlsafe(12)
        self._users: dict[str, str] = {}
        self._lock = threading.Lock()  # one writer of the password file
        self.conf_path = self.workdir / "mosquitto.conf"
        self.conf_path.write_text(render_config(SHIPPED_CONF.read_text(), port=self.port,
                                                workdir=self.workdir))
        shutil.copyfile(SHIPPED_ACL, self.workdir / "acl")
        self._set_password(SERVICE_USER, self._service_password)

    # -- users -------------------------------------------------------------------
    def _set_password(self, user: str, password: str) -> None:
        passwd = self.workdir / "passwd"
        args = ["mosquitto_passwd", "-b"]
        if not passwd.exists():
            args.append("-c")
        subprocess.run([*args, str(passwd), user, password], check=True,
                       capture_output=True, timeout=10)
        passwd.chmod(0o600)
        self._users[user] = password

    @property
    def service_credentials(self) -> tuple[str, str]:
        """(username, password) of the ``ingest`` service user."""
        return SERVICE_USER, self._service_password

    def add_hub_user(self, hub_id: str) -> tuple[str, str]:
        """Create (or return) the user of hub ``hub_id`` (user name = hub id)."""
        with self._lock:
            if hub_id in self._users:
                return hub_id, self._users[hub_id]
            password = secrets.token_urlsafe(12)
            self._set_password(hub_id, password)
            if self.running:
                self._reload()
            return hub_id, password

    def add_hub_users(self, hub_ids: list[str]) -> dict[str, str]:
        """Create many hub users with one reload; returns user -> password."""
        out = {}
        running = self.running
        with self._lock:
            self._add_many(hub_ids, out)
        if running:
            self._reload()
        return out

    def _add_many(self, hub_ids: list[str], out: dict[str, str]) -> None:
        for hub_id in hub_ids:
            if hub_id not in self._users:
                password = secrets.token_urlsafe(12)
                passwd = self.workdir / "passwd"
                subprocess.run(["mosquitto_passwd", "-b", str(passwd), hub_id, password],
                               check=True, capture_output=True, timeout=10)
                self._users[hub_id] = password
            out[hub_id] = self._users[hub_id]

    def _reload(self) -> None:
        assert self._proc is not None
        self._proc.send_signal(signal.SIGHUP)
        time.sleep(0.3)  # mosquitto reloads the password file asynchronously

    # -- lifecycle ---------------------------------------------------------------
    @property
    def running(self) -> bool:
        """True while the broker process is alive."""
        return self._proc is not None and self._proc.poll() is None

    def start(self) -> None:
        """Start the broker; return once it accepts connections."""
        if self.running:
            return
        self._proc = subprocess.Popen([self.binary, "-c", str(self.conf_path)],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                err = (self._proc.stderr.read() if self._proc.stderr else b"").decode()
                raise MosquittoError(f"mosquitto exited ({self._proc.returncode}): {err}"
                                     f"{self.log()[-2000:]}")
            if port_open(self.host, self.port, 0.2):
                return
            time.sleep(0.05)
        self.stop()
        raise MosquittoError(f"mosquitto did not listen on {self.port} within "
                             f"{START_TIMEOUT_S} s")

    def stop(self) -> None:
        """Stop the broker gracefully (SIGTERM saves the persistence file)."""
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)

    def restart(self) -> None:
        """Stop and start again on the same port with the same persistence."""
        self.stop()
        self.start()

    def log(self) -> str:
        """The broker's log so far (for failure messages)."""
        path = self.workdir / "mosquitto.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def url(self, user: str | None = None, password: str | None = None) -> str:
        """``mqtt://user:pass@host:port`` (service user by default)."""
        if user is None:
            user, password = self.service_credentials
        return f"mqtt://{user}:{password}@{self.host}:{self.port}"

    def close(self) -> None:
        """Stop and remove the working directory."""
        self.stop()
        self._tmp.cleanup()

    def __enter__(self) -> Mosquitto:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@contextmanager
def running_mosquitto() -> Iterator[Mosquitto]:
    """A started Mosquitto with the shipped config; skip (or fail in CI) without one."""
    if mosquitto_binary() is None:
        require_service("Mosquitto", "no mosquitto binary (apt install mosquitto)")
    try:
        broker = Mosquitto()
        broker.start()
    except (MosquittoError, OSError) as exc:
        require_service("Mosquitto", str(exc)[:300])
        raise
    try:
        yield broker
    finally:
        broker.close()


class PlainMosquitto:
    """mosquitto on 127.0.0.1:<free port>, persistence in a temp dir, unlimited queues."""

    def __init__(self, workdir: Path, listener: str = "", extra: str = "") -> None:
        binary = mosquitto_binary()
        if binary is None:
            require_service("Mosquitto", "no mosquitto binary on PATH or /usr/sbin")
        self.binary = str(binary)
        self.port = free_port()
        self.dir = workdir
        self.dir.mkdir(parents=True, exist_ok=True)
        self.conf = self.dir / "mosquitto.conf"
        self.conf.write_text(
            f"listener {self.port} 127.0.0.1\n"
            + (listener or "allow_anonymous true\n")
            + extra +
            "persistence true\n"
            f"persistence_location {self.dir}/\n"
            "max_queued_messages 0\n"
            f"log_dest file {self.dir}/mosquitto.log\n"
            # As root mosquitto drops to user "mosquitto", which cannot write
            # persistence into pytest's 0700 temp dirs: stay the current user.
            + (f"user {pwd.getpwuid(os.geteuid()).pw_name}\n" if os.geteuid() == 0 else "")
        )
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.proc = subprocess.Popen([self.binary, "-c", str(self.conf)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while not port_open("127.0.0.1", self.port, 0.2):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                log = (self.dir / "mosquitto.log")
                text = log.read_text()[-500:] if log.exists() else ""
                require_service("Mosquitto", f"did not start on port {self.port}: {text}")
            time.sleep(0.05)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)
        self.proc = None
