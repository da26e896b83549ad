"""Storage of the Tinybird emulator: data sources and their quarantine in an embedded ClickHouse.

chdb allows one session per process, so every store in the process shares it (behind one lock)
and keeps its tables in a database of its own. chdb is imported here, lazily: it is an optional
extra. Ingestion follows the Events API: each NDJSON line is parsed and its columns are extracted
by jsonpath; a line that is not JSON, a value that does not fit its column, or a row ClickHouse
rejects goes to `<name>_quarantine` with the error and the column, and the other rows are stored.

Each data source is a MergeTree (`<name>__stored`, created from the datafile) behind a Buffer
table named like the data source. Appends of ~100 rows, many a second, would otherwise make
ClickHouse merge small parts of JSON columns all the time (most of a core); the Buffer groups
them into larger parts while every query still sees every acknowledged row.
"""

from __future__ import annotations

import itertools
import json
import re
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from backfill.sandbox.jsonpaths import MISSING, JsonPath, PathMismatch
from backfill.tinybird.datafile import Column, Datafile

_INSERT_SETTINGS = (
    "date_time_input_format='best_effort', input_format_parallel_parsing=0, "
    "max_threads=1, max_insert_threads=1"
)
_ERROR_KEY = re.compile(r"while reading the value of key ([^)\s]+)\)")
_ERROR_ROW = re.compile(r"\(at row (\d+)\)")
_ERROR_PREFIX = re.compile(r"^Code: \d+\. DB::Exception: ")
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_STORED_SUFFIX = "__stored"
# Compact parts are cheaper to write and merge at this scale; they change no query result.
_STORAGE_SETTINGS = "min_bytes_for_wide_part = 1000000000, min_rows_for_wide_part = 100000000"
# Flush to the MergeTree when 1 s and 10k rows have passed, or 5 s, or 200k rows.
_BUFFER_ENGINE = "Buffer({database}, {stored}, 1, 1, 5, 10000, 200000, 10000000, 100000000)"
_store_numbers = itertools.count(1)


class StoreError(RuntimeError):
    """A query or statement failed in ClickHouse; the message is ClickHouse's."""


class _SharedSession:
    """The process's one chdb session, shared by every store, serialised by a lock."""

    _lock = threading.Lock()
    _instance: _SharedSession | None = None

    def __init__(self, path: Path | None) -> None:
        from chdb import session as chdb_session  # optional extra, heavy: import on first use

        self.path = path
        open_session: Any = chdb_session.Session
        self._session: Any = open_session(str(path) if path else ":memory:")
        self._query_lock = threading.Lock()
        self._database: str | None = None
        self.users = 0

    @classmethod
    def acquire(cls, path: Path | None) -> _SharedSession:
        with cls._lock:
            instance = cls._instance
            if instance is not None and instance.path != path:
                if instance.users:
                    raise StoreError(
                        "chdb allows one session per process: a sandbox using "
                        f"{instance.path or 'memory'} is already running here; close it first"
                    )
                instance.close()
                instance = None
            if instance is None:
                instance = cls._instance = _SharedSession(path)
            instance.users += 1
            return instance

    def release(self) -> None:
        with _SharedSession._lock:
            self.users -= 1
            # An in-memory session stays open for the next sandbox of this process (opening one
            # costs a third of a second); a session on disk is closed to release its directory.
            if self.users == 0 and self.path is not None:
                self.close()
                _SharedSession._instance = None

    def close(self) -> None:
        with self._query_lock:
            self._session.close()

    def run(
        self,
        sql: str,
        fmt: str = "CSV",
        database: str | None = None,
        first: Sequence[str] = (),
    ) -> bytes:
        """Run ``sql`` (after the ``first`` statements, with no other statement in between)."""
        return self.run_all([*first, sql], fmt, database)[-1]

    def run_all(
        self, statements: Sequence[str], fmt: str = "CSV", database: str | None = None
    ) -> list[bytes]:
        """Run the statements in order, with no other statement in between; their answers."""
        from chdb import ChdbError

        with self._query_lock:
            try:
                if database is not None and database != self._database:
                    self._session.query(f"USE `{database}`")
                    self._database = database
                results = [self._session.query(statement, fmt) for statement in statements]
            # chdb raises chdb.ChdbError or chdb._exceptions.ChdbError (a RuntimeError).
            except (ChdbError, RuntimeError) as error:
                raise StoreError(str(error).strip()) from None
            return [result.bytes() for result in results]


@dataclass(frozen=True)
class AppendResult:
    successful_rows: int
    quarantined_rows: int


@dataclass(frozen=True)
class _Extractor:
    column: Column
    path: JsonPath
    shape: str
    """`array`, `json` or `any`: the value shapes checked before ClickHouse sees them."""


class Datasource:
    def __init__(self, name: str, datafile: Datafile) -> None:
        self.name = name
        self.datafile = datafile
        self.created_at = datetime.now(UTC)
        self.updated_at = self.created_at
        """When rows last came in (Tinybird's `updated_at`), else when it was created."""
        self.extractors = tuple(
            _Extractor(column, JsonPath(column.jsonpath), _shape(column.type))
            for column in datafile.columns
            if column.jsonpath
        )

    @property
    def quarantine(self) -> str:
        return f"{self.name}_quarantine"


def _shape(column_type: str) -> str:
    bare = re.sub(r"^(?:Nullable|LowCardinality)\((.*)\)$", r"\1", column_type)
    if bare.startswith("Array("):
        return "array"
    if bare.startswith(("JSON", "Object(")):
        return "json"
    return "any"


@dataclass
class _Row:
    line: bytes | None
    values: dict[str, Any]
    errors: list[tuple[str, str]]


class TinybirdStore:
    def __init__(self, data_dir: Path | None = None) -> None:
        self._chdb = _SharedSession.acquire(data_dir)
        # A persistent store reopens its tables; in-memory ones get a database each.
        self.database = "sandbox" if data_dir else f"sandbox_{next(_store_numbers)}"
        self._datasources: dict[str, Datasource] = {}
        self._lock = threading.Lock()
        self._received: dict[str, list[bytes]] = {}
        self.record_raw = False
        self._chdb.run(f"CREATE DATABASE IF NOT EXISTS `{self.database}`")

    def close(self) -> None:
        if self._chdb.path is None:
            self._chdb.run(f"DROP DATABASE IF EXISTS `{self.database}`")
        else:
            self._flush_buffers()  # a Buffer lives in memory: write it out before leaving
        self._chdb.release()

    # -- data sources -------------------------------------------------------------------------
    def create_datasource(self, name: str, datafile: Datafile, replace: bool = False) -> Datasource:
        if not _NAME.match(name):
            raise ValueError(f"invalid data source name {name!r}")
        datasource = Datasource(name, datafile)
        with self._lock:
            for table in (name, datasource.quarantine):
                if replace:
                    self._execute(f"DROP TABLE IF EXISTS {self._table(table)}")
                    self._execute(f"DROP TABLE IF EXISTS {self._table(table + _STORED_SUFFIX)}")
            self._execute(
                datafile.create_table_sql(self._table(name + _STORED_SUFFIX), _STORAGE_SETTINGS)
            )
            self._execute(
                datafile.create_quarantine_sql(
                    self._table(datasource.quarantine + _STORED_SUFFIX), _STORAGE_SETTINGS
                )
            )
            for table in (name, datasource.quarantine):
                self._create_buffer(table)
            self._datasources[name] = datasource
        return datasource

    def _create_buffer(self, table: str) -> None:
        engine = _BUFFER_ENGINE.format(database=self.database, stored=table + _STORED_SUFFIX)
        stored = self._table(table + _STORED_SUFFIX)
        self._execute(
            f"CREATE TABLE IF NOT EXISTS {self._table(table)} AS {stored} ENGINE = {engine}"
        )

    def _flush_buffers(self) -> None:
        for statement in self._flushes():
            self._execute(statement)

    def datasource(self, name: str) -> Datasource | None:
        return self._datasources.get(name)

    def names(self) -> list[str]:
        return list(self._datasources)

    def row_count(self, table: str) -> int:
        answer = self._chdb.run(
            f"SELECT count() FROM {self._table(table)}", first=self._flushes((table,))
        )
        return int(answer.strip() or 0)

    def statistics(self, table: str) -> tuple[int, int | None]:
        """Rows (every acknowledged one) and bytes on disk, Tinybird's `statistics`."""
        stored = _string_literal(table + _STORED_SUFFIX)
        answer = self._chdb.run(
            f"SELECT count(), (SELECT any(total_bytes) FROM system.tables WHERE database = "
            f"{_string_literal(self.database)} AND name = {stored}) FROM {self._table(table)}",
            first=self._flushes((table,)),
        )
        rows, _, size = answer.decode().strip().partition(",")
        return int(rows or 0), int(size) if size.isdigit() else None

    def truncate(self) -> None:
        # A Buffer cannot be truncated: flush it, then empty the table behind it.
        self._flush_buffers()
        for datasource in list(self._datasources.values()):
            for table in (datasource.name, datasource.quarantine):
                self._execute(f"TRUNCATE TABLE IF EXISTS {self._table(table + _STORED_SUFFIX)}")
        with self._lock:
            self._received.clear()

    def delete_rows(
        self,
        name: str,
        from_date: datetime | None = None,
        until_date: datetime | None = None,
        log_ids: Sequence[str] = (),
    ) -> int:
        """Delete the rows dated in [from_date, until_date) and those with these log_ids.

        For a test that needs a data source with holes. The Buffer in front of the table is
        flushed first, in the same hold of the session, so rows acknowledged before the call
        are deleted too and rows appended after it are not.
        """
        datasource = self._require(name)
        columns = {column.name for column in datasource.datafile.columns}
        conditions = []
        if from_date is not None or until_date is not None:
            if "date" not in columns:
                raise ValueError(f"{name} has no `date` column to delete a date range by")
            bounds = [f"date >= {_datetime_literal(from_date)}"] if from_date else []
            bounds += [f"date < {_datetime_literal(until_date)}"] if until_date else []
            conditions.append("(" + " AND ".join(bounds) + ")")
        if log_ids:
            if "log_id" not in columns:
                raise ValueError(f"{name} has no `log_id` column to delete by")
            listed = ", ".join(_string_literal(log_id) for log_id in log_ids)
            conditions.append(f"log_id IN ({listed})")
        if not conditions:
            raise ValueError("name a date range (from_date, until_date) or log_ids to delete")
        where = " OR ".join(conditions)
        stored = self._table(name + _STORED_SUFFIX)
        answers = self._chdb.run_all(
            [
                *self._flushes(),
                f"SELECT count() FROM {stored} WHERE {where}",
                f"DELETE FROM {stored} WHERE {where}",
            ]
        )
        return int(answers[-2].strip() or 0)

    def received(self, name: str) -> list[bytes]:
        with self._lock:
            return list(self._received.get(name, ()))

    # -- queries ------------------------------------------------------------------------------
    def query(self, sql: str, fmt: str) -> bytes:
        # A read of a Buffer table racing its background flush can miss the rows being moved
        # (seen: a query answering no rows at all). Flush every buffer first, in the same hold
        # of the session (no insert can slip in), so the query reads the MergeTrees alone, as
        # Tinybird's answers include every acknowledged row.
        # Only the buffers of the tables the query names: with many data sources, flushing them
        # all before every query made each query's cost grow with their number.
        named = [table for table in self._tables() if re.search(rf"\b{table}\b", sql)]
        return self._chdb.run(sql, fmt, database=self.database, first=self._flushes(named))

    def _tables(self) -> list[str]:
        return [
            table
            for datasource in list(self._datasources.values())
            for table in (datasource.name, datasource.quarantine)
        ]

    def _flushes(self, tables: Iterable[str] | None = None) -> list[str]:
        """OPTIMIZE statements that write `tables`' buffers (default: every one) to disk."""
        return [
            f"OPTIMIZE TABLE {self._table(table)}"
            for table in (self._tables() if tables is None else tables)
        ]

    # -- ingestion ----------------------------------------------------------------------------
    def append_lines(self, name: str, lines: Sequence[bytes], import_id: str) -> AppendResult:
        """Events API ingestion of NDJSON lines (blank lines are skipped)."""
        datasource = self._require(name)
        rows: list[_Row] = []
        kept: list[bytes] = []
        for line in lines:
            if not line.strip():
                continue
            kept.append(line)
            try:
                document = json.loads(line)
            except ValueError as error:
                rows.append(_Row(line, {}, [("", f"Cannot parse JSON: {error}")]))
                continue
            rows.append(_extract(datasource, document, line))
        result = self._store(datasource, rows, import_id)
        if self.record_raw:
            with self._lock:
                self._received.setdefault(name, []).extend(kept)
        return result

    def append_documents(
        self, name: str, documents: Iterable[dict[str, Any]], import_id: str
    ) -> AppendResult:
        """Ingestion of already-parsed envelopes (the simulated Log Stream)."""
        datasource = self._require(name)
        rows = [_extract(datasource, document, None) for document in documents]
        return self._store(datasource, rows, import_id)

    def _require(self, name: str) -> Datasource:
        datasource = self._datasources.get(name)
        if datasource is None:
            raise KeyError(name)
        return datasource

    def _store(self, datasource: Datasource, rows: list[_Row], import_id: str) -> AppendResult:
        fitting = [row for row in rows if not row.errors]
        rejected = [row for row in rows if row.errors]
        rejected += self._insert_isolating(datasource.name, fitting)
        if rejected:
            self._insert_quarantine(datasource, rejected, import_id)
        if rows:
            datasource.updated_at = datetime.now(UTC)
        return AppendResult(len(rows) - len(rejected), len(rejected))

    def _insert_isolating(self, table: str, rows: list[_Row]) -> list[_Row]:
        """Insert the rows; ClickHouse rejects a whole INSERT for one bad row, so drop the row it
        names (or bisect when it names none) and retry. Returns the rejected rows."""
        rejected: list[_Row] = []
        pending = [(rows, [json.dumps(row.values, ensure_ascii=False) for row in rows])]
        while pending:
            batch, encoded = pending.pop()
            if not batch:
                continue
            try:
                self._insert(table, encoded)
                continue
            except StoreError as error:
                message = str(error)
            culprit = _ERROR_ROW.search(message)
            if len(batch) == 1 or culprit:
                position = int(culprit.group(1)) - 1 if culprit else 0
                position = min(max(position, 0), len(batch) - 1)
                bad = batch[position]
                bad.errors.append(_column_error(message))
                rejected.append(bad)
                pending.append(
                    (
                        batch[:position] + batch[position + 1 :],
                        encoded[:position] + encoded[position + 1 :],
                    )
                )
            else:
                middle = len(batch) // 2
                pending.append((batch[middle:], encoded[middle:]))
                pending.append((batch[:middle], encoded[:middle]))
        return rejected

    def _insert(self, table: str, encoded_rows: list[str]) -> None:
        body = "\n".join(encoded_rows)
        statement = f"INSERT INTO {self._table(table)} SETTINGS {_INSERT_SETTINGS}"
        self._chdb.run(f"{statement} FORMAT JSONEachRow\n{body}")

    def _insert_quarantine(self, datasource: Datasource, rows: list[_Row], import_id: str) -> None:
        inserted = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S")
        encoded = []
        for row in rows:
            values: dict[str, Any] = {
                name: value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
                for name, value in row.values.items()
                if value is not None
            }
            values["c__error_column"] = [column for column, _ in row.errors]
            values["c__error"] = [message for _, message in row.errors]
            values["c__import_id"] = import_id
            values["insertion_date"] = inserted
            encoded.append(json.dumps(values, ensure_ascii=False))
        self._insert(datasource.quarantine, encoded)

    def _execute(self, sql: str) -> None:
        self._chdb.run(sql)

    def _table(self, name: str) -> str:
        return f"`{self.database}`.`{name}`"


def _extract(datasource: Datasource, document: object, line: bytes | None) -> _Row:
    row = _Row(line, {}, [])
    if not isinstance(document, dict):
        row.errors.append(("", "Cannot parse input: expected a JSON object"))
        return row
    for extractor in datasource.extractors:
        name = extractor.column.name
        try:
            value = extractor.path.extract(document)
        except PathMismatch as mismatch:
            row.values[name] = _found(extractor.path, document)
            row.errors.append((name, _misfit(str(mismatch), name)))
            continue
        if value is MISSING:
            continue
        row.values[name] = value
        if value is None:
            continue
        if extractor.shape == "array" and not isinstance(value, list):
            row.errors.append((name, _misfit("Array does not start with '[' character", name)))
        elif extractor.shape == "json" and not isinstance(value, dict):
            row.errors.append((name, _misfit("JSON object should start with '{'", name)))
    return row


def _datetime_literal(moment: datetime) -> str:
    utc = moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]
    return f"toDateTime64('{utc}', 3, 'UTC')"


def _string_literal(text: str) -> str:
    return "'" + str(text).replace("\\", "\\\\").replace("'", "\\'") + "'"


def _misfit(problem: str, column: str) -> str:
    """Worded like ClickHouse's own rejection, so both kinds of quarantine rows read alike."""
    return f"{problem}: (while reading the value of key {column})"


def _found(path: JsonPath, document: object) -> object:
    """The value a `[:]` path stopped at, for the quarantine row."""
    head = path.text.split("[:]", 1)[0]
    value = JsonPath(head).extract(document)
    return None if value is MISSING else value


def _column_error(message: str) -> tuple[str, str]:
    first_line = message.splitlines()[0] if message else "insert failed"
    cleaned = _ERROR_ROW.sub("", _ERROR_PREFIX.sub("", first_line)).rstrip(": ")
    key = _ERROR_KEY.search(message)
    return (key.group(1) if key else "", cleaned)
