"""MQTT topic contract (DESIGN.md).  Topics carry hub ids only, never PHI."""

from __future__ import annotations

import re
from dataclasses import dataclass

PREFIX = "vitalgate/v1/hubs"
READINGS = "readings"
STATUS = "status"
DEVICES = "devices"
KINDS = (READINGS, STATUS, DEVICES)

_HUB_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


class TopicError(ValueError):
    """A topic that is not part of the Vitalgate contract."""


def valid_hub_id(hub_id: str) -> bool:
    """Hub ids are 1-64 chars of letters, digits, ``_ . -`` (no MQTT wildcards)."""
    return bool(_HUB_ID.match(hub_id))


@dataclass(frozen=True, slots=True)
class Topic:
    """A parsed ``vitalgate/v1/hubs/{hub_id}/{kind}`` topic."""

    hub_id: str
    kind: str

    def __post_init__(self) -> None:
        if not valid_hub_id(self.hub_id):
            raise TopicError(f"invalid hub id {self.hub_id!r}")
        if self.kind not in KINDS:
            raise TopicError(f"unknown topic kind {self.kind!r}")

    def __str__(self) -> str:
        return f"{PREFIX}/{self.hub_id}/{self.kind}"

    @classmethod
    def parse(cls, text: str) -> Topic:
        """Parse a concrete topic; raise :class:`TopicError` when it does not fit."""
        parts = text.split("/")
        if len(parts) != 5 or "/".join(parts[:3]) != PREFIX:
            raise TopicError(f"not a vitalgate topic: {text!r}")
        return cls(hub_id=parts[3], kind=parts[4])


def readings_topic(hub_id: str) -> str:
    """Topic a hub publishes readings to."""
    return str(Topic(hub_id, READINGS))


def status_topic(hub_id: str) -> str:
    """Retained status topic (with last will) of a hub."""
    return str(Topic(hub_id, STATUS))


def devices_topic(hub_id: str) -> str:
    """Topic for device info, battery and clock offsets of a hub."""
    return str(Topic(hub_id, DEVICES))


def subscription(kind: str, share_group: str | None = None) -> str:
    """Wildcard subscription for ``kind``; MQTT v5 shared group when given."""
    base = f"{PREFIX}/+/{kind}"
    return f"$share/{share_group}/{base}" if share_group else base
