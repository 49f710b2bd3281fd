"""Triton kernels vs eager torch, forward + backward, at the shapes of a 350M-parameter model.

    .venv/bin/python bench/kernels.py [--dtype bf16|fp16|fp32] [--tokens 8192] [--dim 1024]
                                      [--rank 64] [--kron-terms 4]

Needs a CUDA device; without one it says so and exits 0 (the kernels' correctness is tested
on the CPU under TRITON_INTERPRET=1, tests/triton_ops). Each op runs forward + backward
(`triton.testing.do_bench`, median) once through its torch reference (eager) and once through
the Triton path (kernels = "triton"), and reports ms, achieved TFLOP/s (GEMM-like ops) or GB/s
(film), and eager / Triton. For masked_lora the base GEMM x·W + b (cuBLAS on both paths) is
also timed alone and subtracted, to give the adapter part the issue's 1.3x target is about.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

# Run as a script, this file's directory comes first on sys.path: keep it from shadowing
# packages, and make the repository importable without an install.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]
sys.path.insert(0, str(_HERE.parent))

import torch  # noqa: E402

NO_GPU = (
    "no CUDA device: kernel timings need a GPU "
    "(the kernels are tested for correctness under TRITON_INTERPRET=1)"
)
DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}
DEVICE = "cuda"  # tests point it at the CPU (interpreted kernels) to run this script's logic


def _fwd_bwd(op: Callable[[], torch.Tensor], dy: torch.Tensor) -> Callable[[], None]:
    def step() -> None:
        op().backward(dy)

    return step


def _time(step: Callable[[], None], grads: list[torch.Tensor]) -> float:
    from triton.testing import do_bench

    return float(do_bench(step, grad_to_none=grads, return_mode="median"))


def _leaf(*shape: int, dtype: torch.dtype, scale: float = 1.0, grad: bool = True) -> torch.Tensor:
    t = torch.randn(*shape, device=DEVICE, dtype=torch.float32) * scale
    return t.to(dtype).requires_grad_(grad)


def _row(name: str, eager_ms: float, kernel_ms: float, work: float, unit: str) -> str:
    def rate(ms: float) -> str:
        return f"{work / (ms * 1e-3) / (1e12 if unit == 'TFLOP/s' else 1e9):8.2f} {unit}"

    ratio = eager_ms / kernel_ms
    return (
        f"{name:<22} eager {eager_ms:8.3f} ms ({rate(eager_ms)})   "
        f"triton {kernel_ms:8.3f} ms ({rate(kernel_ms)})   eager/triton {ratio:5.2f}x"
    )


def bench_masked_lora(n: int, d: int, r: int, dtype: torch.dtype) -> list[str]:
    from triton_ops import dispatch
    from triton_ops.masked_lora import masked_lora, masked_lora_reference

    x = _leaf(n, d, dtype=dtype)
    w = _leaf(d, d, dtype=dtype, scale=d**-0.5, grad=False)
    b = _leaf(d, dtype=dtype, grad=False)
    v = _leaf(d, r, dtype=dtype, scale=d**-0.5)
    u = _leaf(d, r, dtype=dtype, scale=0.1)
    mask = (torch.rand(n, r, device=DEVICE) > 0.5).to(dtype)
    dy = torch.randn(n, d, device=DEVICE, dtype=dtype)
    grads = [x, v, u]
    eager = _time(_fwd_bwd(lambda: masked_lora_reference(x, w, b, v, u, mask, 0.5), dy), grads)
    dispatch.configure("triton")
    fused = _time(_fwd_bwd(lambda: masked_lora(x, w, b, v, u, mask, 0.5), dy), grads)
    dispatch.configure("auto")
    base = _time(_fwd_bwd(lambda: torch.addmm(b, x, w), dy), [x])
    # adapter GEMMs: shrink, expand, dy·U, g·Vᵀ, dV, dU (eager's count; the kernel recomputes
    # x·V once more in the backward)
    flops = 6 * 2 * n * d * r
    return [
        _row("masked_lora (whole)", eager, fused, flops + 2 * 2 * n * d * d, "TFLOP/s"),
        _row("masked_lora (adapter)", eager - base, fused - base, flops, "TFLOP/s")
        + "   target >= 1.30x",
    ]


def bench_kron(n: int, d: int, terms: int, dtype: torch.dtype) -> list[str]:
    from engine.variants.kron.model import kron_factor_shapes
    from triton_ops import dispatch
    from triton_ops.kron_delta import kron_delta, kron_delta_reference, kron_flops_per_token

    a_shape, b_shape = kron_factor_shapes(d, d)
    x = _leaf(n, d, dtype=dtype)
    a = _leaf(terms, *a_shape, dtype=dtype, scale=0.1)
    b = _leaf(terms, *b_shape, dtype=dtype, scale=0.1)
    dy = torch.randn(n, d, device=DEVICE, dtype=dtype)
    eager = _time(_fwd_bwd(lambda: kron_delta_reference(x, a, b), dy), [x, a, b])
    dispatch.configure("triton")
    fused = _time(_fwd_bwd(lambda: kron_delta(x, a, b), dy), [x, a, b])
    dispatch.configure("auto")
    flops = 3 * n * kron_flops_per_token(a_shape, b_shape, terms)  # y, dx, dA + dB
    return [_row(f"kron_delta (r={terms})", eager, fused, flops, "TFLOP/s")]


def bench_film(n: int, d: int, dtype: torch.dtype) -> list[str]:
    from triton_ops import dispatch
    from triton_ops.film import film, film_reference

    bounds = ((0.5, 2.0), (-0.5, 0.5))
    h = _leaf(n, d, dtype=dtype)
    gamma = (1.0 + 0.5 * _leaf(n, d, dtype=torch.float32, grad=False)).to(dtype)
    gamma.requires_grad_(True)
    beta = _leaf(n, d, dtype=dtype, scale=0.3)
    dy = torch.randn(n, d, device=DEVICE, dtype=dtype)
    grads = [h, gamma, beta]
    eager = _time(_fwd_bwd(lambda: film_reference(h, gamma, beta, bounds), dy), grads)
    dispatch.configure("triton")
    fused = _time(_fwd_bwd(lambda: film(h, gamma, beta, bounds), dy), grads)
    dispatch.configure("auto")
    traffic = (4 + 7) * n * d * h.element_size()  # fwd: h, γ, β in, y out; bwd: 4 in, 3 out
    return [_row("film", eager, fused, traffic, "GB/s")]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dtype", choices=sorted(DTYPES), default="bf16")
    parser.add_argument("--tokens", type=int, default=8192)
    parser.add_argument("--dim", type=int, default=1024)
    parser.add_argument("--rank", type=int, default=64)
    parser.add_argument("--kron-terms", type=int, default=4)
    args = parser.parse_args(argv)
    if not torch.cuda.is_available():
        print(NO_GPU)
        return 0
    dtype = DTYPES[args.dtype]
    torch.manual_seed(0)
    print(
        f"{torch.cuda.get_device_name(0)}, {args.dtype}, tokens {args.tokens}, "
        f"d {args.dim}, r {args.rank}; forward + backward, median of do_bench"
    )
    for line in (
        bench_masked_lora(args.tokens, args.dim, args.rank, dtype)
        + bench_kron(args.tokens, args.dim, args.kron_terms, dtype)
        + bench_film(args.tokens, args.dim, dtype)
    ):
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
