"""Loss curves for the runs a report shows, read once so the renderers stay store-free."""

from __future__ import annotations

from typing import Any

from store import queries
from store.db import Store

Curve = list[tuple[int, float]]


def load_curves(store: Store, records: list[dict[str, Any]]) -> dict[int, Curve]:
    """run_id -> [(step, loss), ...] for each record's baseline and variant run.

    Gathered here rather than in the HTML renderer so that renderer is a pure function of
    its inputs (testable with hand-made data) and the CLI needs one call.
    """
    curves: dict[int, Curve] = {}
    for record in records:
        for side in ("baseline_metrics", "variant_metrics"):
            run_id = record[side]["run_id"]
            if run_id is not None and run_id not in curves:
                curves[run_id] = [(m.step, m.loss) for m in queries.step_metrics(store, run_id)]
    return curves
