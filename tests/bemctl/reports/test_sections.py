"""The A/B protocol's sections (router, routing dynamics: rows, the static and no-op labels)
and their rendering in every format from the record's `sections`."""

from __future__ import annotations

import json

from bemctl.reports.csv_report import render_csv
from bemctl.reports.html import render_html
from bemctl.reports.markdown import render_markdown
from bemctl.reports.records import run_fields
from bemctl.reports.sections_view import html_lines, markdown_lines
from engine.protocols.ab_sections import ab_sections, dynamics_notes, dynamics_rows


def _part(tokens: int, distinct: int, entropy: float, top: float) -> dict:
    return {
        "tokens": tokens,
        "distinct": distinct,
        "entropy_bits": entropy,
        "top_share": top,
        "static": top >= 0.99,
    }


def _dynamics(top: float = 0.42) -> dict:
    return {
        "unit": "mask",
        "sequences": 120,
        "all": _part(7968, 3, 1.562, top),
        "prompt": _part(7358, 3, 1.563, top),
        "generated": _part(610, 2, 0.9, 0.56),
        "static": top >= 0.99,
        "static_share": 0.99,
    }


def _gates(changed: int = 7) -> dict:
    return {
        "n": 120,
        "unit": "prompts",
        "mean_abs_dev": [[0.01, 0.02], [0.03, 0.04]],
        "overall": 0.025,
        "max_abs_dev": 0.09,
        "prompts": 120,
        "prompts_gated": 120,
        "answers_changed": changed,
        "share_changed": changed / 120,
        "exact_match_changed": 2,
        "reranker_top1": 0.9,
        "focus_strength": [[0.5, -0.25], [0.0, 1.0]],
        "no_op": changed == 0,
    }


def _with_sections(record: dict, baseline: dict | None, variant: dict | None) -> dict:
    """`record` as the store gives it back: the A/B protocol's sections of these stats."""
    record["sections"] = [s.to_dict() for s in ab_sections(baseline, variant)]
    return record


def test_rows_show_the_variants_dynamics_and_a_dash_for_the_static_baseline() -> None:
    rows = {
        label: (base, var) for label, base, var in dynamics_rows(None, {"dynamics": _dynamics()})
    }
    assert rows["distinct masks used (all / prompt / generated)"] == ("-", "3 / 3 / 2")
    assert rows["entropy, bits (all / prompt / generated)"][1] == "1.562 / 1.563 / 0.900"
    share = "share of tokens under the most common mask (all / prompt / generated)"
    assert rows[share][1] == "0.4200 / 0.4200 / 0.5600"
    assert rows["routing"][1].startswith("dynamic")
    assert dynamics_notes(None, {"dynamics": _dynamics()}) == []


def test_a_static_dynamic_variant_is_called_static_in_every_format(make_record) -> None:
    variant = {"dynamics": _dynamics(top=0.995)}
    record = _with_sections(make_record(), None, variant)
    [note] = dynamics_notes(None, variant)
    assert note.startswith("Static routing (variant): one mask for 99.50%")
    markdown = render_markdown([record])
    assert "| routing dynamics | baseline | variant |" in markdown and note in markdown
    assert "STATIC" in markdown
    html = render_html([record], {})
    assert "<h3>Routing dynamics</h3>" in html and "Static routing (variant)" in html
    assert "dynamics/routing/variant" in render_csv([record]).splitlines()[0]


def test_gate_movement_rows_and_the_no_op_label() -> None:
    variant = {"gate_movement": _gates(changed=7)}
    rows = {label: var for label, _, var in dynamics_rows(None, variant)}
    assert rows["head-group gates: mean abs(g − 1) (max)"] == "0.0250 (0.0900)"
    assert rows["mean abs(g − 1) per layer (one value per head group)"] == (
        "L0: 0.010 0.020; L1: 0.030 0.040"
    )
    changed = "answers changed with the shaping off (gates 1, focus 0)"
    assert rows[changed] == "7/120 (5.8%), exact match changed on 2"
    assert rows["evidence focus s per layer (one value per head group)"].startswith("L0: +0.500")
    assert dynamics_notes(None, variant) == []
    variant = {"gate_movement": _gates(changed=0)}
    [note] = dynamics_notes(None, variant)
    assert note.startswith("No-op (variant)") and "none of 120 answers" in note
    sections = [s.to_dict() for s in ab_sections(None, variant)]
    assert "No-op (variant)" in "\n".join(markdown_lines(sections))
    assert any("No-op (variant)" in line for line in html_lines(sections))


def test_markdown_rows_keep_their_three_cells() -> None:
    variant = {"dynamics": _dynamics(), "gate_movement": _gates()}
    sections = [s.to_dict() for s in ab_sections(None, variant)]
    rows = [line for line in markdown_lines(sections) if line.startswith("| ")]
    assert len(rows) > 8 and all(line.count("|") == 4 for line in rows), rows


def test_records_without_the_measurements_render_no_section(make_record) -> None:
    record = _with_sections(make_record(), None, None)
    assert dynamics_rows(None, None) == [] and record["sections"] == []
    assert markdown_lines([]) == [] and html_lines([]) == []
    assert "routing dynamics" not in render_markdown([record])


def test_run_fields_pick_the_measurements_from_variant_stats() -> None:
    stats = {"router": True, "dynamics": _dynamics(), "switch_rate": 0.1}
    assert run_fields(json.dumps(stats)) == {"dynamics": _dynamics(), "gate_movement": None}
    assert run_fields(None) == {"dynamics": None, "gate_movement": None}
    assert run_fields(json.dumps({"gate_movement": _gates()}))["gate_movement"]["n"] == 120


def test_a_comparison_stored_before_sections_gets_the_ab_sections_rebuilt(tmp_path) -> None:
    """Schema 0008 added `comparison.sections_json`; an older comparison (NULL there) shows
    the router/dynamics sections rebuilt from its runs' stored measurements; a stored list,
    even an empty one, is shown as stored."""
    from bemctl.reports.records import build_records
    from store.db import Store
    from store.models import Comparison, Run
    from tests.bemctl.tui.helpers import add_comparison

    with Store(tmp_path / "s.db") as store:
        comparison_id = add_comparison(store, "old_v1", "REJECT", -0.01, [])
        with store.session() as session:
            comparison = session.get(Comparison, comparison_id)
            assert comparison is not None and comparison.sections_json is None
            variant = session.get(Run, comparison.variant_run_id)
            assert variant is not None
            variant.variant_stats_json = json.dumps({"dynamics": _dynamics(top=0.995)})
        [record] = build_records(store)
        assert [s["key"] for s in record["sections"]] == ["dynamics"]
        assert record["sections"][0]["notes"][0].startswith("Static routing (variant)")
        with store.session() as session:
            comparison = session.get(Comparison, comparison_id)
            assert comparison is not None
            comparison.sections_json = "[]"
        [record] = build_records(store)
        assert record["sections"] == []
