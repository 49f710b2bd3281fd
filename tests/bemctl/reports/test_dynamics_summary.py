"""The routing-dynamics section: rows, the static and no-op labels, Markdown, HTML, JSON fields."""

from __future__ import annotations

import json

from bemctl.reports.dynamics_summary import (
    dynamics_notes,
    dynamics_rows,
    html_lines,
    markdown_lines,
    run_fields,
)
from bemctl.reports.html import render_html
from bemctl.reports.markdown import render_markdown


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


def test_rows_show_the_variants_dynamics_and_a_dash_for_the_static_baseline(make_record) -> None:
    record = make_record()
    record["variant_metrics"]["dynamics"] = _dynamics()
    rows = {label: (base, var) for label, base, var in dynamics_rows(record)}
    assert rows["distinct masks used (all / prompt / generated)"] == ("-", "3 / 3 / 2")
    assert rows["entropy, bits (all / prompt / generated)"][1] == "1.562 / 1.563 / 0.900"
    share = "share of tokens under the most common mask (all / prompt / generated)"
    assert rows[share][1] == "0.4200 / 0.4200 / 0.5600"
    assert rows["routing"][1].startswith("dynamic")
    assert dynamics_notes(record) == []


def test_a_static_dynamic_variant_is_called_static_in_every_format(make_record) -> None:
    record = make_record()
    record["variant_metrics"]["dynamics"] = _dynamics(top=0.995)
    [note] = dynamics_notes(record)
    assert note.startswith("Static routing (variant): one mask for 99.50%")
    markdown = render_markdown([record])
    assert "| routing dynamics | baseline | variant |" in markdown and note in markdown
    assert "STATIC" in markdown
    html = render_html([record], {})
    assert "<h3>Routing dynamics</h3>" in html and "Static routing (variant)" in html


def test_gate_movement_rows_and_the_no_op_label(make_record) -> None:
    record = make_record()
    record["variant_metrics"]["gate_movement"] = _gates(changed=7)
    rows = {label: var for label, _, var in dynamics_rows(record)}
    assert rows["head-group gates: mean abs(g − 1) (max)"] == "0.0250 (0.0900)"
    assert rows["mean abs(g − 1) per layer (one value per head group)"] == (
        "L0: 0.010 0.020; L1: 0.030 0.040"
    )
    changed = "answers changed with the shaping off (gates 1, focus 0)"
    assert rows[changed] == "7/120 (5.8%), exact match changed on 2"
    assert rows["evidence focus s per layer (one value per head group)"].startswith("L0: +0.500")
    assert dynamics_notes(record) == []
    record["variant_metrics"]["gate_movement"] = _gates(changed=0)
    [note] = dynamics_notes(record)
    assert note.startswith("No-op (variant)") and "none of 120 answers" in note
    assert "No-op (variant)" in "\n".join(markdown_lines(record))
    assert any("No-op (variant)" in line for line in html_lines(record))


def test_markdown_rows_keep_their_three_cells(make_record) -> None:
    record = make_record()
    record["variant_metrics"]["dynamics"] = _dynamics()
    record["variant_metrics"]["gate_movement"] = _gates()
    rows = [line for line in markdown_lines(record) if line.startswith("| ")]
    assert len(rows) > 8 and all(line.count("|") == 4 for line in rows), rows


def test_records_without_the_measurements_render_no_section(make_record) -> None:
    record = make_record()
    assert dynamics_rows(record) == [] and markdown_lines(record) == []
    assert html_lines(record) == [] and "routing dynamics" not in render_markdown([record])


def test_run_fields_pick_the_measurements_from_variant_stats() -> None:
    stats = {"router": True, "dynamics": _dynamics(), "switch_rate": 0.1}
    assert run_fields(json.dumps(stats)) == {"dynamics": _dynamics(), "gate_movement": None}
    assert run_fields(None) == {"dynamics": None, "gate_movement": None}
    assert run_fields(json.dumps({"gate_movement": _gates()}))["gate_movement"]["n"] == 120
