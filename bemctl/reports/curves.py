"""Training curves for the runs a report shows, read once so the renderers stay store-free.

Each curve carries what its step rows measure (`run.curve_quantity`): most arms log the
language-model loss, but e.g. AR1's policy-gradient rounds log −(mean reward), a number on
another scale with the opposite meaning of "low". A renderer draws each quantity on its own
axis under its own name, never two quantities on one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from store import queries
from store.db import Store

LM_LOSS = "language-model loss"

Points = Sequence[tuple[int, float]]


@dataclass(frozen=True)
class RunCurve:
    points: tuple[tuple[int, float], ...]
    quantity: str | None = None  # None: the language-model loss

    @property
    def label(self) -> str:
        return quantity_label(self.quantity)


def quantity_label(quantity: str | None) -> str:
    return quantity or LM_LOSS


def as_curve(curve: RunCurve | Points | None) -> RunCurve:
    """A RunCurve from either form a caller may hold; bare points are a language-model loss."""
    if curve is None:
        return RunCurve(())
    if isinstance(curve, RunCurve):
        return curve
    return RunCurve(tuple((int(s), float(v)) for s, v in curve))


def load_curves(store: Store, records: list[dict[str, Any]]) -> dict[int, RunCurve]:
    """run_id -> its curve and quantity, for each record's baseline and variant run.

    Gathered here rather than in the HTML renderer so that renderer is a pure function of
    its inputs (testable with hand-made data) and the CLI needs one call.
    """
    curves: dict[int, RunCurve] = {}
    for record in records:
        for side in ("baseline_metrics", "variant_metrics"):
            run_id = record[side]["run_id"]
            if run_id is not None and run_id not in curves:
                run = queries.get_run(store, run_id)
                curves[run_id] = RunCurve(
                    tuple((m.step, m.loss) for m in queries.step_metrics(store, run_id)),
                    run.curve_quantity if run is not None else None,
                )
    return curves
