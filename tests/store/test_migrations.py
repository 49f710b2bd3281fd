"""An older store is upgraded in place, rows intact; the revision chain is linear."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.script import ScriptDirectory
from sqlalchemy.exc import IntegrityError
from sqlmodel import SQLModel

from store import queries, stream
from store.db import Store
from store.errors import BemctlError
from store.models import Job, Run
from store.schema import SCHEMA_HEAD, alembic_config
from store.states import BatchStatus, GateOutcome, JobStatus, Role, RunStatus, Verdict


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
    assert [r.revision for r in reversed(revisions)] == [f"{i:04d}" for i in range(1, 10)]


# -- 0007: CHECK constraints on the state columns -----------------------------------------

_ROWS_0006 = """
INSERT INTO experiment (id, name, spec_json, spec_hash, spec_path, created_at)
  VALUES (1, 'v1_dynrank', '{}', 'h', 'x.yml', '2026-11-01 10:00:00');
INSERT INTO batch (id, created_at, status, decided_at)
  VALUES ('b1', '2026-11-01 10:00:00', 'decided', '2026-11-01 11:00:00'),
         ('b2', '2026-11-01 10:00:00', 'open', NULL),
         ('b3', '2026-11-01 10:00:00', 'abandoned', NULL);
INSERT INTO job (id, batch_id, experiment_id, experiment_name, spec_path, options_json,
                 priority, status, attempts, max_attempts, created_at, cancel_requested)
  VALUES (1, 'b1', 1, 'v1_dynrank', 'x.yml', '{}', 0, 'succeeded', 1, 3,
          '2026-11-01 10:00:00', 0),
         (2, 'b2', 1, 'v1_dynrank', 'x.yml', '{}', 0, 'queued', 0, 3,
          '2026-11-01 10:00:00', 0),
         (3, 'b3', 1, 'v1_dynrank', 'x.yml', '{}', 0, 'cancelled', 1, 3,
          '2026-11-01 10:00:00', 1);
INSERT INTO event (id, job_id, run_id, at, kind, message)
  VALUES (1, 1, NULL, '2026-11-01 10:00:00', 'queued', 'queued in batch b1');
INSERT INTO run (id, experiment_id, invocation_id, role, seed, status, quick, device,
                 created_at, total_steps, current_step, job_id, attempt)
  VALUES (1, 1, 'b1', 'baseline', 0, 'succeeded', 1, 'cpu', '2026-11-01 10:00:00', 5, 5, 1, 1),
         (2, 1, 'b1', 'variant', 0, 'succeeded', 1, 'cpu', '2026-11-01 10:00:00', 5, 5, 1, 1),
         (3, 1, 'b3', 'variant', 0, 'interrupted', 1, 'cpu', '2026-11-01 10:00:00', 5, 1, 3, 1);
INSERT INTO step_metric (id, run_id, step, loss, lr, elapsed_s) VALUES (1, 1, 1, 2.5, 0.1, 0.5);
INSERT INTO example_score (id, run_id, example_id, metric, value, position)
  VALUES (1, 1, 'ex0', 'f1', 0.5, 0), (2, 2, 'ex0', 'f1', 0.6, 0);
INSERT INTO prediction (id, run_id, example_id, prediction, references_json)
  VALUES (1, 2, 'ex0', 'a', '["a"]');
INSERT INTO comparison (id, experiment_id, invocation_id, baseline_run_id, variant_run_id,
                        created_at, verdict, reasons_json, family_size, bootstrap_samples, seed)
  VALUES (1, 1, 'b1', 1, 2, '2026-11-01 10:00:00', 'INCONCLUSIVE (cost)', '[]', 1, 1000, 0);
INSERT INTO stat_result (id, comparison_id, metric, n, baseline_mean, variant_mean, mean_diff,
                         ci_low, ci_high, confidence_level, ci_method, bootstrap_samples,
                         test_name, p_value, family_size, effect_formula, degenerate)
  VALUES (1, 1, 'f1', 1, 0.5, 0.6, 0.1, 0.0, 0.2, 0.95, 'BCa', 1000, 't', 0.2, 1, 'd_z', 0);
INSERT INTO gate_decision (id, comparison_id, gate, metric, passed, comparator, detail, outcome)
  VALUES (1, 1, 'latency', NULL, 0, '<=', 'straddles', 'inconclusive'),
         (2, 1, 'significance', 'f1', 1, '<', 'p', 'pass'),
         (3, 1, 'min_improvement', 'f1', 0, '>=', 'old row', NULL);
"""
_TABLES = (
    "experiment",
    "batch",
    "job",
    "event",
    "run",
    "step_metric",
    "example_score",
    "prediction",
    "comparison",
    "stat_result",
    "gate_decision",
)


def _make_store_at(path: Path, revision: str, rows: str) -> None:
    engine = sa.create_engine(f"sqlite:///{path}")
    with engine.begin() as conn:
        command.upgrade(alembic_config(conn), revision)
    engine.dispose()
    db = sqlite3.connect(path)
    db.executescript(rows)
    db.commit()
    db.close()


def _dump(path: Path) -> dict[str, list[dict]]:
    db = sqlite3.connect(path)
    db.row_factory = sqlite3.Row
    try:
        return {
            t: [dict(r) for r in db.execute(f"SELECT * FROM {t} ORDER BY rowid")] for t in _TABLES
        }
    finally:
        db.close()


def _kept(before: dict[str, list[dict]], after: dict[str, list[dict]]) -> bool:
    """Every row kept with every value it had; a column a later revision added is NULL in
    rows written before it, and one a downgrade dropped is simply gone."""
    if before.keys() != after.keys():
        return False
    for table, rows in before.items():
        if len(rows) != len(after[table]):
            return False
        for old, new in zip(rows, after[table], strict=True):
            shared = old.keys() & new.keys()
            if any(old[k] != new[k] for k in shared):
                return False
            if any(new[k] is not None for k in new.keys() - old.keys()):
                return False
    return True


def _indexes(path: Path) -> dict[str, str]:
    """index name -> its table."""
    db = sqlite3.connect(path)
    try:
        return dict(
            db.execute(
                "SELECT name, tbl_name FROM sqlite_master"
                " WHERE type = 'index' AND name NOT LIKE 'sqlite_%'"
            )
        )
    finally:
        db.close()


def _schema(path: Path) -> dict[tuple[str, str], str]:
    db = sqlite3.connect(path)
    try:
        return {
            (kind, name): sql
            for kind, name, sql in db.execute(
                "SELECT type, name, sql FROM sqlite_master WHERE name NOT LIKE 'sqlite_%'"
            )
        }
    finally:
        db.close()


def test_0006_store_gets_state_checks_with_every_row_intact(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    _make_store_at(path, "0006", _ROWS_0006)
    before = _dump(path)
    indexes_before = _indexes(path)
    tables_before = {name for kind, name in _schema(path) if kind == "table"}
    with Store(path):
        pass
    assert _kept(before, _dump(path))  # nothing cascaded away when run/job/comparison were rebuilt
    schema = _schema(path)
    # the rebuilt tables keep every index; tables of later revisions bring their own
    indexes_after = _indexes(path)
    assert {i: t for i, t in indexes_after.items() if t in tables_before} == indexes_before
    assert (
        "CONSTRAINT fk_run_job_id_job FOREIGN KEY(job_id) REFERENCES job (id)"
        in schema[("table", "run")]
    )
    db = sqlite3.connect(path)
    try:
        assert db.execute("SELECT version_num FROM alembic_version").fetchall() == [(SCHEMA_HEAD,)]
        assert db.execute("PRAGMA foreign_key_check").fetchall() == []
        assert db.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        db.execute("PRAGMA foreign_keys=ON")
        bad = [
            "UPDATE run SET status = 'done' WHERE id = 1",
            "UPDATE run SET role = 'control' WHERE id = 1",
            "UPDATE job SET status = 'paused' WHERE id = 1",
            "UPDATE batch SET status = 'closed' WHERE id = 'b1'",
            "UPDATE comparison SET verdict = 'INCONCLUSIVE' WHERE id = 1",
            "UPDATE gate_decision SET outcome = 'skipped' WHERE id = 1",
        ]
        for statement in bad:
            with pytest.raises(sqlite3.IntegrityError, match="CHECK constraint failed"):
                db.execute(statement)
        # the cascades still work on the rebuilt tables
        db.execute("DELETE FROM comparison")
        assert db.execute("SELECT count(*) FROM gate_decision").fetchone() == (0,)
    finally:
        db.close()


def test_invalid_state_is_an_integrity_error_through_the_orm(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    _make_store_at(path, "0006", _ROWS_0006)
    with Store(path) as store:
        with store.session() as session:  # the upgrade switched them off on this connection
            assert session.connection().exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        with pytest.raises(IntegrityError, match="ck_job_status"):
            with store.session() as session:
                job = session.get(Job, 2)
                assert job is not None
                job.status = "paused"
        with pytest.raises(IntegrityError, match="ck_run_status"):
            with store.session() as session:
                session.add(
                    Run(
                        experiment_id=1,
                        invocation_id="b2",
                        role=Role.BASELINE,
                        seed=0,
                        status="done",
                        quick=True,
                        device="cpu",
                    )
                )
        with store.read_session() as session:
            assert session.get(Job, 2).status == JobStatus.QUEUED


def test_unknown_state_stops_the_upgrade_and_leaves_the_store_as_it_was(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    _make_store_at(path, "0006", _ROWS_0006 + "UPDATE run SET status = 'weird' WHERE id = 3;")
    before, schema = _dump(path), _schema(path)
    with pytest.raises(BemctlError, match=r"run\.status = 'weird'"):
        Store(path)
    assert _dump(path) == before and _schema(path) == schema


def test_downgrade_from_0007_drops_the_checks_and_keeps_rows(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    _make_store_at(path, "0006", _ROWS_0006)
    with Store(path):
        pass
    before = _dump(path)
    engine = sa.create_engine(f"sqlite:///{path}")  # foreign keys off: a plain connection
    with engine.begin() as conn:
        command.downgrade(alembic_config(conn), "0006")
    engine.dispose()
    assert _kept(before, _dump(path))
    assert not any("CHECK" in (sql or "") for sql in _schema(path).values())


def test_migration_checks_are_the_enums_and_the_models() -> None:
    """0007 spells its value lists out; they must be the store.states enums, and the models'
    CHECK constraints (what a metadata-created table would get) the same SQL."""
    script = ScriptDirectory.from_config(alembic_config())
    module = script.get_revision("0007").module
    enums = {
        ("batch", "status"): BatchStatus,
        ("job", "status"): JobStatus,
        ("run", "role"): Role,
        ("run", "status"): RunStatus,
        ("comparison", "verdict"): Verdict,
        ("gate_decision", "outcome"): GateOutcome,
    }
    assert {(t, c): v for t, c, v in module.CHECKS} == {
        key: tuple(s.value for s in enum) for key, enum in enums.items()
    }
    from_models = {
        (table.name, c.name): str(c.sqltext)
        for table in SQLModel.metadata.sorted_tables
        for c in table.constraints
        if isinstance(c, sa.CheckConstraint)
    }
    assert from_models == {(t, f"ck_{t}_{c}"): module.condition(c, v) for t, c, v in module.CHECKS}


def test_fresh_store_checks_match_a_metadata_created_one(tmp_path: Path) -> None:
    """A store built by the migrations and one built by `SQLModel.metadata.create_all`
    carry the same CHECK constraints (by name and SQL)."""
    with Store(tmp_path / "migrated.db"):
        pass
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'metadata.db'}")
    SQLModel.metadata.create_all(engine)
    engine.dispose()

    def checks(path: Path) -> dict[tuple[str, str], str]:
        engine = sa.create_engine(f"sqlite:///{path}")
        try:
            inspector = sa.inspect(engine)
            return {
                (t, c["name"]): c["sqltext"]
                for t in inspector.get_table_names()
                for c in inspector.get_check_constraints(t)
            }
        finally:
            engine.dispose()

    migrated = checks(tmp_path / "migrated.db")
    assert migrated == checks(tmp_path / "metadata.db")
    assert len(migrated) == 6


# -- 0009: the stream tables ----------------------------------------------------------------


def test_0008_store_gains_empty_stream_tables_and_loses_them_on_downgrade(
    tmp_path: Path,
) -> None:
    path = tmp_path / "old.db"
    _make_store_at(path, "0008", _ROWS_0006)
    before = _dump(path)
    with Store(path) as store:
        assert queries.get_run(store, 2) is not None
        assert stream.stream_points(store, 2) == [] and stream.stream_events(store, 2) == []
        stream.record_stream(store, 2, [stream.PointRow(0, "a", 0.5, 0.4, 0.5, "deployed")], [])
    assert _kept(before, _dump(path))
    engine = sa.create_engine(f"sqlite:///{path}")
    with engine.begin() as conn:
        command.downgrade(alembic_config(conn), "0008")
    engine.dispose()
    assert _kept(before, _dump(path))
    assert not {name for _, name in _schema(path)} & {"stream_point", "stream_event"}
