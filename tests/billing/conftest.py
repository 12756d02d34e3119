"""Every reference evaluation in the table-driven and property tests is also run
through the vectorised month-end path (:mod:`gateway.billing.bulk`): both must bill
the same codes and units at every boundary."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from gateway.billing.bulk import evaluate_panel, panel_inputs
from gateway.billing.rules import DEFAULT_RULES


@pytest.fixture(autouse=True, scope="module")
def _bulk_agrees_with_reference(request: pytest.FixtureRequest) -> Iterator[None]:
    module = request.module
    reference = getattr(module, "evaluate_month", None)
    if reference is None:
        yield
        return

    def checked(profile: Any, device_days: Any, time_entries: Any, month: Any, *,
                practice_tz: str | None = None, rules: Any = DEFAULT_RULES) -> Any:
        days, entries = list(device_days), list(time_entries)
        report = reference(profile, days, entries, month, practice_tz=practice_tz, rules=rules)
        pid = profile.patient_id
        inputs = panel_inputs([profile], {pid: days}, {pid: entries}, month,
                              practice_tz=practice_tz or profile.timezone)
        bulk = evaluate_panel(inputs, month, rules=rules)
        assert bulk.code_units(0) == report.code_units(), (
            f"bulk {bulk.code_units(0)} != reference {report.code_units()}")
        ending = sorted((p.start.toordinal(), p.end.toordinal(), p.device_days)
                        for p in report.periods)
        assert sorted(zip(bulk.period_start.tolist(), bulk.period_end.tolist(),
                          bulk.period_days.tolist(), strict=True)) == ending
        return report

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(module, "evaluate_month", checked)
        yield
