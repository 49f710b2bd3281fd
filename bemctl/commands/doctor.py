"""`doctor`: what this machine gives bemctl (Python, torch, CUDA, Triton and the kernel
path, NVML, the store, the base-model cache), for a bug report or a first setup."""

from __future__ import annotations

import sys

from bemctl.commands.common import get_settings
from bemctl.output import out
from store.errors import BemctlError


def doctor() -> None:
    """What this machine gives bemctl: Python, torch, CUDA, Triton and the kernel path, NVML,
    store and base-model cache. Read-only; always exits 0."""
    import platform

    import torch

    from engine.evaluation.measure import _nvml_handle
    from engine.models.base_model import (
        EMBEDDED_NAME,
        PretrainPlan,
        cache_key,
        embedded_config_dict,
    )
    from store.db import inspect_schema
    from triton_ops import dispatch

    settings = get_settings()
    cuda = torch.cuda.is_available()
    gpu = f"yes: {torch.cuda.get_device_name(0)} (CUDA {torch.version.cuda})" if cuda else "no"
    on_gpu = cuda and settings.device != "cpu"
    path = dispatch.kernel_path(settings.kernels, on_gpu)
    kernels = (
        f"{settings.kernels}: "
        + {
            "native": "native (Triton kernels compiled for the GPU)",
            "interpreted": "interpreted (Triton kernels under TRITON_INTERPRET=1: slow)",
            "torch": "torch (reference ops)",
        }[path]
    )
    problem = dispatch.triton_problem(cuda=on_gpu)
    if settings.kernels == "triton" and problem:
        kernels = f"triton: cannot run here ({problem}); runs stop with an error"
    elif path == "torch" and settings.kernels == "auto":
        kernels += " because " + (
            "triton is not installed"
            if dispatch.triton_version() is None
            else ("no CUDA device" if not cuda else 'device = "cpu"')
        )
    notes: list[str] = []
    nvml = "yes" if _nvml_handle(torch.device("cuda", 0), notes) is not None else "no"
    nvml += "".join(f" ({n.removeprefix('NVML unavailable: ')})" for n in notes)
    store_path = settings.store_path
    if not store_path.is_file():
        store = f"{store_path}: none yet (the first run creates it)"
    else:
        try:  # the same classification the commands apply when they open it
            store = f"{store_path}: {inspect_schema(store_path).describe()}"
        except BemctlError as exc:
            store = str(exc)
    p = settings.pretrain
    plan = PretrainPlan(p.steps, p.batch_size, p.learning_rate, p.corpus_docs)
    entry = settings.cache_dir / f"{EMBEDDED_NAME}-{cache_key(embedded_config_dict(), plan)}"
    cached = (entry / "model.safetensors").is_file()
    base = f"{entry.name} cached" if cached else f"{entry.name} not cached (next run pre-trains it)"
    rows = [
        ("python", f"{platform.python_version()} ({sys.executable})"),
        ("torch", torch.__version__),
        ("cuda available", gpu),
        ("triton", dispatch.triton_version() or "not installed"),
        ("kernels", kernels),
        ("nvml available", nvml),
        ("store", store),
        ("base-model cache", f"{settings.cache_dir}: {base}"),
    ]
    for name, value in rows:
        out.print(f"{name:<17} {value}", highlight=False, markup=False, soft_wrap=True)
