"""Record Access Control Point (0x2A52): decode packets, build requests.

Device to hub: opcode 5 (number of stored records, operand u16; u8 and u32
are tolerated) and opcode 6 (response code: request opcode + response value).
Hub to device: requests (opcodes 1-4), decoded too so simulators can parse them.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import ClassVar

from edge_agent.gatt._common import code_name
from edge_agent.gatt.numbers import Reader

RACP = 0x2A52

OP_REPORT_RECORDS = 1
OP_DELETE_RECORDS = 2
OP_ABORT = 3
OP_REPORT_COUNT = 4
OP_COUNT_RESPONSE = 5
OP_RESPONSE_CODE = 6

OPERATOR_NULL = 0
OPERATOR_ALL = 1
OPERATOR_LE = 2
OPERATOR_GE = 3
OPERATOR_RANGE = 4
OPERATOR_FIRST = 5
OPERATOR_LAST = 6

FILTER_SEQUENCE = 0x01
FILTER_USER_FACING_TIME = 0x02

RESPONSE_SUCCESS = 1
RESPONSE_NO_RECORDS = 6

OPCODES = {
    1: "report_stored_records",
    2: "delete_stored_records",
    3: "abort_operation",
    4: "report_number_of_stored_records",
    5: "number_of_stored_records_response",
    6: "response_code",
}
OPERATORS = {
    0: "null",
    1: "all_records",
    2: "less_than_or_equal_to",
    3: "greater_than_or_equal_to",
    4: "within_range",
    5: "first_record",
    6: "last_record",
}
RESPONSES = {
    1: "success",
    2: "op_code_not_supported",
    3: "invalid_operator",
    4: "operator_not_supported",
    5: "invalid_operand",
    6: "no_records_found",
    7: "abort_unsuccessful",
    8: "procedure_not_completed",
    9: "operand_not_supported",
}

_REQ = struct.Struct("<BB")
_REQ_SEQ = struct.Struct("<BBBH")


@dataclass(frozen=True, slots=True)
class RacpNumberOfRecords:
    """RACP opcode 5: the number of stored records matching the request."""

    characteristic: ClassVar[int] = RACP

    count: int

    def json_fields(self) -> dict[str, object]:
        """Fields for :func:`edge_agent.gatt.to_json_dict`."""
        return {"racp": {"opcode": OPCODES[OP_COUNT_RESPONSE], "count": self.count}}


@dataclass(frozen=True, slots=True)
class RacpResponseCode:
    """RACP opcode 6: the outcome of a request."""

    characteristic: ClassVar[int] = RACP

    request_opcode: int
    response_code: int

    @property
    def success(self) -> bool:
        """True for "success"."""
        return self.response_code == RESPONSE_SUCCESS

    @property
    def no_records(self) -> bool:
        """True for "no records found" (a normal outcome of a sync)."""
        return self.response_code == RESPONSE_NO_RECORDS

    def json_fields(self) -> dict[str, object]:
        """Fields for :func:`edge_agent.gatt.to_json_dict`."""
        return {
            "racp": {
                "opcode": OPCODES[OP_RESPONSE_CODE],
                "request_opcode": code_name(self.request_opcode, OPCODES),
                "response_code": code_name(self.response_code, RESPONSES),
            }
        }


@dataclass(frozen=True, slots=True)
class RacpRequest:
    """RACP request (opcodes 1-4) with its operator and raw operand."""

    characteristic: ClassVar[int] = RACP

    opcode: int
    operator: int
    operand: bytes = b""

    @property
    def min_sequence(self) -> int | None:
        """The sequence number of a ``>= sequence`` request, else ``None``."""
        if (
            self.operator == OPERATOR_GE
            and len(self.operand) == 3
            and self.operand[0] == FILTER_SEQUENCE
        ):
            return int.from_bytes(self.operand[1:3], "little")
        return None

    def json_fields(self) -> dict[str, object]:
        """Fields for :func:`edge_agent.gatt.to_json_dict`."""
        return {
            "racp": {
                "opcode": code_name(self.opcode, OPCODES),
                "operator": code_name(self.operator, OPERATORS),
                "operand": self.operand.hex(),
                "min_sequence": self.min_sequence,
            }
        }


RacpPacket = RacpNumberOfRecords | RacpResponseCode | RacpRequest


def decode_racp(data: bytes) -> RacpPacket:
    """Decode an RACP packet (responses from the device, or requests)."""
    r = Reader(RACP, data)
    opcode = r.u8("opcode")
    operator = r.u8("operator")
    if opcode == OP_COUNT_RESPONSE:
        if operator != OPERATOR_NULL:
            raise r.error(f"number-of-records response needs the null operator, got {operator}", 1)
        operand = r.rest()
        if len(operand) not in (1, 2, 4):
            raise r.error(f"number of records must be 1, 2 or 4 bytes, got {len(operand)}", 2)
        return RacpNumberOfRecords(int.from_bytes(operand, "little"))
    if opcode == OP_RESPONSE_CODE:
        if operator != OPERATOR_NULL:
            raise r.error(f"response code needs the null operator, got {operator}", 1)
        return RacpResponseCode(r.u8("request_opcode"), r.u8("response_code"))
    if opcode in (OP_REPORT_RECORDS, OP_DELETE_RECORDS, OP_ABORT, OP_REPORT_COUNT):
        return RacpRequest(opcode, operator, r.rest())
    raise r.error(f"unknown RACP opcode {opcode}", 0)


def report_all_records() -> bytes:
    """Request: report all stored records."""
    return _REQ.pack(OP_REPORT_RECORDS, OPERATOR_ALL)


def report_records_from(sequence: int) -> bytes:
    """Request: report records with sequence number >= ``sequence``."""
    return _REQ_SEQ.pack(OP_REPORT_RECORDS, OPERATOR_GE, FILTER_SEQUENCE, sequence)


def report_count_all() -> bytes:
    """Request: number of all stored records."""
    return _REQ.pack(OP_REPORT_COUNT, OPERATOR_ALL)


def report_count_from(sequence: int) -> bytes:
    """Request: number of records with sequence number >= ``sequence``."""
    return _REQ_SEQ.pack(OP_REPORT_COUNT, OPERATOR_GE, FILTER_SEQUENCE, sequence)


def abort_operation() -> bytes:
    """Request: abort the operation in progress."""
    return _REQ.pack(OP_ABORT, OPERATOR_NULL)
