"""``vitalgate gatt`` commands: decode GATT bytes offline and list known characteristics.

``vitalgate gatt decode <characteristic> <hex>`` prints one JSON object and
exits 0; bad input (unknown characteristic, bad hex, undecodable bytes) is
reported on stderr with exit code 2, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from edge_agent.gatt import REGISTRY, DecodeError, decode, lookup, to_json_dict

EXIT_OK = 0
EXIT_USAGE = 2


def _parse_hex(text: str) -> bytes:
    cleaned = "".join(text.split()).replace(":", "").replace("-", "")
    cleaned = cleaned.removeprefix("0x").removeprefix("0X")
    return bytes.fromhex(cleaned)


def cmd_decode(args: argparse.Namespace) -> int:
    """Decode one value and print it as JSON."""
    try:
        entry = lookup(args.characteristic)
    except KeyError:
        print(
            f"error: unknown characteristic {args.characteristic!r} (see 'vitalgate gatt list')",
            file=sys.stderr,
        )
        return EXIT_USAGE
    try:
        data = _parse_hex("".join(args.hex))
    except ValueError as exc:
        print(f"error: not hex bytes: {' '.join(args.hex)!r} ({exc})", file=sys.stderr)
        return EXIT_USAGE
    try:
        decoded = decode(entry.uuid, data)
    except DecodeError as exc:
        print(f"error: cannot decode {entry.name}: {exc}", file=sys.stderr)
        return EXIT_USAGE
    out: dict[str, Any] = to_json_dict(decoded)
    print(json.dumps(out, indent=2 if args.pretty else None, ensure_ascii=False))
    return EXIT_OK


def cmd_list(args: argparse.Namespace) -> int:
    """Print the known characteristics, one per line (or as JSON)."""
    rows = sorted(REGISTRY.values(), key=lambda e: e.uuid)
    if args.json:
        print(json.dumps([{"characteristic": f"{e.uuid:04x}", "name": e.name} for e in rows]))
    else:
        for e in rows:
            print(f"0x{e.uuid:04X}  {e.name}")
    return EXIT_OK


def register(subparsers: Any) -> None:
    """Add the ``gatt`` command group to the ``vitalgate`` parser."""
    gatt = subparsers.add_parser("gatt", help="decode Bluetooth LE GATT characteristic bytes")
    sub = gatt.add_subparsers(dest="gatt_command", metavar="SUBCOMMAND")
    gatt.set_defaults(func=lambda _args: (gatt.print_help(), EXIT_USAGE)[1])

    dec = sub.add_parser("decode", help="decode hex bytes of one characteristic to JSON")
    dec.add_argument("characteristic", help="uuid16 (2a35, 0x2A35) or name")
    dec.add_argument(
        "hex", nargs="+", help="value bytes as hex (several words, spaces or colons allowed)"
    )
    dec.add_argument("--pretty", action="store_true", help="indent the JSON")
    dec.set_defaults(func=cmd_decode)

    lst = sub.add_parser("list", help="list the characteristics that can be decoded")
    lst.add_argument("--json", action="store_true", help="print JSON")
    lst.set_defaults(func=cmd_list)
