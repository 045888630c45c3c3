"""Bulk inserts without the ORM, for the hot paths (feed imports, inventory ingest): building thousands of
model instances cost more than the insert itself. COPY on PostgreSQL, executemany on SQLite."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from django.db import connection


def db_datetime(value: datetime) -> object:
    """`value` as the database backend stores it (SQLite keeps naive UTC text; PostgreSQL takes it as is)."""
    return connection.ops.adapt_datetimefield_value(value)


def json_value(value: object) -> object:
    """A JSON column's value for a raw statement: Jsonb on PostgreSQL, text on SQLite."""
    if value is None:
        return None
    if connection.vendor == "postgresql":
        from psycopg.types.json import Jsonb

        return Jsonb(value)
    import json

    return json.dumps(value)


def insert_rows(table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    """INSERT `rows` into `table`; `table` and `columns` are constants of the caller, never data."""
    if not rows:
        return
    names = ", ".join(columns)
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            with cursor.cursor.copy(f"COPY {table} ({names}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
        else:
            marks = ", ".join(["%s"] * len(columns))
            cursor.executemany(f"INSERT INTO {table} ({names}) VALUES ({marks})", rows)  # noqa: S608 (constants)


def update_rows(table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    """UPDATE `table` SET columns... WHERE id = the last value of each row (Django's bulk_update builds one
    CASE per column and row, which cost more than the writes). `table` and `columns` are the caller's constants."""
    if not rows:
        return
    assignments = ", ".join(f"{connection.ops.quote_name(c)} = %s" for c in columns)
    with connection.cursor() as cursor:
        cursor.executemany(f"UPDATE {table} SET {assignments} WHERE id = %s", rows)  # noqa: S608 (constants)
