"""`bemctl report --format html|csv` end to end on a store filled by one real tiny run."""

from __future__ import annotations

import csv
import io
import json
import os
import re
from pathlib import Path

import pytest

from bemctl.reports.curves import load_curves
from bemctl.reports.records import build_records
from store.db import Store


@pytest.fixture
def ran_project(ran_v1_project: Path) -> Path:
    """The session's project where one real quick v1 run filled the store (read-only)."""
    return ran_v1_project


@pytest.fixture
def in_ran_project(ran_project: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(ran_project)
    for key in [k for k in os.environ if k.startswith("BEMCTL_")]:
        monkeypatch.delenv(key)
    return ran_project


def test_load_curves_reads_both_runs(in_ran_project: Path) -> None:
    with Store(in_ran_project / ".bemctl" / "bemctl.db", readonly=True) as store:
        records = build_records(store)
        curves = load_curves(store, records)
    [record] = records
    runs = {record["baseline_metrics"]["run_id"], record["variant_metrics"]["run_id"]}
    assert set(curves) == runs
    for curve in curves.values():
        assert [step for step, _ in curve.points] == list(range(1, 7))  # quick: 6 steps
        assert all(isinstance(loss, float) for _, loss in curve.points)
        assert curve.quantity is None and curve.label == "language-model loss"


def test_csv_matches_json(in_ran_project: Path, cli) -> None:
    as_json = cli("report", "--format", "json")
    as_csv = cli("report", "--format", "csv")
    assert as_json.code == 0 and as_csv.code == 0, as_csv.err
    [record] = json.loads(as_json.out)
    sv = record["statistical_validation"]
    rows = list(csv.DictReader(io.StringIO(as_csv.out)))
    assert sorted(r["metric"] for r in rows) == sorted(sv["bca_bootstrap"]) == ["exact_match", "f1"]
    fdr = sv["fdr_correction"]
    adjusted = dict(zip(fdr["metrics"], fdr["adjusted_p_values"], strict=True))
    for row in rows:
        m = row["metric"]
        assert row["experiment_id"] == "v1_dynrank"
        assert row["verdict"] == record["acceptance_decision"]["overall_verdict"]
        assert int(row["n"]) == sv["paired_tests"][m]["n"] == 24
        assert float(row["baseline_mean"]) == record["baseline_metrics"][m]
        assert float(row["variant_mean"]) == record["variant_metrics"][m]
        assert float(row["mean_diff"]) == sv["paired_differences"][m]
        assert float(row["ci_low"]) == sv["bca_bootstrap"][m]["lower"]
        assert float(row["ci_high"]) == sv["bca_bootstrap"][m]["upper"]
        assert float(row["p_value"]) == sv["paired_tests"][m]["p_value"]
        assert float(row["p_adjusted"]) == adjusted[m]
        twins = sv["identical_metrics"]  # f1 repeats exact match here: one test, counted once
        assert int(row["family_size"]) == fdr["family_size"] == 2 - len(twins)
        assert row["identical_to"] == (twins.get(m) or "")
        assert float(row["param_ratio"]) == record["budget"]["param_ratio"]
        assert int(row["comparison_id"]) == record["comparison_id"]
        assert row["created_at"] == record["created_at"]


def test_html_to_file(in_ran_project: Path, cli, tmp_path: Path) -> None:
    path = tmp_path / "out" / "report.html"  # the shared project stays read-only
    path.parent.mkdir()  # -o does not create directories (a typo would go unnoticed)
    result = cli("report", "v1_dynrank", "--format", "html", "--output", str(path))
    assert result.code == 0, result.err
    assert result.out == "" and "wrote" in result.err
    html = path.read_text(encoding="utf-8")
    [record] = json.loads(cli("report", "--format", "json").out)
    assert record["acceptance_decision"]["overall_verdict"] in html
    for metric in ("exact_match", "f1"):
        assert metric in html
    for gate in record["gates"]:
        assert f"<td>{gate['gate']}</td>" in html
    sources = re.findall(r'src="([^"]*)"', html)
    assert len(sources) == 2  # loss curves + forest plot
    assert all(s.startswith("data:image/png;base64,") for s in sources)
    assert "http://" not in html and "https://" not in html


def test_html_to_stdout(in_ran_project: Path, cli) -> None:
    result = cli("report", "--format", "html")
    assert result.code == 0 and result.out.startswith("<!DOCTYPE html>")


def test_bad_format_is_one_line(in_ran_project: Path, cli) -> None:
    result = cli("report", "--format", "xml")
    assert result.code == 2 and result.out == ""
    assert result.err.strip().count("\n") == 0
    assert "--format" in result.err and "'xml'" in result.err
    assert all(f in result.err for f in ("md", "json", "html", "csv"))


@pytest.mark.parametrize("fmt", ["html", "csv"])
def test_empty_store_has_nothing_to_report(project: Path, cli, fmt: str) -> None:
    result = cli("report", "--format", fmt)
    assert result.code == 0 and result.out == ""
    assert "nothing to report" in result.err


def test_unknown_experiment_has_nothing_to_report(in_ran_project: Path, cli) -> None:
    result = cli("report", "no_such_experiment", "--format", "html")
    assert result.code == 0 and result.out == ""
    assert "nothing to report" in result.err
