"""film: fused clamp-and-modulate on the residual stream."""

import torch

from triton_ops.film import film, film_reference

BOUNDS = ((0.5, 2.0), (-0.5, 0.5))


def test_identity_modulation_is_exact() -> None:
    h = torch.randn(2, 5, 8, generator=torch.Generator().manual_seed(0))
    assert torch.equal(film(h, torch.ones(2, 5, 8), torch.zeros(2, 5, 8), BOUNDS), h)


def test_clamps_huge_values_into_range() -> None:
    g = torch.Generator().manual_seed(1)
    h = torch.randn(3, 4, 16, generator=g)
    gamma = torch.randn(3, 4, 16, generator=g) * 1e6
    beta = torch.randn(3, 4, 16, generator=g) * 1e6
    out = film(h, gamma, beta, BOUNDS)
    expected = torch.where(gamma > 0, 2.0, 0.5) * h + torch.where(beta > 0, 0.5, -0.5)
    torch.testing.assert_close(out, expected)
    assert torch.isfinite(out).all()


def test_in_range_values_modulate_per_channel_and_broadcast() -> None:
    g = torch.Generator().manual_seed(2)
    h = torch.randn(2, 6, 4, generator=g)
    gamma = 0.5 + 1.5 * torch.rand(2, 1, 4, generator=g)  # one γ per sequence and channel
    beta = torch.rand(2, 1, 4, generator=g) - 0.5
    torch.testing.assert_close(film(h, gamma, beta, BOUNDS), gamma * h + beta)
    torch.testing.assert_close(film_reference(h, gamma, beta, BOUNDS), gamma * h + beta)


def test_gradient_flows_inside_range_only() -> None:
    h = torch.ones(1, 1, 4)
    gamma = torch.tensor([[[1.0, 3.0, 0.1, 1.5]]], requires_grad=True)
    beta = torch.tensor([[[0.0, 0.9, -0.9, 0.2]]], requires_grad=True)
    film(h, gamma, beta, BOUNDS).sum().backward()
    assert gamma.grad.tolist() == [[[1.0, 0.0, 0.0, 1.0]]]
    assert beta.grad.tolist() == [[[1.0, 0.0, 0.0, 1.0]]]
