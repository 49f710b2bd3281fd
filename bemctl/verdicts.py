"""The verdict tables `bemctl run` prints, rendered from stored report records.

Printed from the store rather than from memory because the batch's verdicts may have
been written by another worker process that finished the batch's last job.
"""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from bemctl.reports import costs, sections_view
from store.states import Verdict

COLOURS = {Verdict.PROMOTE: "green", Verdict.REJECT: "red"}  # INCONCLUSIVE: yellow
COLUMNS = (
    "metric",
    "n",
    "(b, c)",
    "baseline",
    "variant",
    "Δ",
    "BCa CI",
    "test",
    "p",
    "adj. p",
    "d_z",
    "power",
    "MDE",
)


def verdict_colour(verdict: str) -> str:
    return COLOURS.get(verdict, "yellow")


def print_verdicts(out: Console, records: list[dict[str, Any]]) -> None:
    for r in records:
        decision = r["acceptance_decision"]
        sv = r["statistical_validation"]
        v = decision["overall_verdict"]
        table = Table(
            title=f"{escape(r['experiment_id'])}: [bold {verdict_colour(v)}]{v}"
            f"[/] (comparison {r['comparison_id']})",
            title_justify="left",
        )
        for col in COLUMNS:
            table.add_column(col, justify="left" if col in ("metric", "test") else "right")
        adjusted = dict(
            zip(
                sv["fdr_correction"]["metrics"],
                sv["fdr_correction"]["adjusted_p_values"],
                strict=True,
            )
        )
        for metric, ci in sv["bca_bootstrap"].items():
            test = sv["paired_tests"][metric]
            power = sv["power_analysis"][metric]
            b, c = test["discordant_b"], test["discordant_c"]
            twin = sv.get("identical_metrics", {}).get(metric)
            table.add_row(
                metric if twin is None else f"{metric} (= {twin})",
                str(test["n"]),
                "" if b is None else f"({b}, {c})",
                f"{r['baseline_metrics'][metric]:.4f}",
                f"{r['variant_metrics'][metric]:.4f}",
                f"{ci['estimate']:+.4f}",
                f"[{ci['lower']:+.4f}, {ci['upper']:+.4f}]",
                test["test"],
                f"{test['p_value']:.3g}",
                _fmt(adjusted.get(metric), ".3g"),
                _fmt(sv["effect_sizes"][metric]["cohens_dz"]),
                _fmt(power["power"], ".2f"),
                _fmt(power["minimum_detectable_effect"], ".4f"),
            )
        out.print(table)
        budget, variant = r["budget"], r["variant_metrics"]
        ratios = (
            f"params ×{_fmt(budget['param_ratio'])}  FLOPs ×{_fmt(budget['flop_ratio'])}  "
            f"latency p50 ×{_fmt(budget['latency_ratio'])}"
            f"{costs.latency_interval_text(budget)}  "
            f"memory ×{_fmt(budget['memory_ratio'])}"
        )
        if variant.get("kv_hit_rate") is not None:
            ratios += f"  KV hit rate {variant['kv_hit_rate']:.3f}"
        if variant.get("pre_generation_ms_p50") is not None:
            ratios += f"  pre-generation {variant['pre_generation_ms_p50']:.2f} ms"
        family = sv["fdr_correction"]["family_size"]
        out.print(f"  {ratios}")
        noun = "hypothesis" if family == 1 else "hypotheses"
        out.print(f"  BH-FDR over a family of {family} {noun} (every variant and metric here)")
        for line in sections_view.brief(r):
            out.print(f"  {escape(line)}")
        for note in sections_view.notes(r):
            out.print(f"  [yellow]![/] {escape(note)}")
        for reason in decision["reasons"]:
            undecided = reason.startswith("underpowered") or " inconclusive (" in reason
            mark = "[yellow]?[/]" if undecided else "[red]✗[/]"
            out.print(f"  {mark} {escape(reason)}")
        needed = [(m, p) for m, p in sv["power_analysis"].items() if p["n_needed"]]
        if needed:
            text = ", ".join(f"{m} n≈{p['n_needed']}" for m, p in needed)
            target = needed[0][1]["target_power"]
            out.print(f"  examples needed for power {target:.2f} at the observed effect: {text}")
        if not decision["reasons"]:
            out.print("  [green]✓ all gates passed[/]")


def _fmt(value: float | None, spec: str = ".3f") -> str:
    return "n/a" if value is None else format(value, spec)
