"""CSV rendering of report records: one row per (experiment, metric), for spreadsheets and
pandas, where the nested JSON record is awkward to load. A record's sections follow the
fixed columns, one column per cell (`bemctl.reports.sections_view.csv_cells`)."""

from __future__ import annotations

import csv
import io
from typing import Any

from bemctl.reports import sections_view

COLUMNS = (
    "experiment_id",
    "variant",
    "verdict",
    "metric",
    "n",
    "baseline_mean",
    "variant_mean",
    "mean_diff",
    "ci_low",
    "ci_high",
    "confidence_level",
    "ci_method",
    "test",
    "p_value",
    "p_adjusted",
    "family_size",
    "cohens_dz",
    "hedges_g",
    "power",
    "mde",
    "underpowered",
    "param_ratio",
    "flop_ratio",
    "latency_ratio",
    "latency_ratio_low",
    "latency_ratio_high",
    "memory_ratio",
    "identical_to",
    "baseline_run_id",
    "variant_run_id",
    "comparison_id",
    "created_at",
)


def _cell(value: Any) -> Any:
    """Empty for None (a missing value, not the string "None"); lowercase booleans."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return value  # floats go through str(): the shortest text that reads back exactly


def metric_rows(record: dict[str, Any]) -> list[dict[str, Any]]:
    """The record flattened to one dict per metric, keyed by COLUMNS."""
    sv = record["statistical_validation"]
    fdr = sv["fdr_correction"]
    adjusted = dict(zip(fdr["metrics"], fdr["adjusted_p_values"], strict=True))
    base, var, budget = record["baseline_metrics"], record["variant_metrics"], record["budget"]
    rows = []
    for metric, ci in sv["bca_bootstrap"].items():
        test = sv["paired_tests"][metric]
        effect = sv["effect_sizes"][metric]
        power = sv["power_analysis"][metric]
        rows.append(
            {
                "experiment_id": record["experiment_id"],
                "variant": record["variant"],
                "verdict": record["acceptance_decision"]["overall_verdict"],
                "metric": metric,
                "n": test["n"],
                "baseline_mean": base.get(metric),
                "variant_mean": var.get(metric),
                "mean_diff": sv["paired_differences"][metric],
                "ci_low": ci["lower"],
                "ci_high": ci["upper"],
                "confidence_level": ci["confidence_level"],
                "ci_method": ci["method"],
                "test": test["test"],
                "p_value": test["p_value"],
                "p_adjusted": adjusted.get(metric),
                "family_size": fdr["family_size"],
                "cohens_dz": effect["cohens_dz"],
                "hedges_g": effect["hedges_g"],
                "power": power["power"],
                "mde": power["minimum_detectable_effect"],
                "underpowered": power["underpowered"],
                "param_ratio": budget["param_ratio"],
                "flop_ratio": budget["flop_ratio"],
                "latency_ratio": budget["latency_ratio"],
                "latency_ratio_low": budget.get("latency_ratio_low"),
                "latency_ratio_high": budget.get("latency_ratio_high"),
                "memory_ratio": budget["memory_ratio"],
                "identical_to": sv.get("identical_metrics", {}).get(metric),
                "baseline_run_id": base["run_id"],
                "variant_run_id": var["run_id"],
                "comparison_id": record["comparison_id"],
                "created_at": record["created_at"],
            }
        )
    return rows


def render_csv(records: list[dict[str, Any]]) -> str:
    """Header plus one row per (experiment, metric); section columns after the fixed ones.

    Lines end in "\\n", not csv's default "\\r\\n": the CLI writes in text mode, which
    already translates newlines on platforms that want CRLF.
    """
    extra: dict[str, None] = {}  # every section cell of any record, in first-seen order
    for record in records:
        extra.update(dict.fromkeys(sections_view.csv_cells(record)))
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=[*COLUMNS, *extra], lineterminator="\n", restval="")
    writer.writeheader()
    for record in records:
        cells = sections_view.csv_cells(record)
        for row in metric_rows(record):
            writer.writerow({**{k: _cell(v) for k, v in row.items()}, **cells})
    return buffer.getvalue()
