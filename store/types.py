"""Column types shared by the store's tables.

SQLite has no timezone-aware timestamp type: SQLAlchemy's DateTime silently drops the
offset on write and returns naive values on read. `UTCDateTime` makes the contract
explicit so every timestamp that leaves the store is an aware UTC datetime.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy.types import DateTime, TypeDecorator


def utcnow() -> datetime:
    """Current time as an aware UTC datetime (the only kind the store accepts)."""
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Stores aware datetimes as naive UTC text and hands them back tagged as UTC.

    Naive datetimes are refused rather than guessed at: a local wall-clock time stored as
    if it were UTC would make run durations and "newest first" orderings quietly wrong.
    """

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"naive datetime {value!r}: the store only accepts aware datetimes")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC)
