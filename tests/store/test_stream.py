"""An online run's stream timeline: written batch by batch, read back in stream order, one
live batch's points and events durable together."""

from __future__ import annotations

import pytest
from sqlalchemy.exc import IntegrityError
from sqlmodel import delete

from store.db import Store
from store.models import Run
from store.stream import EventRow, PointRow, record_stream, stream_events, stream_points

from .conftest import Seed


def _point(batch: int, serving: float = 0.5, source: str = "deployed") -> PointRow:
    return PointRow(batch, "a" if batch < 3 else "b", serving, serving - 0.1, 0.5, source)


def test_points_and_events_read_back_in_stream_order(store: Store, seed: Seed) -> None:
    _, _, run = seed()
    assert run.id is not None
    # as the stream advances: one call per live batch (the last one out of order inside)
    record_stream(store, run.id, [_point(0), _point(1)], [])
    record_stream(
        store,
        run.id,
        [_point(3, 0.7, "shadow@2"), _point(2, 0.6)],
        [
            EventRow(1, 2, "promotion", "shadow promoted: +0.12 over deployed"),
            EventRow(0, 2, "canary", "canary passed at batch 2"),
        ],
    )
    record_stream(store, run.id, [], [EventRow(2, 3, "drift_alarm", "phase change")])

    assert stream_points(store, run.id) == [
        _point(0),
        _point(1),
        _point(2, 0.6),
        _point(3, 0.7, "shadow@2"),
    ]
    assert [(e.seq, e.batch, e.kind) for e in stream_events(store, run.id)] == [
        (0, 2, "canary"),
        (1, 2, "promotion"),
        (2, 3, "drift_alarm"),
    ]


def test_a_run_without_a_stream_reads_empty(store: Store, seed: Seed) -> None:
    _, baseline, variant = seed()
    assert baseline.id is not None and variant.id is not None
    record_stream(store, variant.id, [_point(0)], [EventRow(0, 0, "rollback", "r")])
    record_stream(store, baseline.id, [], [])  # nothing to write: no transaction at all
    assert stream_points(store, baseline.id) == []
    assert stream_events(store, baseline.id) == []


def test_a_refused_batch_writes_neither_its_points_nor_its_events(store: Store, seed: Seed) -> None:
    _, _, run = seed()
    assert run.id is not None
    record_stream(store, run.id, [_point(0)], [EventRow(0, 0, "canary", "first")])
    with pytest.raises(IntegrityError):
        # a new point with an event that repeats seq 0: the whole batch is refused
        record_stream(store, run.id, [_point(1)], [EventRow(0, 1, "promotion", "again")])
    assert [p.batch for p in stream_points(store, run.id)] == [0]
    assert [e.detail for e in stream_events(store, run.id)] == ["first"]


def test_deleting_a_run_deletes_its_stream(store: Store, seed: Seed) -> None:
    _, _, run = seed()
    assert run.id is not None
    record_stream(store, run.id, [_point(0)], [EventRow(0, 0, "canary", "c")])
    with store.session() as session:
        session.exec(delete(Run).where(Run.id == run.id))
    assert stream_points(store, run.id) == [] and stream_events(store, run.id) == []
