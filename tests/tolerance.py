"""Float comparisons scaled to the values compared, for tests of numerically equal paths.

Two computations that are equal in exact arithmetic (cached decoding vs a full pass, a chunked
vs a whole-sequence forward) differ in float rounding by an amount proportional to the
magnitude of the values and to the dtype's machine epsilon, and by how much depends on the
BLAS kernels of the CPU at hand. A fixed absolute tolerance (atol=1e-5 on logits of magnitude
~9 is 1.4e-6 relative) therefore fails on some machines while proving nothing more on others.
"""

from __future__ import annotations

import torch

# Allowed error in units of the dtype's epsilon times the largest magnitude compared: room for
# reductions over a few hundred terms reordered, far below any real (algorithmic) difference.
EPSILONS = 256


def assert_close_scaled(
    actual: torch.Tensor, expected: torch.Tensor, *, epsilons: float = EPSILONS
) -> None:
    """assert_close with atol = epsilons · eps(dtype) · max|expected| and the same rtol."""
    eps = torch.finfo(expected.dtype).eps if expected.is_floating_point() else 0.0
    scale = float(expected.abs().max()) if expected.numel() else 0.0
    tol = epsilons * eps
    torch.testing.assert_close(actual, expected, rtol=tol, atol=tol * max(scale, 1.0))
