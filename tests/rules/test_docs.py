"""docs/rules.md is generated from the rule file and the boundary case table."""

from __future__ import annotations

from tests.rules.gen_docs import DOC, render


def test_docs_rules_md_is_up_to_date() -> None:
    assert DOC.exists(), "run: PYTHONPATH=. python -m tests.rules.gen_docs"
    assert DOC.read_text(encoding="utf-8") == render(), (
        "docs/rules.md is out of date; run: PYTHONPATH=. python -m tests.rules.gen_docs")
