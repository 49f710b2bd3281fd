"""CSV renderer on hand-made records: one row per (experiment, metric), exact numbers."""

from __future__ import annotations

import csv
import io

from bemctl.reports.csv_report import COLUMNS, render_csv

REQUIRED = {
    "experiment_id", "variant", "verdict", "metric", "n", "baseline_mean", "variant_mean",
    "mean_diff", "ci_low", "ci_high", "confidence_level", "test", "p_value", "p_adjusted",
    "family_size", "cohens_dz", "hedges_g", "power", "mde", "param_ratio", "flop_ratio",
    "latency_ratio", "memory_ratio", "comparison_id", "created_at",
}  # fmt: skip


def _rows(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def test_one_row_per_experiment_and_metric_with_exact_values(make_record) -> None:
    records = [make_record("a", run_ids=(1, 2)), make_record("b", "REJECT", run_ids=(3, 4))]
    text = render_csv(records)
    header = text.splitlines()[0].split(",")
    assert REQUIRED <= set(header) and tuple(header) == COLUMNS
    rows = _rows(text)
    assert [(r["experiment_id"], r["metric"]) for r in rows] == [
        ("a", "exact_match"),
        ("a", "f1"),
        ("b", "exact_match"),
        ("b", "f1"),
    ]
    for row in rows:
        rec = next(r for r in records if r["experiment_id"] == row["experiment_id"])
        sv, m = rec["statistical_validation"], row["metric"]
        assert row["verdict"] == rec["acceptance_decision"]["overall_verdict"]
        assert float(row["mean_diff"]) == sv["paired_differences"][m]
        assert float(row["ci_low"]) == sv["bca_bootstrap"][m]["lower"]
        assert float(row["ci_high"]) == sv["bca_bootstrap"][m]["upper"]
        assert float(row["p_value"]) == sv["paired_tests"][m]["p_value"]
        assert int(row["n"]) == sv["paired_tests"][m]["n"]
        assert float(row["baseline_mean"]) == rec["baseline_metrics"][m]
        assert float(row["variant_mean"]) == rec["variant_metrics"][m]
        assert float(row["param_ratio"]) == rec["budget"]["param_ratio"]
        assert int(row["comparison_id"]) == rec["comparison_id"]
    adjusted = {r["metric"]: float(r["p_adjusted"]) for r in rows if r["experiment_id"] == "a"}
    assert adjusted == {"exact_match": 0.02, "f1": 0.04}


def test_none_is_an_empty_cell(make_record) -> None:
    [row, _] = _rows(render_csv([make_record()]))
    assert row["hedges_g"] == "" and row["memory_ratio"] == ""
    assert row["underpowered"] == "false"


def test_awkward_names_survive_quoting(make_record) -> None:
    name = 'exp, with "quotes"\nand a newline'
    [row, _] = _rows(render_csv([make_record(name)]))
    assert row["experiment_id"] == name


def test_no_records_is_just_the_header() -> None:
    assert render_csv([]) == ",".join(COLUMNS) + "\n"
