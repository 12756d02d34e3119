"""The decoder error type.

Every failure to decode radio bytes is a :class:`DecodeError`: the bytes came
from the remote device, so it is the device's (or the radio's) fault, never a
bug in the caller.  Callers can act on ``characteristic`` and ``offset``.
"""

from __future__ import annotations


class DecodeError(ValueError):
    """Bytes from a device that do not form a valid value of a characteristic.

    ``characteristic`` is the 16-bit UUID being decoded; ``offset`` is the byte
    offset at which decoding failed.
    """

    def __init__(self, characteristic: int, offset: int, message: str) -> None:
        self.characteristic = characteristic
        self.offset = offset
        self.reason = message
        super().__init__(f"0x{characteristic:04X} at byte {offset}: {message}")
