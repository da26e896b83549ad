"""What the Data Sources API tells of data sources: `GET /v0/datasources` (the list) and
`GET /v0/datasources/<name>` (one), shaped as Tinybird answers them.

Settled from the API reference (https://www.tinybird.co/docs/api-reference/datasource-api),
whose text is the docstrings of Tinybird's own handlers for these paths, and from those handlers:
- the list is `{"datasources": [...]}`, holding only the data sources the token can read (an
  admin token sees all; one that may only append sees none), each item with its `columns` at the
  top level (`name`, `type`, `codec`, `default_value`, `jsonpath`, `nullable`,
  `normalized_name`), `engine` as `{engine, engine_sorting_key, engine_partition_key,
  engine_primary_key}`, `statistics` as `{bytes, row_count}`; `attrs=a,b` keeps those
  attributes only. `new_columns_detected` (`{}`) and `quarantine_rows` (`0`) are filled in only
  when `attrs` asks for them, as Tinybird's handler does;
- one data source has the same base attributes (`id`, `name`, `type`, `used_by`, the dates ...)
  but no top-level `columns`: they are under `schema: {"columns": [...], "sql_schema": "..."}`,
  beside `engine` as the table's details (`engine`, `sorting_key`, `partition_key`,
  `primary_key`: the names Tinybird's TypeScript SDK reads there, where it reads
  `engine_sorting_key` ... in a list item), `statistics`, `indexes`, and
  `new_columns_detected` as a boolean. `statistics` are Tinybird's estimates, "updated whenever
  data is appended"; here they are exact.

Not known, and approximated: the exact text of `sql_schema` (here the columns as a datafile's
SCHEMA writes them, joined by ", "), whether one data source's `engine` holds more (here also
`ttl`), what `cluster`, `replicated` and `version` hold on a given deployment, and how `attrs`
treats attributes an answer does not hold.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Any

from backfill.sandbox.tinybird_store import Datasource
from backfill.tinybird.datafile import Column, Datafile

Statistics = tuple[int, int | None]
"""Rows and bytes of a data source."""


def listed(
    datasource: Datasource, statistics: Statistics, attrs: list[str] | None, quarantined: int
) -> dict[str, Any]:
    """One item of `GET /v0/datasources`; `quarantined` counts only when `attrs` asks for it."""
    datafile = datasource.datafile
    item: dict[str, Any] = {
        **_common(datasource),
        "engine": {
            "engine": datafile.engine,
            "engine_sorting_key": datafile.sorting_key or "",
            "engine_partition_key": datafile.partition_key or "",
            "engine_primary_key": datafile.sorting_key or "",
        },
        "columns": _columns(datafile),
        "statistics": _statistics(statistics),
    }
    if attrs is None:
        return {**item, "new_columns_detected": {}, "quarantine_rows": 0}
    kept = {key: value for key, value in item.items() if key in attrs}
    kept["new_columns_detected"] = False if "new_columns_detected" in attrs else {}
    kept["quarantine_rows"] = quarantined if "quarantine_rows" in attrs else 0
    return kept


def described(datasource: Datasource, statistics: Statistics) -> dict[str, Any]:
    """`GET /v0/datasources/<name>`."""
    datafile = datasource.datafile
    columns = _columns(datafile)
    return {
        **_common(datasource),
        "engine": {
            "engine": datafile.engine,
            "partition_key": datafile.partition_key,
            "sorting_key": datafile.sorting_key,
            "primary_key": datafile.sorting_key,
            "ttl": datafile.ttl,
        },
        "statistics": _statistics(statistics),
        "indexes": [],
        "schema": {"columns": columns, "sql_schema": _sql_schema(datafile)},
        "new_columns_detected": False,
    }


def _common(datasource: Datasource) -> dict[str, Any]:
    return {
        "id": "t_" + hashlib.sha256(datasource.name.encode()).hexdigest()[:32],
        "name": datasource.name,
        "cluster": "tinybird",
        "tags": {},
        "created_at": _timestamp(datasource.created_at),
        "updated_at": _timestamp(datasource.updated_at),
        "replicated": False,
        "version": 0,
        "project": None,
        "headers": {},
        "shared_with": [],
        "description": "",
        "used_by": [],
        # The Events API creates NDJSON data sources (`csv`, `ndjson`, `parquet`).
        "type": "ndjson",
    }


def _columns(datafile: Datafile) -> list[dict[str, Any]]:
    return [_column(column) for column in datafile.columns]


def _column(column: Column) -> dict[str, Any]:
    return {
        "name": column.name,
        "type": column.type,
        "codec": None,
        "default_value": column.default,
        "jsonpath": column.jsonpath,
        "nullable": column.nullable,
        "normalized_name": column.name,
    }


def _sql_schema(datafile: Datafile) -> str:
    parts = []
    for column in datafile.columns:
        text = f"`{column.name}` {column.type}"
        if column.jsonpath:
            text += f" `json:{column.jsonpath}`"
        if column.default:
            text += f" DEFAULT {column.default}"
        parts.append(text)
    return ", ".join(parts)


def _statistics(statistics: Statistics) -> dict[str, int | None]:
    rows, size = statistics
    return {"bytes": size, "row_count": rows}


def _timestamp(moment: datetime) -> str:
    """As Tinybird writes them: `2019-11-13 13:53:05.340975` (UTC)."""
    return moment.strftime("%Y-%m-%d %H:%M:%S.%f")
