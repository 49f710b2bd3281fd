"""HTML renderer on hand-made records: content, colours, images, escaping, no leaks."""

from __future__ import annotations

import base64
import re

import pytest

from bemctl.reports.curves import LM_LOSS, RunCurve
from bemctl.reports.html import render_html, verdict_class
from bemctl.reports.html_figures import curves_figure, forest_figure, forest_xlim

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _images(html: str) -> list[bytes]:
    return [base64.b64decode(d) for d in re.findall(r'src="data:image/png;base64,([^"]+)"', html)]


def _curves(*run_ids: int) -> dict[int, list[tuple[int, float]]]:
    return {rid: [(s, 3.0 - 0.1 * s - 0.01 * rid) for s in range(1, 7)] for rid in run_ids}


@pytest.mark.parametrize(
    ("verdict", "css"),
    [("PROMOTE", "promote"), ("REJECT", "reject"), ("INCONCLUSIVE (underpowered)", "inconclusive")],
)
def test_verdict_colour(verdict: str, css: str) -> None:
    assert verdict_class(verdict) == css


def test_sections_tables_and_one_curve_plot_per_experiment_plus_forest(make_record) -> None:
    records = [
        make_record("exp_a", "PROMOTE", run_ids=(1, 2)),
        make_record("exp_b", "REJECT", run_ids=(3, 4), reasons=("budget parity: too big",)),
    ]
    html = render_html(records, _curves(1, 2, 3, 4))
    assert html.startswith("<!DOCTYPE html>") and html.rstrip().endswith("</html>")
    assert '<span class="verdict promote">PROMOTE</span>' in html
    assert '<span class="verdict reject">REJECT</span>' in html
    assert "budget parity: too big" in html and "all gates passed" in html
    for text in ("exp_a", "exp_b", "exact_match", "f1", "budget_parity_params",
                 "ci_lower_bound_positive", "trainable parameter ratio", "✓", "✗"):  # fmt: skip
        assert text in html
    assert "+0.0500" in html and "+0.1000" in html  # Δ per metric
    assert "95% [+0.0100, +0.0800]" in html  # BCa CI
    images = _images(html)
    assert len(images) == 3 == html.count("<img ")  # 2 curve plots + 1 forest plot
    assert all(img.startswith(PNG_MAGIC) for img in images)


def test_experiment_without_curves_has_no_curve_plot(make_record) -> None:
    html = render_html([make_record(run_ids=(1, 2))], {})
    assert len(_images(html)) == 1  # the forest plot only
    assert "no training curve recorded" in html


def test_self_contained(make_record) -> None:
    html = render_html([make_record()], _curves(1, 2))
    assert "http://" not in html and "https://" not in html
    assert "<link" not in html and "<script" not in html
    sources = re.findall(r'src="([^"]*)"', html)
    assert sources and all(s.startswith("data:image/png;base64,") for s in sources)


def test_data_is_escaped(make_record) -> None:
    name = "<script>alert(1)</script>$x$"
    record = make_record(name, reasons=("<b>bold</b> & co",))
    record["gates"][0]["detail"] = '"><img src=x>'
    html = render_html([record], _curves(1, 2))
    assert "<script" not in html and "<b>bold" not in html and "<img src=x" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;$x$" in html
    assert "&lt;b&gt;bold&lt;/b&gt; &amp; co" in html
    assert "&quot;&gt;&lt;img src=x&gt;" in html


def test_deterministic_and_leaves_no_figures(make_record) -> None:
    import matplotlib.pyplot as plt

    before = plt.get_fignums()
    records = [make_record()]
    first = render_html(records, _curves(1, 2))
    assert render_html(records, _curves(1, 2)) == first
    assert plt.get_fignums() == before


PG = "policy objective (−mean reward)"


def _with_metrics(record: dict, intervals: dict[str, tuple[float, float, float]], mi=0.005):
    """Replace the record's metrics by `intervals` (metric -> (Δ, low, high)), with a
    min_improvement gate of `mi` for each."""
    sv = record["statistical_validation"]
    template = next(iter(sv["bca_bootstrap"].values()))
    sv["bca_bootstrap"] = {
        m: {**template, "estimate": d, "lower": lo, "upper": hi}
        for m, (d, lo, hi) in intervals.items()
    }
    power = next(iter(sv["power_analysis"].values()))
    sv["power_analysis"] = {m: dict(power) for m in intervals}
    record["gates"] += [
        {
            "gate": "min_improvement",
            "metric": m,
            "passed": d >= mi,
            "observed": d,
            "threshold": mi,
            "comparator": ">=",
            "detail": "mean paired difference, raw metric points",
        }
        for m, (d, _, _) in intervals.items()
    ]
    return record


def _legend_labels(ax) -> list[str]:
    return ax.get_legend_handles_labels()[1]


def test_forest_has_a_panel_per_metric_each_scaled_to_its_own_intervals(make_record) -> None:
    """chrF points (±0.5) must not squash the exact-match interval (±0.05) into a dot."""
    record = _with_metrics(
        make_record("v3_kron"),
        {"chrf": (0.2, -0.3, 0.7), "exact_match": (0.01, -0.04, 0.06)},
    )
    fig = forest_figure([record])
    assert fig is not None
    axes = fig.get_axes()
    assert [ax.get_title(loc="left") for ax in axes] == ["chrf", "exact_match"]
    for ax, (low, high) in zip(axes, [(-0.3, 0.7), (-0.04, 0.06)], strict=True):
        left, right = ax.get_xlim()
        assert left < low and right > high  # the interval is inside its panel...
        assert (high - low) / (right - left) > 0.75  # ...and fills most of it
        assert _legend_labels(ax) == ["0", "min_improvement 0.005"]
        [zero, threshold] = [line.get_xdata()[0] for line in ax.get_lines()[-2:]]
        assert (zero, threshold) == (0, 0.005)
    chrf_width = abs(axes[0].get_xlim()[1] - axes[0].get_xlim()[0])
    em_width = abs(axes[1].get_xlim()[1] - axes[1].get_xlim()[0])
    assert chrf_width / em_width == pytest.approx(10.0, rel=0.05)  # each on its own scale


def test_forest_panel_groups_experiments_and_marks_each_threshold(make_record) -> None:
    a = _with_metrics(make_record("exp_a"), {"exact_match": (0.02, 0.01, 0.03)}, mi=0.005)
    b = _with_metrics(make_record("exp_b"), {"exact_match": (-0.01, -0.05, 0.02)}, mi=0.02)
    b["statistical_validation"]["power_analysis"]["exact_match"]["underpowered"] = True
    b["statistical_validation"]["bca_bootstrap"]["exact_match"]["degenerate"] = True
    fig = forest_figure([a, b])
    assert fig is not None
    [ax] = fig.get_axes()
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert labels == ["exp_a", "exp_b (all Δ equal, underpowered)"]
    assert _legend_labels(ax) == ["0", "min_improvement"]  # thresholds differ: per row
    ticks = [c for c in ax.collections if c.get_label() == "min_improvement"]
    assert ticks  # a short line on each row, at that experiment's threshold
    left, right = ax.get_xlim()
    assert left < -0.05 and right > 0.03


def test_forest_xlim_of_a_point_interval_at_zero_has_a_width() -> None:
    from bemctl.reports.html_figures import ForestRow

    left, right = forest_xlim([ForestRow("e", 0.0, 0.0, 0.0, None, True, False)])
    assert left < 0 < right


def test_curves_of_different_quantities_get_their_own_panels(make_record) -> None:
    """AR1's policy objective (−mean reward, negative) is not drawn on the LM-loss axis."""
    record = make_record("ar1", run_ids=(7, 8))
    lm = RunCurve(tuple((s, 3.0 - 0.1 * s) for s in range(1, 11)))
    pg = RunCurve(tuple((s, -0.2 - 0.05 * s) for s in range(1, 5)), PG)
    fig = curves_figure(record, {7: lm, 8: pg})
    assert fig is not None
    axes = fig.get_axes()
    assert [ax.get_ylabel() for ax in axes] == [LM_LOSS, PG]
    assert [len(ax.get_lines()) for ax in axes] == [1, 1]
    assert [_legend_labels(ax) for ax in axes] == [["baseline (run 7)"], ["variant (run 8)"]]
    low, high = axes[1].get_ylim()
    assert low < -0.4 and high < 0  # the objective's own (negative) range
    assert axes[0].get_ylim()[0] > 1.5  # the loss axis is not stretched down to it

    html = render_html([record], {7: lm, 8: pg})
    assert f"training curves of ar1: {LM_LOSS} and {PG}" in html


def test_curves_of_one_quantity_share_a_panel(make_record) -> None:
    record = make_record(run_ids=(1, 2))
    fig = curves_figure(record, _curves(1, 2))  # bare points: language-model loss
    assert fig is not None
    [ax] = fig.get_axes()
    assert ax.get_ylabel() == LM_LOSS and len(ax.get_lines()) == 2


def test_a_borrowed_arm_draws_nothing_and_says_why(make_record) -> None:
    record = make_record("ar1", run_ids=(7, 8))
    record["baseline_metrics"]["adapter_source_run_id"] = 3
    pg = RunCurve(((1, -0.3), (2, -0.4)), PG)
    fig = curves_figure(record, {7: RunCurve(()), 8: pg})
    assert fig is not None and [ax.get_ylabel() for ax in fig.get_axes()] == [PG]
    html = render_html([record], {7: RunCurve(()), 8: pg})
    assert "No curve for baseline (run 7): adapter taken from run 3, not trained here." in html


def test_stats_table_flags_underpowered_metrics(make_record) -> None:
    record = make_record()
    power = record["statistical_validation"]["power_analysis"]["f1"]
    power.update(underpowered=True, power=0.31, n_needed=410)
    html = render_html([record], {})
    assert "0.31 <strong>underpowered</strong> (n ≥ 410)" in html
    assert html.count("<strong>underpowered</strong>") == 1
