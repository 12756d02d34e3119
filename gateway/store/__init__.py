"""Storage: one interface (:class:`Store`), SQLite and PostgreSQL implementations."""

from __future__ import annotations

from gateway.store.base import (
    AddResult,
    Conflict,
    NewQuarantine,
    NotFound,
    QuarantineItem,
    Store,
    StoreError,
)

__all__ = ["AddResult", "Conflict", "NewQuarantine", "NotFound", "QuarantineItem", "Store",
           "StoreError", "open_store"]


def open_store(url: str, pool_size: int = 4) -> Store:
    """Open the store named by ``url`` (``sqlite:///...`` or ``postgresql://...``)."""
    if url.startswith("sqlite:"):
        from gateway.store.sqlite import SqliteStore

        return SqliteStore(url)
    if url.startswith(("postgresql:", "postgres:")):
        from gateway.store.postgres import PostgresStore

        return PostgresStore(url, pool_size=pool_size)
    raise ValueError(f"unsupported database URL scheme: {url.split(':', 1)[0]!r}")
