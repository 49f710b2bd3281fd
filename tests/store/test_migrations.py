"""An older store is upgraded in place, rows intact; the revision chain is linear."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.script import ScriptDirectory

from store import queries
from store.db import SCHEMA_HEAD, Store, alembic_config


def _make_0001_store(path: Path) -> None:
    engine = sa.create_engine(f"sqlite:///{path}")
    with engine.begin() as conn:
        command.upgrade(alembic_config(conn), "0001")
    engine.dispose()
    db = sqlite3.connect(path)
    db.executescript(
        """
        INSERT INTO experiment (id, name, spec_json, spec_hash, spec_path, created_at)
          VALUES (1, 'v1_dynrank', '{}', 'h', 'x.yml', '2026-11-01 10:00:00');
        INSERT INTO run (id, experiment_id, invocation_id, role, seed, status, quick, device,
                         created_at, total_steps, current_step)
          VALUES (1, 1, 'inv', 'baseline', 0, 'succeeded', 1, 'cpu', '2026-11-01 10:00:00', 5, 5),
                 (2, 1, 'inv', 'variant', 0, 'succeeded', 1, 'cpu', '2026-11-01 10:00:00', 5, 5);
        INSERT INTO comparison (id, experiment_id, invocation_id, baseline_run_id,
                                variant_run_id, created_at, verdict, reasons_json, family_size,
                                bootstrap_samples, seed)
          VALUES (1, 1, 'inv', 1, 2, '2026-11-01 10:00:00', 'REJECT', '[]', 2, 1000, 0);
        INSERT INTO stat_result (comparison_id, metric, n, baseline_mean, variant_mean,
                                 mean_diff, ci_low, ci_high, confidence_level, ci_method,
                                 bootstrap_samples, test_name, p_value, family_size,
                                 effect_formula, degenerate)
          VALUES (1, 'f1', 200, 0.5, 0.52, 0.02, -0.01, 0.05, 0.95, 'BCa', 1000, 't', 0.2, 2,
                  'd_z', 0);
        """
    )
    db.commit()
    db.close()


def test_0001_store_is_upgraded_with_rows_intact(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    _make_0001_store(path)
    with Store(path) as store:
        [(experiment, comp, stats, gates, base, var)] = queries.latest_comparisons(store)
        assert experiment.name == "v1_dynrank" and comp.verdict == "REJECT"
        assert (base.id, var.id) == (1, 2)
        [row] = stats
        assert row.metric == "f1" and row.mean_diff == 0.02
        assert row.underpowered is False and row.n_seeds == 1 and row.power is None
        assert comp.seeds_json is None
    db = sqlite3.connect(path)
    assert db.execute("SELECT version_num FROM alembic_version").fetchall() == [(SCHEMA_HEAD,)]
    db.close()


def test_revisions_form_one_linear_chain_ending_at_head() -> None:
    script = ScriptDirectory.from_config(alembic_config())
    revisions = list(script.walk_revisions())
    assert script.get_heads() == [SCHEMA_HEAD]
    assert [r.revision for r in reversed(revisions)] == [f"{i:04d}" for i in range(1, 7)]
