"""IEEE 11073-20601 SFLOAT/FLOAT and a bounds-checked little-endian reader.

SFLOAT (16 bit): the whole word is checked for the five special values first;
otherwise the top nibble is a two's complement exponent and the low 12 bits a
two's complement mantissa.  FLOAT (32 bit) is the same with an int8 exponent
and an int24 mantissa.  Values are exact :class:`~decimal.Decimal` numbers
(``mantissa.scaleb(exponent)``), never binary floats.
"""

from __future__ import annotations

import struct
from decimal import Decimal
from enum import StrEnum

from edge_agent.gatt.errors import DecodeError


class Special(StrEnum):
    """IEEE 11073 special values; never published as numbers."""

    NAN = "nan"
    NRES = "nres"
    PLUS_INF = "+inf"
    MINUS_INF = "-inf"
    RESERVED = "reserved"


#: A decoded SFLOAT/FLOAT: an exact number or the special value it carried.
Number = Decimal | Special

SFLOAT_SPECIALS: dict[int, Special] = {
    0x07FF: Special.NAN,
    0x0800: Special.NRES,
    0x07FE: Special.PLUS_INF,
    0x0802: Special.MINUS_INF,
    0x0801: Special.RESERVED,
}
FLOAT_SPECIALS: dict[int, Special] = {
    0x007FFFFF: Special.NAN,
    0x00800000: Special.NRES,
    0x007FFFFE: Special.PLUS_INF,
    0x00800002: Special.MINUS_INF,
    0x00800001: Special.RESERVED,
}

_U8 = struct.Struct("<B")
_U16 = struct.Struct("<H")
_S16 = struct.Struct("<h")
_U32 = struct.Struct("<I")


def sfloat_from_raw(raw: int) -> Number:
    """Decode a 16-bit SFLOAT word (already assembled little-endian)."""
    raw &= 0xFFFF
    special = SFLOAT_SPECIALS.get(raw)
    if special is not None:
        return special
    exponent = raw >> 12
    if exponent >= 0x8:
        exponent -= 0x10
    mantissa = raw & 0x0FFF
    if mantissa >= 0x800:
        mantissa -= 0x1000
    return Decimal(mantissa).scaleb(exponent)


def float_from_raw(raw: int) -> Number:
    """Decode a 32-bit FLOAT word (already assembled little-endian)."""
    raw &= 0xFFFFFFFF
    special = FLOAT_SPECIALS.get(raw)
    if special is not None:
        return special
    exponent = raw >> 24
    if exponent >= 0x80:
        exponent -= 0x100
    mantissa = raw & 0x00FFFFFF
    if mantissa >= 0x800000:
        mantissa -= 0x1000000
    return Decimal(mantissa).scaleb(exponent)


class Reader:
    """Sequential little-endian reader; every read is bounds-checked.

    Running out of bytes raises :class:`DecodeError` naming the field and the
    offset where it should have started.
    """

    __slots__ = ("characteristic", "data", "pos")

    def __init__(self, characteristic: int, data: bytes) -> None:
        self.characteristic = characteristic
        self.data = bytes(data)
        self.pos = 0

    def error(self, message: str, offset: int | None = None) -> DecodeError:
        """Build a :class:`DecodeError` at ``offset`` (default: current position)."""
        return DecodeError(self.characteristic, self.pos if offset is None else offset, message)

    def _need(self, size: int, field: str) -> int:
        start = self.pos
        if start + size > len(self.data):
            raise self.error(
                f"{field}: needs {size} byte(s) at offset {start}, "
                f"only {len(self.data) - start} left (length {len(self.data)})"
            )
        self.pos = start + size
        return start

    def remaining(self) -> int:
        """Bytes not yet read."""
        return len(self.data) - self.pos

    def u8(self, field: str) -> int:
        """Read an unsigned 8-bit integer."""
        return int(_U8.unpack_from(self.data, self._need(1, field))[0])

    def u16(self, field: str) -> int:
        """Read an unsigned 16-bit integer."""
        return int(_U16.unpack_from(self.data, self._need(2, field))[0])

    def s16(self, field: str) -> int:
        """Read a signed 16-bit integer."""
        return int(_S16.unpack_from(self.data, self._need(2, field))[0])

    def u24(self, field: str) -> int:
        """Read an unsigned 24-bit integer."""
        start = self._need(3, field)
        return int.from_bytes(self.data[start : start + 3], "little")

    def u32(self, field: str) -> int:
        """Read an unsigned 32-bit integer."""
        return int(_U32.unpack_from(self.data, self._need(4, field))[0])

    def sfloat(self, field: str) -> Number:
        """Read an SFLOAT."""
        return sfloat_from_raw(self.u16(field))

    def float32(self, field: str) -> Number:
        """Read a FLOAT."""
        return float_from_raw(self.u32(field))

    def rest(self) -> bytes:
        """Read every remaining byte."""
        out = self.data[self.pos :]
        self.pos = len(self.data)
        return out
