"""HTML renderer on hand-made records: content, colours, images, escaping, no leaks."""

from __future__ import annotations

import base64
import re

import pytest

from bemctl.reports.html import render_html, verdict_class

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
    assert "no loss curve recorded" in html


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
