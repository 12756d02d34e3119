"""``vitalgate users create`` through the api.cli command module."""

from __future__ import annotations

import argparse
import io
from pathlib import Path

import pytest

from api import cli
from api.security import verify_password
from gateway.store import open_store


def run(argv: list[str], monkeypatch: pytest.MonkeyPatch, stdin: str = "") -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--config")
    sub = parser.add_subparsers(dest="command")
    cli.register(sub)
    args = parser.parse_args(argv)
    monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
    return int(args.func(args))


def test_users_create_with_password_on_stdin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "cli.db"
    monkeypatch.setenv("VITALGATE_DATABASE_URL", f"sqlite:///{db}")
    argv = ["users", "create", "--practice", "p1", "--practice-name", "Clinic One",
            "--email", "Admin@Clinic.example", "--role", "admin", "--password-stdin"]
    assert run(argv, monkeypatch, "a long admin password\n") == 0
    user_id = capsys.readouterr().out.strip()
    store = open_store(f"sqlite:///{db}")
    try:
        user = store.get_user(user_id)  # type: ignore[attr-defined]
        assert user.email == "admin@clinic.example" and user.role == "admin"
        assert verify_password(user.password_hash, "a long admin password")
        assert store.get_practice("p1").name == "Clinic One"
    finally:
        store.close()
    assert run(argv, monkeypatch, "a long admin password\n") == 1  # duplicate e-mail


def test_users_create_refuses_short_password_and_missing_practice(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VITALGATE_DATABASE_URL", f"sqlite:///{tmp_path / 'c.db'}")
    base = ["users", "create", "--practice", "nope", "--email", "x@y.example", "--role",
            "coordinator", "--password-stdin"]
    assert run(base, monkeypatch, "short\n") == 2
    assert run(base, monkeypatch, "long enough password\n") == 2


def test_hub_role_is_not_offered() -> None:
    parser = argparse.ArgumentParser()
    cli.register(parser.add_subparsers())
    with pytest.raises(SystemExit):
        parser.parse_args(["users", "create", "--practice", "p", "--email", "h@x.example",
                           "--role", "hub"])
