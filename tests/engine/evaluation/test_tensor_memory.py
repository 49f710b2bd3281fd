"""Peak tensor memory: deterministic, blind to what else the process holds, and able to fail
the memory gate (the RSS gate could not: the torch runtime dwarfed any adapter)."""

from __future__ import annotations

import torch

from engine.evaluation.tensor_memory import measure_tensor_peak, resident_bytes
from engine.gates import GateInputs, GatePolicy, evaluate_gates
from engine.protocols.ab import memory_ratio
from engine.variants.lora.config import LoraConfig
from engine.variants.lora.model import StaticLoraModel
from tests.engine.variants.helpers import lm_loss, random_ids, tiny_gpt2

CPU = torch.device("cpu")


class HungryLora(StaticLoraModel):
    """The baseline plus `extra_bytes` of scratch tensor alive through every forward."""

    extra_bytes = 0

    def forward(self, *args, **kwargs):
        scratch = torch.ones(self.extra_bytes // 4)  # float32
        out = super().forward(*args, **kwargs)
        out.logits = out.logits + scratch[:1].sum() * 0  # kept alive until here
        return out


def _peak(model, ids):
    return measure_tensor_peak(
        model,
        lambda: lm_loss(model(input_ids=ids).logits, ids),
        lambda: model(input_ids=ids[:1, :8]),
        CPU,
    )


def _gate(ratio: float):
    inputs = GateInputs(1.0, 1.0, 1.0, ratio, 0.05, 1.15, 1.05)
    [gate] = [g for g in evaluate_gates(inputs, [], GatePolicy(0.0, 0.05)) if g.gate == "memory"]
    return gate


def test_an_arm_allocating_ten_percent_more_fails_the_memory_gate() -> None:
    ids = random_ids(4, 24, seed=1)
    baseline = StaticLoraModel(tiny_gpt2(), LoraConfig(rank_dimension=4, lora_alpha=8))
    base_peak = _peak(baseline, ids)
    hungry = HungryLora(tiny_gpt2(), LoraConfig(rank_dimension=4, lora_alpha=8))
    hungry.extra_bytes = int(0.10 * base_peak.generate_bytes)  # +10% of its generation peak
    hungry_peak = _peak(hungry, ids)

    ratio = memory_ratio({"baseline": base_peak, "variant": hungry_peak})
    assert ratio is not None and 1.09 <= ratio <= 1.25
    gate = _gate(ratio)
    assert not gate.passed and gate.outcome == "fail"
    # the same architecture measures exactly alike: the gate cannot flip on noise
    same = _peak(
        StaticLoraModel(tiny_gpt2(seed=3), LoraConfig(rank_dimension=4, lora_alpha=8)), ids
    )
    assert same == base_peak
    assert _gate(memory_ratio({"baseline": base_peak, "variant": same})).passed


def test_readings_ignore_other_tensors_in_the_process_and_change_nothing() -> None:
    ids = random_ids(2, 16, seed=2)
    model = StaticLoraModel(tiny_gpt2(), LoraConfig(rank_dimension=4, lora_alpha=8)).eval()
    before = {k: v.clone() for k, v in model.trainable_state_dict().items()}
    first = _peak(model, ids)
    ballast = torch.ones(4_000_000)  # 16 MB held by "someone else" in the process
    second = _peak(model, ids)
    del ballast
    assert first == second
    assert first.kind == "cpu_profiler"
    assert first.train_bytes > resident_bytes(model, optimizer_state=True)  # activations counted
    assert first.generate_bytes > resident_bytes(model)
    after = model.trainable_state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)  # a probe, not a step
    assert all(p.grad is None for p in model.parameters())
    assert not model.training  # the mode it was in


def test_resident_bytes_counts_tied_weights_once_and_adamw_state() -> None:
    model = StaticLoraModel(tiny_gpt2(), LoraConfig(rank_dimension=4, lora_alpha=8))
    base = model.base_model
    assert base.lm_head.weight.data_ptr() == base.transformer.wte.weight.data_ptr()  # tied
    unique = {
        t.untyped_storage().data_ptr(): t.untyped_storage().nbytes()
        for t in [*model.parameters(), *model.buffers()]
    }
    assert resident_bytes(model) == sum(unique.values())
    trainable = sum(p.numel() * 4 for p in model.parameters() if p.requires_grad)
    assert resident_bytes(model, optimizer_state=True) == sum(unique.values()) + 2 * trainable
