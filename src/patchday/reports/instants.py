"""Instants read in SQL exactly as Python reads them: epoch microseconds, UTC days and months, ISO 8601 text.

Reports stream hundreds of thousands of rows per period; converting each datetime column of each row to an
aware datetime costs more than the query. These expressions let the database hand back numbers and text
that equal what Python would compute from the datetime (SQLite keeps naive UTC text, "YYYY-MM-DD
HH:MM:SS[.ffffff]", as Django writes it; PostgreSQL keeps timestamptz).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any, Final

from django.db.models import BigIntegerField, CharField, DateField, Func


class EpochMicroseconds(Func):
    """A datetime column as whole microseconds since 1970-01-01 UTC, exact on both databases, so durations
    computed from it equal Python's `(later - earlier).total_seconds()` to the last bit, without converting
    each row to a datetime. SQLite keeps naive UTC text ("YYYY-MM-DD HH:MM:SS[.ffffff]"): whole seconds come
    from julianday() of the first 19 characters (rounded: julianday is a double), microseconds from the text."""

    arity = 1
    output_field = BigIntegerField()

    def as_sqlite(self, compiler: Any, connection: Any, **extra: Any) -> Any:
        template = (
            "(CAST(round((julianday(substr(%(expressions)s, 1, 19)) - 2440587.5) * 86400) AS INTEGER) * 1000000"
            " + CASE WHEN length(%(expressions)s) > 19 THEN CAST(substr(%(expressions)s, 21, 6) AS INTEGER)"
            " ELSE 0 END)"
        )
        return self.as_sql(compiler, connection, template=template, **extra)

    def as_postgresql(self, compiler: Any, connection: Any, **extra: Any) -> Any:
        template = "(EXTRACT(EPOCH FROM %(expressions)s) * 1000000)::bigint"  # numeric: exact
        return self.as_sql(compiler, connection, template=template, **extra)


class UtcMonth(Func):
    """A datetime column's UTC month as "YYYY-MM" (core.metrics.month_of)."""

    arity = 1
    output_field = CharField()

    def as_sqlite(self, compiler: Any, connection: Any, **extra: Any) -> Any:
        return self.as_sql(compiler, connection, template="substr(%(expressions)s, 1, 7)", **extra)

    def as_postgresql(self, compiler: Any, connection: Any, **extra: Any) -> Any:
        template = "to_char(%(expressions)s AT TIME ZONE 'UTC', 'YYYY-MM')"
        return self.as_sql(compiler, connection, template=template, **extra)


class UtcDay(Func):
    """A datetime column's UTC day: TruncDate(tzinfo=UTC) without SQLite's per-row Python function."""

    arity = 1
    output_field = DateField()

    def as_sqlite(self, compiler: Any, connection: Any, **extra: Any) -> Any:
        return self.as_sql(compiler, connection, template="substr(%(expressions)s, 1, 10)", **extra)

    def as_postgresql(self, compiler: Any, connection: Any, **extra: Any) -> Any:
        template = "(%(expressions)s AT TIME ZONE 'UTC')::date"
        return self.as_sql(compiler, connection, template=template, **extra)


_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)


def epoch_microseconds(at: datetime) -> int:
    """`at` as EpochMicroseconds gives it."""
    return (at - _EPOCH) // timedelta(microseconds=1)


def days_between(later_us: int, earlier_us: int) -> float:
    """Days between two EpochMicroseconds values: core.metrics' `(later - earlier).total_seconds() / 86400`."""
    return (later_us - earlier_us) / 1_000_000 / 86400


class IsoInstant(Func):
    """A datetime column as `datetime.isoformat()` writes an aware UTC instant: "YYYY-MM-DDTHH:MM:SS+00:00",
    with ".ffffff" before the offset when the microseconds are not zero; NULL stays NULL."""

    arity = 1
    output_field = CharField()

    def as_sqlite(self, compiler: Any, connection: Any, **extra: Any) -> Any:
        # Django writes str(naive UTC datetime): the same digits, microseconds only when not zero
        template = "(replace(%(expressions)s, ' ', 'T') || '+00:00')"
        return self.as_sql(compiler, connection, template=template, **extra)

    def as_postgresql(self, compiler: Any, connection: Any, **extra: Any) -> Any:
        template = (
            "(to_char(%(expressions)s AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS')"
            " || CASE WHEN mod(date_part('microseconds', %(expressions)s)::bigint, 1000000) = 0 THEN ''"
            " ELSE to_char(%(expressions)s AT TIME ZONE 'UTC', '.US') END || '+00:00')"
        )
        return self.as_sql(compiler, connection, template=template, **extra)
