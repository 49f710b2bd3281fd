"""An online run's stream timeline and events: written as the stream advances, read by the
console's run detail and the reports.

Points and events of one live batch are written in one transaction, so a reader never sees
an event whose batch has no point. A resumed stream (a retried job) writes the points and
events restored from its checkpoint into its new run first, in one transaction too.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlmodel import col, select

from store.db import Store
from store.models import StreamEventRow, StreamPoint


@dataclass(frozen=True)
class PointRow:
    batch: int
    phase: str
    serving: float
    shadow: float
    deployed: float
    serving_source: str


@dataclass(frozen=True)
class EventRow:
    seq: int
    batch: int
    kind: str
    detail: str


def record_stream(
    store: Store, run_id: int, points: Sequence[PointRow], events: Sequence[EventRow]
) -> None:
    if not points and not events:
        return
    with store.session() as session:
        session.add_all(StreamPoint(run_id=run_id, **vars(p)) for p in points)
        session.add_all(StreamEventRow(run_id=run_id, **vars(e)) for e in events)


def stream_points(store: Store, run_id: int) -> list[PointRow]:
    with store.read_session() as session:
        rows = session.exec(
            select(StreamPoint).where(StreamPoint.run_id == run_id).order_by(col(StreamPoint.batch))
        ).all()
        return [
            PointRow(r.batch, r.phase, r.serving, r.shadow, r.deployed, r.serving_source)
            for r in rows
        ]


def stream_events(store: Store, run_id: int) -> list[EventRow]:
    with store.read_session() as session:
        rows = session.exec(
            select(StreamEventRow)
            .where(StreamEventRow.run_id == run_id)
            .order_by(col(StreamEventRow.seq))
        ).all()
        return [EventRow(r.seq, r.batch, r.kind, r.detail) for r in rows]
