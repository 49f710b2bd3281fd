"""Peak tensor memory an arm allocates: what the memory gate compares.

Why not process RSS: ~500 MiB of a CPU process is the torch runtime and the Python heap, so an
adapter's extra memory was a rounding error in it (V1 read x1.0076 whatever it did) and the
gate could not fail. Here an arm's footprint is what it holds plus what it allocates:

    peak = resident tensors (parameters, buffers; in training also gradients-to-be and AdamW's
           two moment buffers per trainable parameter) + peak of the tensors allocated while
           the work runs

measured on CUDA with `max_memory_allocated` after a peak reset, and on a CPU from
torch.profiler's memory events (`profile_memory=True`: every allocation and free of the
window, in order; their running sum's maximum is the peak). Both count tensors only, so the
reading does not depend on what else lives in the process: the two arms can be measured one
after the other in the same process, and measuring twice gives the same number.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import torch
from torch import nn


@dataclass(frozen=True)
class TensorPeak:
    """One arm's peak tensor bytes in a training step and in generation."""

    train_bytes: int
    generate_bytes: int
    kind: str  # "cuda_max_allocated" or "cpu_profiler"

    @property
    def peak_bytes(self) -> int:
        return max(self.train_bytes, self.generate_bytes)


def resident_bytes(model: nn.Module, optimizer_state: bool = False) -> int:
    """Bytes of the model's parameters and buffers (each storage once: tied weights share
    one); with `optimizer_state`, plus AdamW's exp_avg and exp_avg_sq per trainable value."""
    seen: set[int] = set()
    total = 0
    for tensor in [*model.parameters(), *model.buffers()]:
        storage = tensor.untyped_storage()
        if storage.data_ptr() in seen:
            continue
        seen.add(storage.data_ptr())
        total += storage.nbytes()
    if optimizer_state:
        total += sum(
            2 * p.numel() * p.element_size() for p in model.parameters() if p.requires_grad
        )
    return total


def window_peak_bytes(work: Callable[[], object], device: torch.device) -> int:
    """Peak bytes of the tensors `work` allocates (those alive before it are not counted)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        before = torch.cuda.memory_allocated(device)
        torch.cuda.reset_peak_memory_stats(device)
        work()
        torch.cuda.synchronize(device)
        return max(0, int(torch.cuda.max_memory_allocated(device)) - before)
    from torch.profiler import ProfilerActivity, profile

    with _quiet_kineto(), profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        work()
    events = sorted(
        (e for e in prof.profiler.kineto_results.events() if e.name() == "[memory]"),
        key=lambda e: e.start_ns(),
    )
    current = peak = 0
    for event in events:
        current += event.nbytes()
        peak = max(peak, current)
    return peak


_KINETO_LINE = re.compile(
    rb"^[A-Z]+:\d{4}-\d\d-\d\d [\d:]+ \d+:\d+ \S+\.cpp:\d+\]"  # USDT:... profiler_start
    rb"|^\[W\d+ [\d:.]+ CPUAllocator\.cpp:\d+\] Memory block of unknown size"
)


@contextlib.contextmanager
def _quiet_kineto() -> Iterator[None]:
    """Kineto writes `USDT:... profiler_start/stop` lines to file descriptor 2 on every
    profile, whatever its log level, and the CPU allocator warns when a block allocated before
    the window is freed in it (such frees are simply not counted: the peak stays an upper
    bound, the same for both arms); under a live progress display they garble the screen.
    For the window, fd 2 goes to a temporary file; afterwards everything in it but those
    lines is written to the real stderr (another thread's message is delayed, never lost)."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as capture:
        os.dup2(capture.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            capture.seek(0)
            kept = [
                line for line in capture.read().splitlines(True) if not _KINETO_LINE.match(line)
            ]
            if kept:
                os.write(2, b"".join(kept))


def measure_tensor_peak(
    model: nn.Module,
    train_step: Callable[[], torch.Tensor],
    generate: Callable[[], object],
    device: torch.device,
) -> TensorPeak:
    """Peak tensor bytes of one training step (`train_step` returns the loss, which is
    backpropagated here; the gradients are dropped afterwards, so nothing the arm learnt
    changes) and of `generate` (no gradients)."""
    was_training = model.training
    params = [p for p in model.parameters() if p.requires_grad]
    for p in params:
        p.grad = None

    def step() -> None:
        model.train()
        loss = train_step()
        loss.backward()

    try:
        train_window = window_peak_bytes(step, device)
    finally:
        for p in params:
            p.grad = None
        model.train(was_training)
    model.eval()
    with torch.no_grad():
        generate_window = window_peak_bytes(generate, device)
    model.train(was_training)
    return TensorPeak(
        train_bytes=resident_bytes(model, optimizer_state=True) + train_window,
        generate_bytes=resident_bytes(model) + generate_window,
        kind="cuda_max_allocated" if device.type == "cuda" else "cpu_profiler",
    )
