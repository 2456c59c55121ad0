"""What ``systems check`` reports of a table: whether an index serves the lookup, and how many rows it has."""

from __future__ import annotations

import warnings
from typing import Any

from sqlalchemy import (
    Connection,
    Table,
    func,
    select,
    text,
)

from dsr_mailbot.store.database import is_mysql


def _indexes(inspector: Any, table: Table) -> list[Any]:
    with warnings.catch_warnings():  # an index on lower(EMAIL), which reflection cannot show: read by hand below
        warnings.filterwarnings("ignore", "Skipped unsupported reflection of expression-based index")
        return list(inspector.get_indexes(table.name))


def indexed(inspector: Any, conn: Connection, table: Table, column: str, folds_case: bool) -> bool:
    """Does an index serve the lookup: on the column itself (MySQL, _ci), else on lower(column)?"""
    if folds_case:
        indexes = list(_indexes(inspector, table))
        plain = [i for i in indexes if i.get("column_names") and i["column_names"][0] == column]
        pk = inspector.get_pk_constraint(table.name).get("constrained_columns") or []
        unique = inspector.get_unique_constraints(table.name)
        return bool(plain) or pk[:1] == [column] or any(u["column_names"][:1] == [column] for u in unique)
    if conn.dialect.name == "sqlite":
        rows = conn.execute(text("SELECT sql FROM sqlite_master WHERE type = 'index' AND tbl_name = :t"),
                            {"t": table.name}).scalars().all()
        return any(sql and "lower(" in sql.lower() and column.lower() in sql.lower() for sql in rows)
    for index in _indexes(inspector, table):
        expressions = index.get("expressions") or []
        if expressions and "lower(" in str(expressions[0]).lower() and column.lower() in str(expressions[0]).lower():
            return True
    return False


def unique(inspector: Any, table: Table, column: str) -> bool:
    if [c.name for c in table.primary_key.columns] == [column]:
        return True
    return any(u.get("column_names") == [column] for u in inspector.get_unique_constraints(table.name)) or any(
        i.get("unique") and i.get("column_names") == [column] for i in _indexes(inspector, table))


def row_count(conn: Connection, table: Table) -> tuple[int | None, bool]:
    """Rows in the table: the planner's estimate where counting could be slow, else an exact count."""
    dialect = conn.dialect.name
    if dialect == "postgresql":
        estimate = conn.execute(text("SELECT reltuples::bigint FROM pg_class WHERE oid = to_regclass(:t)"),
                                {"t": table.name}).scalar()
        if estimate is not None and estimate >= 0:
            return int(estimate), True
    elif is_mysql(dialect):
        estimate = conn.execute(text("SELECT TABLE_ROWS FROM information_schema.TABLES WHERE TABLE_SCHEMA = "
                                     "DATABASE() AND TABLE_NAME = :t"), {"t": table.name}).scalar()
        if estimate is not None:
            return int(estimate), True
    return int(conn.execute(select(func.count()).select_from(table)).scalar_one()), False
