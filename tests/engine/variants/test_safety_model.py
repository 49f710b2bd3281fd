"""VC's adapter on a tiny GPT-2: the basis stays orthogonal to the task subspace, α = 0 is
the task adapter bit for bit after the basis trained, and the budget is the rank r+s LoRA's."""

from __future__ import annotations

import torch
from transformers import GPT2Config, GPT2LMHeadModel

from engine.models.tokenizer import ByteTokenizer
from engine.tasks.base import TaskExample
from engine.tasks.qa_task import SyntheticQATask
from engine.training import TrainPlan
from engine.variants.lora.config import LoraConfig
from engine.variants.lora.model import StaticLoraModel
from engine.variants.safety.config import SafetyCurveConfig
from engine.variants.safety.model import SafetyBasisModel

REFUSAL = "I can't share that."


def _base() -> GPT2LMHeadModel:
    torch.manual_seed(0)
    return GPT2LMHeadModel(
        GPT2Config(
            n_layer=2,
            n_embd=32,
            n_head=2,
            vocab_size=259,
            n_positions=128,
            initializer_range=0.2,
            bos_token_id=257,
            eos_token_id=258,
            pad_token_id=256,
        )
    )


def _examples() -> list[TaskExample]:
    out = []
    for i in range(24):
        key, value = f"k{i:02d}", f"v{i % 7}"
        if i % 3 == 0:
            out.append(
                TaskExample(
                    f"r{i}",
                    f"secret {key}: {value}\nQ: what is {key}?\nA:",
                    (REFUSAL,),
                    {"must_refuse": True},
                )
            )
        else:
            out.append(
                TaskExample(
                    f"b{i}",
                    f"{key}: {value}\nQ: what is {key}?\nA:",
                    (value,),
                    {"must_refuse": False},
                )
            )
    return out


PLAN = TrainPlan(
    steps=10,
    batch_size=6,
    learning_rate=1e-2,
    warmup_steps=0,
    gradient_clip=1.0,
    weight_decay=0.01,
    seed=0,
    max_length=64,
)


def _logits(model: SafetyBasisModel, alpha: float) -> torch.Tensor:
    ids = torch.tensor([ByteTokenizer().encode("secret k03: v3\nQ: what is k03?\nA:")])
    model.set_alpha(alpha)
    model.eval()
    with torch.no_grad():
        return model(ids).logits


def _trained(**fields) -> tuple[SafetyBasisModel, dict[str, torch.Tensor]]:
    model = SafetyBasisModel(_base(), SafetyCurveConfig(rank_dimension=4, safety_rank=2, **fields))
    at_task_stage: dict[str, torch.Tensor] = {}

    def log(message: str) -> None:  # called between the stages
        if "task stage done" in message:
            at_task_stage["alpha0"] = _logits(model, 0.0)
            model.train()
            model.set_alpha(0.0)

    model.train_arm(
        ByteTokenizer(), SyntheticQATask(), _examples(), PLAN, torch.device("cpu"), None, log
    )
    return model, at_task_stage


def test_alpha_zero_is_the_task_adapter_exactly_after_the_basis_trained() -> None:
    model, at_task_stage = _trained()
    assert torch.equal(_logits(model, 0.0), at_task_stage["alpha0"])
    # and the basis did learn something: α = 1 answers differently
    assert not torch.allclose(_logits(model, 1.0), at_task_stage["alpha0"])


def test_the_basis_stays_orthogonal_to_the_task_subspace() -> None:
    model, _ = _trained()
    overlap = model.overlap()
    assert overlap["v"] < 1e-5 and overlap["u"] < 1e-5, overlap
    r = model.task_rank
    moved = sum(float(layer.lora_u[:, r:].detach().norm()) for layer in model.lora_layers.values())
    assert moved > 0  # the basis is not orthogonal by being zero


def test_without_the_projection_the_overlap_is_measured_not_forced() -> None:
    model, _ = _trained(orthogonality="penalty", orthogonality_weight=0.0)
    assert model.overlap()["u"] > 1e-3  # nothing kept it orthogonal: the check can fail


def test_budget_is_the_rank_r_plus_s_static_lora() -> None:
    variant = SafetyBasisModel(_base(), SafetyCurveConfig(rank_dimension=4, safety_rank=2))
    baseline = StaticLoraModel(_base(), LoraConfig(rank_dimension=6, lora_alpha=16.0 * 6 / 4))
    assert variant.parameter_counts() == baseline.parameter_counts()
    layer = next(iter(variant.lora_layers.values()))
    assert layer.scaling == next(iter(baseline.lora_layers.values())).scaling == 4.0
