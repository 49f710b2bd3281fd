"""A job's stored outcome decodes to the same statistics and reproduces the stored verdict."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlmodel import select

from engine.decision import decide
from engine.outcome_codec import decode_outcome, encode_outcome
from store.db import Store
from store.models import Comparison, Job, StatResult


def test_round_trip_and_decision_replay(project: Path, cli) -> None:
    assert cli("run", "v1_dynrank", "--quick").code == 0
    with Store(project / ".bemctl" / "bemctl.db", readonly=True) as store:
        with store.read_session() as session:
            [job] = session.exec(select(Job)).all()
            [comparison] = session.exec(select(Comparison)).all()
            stats = session.exec(select(StatResult)).all()
    outcome = decode_outcome(job.outcome_json)
    assert json.loads(encode_outcome(outcome)) == json.loads(job.outcome_json)
    assert outcome.metrics[0].stats.interval.n == 24  # nested dataclasses rebuilt
    assert isinstance(outcome.plan.seeds, tuple)
    decide([outcome])  # the same inputs give the same verdict, gates and adjusted p
    assert outcome.verdict == comparison.verdict
    assert [m.p_adjusted for m in outcome.metrics] == pytest.approx([s.p_adjusted for s in stats])
    assert job.comparison_id == comparison.id


def test_unknown_format_is_refused() -> None:
    with pytest.raises(ValueError, match="outcome format"):
        decode_outcome(json.dumps({"format": 99}))
