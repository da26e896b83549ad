"""Tinybird `.datasource` files: the schema (columns, types, jsonpaths, defaults) and the engine.

Shared by ``check`` (does the target match the envelope?) and the sandbox (which creates the
table from it). ``auth0.datasource`` beside this module is the seed schema, shipped with the
package; a test keeps it identical to ``tinybird/datasources/auth0.datasource``.

Only the parts a data source needs to exist in ClickHouse are read: `SCHEMA >` and the `ENGINE*`
settings. Other sections (DESCRIPTION, TOKEN, INDEXES ...) are kept in the text but ignored.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources

_DIRECTIVE = re.compile(r"^(ENGINE[A-Z_]*)\s+(.+)$")
_SECTION = re.compile(r"^[A-Z_]+\s*>\s*$")


class DatafileError(ValueError):
    """The .datasource text cannot be understood."""


@dataclass(frozen=True)
class Column:
    name: str
    type: str
    jsonpath: str | None
    default: str | None

    @property
    def nullable(self) -> bool:
        return self.type.startswith("Nullable(")

    def sql(self) -> str:
        default = f" DEFAULT {self.default}" if self.default else ""
        return f"`{self.name}` {self.type}{default}"


@dataclass(frozen=True)
class Datafile:
    columns: tuple[Column, ...]
    engine: str
    partition_key: str | None
    sorting_key: str | None
    ttl: str | None
    settings: str | None
    text: str

    def column(self, name: str) -> Column | None:
        return next((column for column in self.columns if column.name == name), None)

    def create_table_sql(self, table: str, storage_settings: str = "") -> str:
        """`storage_settings` tune how the emulator stores parts; they change no query result."""
        columns = ",\n    ".join(column.sql() for column in self.columns)
        clauses = [f"ENGINE = {self.engine}"]
        if self.partition_key:
            clauses.append(f"PARTITION BY {self.partition_key}")
        clauses.append(f"ORDER BY ({self.sorting_key})" if self.sorting_key else "ORDER BY tuple()")
        if self.ttl:
            clauses.append(f"TTL {self.ttl}")
        settings = ", ".join(part for part in (storage_settings, self.settings or "") if part)
        if settings:
            clauses.append(f"SETTINGS {settings}")
        return f"CREATE TABLE IF NOT EXISTS {table} (\n    {columns}\n) " + " ".join(clauses)

    def create_quarantine_sql(self, table: str, storage_settings: str = "") -> str:
        # Tinybird's quarantine keeps every value as text, plus what went wrong and where.
        columns = [f"`{column.name}` Nullable(String)" for column in self.columns]
        columns += [
            "`c__error_column` Array(String)",
            "`c__error` Array(String)",
            "`c__import_id` Nullable(String)",
            "`insertion_date` DateTime",
        ]
        body = ",\n    ".join(columns)
        settings = f" SETTINGS {storage_settings}" if storage_settings else ""
        return (
            f"CREATE TABLE IF NOT EXISTS {table} (\n    {body}\n) "
            f"ENGINE = MergeTree ORDER BY insertion_date{settings}"
        )


def seed_datafile_text() -> str:
    """The Auth0 data source of Tinybird's Log Streams guide, verbatim."""
    return resources.files("backfill.tinybird").joinpath("auth0.datasource").read_text("utf-8")


def parse_datafile(text: str) -> Datafile:
    columns: list[Column] = []
    directives: dict[str, str] = {}
    in_schema = False
    for raw_line in text.splitlines():
        line = raw_line.strip()
        if not line or line.startswith("#"):
            continue
        if _SECTION.match(line):
            in_schema = line.startswith("SCHEMA")
            continue
        directive = _DIRECTIVE.match(line) if not raw_line[:1].isspace() else None
        if directive:
            in_schema = False
            directives[directive.group(1)] = _unquote(directive.group(2).strip())
            continue
        if in_schema:
            columns.append(_parse_column(line))
    if not columns:
        raise DatafileError("the datafile has no SCHEMA columns")
    engine = directives.get("ENGINE", "MergeTree")
    if "(" not in engine and "ENGINE_VER" in directives:
        engine = f"{engine}({directives['ENGINE_VER']})"
    return Datafile(
        columns=tuple(columns),
        engine=engine,
        partition_key=directives.get("ENGINE_PARTITION_KEY") or None,
        sorting_key=directives.get("ENGINE_SORTING_KEY") or None,
        ttl=directives.get("ENGINE_TTL") or None,
        settings=directives.get("ENGINE_SETTINGS") or None,
        text=text,
    )


def _unquote(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
        return value[1:-1]
    return value


def _parse_column(line: str) -> Column:
    """`` `name` Type `json:$.path` DEFAULT expr, `` (jsonpath and DEFAULT optional)."""
    rest = line.rstrip(",").strip()
    if rest.startswith("`"):
        end = rest.find("`", 1)
        if end < 0:
            raise DatafileError(f"unclosed column name in {line!r}")
        name, rest = rest[1:end], rest[end + 1 :].strip()
    else:
        name, _, rest = rest.partition(" ")
        rest = rest.strip()
    column_type, rest = _take_type(rest, line)
    jsonpath: str | None = None
    if rest.startswith("`json:"):
        end = rest.find("`", 1)
        if end < 0:
            raise DatafileError(f"unclosed jsonpath in {line!r}")
        jsonpath, rest = rest[len("`json:") : end], rest[end + 1 :].strip()
    default: str | None = None
    if rest.upper().startswith("DEFAULT "):
        default = rest[len("DEFAULT ") :].strip()
        codec_at = default.upper().find(" CODEC(")
        if codec_at >= 0:
            default = default[:codec_at].strip()
    elif rest and not rest.upper().startswith("CODEC("):
        raise DatafileError(f"cannot read column definition {line!r}")
    if not name or not column_type:
        raise DatafileError(f"cannot read column definition {line!r}")
    return Column(name, column_type, jsonpath, default)


def _take_type(text: str, line: str) -> tuple[str, str]:
    """Split a ClickHouse type (which may hold spaces inside parentheses) from what follows."""
    depth = 0
    for index, char in enumerate(text):
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
            if depth < 0:
                break
        elif char.isspace() and depth == 0:
            return text[:index], text[index:].strip()
    if depth != 0:
        raise DatafileError(f"unbalanced parentheses in {line!r}")
    return text, ""
