"""Cost measurements: FLOPs per token, interleaved latency rounds, process memory (context).

Latency is measured interleaved (ABBA rounds after warm-up) because this machine is noisy:
drift in background load then hits baseline and variant alike, and only their ratio is gated.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import psutil
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode


def flops_per_token(
    model: nn.Module, input_ids: torch.Tensor, attention_mask: torch.Tensor
) -> float:
    """Forward FLOPs over a probe batch divided by its real (non-pad) tokens."""
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        model(input_ids=input_ids, attention_mask=attention_mask)
    return counter.get_total_flops() / max(1, int(attention_mask.sum()))


@dataclass
class LatencyStats:
    samples_ms: list[float]

    @property
    def p50(self) -> float:
        return float(np.percentile(self.samples_ms, 50))

    @property
    def p95(self) -> float:
        return float(np.percentile(self.samples_ms, 95))


def interleaved_latency(
    runners: Sequence[Callable[[int], object]],
    rounds: int,
    warmup: int = 3,
    on_round: Callable[[int], None] | None = None,
    first_round: int = 0,
) -> list[LatencyStats]:
    """Time each runner on probe `r` in round r, alternating the order (AB, BA, ...).

    `first_round` continues an earlier measurement: rounds keep their index (probe and
    order), so measuring 40 rounds and then 40 more is the same as measuring 80.
    """
    for r in range(warmup):
        for run in runners:
            run(r)
    samples: list[list[float]] = [[] for _ in runners]
    for k in range(rounds):
        r = first_round + k
        order = list(range(len(runners)))
        if r % 2:
            order.reverse()
        for i in order:
            start = time.perf_counter()
            runners[i](r)
            samples[i].append((time.perf_counter() - start) * 1000.0)
        if on_round is not None:
            on_round(k + 1)
    return [LatencyStats(s) for s in samples]


@dataclass
class MemoryReading:
    peak_bytes: int
    kind: str  # "cuda_max_allocated" or "cpu_peak_rss"
    gpu_used_bytes: int | None = None
    gpu_utilization: float | None = None
    notes: list[str] = field(default_factory=list)
    rss_peak_bytes: int | None = None  # this process's peak RSS over the window (context)


class PeakMemory:
    """Context manager: peak memory of the enclosed work on its device.

    CUDA: `torch.cuda.max_memory_allocated` after a reset, plus an NVML sampler (~10 Hz) for
    device-wide used memory and utilisation when pynvml works. CPU: peak RSS of this process,
    sampled at ~100 Hz (the OS high-water mark cannot be reset between baseline and variant).
    """

    def __init__(self, device: torch.device, interval_s: float | None = None) -> None:
        self.device = device
        self.cuda = device.type == "cuda"
        self.interval = interval_s or (0.1 if self.cuda else 0.01)
        self._stop = threading.Event()
        self._peak_rss = 0
        self._gpu_used: list[int] = []
        self._gpu_util: list[float] = []
        self._nvml = None
        self.reading: MemoryReading | None = None
        self.notes: list[str] = []

    def __enter__(self) -> PeakMemory:
        if self.cuda:
            torch.cuda.synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
            self._nvml = _nvml_handle(self.device, self.notes)
        self._proc = psutil.Process()
        self._peak_rss = self._proc.memory_info().rss
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.is_set():
            self._peak_rss = max(self._peak_rss, self._proc.memory_info().rss)
            if self._nvml is not None:
                import pynvml

                try:
                    self._gpu_used.append(pynvml.nvmlDeviceGetMemoryInfo(self._nvml).used)
                    self._gpu_util.append(pynvml.nvmlDeviceGetUtilizationRates(self._nvml).gpu)
                except pynvml.NVMLError:
                    pass
            self._stop.wait(self.interval)

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self._peak_rss = max(self._peak_rss, self._proc.memory_info().rss)
        if self.cuda:
            torch.cuda.synchronize(self.device)
            self.reading = MemoryReading(
                peak_bytes=int(torch.cuda.max_memory_allocated(self.device)),
                kind="cuda_max_allocated",
                gpu_used_bytes=max(self._gpu_used) if self._gpu_used else None,
                gpu_utilization=float(np.mean(self._gpu_util)) if self._gpu_util else None,
                notes=self.notes,
                rss_peak_bytes=self._peak_rss,
            )
        else:
            self.reading = MemoryReading(
                self._peak_rss,
                "cpu_peak_rss",
                notes=["GPU fields unavailable: no CUDA device"],
                rss_peak_bytes=self._peak_rss,
            )


def _nvml_handle(device: torch.device, notes: list[str]) -> object | None:
    try:
        import pynvml

        pynvml.nvmlInit()
        return pynvml.nvmlDeviceGetHandleByIndex(device.index or 0)
    except Exception as exc:  # NVML missing or broken must not fail a run
        notes.append(f"NVML unavailable: {type(exc).__name__}")
        return None
