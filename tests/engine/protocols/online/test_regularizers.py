"""EWC and proximal penalties against hand computation; the Fisher's shape and sign."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from engine.protocols.online.regularizers import (
    AnchorPenalty,
    diagonal_fisher,
    make_penalty,
    restore,
    snapshot,
)


def _tiny() -> nn.Module:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 2), nn.Linear(2, 1))
    model[0].weight.requires_grad_(False)  # a frozen base weight: never anchored
    return model


def test_ewc_penalty_equals_the_hand_computation() -> None:
    model = _tiny()
    anchor = snapshot(model)
    assert set(anchor) == {"0.bias", "1.weight", "1.bias"}
    fisher = {name: torch.full_like(t, 0.5) for name, t in anchor.items()}
    fisher["1.weight"] = torch.tensor([[2.0, 3.0]])
    with torch.no_grad():
        model[1].weight += torch.tensor([[0.1, -0.2]])
        model[1].bias += 0.3
    penalty = AnchorPenalty(anchor, weight=4.0, importance=fisher)(model)
    # (4/2) * (2*0.1^2 + 3*0.2^2 + 0.5*0.3^2) = 2 * (0.02 + 0.12 + 0.045) = 0.37
    assert penalty.item() == pytest.approx(0.37, rel=1e-5)
    prox = AnchorPenalty(anchor, weight=4.0)(model)
    # (4/2) * (0.1^2 + 0.2^2 + 0.3^2) = 2 * 0.14 = 0.28
    assert prox.item() == pytest.approx(0.28, rel=1e-5)


def test_penalty_is_zero_at_the_anchor_and_its_gradient_pulls_back() -> None:
    model = _tiny()
    penalty = make_penalty("prox", model, weight=1.0)
    assert penalty(model).item() == 0.0
    with torch.no_grad():
        model[1].bias += 0.5
    penalty(model).backward()
    assert model[1].bias.grad.item() == pytest.approx(0.5)  # d/dθ (1/2)(θ-θ*)² = θ-θ*


def test_fisher_is_per_example_mean_of_squared_gradients() -> None:
    model = _tiny()
    xs = [torch.tensor([[1.0, 0.0, -1.0]]), torch.tensor([[0.5, 2.0, 0.0]])]

    def loss_of(m: nn.Module, x: torch.Tensor) -> torch.Tensor:
        return (m(x) ** 2).sum()

    fisher = diagonal_fisher(model, xs, loss_of)
    assert set(fisher) == {"0.bias", "1.weight", "1.bias"}
    shapes = {name: p.shape for name, p in snapshot(model).items()}
    assert all(f.shape == shapes[name] for name, f in fisher.items())
    assert all((f >= 0).all() for f in fisher.values())  # squares: never negative
    assert all(p.grad is None for p in model.parameters())  # gradients left cleared
    expected = {}
    for x in xs:
        model.zero_grad()
        loss_of(model, x).backward()
        for name, p in model.named_parameters():
            if p.requires_grad:
                expected[name] = expected.get(name, 0) + p.grad**2 / len(xs)
    for name in fisher:
        torch.testing.assert_close(fisher[name], expected[name])


def test_ewc_needs_a_fisher_and_rollback_restores_exact_weights() -> None:
    model = _tiny()
    with pytest.raises(ValueError, match="Fisher"):
        make_penalty("ewc", model, 1.0)
    with pytest.raises(ValueError, match="unknown regulariser"):
        make_penalty("l1", model, 1.0)  # type: ignore[arg-type]
    checkpoint = snapshot(model)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p))
    restore(model, checkpoint)
    for name, p in model.named_parameters():
        if p.requires_grad:
            assert torch.equal(p, checkpoint[name])
