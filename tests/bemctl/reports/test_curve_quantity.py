"""What a run's step rows measure (run.curve_quantity), from the model to the report."""

from __future__ import annotations

from pathlib import Path

import pytest

from bemctl.reports.curves import LM_LOSS, load_curves
from bemctl.reports.html_figures import curves_figure
from bemctl.reports.records import build_records
from engine.variants.gateshape.config import GateShapingConfig
from engine.variants.gateshape.model import GateShapingModel
from engine.variants.lora.model import StaticLoraModel
from engine.variants.router.config import RouterBCConfig, RouterPGConfig
from engine.variants.router.model import RouterModel
from store.db import Store
from tests.engine.variants.helpers import tiny_gpt2


def test_router_arms_name_what_their_steps_measure() -> None:
    ar1 = RouterModel(tiny_gpt2(0), RouterPGConfig(rank_dimension=4, chunk_size=8))
    ar0 = RouterModel(tiny_gpt2(0), RouterBCConfig(rank_dimension=4, chunk_size=8))
    assert ar1.curve_quantity == "policy objective (−mean reward)"
    assert ar0.curve_quantity == "LM loss + 0.1 × expert orthogonality penalty"


def test_gate_shaping_names_its_auxiliary_loss_unless_it_is_off() -> None:
    on = GateShapingModel(tiny_gpt2(0), GateShapingConfig(head_groups=2))
    off = GateShapingModel(tiny_gpt2(0), GateShapingConfig(head_groups=2, margin_loss_weight=0))
    assert on.curve_quantity == "LM loss + 0.1 × re-ranking/margin loss"
    assert off.curve_quantity is None  # the plain language-model loss


def test_runner_records_each_arms_quantity_and_the_report_plots_them_apart(
    project: Path, cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The static-LoRA baseline made to declare another quantity: its curve and the
    variant's (language-model loss) end up in two panels, each named."""
    monkeypatch.setattr(StaticLoraModel, "curve_quantity", "test quantity", raising=False)
    result = cli("run", "v1_dynrank", "--quick")
    assert result.code == 0, result.err
    with Store(project / ".bemctl" / "bemctl.db", readonly=True) as store:
        [record] = build_records(store)
        curves = load_curves(store, records=[record])
    base, var = (record[f"{s}_metrics"]["run_id"] for s in ("baseline", "variant"))
    assert (curves[base].quantity, curves[var].quantity) == ("test quantity", None)
    assert len(curves[base].points) == len(curves[var].points) == 6
    fig = curves_figure(record, curves)
    assert fig is not None
    assert [ax.get_ylabel() for ax in fig.get_axes()] == ["test quantity", LM_LOSS]
