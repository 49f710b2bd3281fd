"""The cost section shared by every report format: rows of figures and the latency note.

Kept in one place so Markdown, HTML and the CLI say the same thing about how a cost was
measured: peak tensor memory per phase is what the memory gate compares, process RSS is
context only, and the latency ratio comes with its interval, rounds and machine load.
"""

from __future__ import annotations

from typing import Any

from store.states import GateOutcome

MIB = 2**20


def mib(value: int | None) -> str:
    return "unavailable" if value is None else f"{value / MIB:.1f} MiB"


def ratio_text(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4f}"


def latency_interval_text(budget: dict[str, Any]) -> str:
    low, high = budget.get("latency_ratio_low"), budget.get("latency_ratio_high")
    return "" if low is None or high is None else f" [{low:.3f}, {high:.3f}]"


def memory_rows(r: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    """(label, baseline, variant, ratio) rows for memory."""
    b, v = r["baseline_metrics"], r["variant_metrics"]
    memory = (r.get("costs") or {}).get("memory") or {}
    if b.get("tensor_peak_train_bytes") is None:  # a record of an older run: one reading
        return [
            (
                f"peak memory ({b.get('memory_kind') or 'n/a'})",
                mib(b.get("peak_memory_bytes")),
                mib(v.get("peak_memory_bytes")),
                ratio_text(r["budget"].get("memory_ratio")),
            )
        ]
    kind = b.get("memory_kind") or "n/a"
    return [
        (
            f"peak tensor memory, training step ({kind})",
            mib(b["tensor_peak_train_bytes"]),
            mib(v["tensor_peak_train_bytes"]),
            ratio_text(memory.get("train_ratio")),
        ),
        (
            f"peak tensor memory, generation ({kind})",
            mib(b["tensor_peak_generate_bytes"]),
            mib(v["tensor_peak_generate_bytes"]),
            ratio_text(memory.get("generate_ratio")),
        ),
        (
            "process peak RSS (context: both arms in one process)",
            mib(b.get("process_rss_peak_bytes")),
            "",
            "",
        ),
    ]


def _fmt(value: Any, fmt: str) -> str:
    return "n/a" if value is None else format(value, fmt)


def latency_note(r: dict[str, Any]) -> str | None:
    """How the latency ratio was measured and under what load; None for older records."""
    latency = (r.get("costs") or {}).get("latency")
    if not latency or latency.get("low") is None:
        return None
    load = latency.get("load") or {}
    extended = (
        f", extended from {latency['rounds_planned']} because the interval straddled the budget"
        if latency["rounds"] > latency["rounds_planned"]
        else ""
    )
    return (
        f"Latency: p50 ratio {latency['ratio']:.3f}, {latency['confidence_level']:.0%} paired "
        f"bootstrap interval [{latency['low']:.3f}, {latency['high']:.3f}] over "
        f"{latency['rounds']} interleaved rounds (cap {latency['rounds_cap']}){extended}; "
        f"load average {_fmt(load.get('load_avg_1m_start'), '.2f')} → "
        f"{_fmt(load.get('load_avg_1m_end'), '.2f')} on {_fmt(load.get('cpu_count'), 'd')} "
        f"CPUs, CPU busy {_fmt(load.get('cpu_busy_share'), '.0%')}, steal "
        f"{_fmt(load.get('cpu_steal_share'), '.1%')} while measuring."
    )


def gate_outcome(g: dict[str, Any]) -> str:
    """pass / fail / inconclusive (records before schema 5 only know passed)."""
    return g.get("outcome") or (GateOutcome.PASS if g["passed"] else GateOutcome.FAIL)
