"""Table-driven boundary tests: every default rule at and around its thresholds."""

from __future__ import annotations

import pytest

from tests.rules.cases import CASES, Case
from tests.rules.harness import DEFAULTS, run_case


@pytest.mark.parametrize("case", CASES, ids=[f"{c.rule}: {c.name}" for c in CASES])
def test_case(case: Case) -> None:
    effects = run_case(case)
    fired = [e for e in effects if e.rule_id == case.rule]
    assert bool(fired) == case.fires, [e.summary for e in fired]
    if fired:
        assert fired[0].event == "opened"
        assert fired[0].summary
        assert fired[0].rule_version == DEFAULTS.get(case.rule).version


def test_every_default_rule_has_a_firing_and_a_quiet_doc_example() -> None:
    for rule in DEFAULTS.rules:
        docs = [c for c in CASES if c.rule == rule.id and c.doc]
        assert sorted(c.fires for c in docs) == [False, True], rule.id
