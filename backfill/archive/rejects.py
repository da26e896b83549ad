"""Items that are not JSON or not an Auth0 log: strict by default, as BigQuery's
``max_bad_records`` and ClickHouse's ``input_format_allow_errors_num`` are.

Without ``--max-rejects`` the first one stops the import before anything is sent (exit 9),
naming its source, line and item number, and why. With ``--max-rejects N`` up to N are set
aside, each written with its source, line, item number, reason and text to the rejects file
(NDJSON, 0600: it may hold personal data), and counted in the summary; one more stops the
import as above.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from backfill.errors import ConfigError, DataError, given_text
from backfill.state.file import open_private

TEXT_LIMIT = 64 * 1024  # characters of a rejected item kept in the rejects file


@dataclass(frozen=True)
class Where:
    source: str
    line: int
    item: int

    def __str__(self) -> str:
        return f"{given_text(self.source)}, line {self.line:,} (item {self.item:,})"


class Rejects:
    def __init__(self, path: Path, limit: int) -> None:
        self.path = path
        self.limit = limit
        self.count = 0
        self._file: BinaryIO | None = None

    def add(self, where: Where, reason: str, raw: bytes) -> None:
        """Set one aside, or stop when it is one too many."""
        self.count += 1
        if self.count > self.limit:
            raise self._stop(where, reason)
        text = raw.decode("utf-8", "replace")
        entry = {
            "source": where.source,
            "line": where.line,
            "item": where.item,
            "reason": reason,
            "text": text[:TEXT_LIMIT],
            "truncated": len(text) > TEXT_LIMIT,
        }
        self._open().write(json.dumps(entry, ensure_ascii=False).encode() + b"\n")

    def _stop(self, where: Where, reason: str) -> DataError:
        if self.limit == 0:
            head = f"{where}: {reason}."
            hint = (
                "Fix or remove it; or run the same command with --max-rejects N to set up to N "
                f"such items aside in {self.path} and go on."
            )
        else:
            head = (
                f"More than {self.limit:,} items are not Auth0 logs; the last: {where}: {reason}."
            )
            hint = (
                f"The first {self.limit:,} are in {self.path}. Fix the source, or raise "
                "--max-rejects."
            )
        return DataError(f"{head} The import stopped before sending anything more.", hint=hint)

    def _open(self) -> BinaryIO:
        if self._file is None:
            try:
                self._file = open_private(self.path)
            except OSError as error:
                raise ConfigError(
                    f"The rejects file {self.path} cannot be written: {error.strerror}.",
                    hint="Point --rejects at a writable place.",
                ) from None
        return self._file

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
