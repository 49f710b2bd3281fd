"""Markdown rendering of report records: what a reviewer reads in a PR or a lab notebook."""

from __future__ import annotations

from typing import Any

from bemctl.reports import costs
from bemctl.reports.sections_view import markdown_lines as section_lines
from store.states import GateOutcome, Role


def _num(value: Any, fmt: str = ".4f") -> str:
    if value is None:
        return "n/a"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    return format(value, fmt)


def render_markdown(records: list[dict[str, Any]]) -> str:
    lines = ["# bemctl report", ""]
    lines += ["| experiment | verdict | reasons |", "|---|---|---|"]
    for r in records:
        reasons = "; ".join(r["acceptance_decision"]["reasons"]) or "all gates passed"
        lines.append(
            f"| {r['experiment_id']} | **{r['acceptance_decision']['overall_verdict']}**"
            f" | {reasons} |"
        )
    for r in records:
        lines += ["", *_experiment(r)]
    return "\n".join(lines) + "\n"


def _experiment(r: dict[str, Any]) -> list[str]:
    sv = r["statistical_validation"]
    b, v, budget = r["baseline_metrics"], r["variant_metrics"], r["budget"]
    fdr = sv["fdr_correction"]
    adjusted = dict(zip(fdr["metrics"], fdr["adjusted_p_values"], strict=True))
    out = [
        f"## {r['experiment_id']}: {r['variant_name']}",
        "",
        f"Verdict: **{r['acceptance_decision']['overall_verdict']}** "
        f"(comparison {r['comparison_id']}, invocation {r['invocation_id']}, "
        f"{r['created_at']}; baseline run {b['run_id']}, variant run {v['run_id']}, "
        f"seed {b['seed']}, device {b['device']}{', quick' if b['quick'] else ''})",
        "",
        "| metric | n | (b, c) | baseline | variant | Δ (mean paired) | BCa CI | test | p "
        "| adj. p | d_z | g | power | MDE | n for power | Δ across seeds |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for metric, ci in sv["bca_bootstrap"].items():
        test = sv["paired_tests"][metric]
        eff = sv["effect_sizes"][metric]
        pw = sv["power_analysis"][metric]
        spread = sv["seeds"]["difference_across_seeds"][metric]
        b_c = (
            f"({test['discordant_b']}, {test['discordant_c']})"
            if test["discordant_b"] is not None
            else ""
        )
        seeds = (
            f"{spread['mean']:+.4f} ± {spread['sd']:.4f} ({spread['n_seeds']} seeds)"
            if spread["sd"] is not None
            else "1 seed"
        )
        twin = sv.get("identical_metrics", {}).get(metric)
        label = metric if twin is None else f"{metric} (= {twin}, counted once)"
        out.append(
            f"| {label} | {test['n']} | {b_c} | {_num(b[metric])} | {_num(v[metric])} | "
            f"{ci['estimate']:+.4f} | [{ci['lower']:+.4f}, {ci['upper']:+.4f}]"
            f"{' (all differences equal)' if ci['degenerate'] else ''} | {test['test']} | "
            f"{_num(test['p_value'], '.3g')} | {_num(adjusted[metric], '.3g')} | "
            f"{_num(eff['cohens_dz'], '.3f')} | {_num(eff['hedges_g'], '.3f')} | "
            f"{_num(pw['power'], '.2f')} | {_num(pw['minimum_detectable_effect'], '.4f')} | "
            f"{_num(pw['n_needed'])} | {seeds} |"
        )
    first = next(iter(sv["bca_bootstrap"].values()), None)
    if first is not None:
        target = next(iter(sv["power_analysis"].values()))["target_power"]
        out += [
            "",
            f"CI: {first['method']} {first['confidence_level']:.0%}, "
            f"{first['resamples']:,} resamples, seed {first['seed']}; "
            f"{sv['ci_note']}. BH-FDR family: {fdr['family_size']} hypotheses (every "
            f"experiment × metric of the invocation). Effect sizes: "
            f"{next(iter(sv['effect_sizes'].values()))['formula']}. Power: two-sided paired "
            f"t-test at the observed effect; MDE = smallest mean difference detectable with "
            f"power {_num(target, '.2f')} at this n. (b, c) = (baseline right & variant wrong, "
            f"baseline wrong & variant right).",
        ]
    under = r["acceptance_decision"]["underpowered"]
    if under:
        out += [
            "",
            "**Underpowered**: "
            + "; ".join(under)
            + " — neither PROMOTE nor REJECT is supported by this much evidence.",
        ]
    out += [
        "",
        "| cost | baseline | variant | ratio |",
        "|---|---|---|---|",
        f"| trainable parameters | {_num(b['trainable_parameters'])} | "
        f"{_num(v['trainable_parameters'])} | {_num(budget['param_ratio'])} |",
        f"| total parameters | {_num(b['parameters'])} | {_num(v['parameters'])} | |",
        f"| FLOPs / token | {_num(b['flops_per_token'], ',.0f')} | "
        f"{_num(v['flops_per_token'], ',.0f')} | {_num(budget['flop_ratio'])} |",
        f"| latency p50 (ms) | {_num(b['latency_p50_ms'], '.2f')} | "
        f"{_num(v['latency_p50_ms'], '.2f')} | {_num(budget['latency_ratio'])}"
        f"{costs.latency_interval_text(budget)} |",
        f"| latency p95 (ms) | {_num(b['latency_p95_ms'], '.2f')} | "
        f"{_num(v['latency_p95_ms'], '.2f')} | |",
        f"| pre-generation phase p50 (ms) | {_num(b['pre_generation_ms_p50'], '.3f')} | "
        f"{_num(v['pre_generation_ms_p50'], '.3f')} | |",
        f"| KV-cache hit rate | {_num(b['kv_hit_rate'])} | {_num(v['kv_hit_rate'])} | |",
        *(
            f"| {label} | {base} | {var} | {ratio} |"
            for label, base, var, ratio in costs.memory_rows(r)
        ),
        f"| GPU memory used (NVML) | {costs.mib(b['gpu_memory_used_bytes'])} | "
        f"{costs.mib(v['gpu_memory_used_bytes'])} | |",
    ]
    note = costs.latency_note(r)
    if note:
        out += ["", note]
    out += section_lines(r.get("sections", []))
    for role in Role:
        source = r[f"{role}_metrics"].get("adapter_source_run_id")
        if source is not None:
            out += [
                "",
                f"The {role}'s adapter was taken from run {source} (trained "
                f"identically before), not retrained.",
            ]
    out += [
        "",
        "| gate | metric | observed | threshold | result |",
        "|---|---|---|---|---|",
    ]
    for g in r["gates"]:
        out.append(
            f"| {g['gate']} | {g['metric'] or ''} | {_num(g['observed'])} | "
            f"{g['comparator']} {_num(g['threshold'])} | {_RESULT[costs.gate_outcome(g)]} |"
        )
    return out


_RESULT = {
    GateOutcome.PASS: "✓ pass",
    GateOutcome.FAIL: "✗ FAIL",
    GateOutcome.INCONCLUSIVE: "? inconclusive",
}
