"""Column types that behave the same on SQLite and PostgreSQL.

SQLite has no timestamp type: SQLAlchemy stores a string and hands back a *naive*
datetime, while PostgreSQL hands back an aware one in the session's time zone. Code that
compares run times must never see a mix of the two, so every timestamp column goes through
:class:`UTCDateTime`, which refuses naive input and always returns aware UTC.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, DateTime
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator, TypeEngine

__all__ = ["UTCDateTime", "ensure_utc", "json_document"]


def ensure_utc(value: datetime, *, name: str = "datetime") -> datetime:
    """Return ``value`` converted to UTC; raise ``ValueError`` if it is naive.

    A naive datetime has no defined instant (local time? UTC?), so storing one would
    silently shift run times by the host's offset. ``name`` labels the error message.
    """
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware, got naive {value.isoformat()}")
    return value.astimezone(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """A ``TIMESTAMP WITH TIME ZONE`` that stores and returns aware UTC datetimes.

    Binding converts to UTC first (so SQLite's text values sort chronologically);
    results are tagged or converted to UTC whatever the backend returned.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return ensure_utc(value)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            # SQLite keeps no offset; what we stored was UTC (see process_bind_param).
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


def json_document(*, nullable: bool = False) -> TypeEngine[Any]:
    """A JSON column: ``JSONB`` on PostgreSQL, JSON text elsewhere.

    With ``nullable`` a Python ``None`` is stored as SQL ``NULL`` rather than the JSON
    literal ``null``, so "no prediction" can be told apart with ``IS NULL``.
    """
    return JSON(none_as_null=nullable).with_variant(JSONB(none_as_null=nullable), "postgresql")
