"""What a reviewer needs to trust a verdict (issue 12).

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-30

- `job.plan_json`: the resolved plan (every size, step count, eval set, budget) frozen when
  the job is queued, so a retry on another worker runs exactly what was queued, whatever
  that worker's bemctl.toml says. `run.plan_json`: the plan an arm was trained and evaluated
  under; a reused arm must match it and a comparison's arms must agree on it.
- `job.phase_step`, `phase_total`, `phase_detail`, `phase_started_at`: progress of the job's
  current phase (e.g. the base model's pre-training: step, loss, ETA) for `list` and the console.
- `run.tensor_peak_train_bytes`, `tensor_peak_generate_bytes`: peak tensor memory the arm
  allocates in a training step and in generation (what the memory gate compares);
  `rss_peak_bytes`: the process's peak RSS, kept as context. `latency_samples_json`: the
  interleaved latency rounds (ms), so the latency ratio's interval can be recomputed;
  `load_json`: machine load while measuring (load average, CPU steal). `curve_quantity`: what
  the run's step rows measure (the language-model loss, or e.g. AR1's -mean reward), so
  curves of different quantities are never drawn on one axis.
- `comparison.latency_ratio_low`, `latency_ratio_high`: the interval of the p50 latency ratio;
  `costs_json`: the cost measurements' details (rounds, load, memory by phase).
- `gate_decision.outcome`: pass / fail / inconclusive (a cost gate whose interval straddles
  its budget after the capped number of rounds); `passed` stays true only for pass.
- `example_score.position`: the example's position in the evaluation set, the pairing order
  anyone can recompute every interval from.
- `stat_result.identical_to`: the metric whose per-example differences this one repeats
  exactly (counted once in the BH family).

Plain ALTER TABLE ADD COLUMN, as 0005.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_COLUMNS: list[tuple[str, str, sa.types.TypeEngine]] = [
    ("job", "plan_json", sa.String()),
    ("job", "phase_step", sa.Integer()),
    ("job", "phase_total", sa.Integer()),
    ("job", "phase_detail", sa.String()),
    ("job", "phase_started_at", sa.DateTime()),
    ("run", "plan_json", sa.String()),
    ("run", "tensor_peak_train_bytes", sa.Integer()),
    ("run", "tensor_peak_generate_bytes", sa.Integer()),
    ("run", "rss_peak_bytes", sa.Integer()),
    ("run", "latency_samples_json", sa.String()),
    ("run", "load_json", sa.String()),
    ("run", "curve_quantity", sa.String()),
    ("comparison", "latency_ratio_low", sa.Float()),
    ("comparison", "latency_ratio_high", sa.Float()),
    ("comparison", "costs_json", sa.String()),
    ("gate_decision", "outcome", sa.String()),
    ("example_score", "position", sa.Integer()),
    ("stat_result", "identical_to", sa.String()),
]


def upgrade() -> None:
    for table, name, type_ in _COLUMNS:
        op.add_column(table, sa.Column(name, type_, nullable=True))


def downgrade() -> None:
    for table, name, _ in reversed(_COLUMNS):
        op.drop_column(table, name)
