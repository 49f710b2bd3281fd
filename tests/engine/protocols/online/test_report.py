"""OL's own gates on hand-built stream records: each can fail."""

from __future__ import annotations

from engine.protocols.online.loop import (
    CanaryRow,
    LoopRecord,
    LoopState,
    StreamEvent,
    TimelinePoint,
)
from engine.protocols.online.report import alarms, unproven_served


def _state(sources: list[str], events: list[tuple[int, str]], passed: set[int]) -> LoopState:
    record = LoopRecord(
        timeline=[TimelinePoint(b, "p", 0.5, 0.5, 0.5, s) for b, s in enumerate(sources)],
        events=[StreamEvent(b, kind, "") for b, kind in events],
        canaries=[
            CanaryRow(b, 8, 0.1, 0.01, 8, 0.0, 0.01, b in passed, "deployed")
            for b, kind in events
            if kind == "canary"
        ],  # fmt: skip
    )
    return LoopState(weights={}, record=record)


def test_weights_served_without_a_passing_canary_are_found() -> None:
    ok = _state(["deployed", "deployed", "shadow@1", "shadow@1"],
                [(1, "canary"), (1, "promotion")], passed={1})  # fmt: skip
    assert unproven_served(ok) == []
    refused = _state(["deployed", "deployed", "shadow@1"],
                     [(1, "canary"), (1, "promotion")], passed=set())  # fmt: skip
    assert unproven_served(refused) == ["shadow@1"]
    never_promoted = _state(["deployed", "shadow@0"], [], passed=set())
    assert unproven_served(never_promoted) == ["shadow@0"]


def test_alarms_need_a_rollback_in_time_unless_the_deployed_adapter_served() -> None:
    sources = ["deployed", "deployed", "shadow@1", "shadow@1", "shadow@1", "shadow@1", "deployed"]
    in_time = _state(sources, [(0, "drift_alarm"), (3, "drift_alarm"), (4, "rollback")], set())
    assert alarms(in_time, within=2) == ([3], [], 1)
    late = _state(sources, [(2, "drift_alarm"), (5, "rollback")], set())
    assert alarms(late, within=2) == ([], [2], 0)
    assert alarms(late, within=3) == ([2], [], 0)
