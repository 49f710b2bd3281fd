"""What an OL comparison shows and gates on beyond the shared statistics.

Sections (every view renders them from the comparison record): the stream's summary (how
dynamic the "online" arm really was: promotions, rollbacks, the share of live traffic served
by learnt weights, how far the served weights moved from the deployed ones), forgetting, each
canary decision, and the events.

Gates, each of which a faulty loop or a forgetful shadow can fail:
- `forgetting_non_inferior` (per metric): the BCa lower bound of mean(OL − deployed) on the
  forgetting set, after the stream, above −margin (the spec's non-inferiority margin);
- `no_unproven_weights_served`: every set of weights that served live traffic was either the
  deployed adapter or a shadow whose canary decision at its promotion passed;
- `drift_rollback`: every drift alarm raised while promoted weights served was followed by a
  rollback within `rollback_within` batches (an alarm on the deployed adapter has nothing to
  roll back to; the section counts those).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from engine import stats
from engine.gates import Gate
from engine.plan import ExperimentPlan
from engine.protocols.online.loop import LoopState
from engine.sections import Section
from engine.variants.online.config import OnlineShadowConfig

Scores = list[dict[str, float]]


@dataclass
class StreamResult:
    """One seed's stream: the loop's final state and the forgetting set's scores after it."""

    seed: int
    state: LoopState
    forgetting_deployed: Scores  # the static baseline on the forgetting set
    forgetting_online: Scores  # the final serving weights on it
    relative_shift: float  # ‖served − deployed‖ / ‖deployed‖ of the final serving weights
    source: str  # "synthetic" or the stream file
    resumed_at: int | None = None  # the live batch a retry resumed from


def forgetting_comparisons(
    streams: Sequence[StreamResult], metrics: Sequence[str], plan: ExperimentPlan
) -> dict[str, stats.MetricComparison]:
    """mean(OL − deployed) on the forgetting set, per metric, averaged over seeds per example."""
    out = {}
    for metric in metrics:
        base = [[s[metric] for s in r.forgetting_deployed] for r in streams]
        online = [[s[metric] for s in r.forgetting_online] for r in streams]
        n = len(base[0])
        out[metric] = stats.compare(
            metric,
            [sum(col[i] for col in base) / len(base) for i in range(n)],
            [sum(col[i] for col in online) / len(online) for i in range(n)],
            n_resamples=plan.bootstrap_samples,
            alpha=1 - plan.confidence_level,
            seed=plan.seed,
            target_power=plan.target_power,
        )
    return out


def unproven_served(state: LoopState) -> list[str]:
    """Weights that served live traffic without a passing canary at their promotion."""
    passed = {c.batch for c in state.record.canaries if c.promote}
    promoted = {e.batch for e in state.record.events if e.kind == "promotion"}
    bad = []
    for source in dict.fromkeys(p.serving_source for p in state.record.timeline):
        if source == "deployed":
            continue
        batch = int(source.split("@", 1)[1])
        if batch not in promoted or batch not in passed:
            bad.append(source)
    return bad


def alarms(state: LoopState, within: int) -> tuple[list[int], list[int], int]:
    """(alarms on promoted weights rolled back in time, those that were not, alarms on the
    deployed adapter) by live batch."""
    serving_at = {p.batch: p.serving_source for p in state.record.timeline}
    rollbacks = [e.batch for e in state.record.events if e.kind == "rollback"]
    ok, late, on_deployed = [], [], 0
    for e in state.record.events:
        if e.kind != "drift_alarm":
            continue
        if serving_at.get(e.batch, "deployed") == "deployed":
            on_deployed += 1
        elif any(e.batch <= r <= e.batch + within for r in rollbacks):
            ok.append(e.batch)
        else:
            late.append(e.batch)
    return ok, late, on_deployed


def online_gates(
    streams: Sequence[StreamResult],
    forgetting: dict[str, stats.MetricComparison],
    config: OnlineShadowConfig,
) -> list[Gate]:
    margin = config.non_inferiority_margin
    gates = [
        Gate(
            "forgetting_non_inferior",
            metric,
            c.interval.low > -margin,
            c.interval.low,
            -margin,
            ">",
            f"BCa lower bound of mean(OL - deployed) on the forgetting set ({c.n} examples) "
            f"after the stream, margin {margin:g}",
        )
        for metric, c in forgetting.items()
    ]
    unproven = [f"seed {r.seed}: {s}" for r in streams for s in unproven_served(r.state)]
    served = sum(
        len({p.serving_source for p in r.state.record.timeline} - {"deployed"}) for r in streams
    )
    gates.append(
        Gate(
            "no_unproven_weights_served",
            None,
            not unproven,
            float(len(unproven)),
            0.0,
            "==",
            f"promoted weights that served without a passing canary ({served} served in all)"
            + (f": {', '.join(unproven[:3])}" if unproven else ""),
        )
    )
    late = [
        f"seed {r.seed} batch {b}"
        for r in streams
        for b in alarms(r.state, config.rollback_within)[1]
    ]
    ok = sum(len(alarms(r.state, config.rollback_within)[0]) for r in streams)
    gates.append(
        Gate(
            "drift_rollback",
            None,
            not late,
            float(len(late)),
            0.0,
            "==",
            f"drift alarms on promoted weights not rolled back within {config.rollback_within} "
            f"batches ({ok} rolled back in time)" + (f": {', '.join(late[:3])}" if late else ""),
        )
    )
    return gates


def _sources(streams: Sequence[StreamResult]) -> str:
    source = streams[0].source if streams else "synthetic"
    return "synthetic" if source == "synthetic" else f"JSONL file {source}"


def _pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def online_sections(
    streams: Sequence[StreamResult],
    forgetting: dict[str, stats.MetricComparison],
    config: OnlineShadowConfig,
) -> list[Section]:
    summary_rows, event_rows, canary_rows = [], [], []
    notes: list[str] = []
    brief: list[str] = []
    for r in streams:
        rec = r.state.record
        kinds = [e.kind for e in rec.events]
        n_live = len(rec.serving_scores)
        learnt = sum(1 for p in rec.timeline if p.serving_source != "deployed")
        ok, late, on_deployed = alarms(r.state, config.rollback_within)
        summary_rows.append(
            (
                str(r.seed),
                str(len(rec.timeline)),
                str(n_live),
                f"{kinds.count('canary')} ({sum(c.promote for c in rec.canaries)} passed)",
                str(kinds.count("promotion")),
                str(kinds.count("drift_alarm"))
                + (f" ({on_deployed} on deployed)" if on_deployed else ""),
                str(kinds.count("rollback")),
                _pct(learnt / len(rec.timeline)) if rec.timeline else "-",
                f"{r.relative_shift:.3g}",
                r.state.serving_source,
            )
        )
        shown = [e for e in rec.events if e.kind != "canary"]
        for i, e in enumerate(shown):  # row labels unique: the CSV names its cells by them
            event_rows.append((f"seed {r.seed} #{i + 1}", str(e.batch), e.kind, e.detail))
        for c in rec.canaries:
            canary_rows.append(
                (
                    f"seed {r.seed} batch {c.batch}",
                    c.serving_source,
                    f"{c.canary_diff:+.3f} (p={c.canary_p:.3g}, n={c.canary_n})",
                    f"{c.forgetting_diff:+.3f} (p={c.forgetting_p:.3g}, n={c.forgetting_n})",
                    "promote" if c.promote else "refuse",
                )
            )
        if not kinds.count("promotion"):
            notes.append(
                f"Seed {r.seed}: the shadow was never promoted, so the OL arm served the "
                "deployed adapter throughout: its live scores equal the baseline's."
            )
        if r.resumed_at is not None:
            notes.append(f"Seed {r.seed}: the stream resumed at live batch {r.resumed_at} "
                         "from a checkpoint of an earlier attempt.")  # fmt: skip
        brief.append(
            f"stream (seed {r.seed}): {kinds.count('promotion')} promotions, "
            f"{kinds.count('rollback')} rollbacks, {kinds.count('drift_alarm')} drift alarms; "
            f"learnt weights served {_pct(learnt / len(rec.timeline)) if rec.timeline else '-'} "
            "of live batches"
        )
    forgetting_rows = [
        (
            metric,
            f"{c.baseline_mean:.3f}",
            f"{c.variant_mean:.3f}",
            f"{c.variant_mean - c.baseline_mean:+.3f}",
            f"[{c.interval.low:+.3f}, {c.interval.high:+.3f}]",
            f"{c.test.p_value:.3g}",
            str(c.n),
        )
        for metric, c in forgetting.items()
    ]
    for metric, c in forgetting.items():
        brief.append(
            f"forgetting {metric}: deployed {c.baseline_mean:.3f}, OL {c.variant_mean:.3f} "
            f"(CI low {c.interval.low:+.3f}, margin -{config.non_inferiority_margin:g})"
        )
    return [
        Section(
            key="ol_stream",
            title=f"Online stream ({_sources(streams)})",
            columns=(
                "seed",
                "live batches",
                "live examples",
                "canary decisions",
                "promotions",
                "drift alarms",
                "rollbacks",
                "learnt weights served",
                "weight shift",
                "serving at end",
            ),  # fmt: skip
            rows=tuple(summary_rows),
            notes=tuple(notes),
            brief=tuple(brief),
        ),
        Section(
            key="ol_forgetting",
            title="Forgetting (history's world, after the stream)",
            columns=("metric", "deployed", "OL", "difference", "BCa CI", "p", "n"),
            rows=tuple(forgetting_rows),
        ),
        Section(
            key="ol_canary",
            title="Canary decisions (shadow - serving, non-inferiority)",
            columns=("decision at", "serving", "canary", "forgetting probe", "decision"),
            rows=tuple(canary_rows),
        ),
        Section(
            key="ol_events",
            title="Stream events",
            columns=("event", "batch", "kind", "detail"),
            rows=tuple(event_rows) or (("none", "-", "-", "no promotion, alarm or rollback"),),
        ),
    ]
