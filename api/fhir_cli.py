"""``vitalgate export fhir``: a patient's readings (and escalations) as FHIR R4 Bundles."""

from __future__ import annotations

import argparse
import json
from datetime import datetime

from api.fhir import patient_bundle
from gateway.commands import add_database_option, fail, store_from
from gateway.store import NotFound


def _export(args: argparse.Namespace) -> int:
    try:
        since = datetime.fromisoformat(args.since) if args.since else None
    except ValueError:
        return fail(f"--since must be ISO 8601 with a zone, got {args.since!r}")
    if since is not None and since.tzinfo is None:
        return fail("--since needs a zone offset (e.g. 2026-03-01T00:00:00Z)")
    with store_from(args) as store:
        try:
            patient = store.get_patient(args.patient)
        except NotFound:
            return fail(f"no patient {args.patient!r}")
        bundle = patient_bundle(store, patient, what=args.what, since=since)
    print(json.dumps(bundle, indent=None if args.compact else 2))
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``export fhir``."""
    export = sub.add_parser("export", help="export data (FHIR R4)",
                            description="Export patient data for EHRs.")
    esub = export.add_subparsers(dest="export_command", metavar="FORMAT", required=True)
    fhir = esub.add_parser("fhir", help="FHIR R4 transaction Bundle on stdout",
                           description="Print a FHIR R4 transaction Bundle (conditional PUTs "
                                       "by identifier, so re-exports never duplicate).")
    fhir.add_argument("--patient", required=True, help="patient id")
    fhir.add_argument("--since", help="only readings measured at or after (ISO 8601 with zone)")
    fhir.add_argument("--what", choices=["readings", "escalations", "medications"],
                      default="readings")
    fhir.add_argument("--compact", action="store_true", help="one-line JSON")
    add_database_option(fhir)
    fhir.set_defaults(func=_export)
