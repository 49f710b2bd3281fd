"""An online comparison's stream timeline: kept in the record (schema 7) from the variant
run's stream rows, plotted in the HTML report; absent for a comparison without a stream."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from bemctl.reports.html import render_html
from bemctl.reports.html_figures import stream_figure, stream_marks
from bemctl.reports.records import SCHEMA_VERSION, build_records
from store.db import Store
from store.models import Comparison
from store.stream import EventRow, PointRow, record_stream
from tests.bemctl.tui.helpers import add_comparison

POINTS = [
    PointRow(b, "a" if b < 4 else "b", 0.5 + 0.02 * b, 0.55 + 0.02 * b, 0.5, "deployed")
    for b in range(6)
]
EVENTS = [
    EventRow(0, 1, "canary", "canary passed"),
    EventRow(1, 1, "promotion", "shadow promoted"),
    EventRow(2, 4, "drift_alarm", "serving fell below its mean"),
    EventRow(3, 5, "rollback", "back to deployed"),
]
ALT = re.compile(r'<img alt="stream timeline of ([^"]+)"')


def _stream(run_id: int = 2) -> dict[str, Any]:
    return {
        "run_id": run_id,
        "points": [vars(p) for p in POINTS],
        "events": [vars(e) for e in EVENTS],
    }


def test_the_record_keeps_the_variant_runs_stream_and_none_without_one(tmp_path: Path) -> None:
    with Store(tmp_path / "s.db") as store:
        online = add_comparison(store, "ol_shadow", "PROMOTE", 0.05, [])
        add_comparison(store, "v1_dynrank", "REJECT", -0.01, [])
        with store.read_session() as session:
            comparison = session.get(Comparison, online)
            assert comparison is not None
            variant, baseline = comparison.variant_run_id, comparison.baseline_run_id
        record_stream(store, variant, POINTS[:3], EVENTS[:2])  # as the stream advanced
        record_stream(store, variant, POINTS[3:], EVENTS[2:])
        records = {r["experiment_id"]: r for r in build_records(store)}
    assert SCHEMA_VERSION == 8
    assert records["ol_shadow"]["schema_version"] == 8
    stream = records["ol_shadow"]["stream"]
    assert stream is not None and stream["run_id"] == variant != baseline
    assert stream == _stream(variant)
    assert stream["points"][0] == {
        "batch": 0,
        "phase": "a",
        "serving": 0.5,
        "shadow": 0.55,
        "deployed": 0.5,
        "serving_source": "deployed",
    }
    assert records["v1_dynrank"]["stream"] is None
    assert json.loads(json.dumps(stream)) == stream  # the JSON report carries it as is


def test_html_plots_the_stream_of_a_record_that_has_one(make_record) -> None:
    online = make_record("ol_shadow", run_ids=(1, 2))
    online["stream"] = _stream(2)
    ab = make_record("v1_dynrank", run_ids=(3, 4))
    ab["stream"] = None
    html = render_html([online, ab, make_record("old_record", run_ids=(5, 6))], {})
    assert [m.split(":")[0] for m in ALT.findall(html)] == ["ol_shadow"]
    assert html.count("<h3>Stream timeline</h3>") == 1
    assert "variant run 2: the weights that served the batch" in html


def test_stream_figure_draws_three_scores_and_marks_each_event_kind(make_record) -> None:
    record = make_record("ol_shadow")
    record["stream"] = _stream()
    assert stream_marks(record["stream"]) == {
        "promotion": [1],
        "rollback": [5],
        "drift_alarm": [4],
    }  # canary decisions are not marked
    fig = stream_figure(record)
    assert fig is not None
    [ax] = fig.get_axes()
    lines = {line.get_label(): line for line in ax.get_lines()}
    assert list(lines)[:3] == ["serving", "shadow", "deployed"]
    assert list(lines["serving"].get_xdata()) == list(range(6))
    assert list(lines["shadow"].get_ydata()) == [p.shadow for p in POINTS]
    assert lines["deployed"].get_linestyle() == ":"
    # a vertical line at each marked batch, one legend entry per kind
    verticals = {line.get_label(): line.get_xdata()[0] for line in ax.get_lines()[3:]}
    assert verticals == {"promotion": 1, "drift alarm": 4, "rollback": 5}
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert legend == ["serving", "shadow", "deployed", "promotion", "rollback", "drift alarm"]
    assert "stream timeline" in ax.get_title()


def test_no_stream_no_figure(make_record) -> None:
    record = make_record()
    assert stream_figure(record) is None  # a record from before schema 7
    record["stream"] = None
    assert stream_figure(record) is None
