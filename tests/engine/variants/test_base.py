"""The variant contract (`AdapterModel`): every optional hook declared with its default, and
the flags that say which hooks a variant overrides agreeing with its overrides."""

from __future__ import annotations

import pytest
import torch

from engine.training import TrainPlan
from engine.variants.base import AdapterModel
from engine.variants.dynrank.model import DynamicRankModel
from engine.variants.film.model import ResidualFilmModel
from engine.variants.gateshape.model import GateShapingModel
from engine.variants.kron.model import KroneckerModel
from engine.variants.lora.config import LoraConfig
from engine.variants.lora.model import StaticLoraModel
from engine.variants.router.model import RouterModel
from tests.engine.variants.helpers import tiny_gpt2

PLAN = TrainPlan(
    steps=7,
    batch_size=2,
    learning_rate=1e-3,
    warmup_steps=1,
    gradient_clip=1.0,
    weight_decay=0.0,
    seed=0,
    max_length=64,
)


def test_the_static_baseline_takes_every_default() -> None:
    model = StaticLoraModel(tiny_gpt2(0), LoraConfig(rank_dimension=2))
    assert model.set_batch_extras([{"relevant_passage": 1}]) is None
    assert model.auxiliary_loss() is None
    assert model.after_optimizer_step() is None
    assert (model.routes, model.routing_unit) == (False, "routing")
    assert model.routing_decisions(torch.tensor([[1, 2, 3]])) is None
    assert model.curve_quantity is None
    assert model.training_steps(PLAN) == 7
    assert model.has_own_training is False
    with pytest.raises(NotImplementedError):
        model.train_arm(None, None, [], PLAN, torch.device("cpu"))
    assert model.has_variant_statistics is False
    assert model.variant_statistics(None, None, [], {}, torch.device("cpu")) is None


@pytest.mark.parametrize(
    "cls, routes, own_training, statistics",
    [
        (StaticLoraModel, False, False, False),
        (KroneckerModel, False, False, False),
        (ResidualFilmModel, False, False, False),
        (DynamicRankModel, True, False, True),
        (GateShapingModel, False, False, True),
        (RouterModel, True, True, True),
    ],
)
def test_each_variant_declares_what_it_overrides(cls, routes, own_training, statistics) -> None:
    assert (cls.routes, cls.has_own_training, cls.has_variant_statistics) == (
        routes,
        own_training,
        statistics,
    )


def test_a_hook_overridden_without_its_flag_is_refused() -> None:
    with pytest.raises(TypeError, match="routes"):

        class _Unflagged(AdapterModel):
            def routing_decisions(self, all_ids, prompt_lengths=None):
                return all_ids[..., None]

    with pytest.raises(TypeError, match="has_own_training"):

        class _FlagOnly(AdapterModel):
            has_own_training = True
