"""The staging database: every log of the archive once, in the order it will be sent.

Archives overlap and repeat (a stream delivers at least once, exports overlap in time), and come
in any order, while each append must hold rows of one or two calendar months (TOO_MANY_PARTS).
Neither can be done in memory whatever the archive's size, so each row (the envelope already
serialized, its log_id, its month and date, its ``tenant_name``) goes into a SQLite database on
disk (the standard library's): the primary key on ``log_id`` keeps the first copy read and drops
the others; an index on ``(month, log_id)``, built once everything is in, gives the order rows
are sent in, a total order that is the same for the same sources, so a checkpoint is a position
in it (``Key``).

Why SQLite rather than sorted runs merged at the end: it is in the standard library, holds its
page cache to a fixed size (RSS stays flat whatever the archive's size), deduplicates on insert,
answers the few questions asked of the whole (tenants, date span, a log by id) without another
pass, and its inserts run in a thread that releases the GIL while the main one parses. What it
costs is measured in ``docs/import.md``.

The database is scratch: it lives in a private directory (0700, the file 0600: it holds
records), without a journal, and is rebuilt by every run. It never leaves the machine.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sqlite3
import tempfile
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

from backfill.errors import StateError

Key = tuple[str, str]  # (month, log_id): the order rows are sent in
Row = tuple[str, str, str, str | None, bytes]  # log_id, month, date, tenant_name, line
PREFIX = "staging-"
CACHE_KIB = 16 * 1024  # SQLite's page cache: the database's share of memory, whatever its size
IN_FLIGHT = 2  # chunks of rows queued for the writer thread


class Staging:
    """Rows in, once each; rows out, in order."""

    def __init__(self, folder: Path) -> None:
        try:
            self._open(folder)
        except (OSError, sqlite3.Error) as error:
            shutil.rmtree(folder, ignore_errors=True)
            raise unusable(folder, error) from None

    def _open(self, folder: Path) -> None:
        self.folder = folder
        self.path = folder / "staged.sqlite"
        handle = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        os.close(handle)
        self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        for pragma in (
            "journal_mode=OFF",  # scratch: a crash rebuilds it, so no journal to write
            "synchronous=OFF",
            f"cache_size=-{CACHE_KIB}",
            "temp_store=FILE",
            "locking_mode=EXCLUSIVE",
        ):
            self._db.execute(f"PRAGMA {pragma}")
        self._db.execute(
            "CREATE TABLE staged (log_id TEXT PRIMARY KEY, month TEXT NOT NULL, "
            "date TEXT NOT NULL, tenant TEXT, line BLOB NOT NULL)"
        )
        self._db.execute("BEGIN")
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="staging")
        self._queued: list[Future[None]] = []
        self.offered = 0  # rows given, copies included
        self._sealed = False

    @classmethod
    def scratch(cls) -> Staging:
        """A staging database in the system's temporary directory (a dry run: it holds no lock
        on a state file, so it must not touch what an import beside one is using)."""
        return cls(Path(tempfile.mkdtemp(prefix="auth0-backfill-dry-run-")))

    @classmethod
    def create(cls, beside: Path) -> Staging:
        """A new staging database in a private directory beside ``beside`` (the state file),
        after removing what a killed run left there."""
        parent = beside.parent if str(beside.parent) else Path(".")
        prefix = f".{beside.name}.{PREFIX}"
        try:
            parent.mkdir(parents=True, exist_ok=True)
            for stale in parent.glob(prefix + "*"):
                shutil.rmtree(stale, ignore_errors=True)  # the caller holds the state's lock
            folder = Path(tempfile.mkdtemp(prefix=prefix, dir=parent))
        except OSError as error:
            raise unusable(parent, error) from None
        return cls(folder)

    # -- in ---------------------------------------------------------------------------------

    def add(self, rows: list[Row]) -> None:
        """Queue rows for the writer thread (at most ``IN_FLIGHT`` chunks wait)."""
        if not rows:
            return
        self.offered += len(rows)
        while len(self._queued) >= IN_FLIGHT:
            self._wait(self._queued.pop(0))
        self._queued.append(self._writer.submit(self._insert, rows))

    def _wait(self, queued: Future[None]) -> None:
        try:
            queued.result()
        except (OSError, sqlite3.Error) as error:  # a full disk, most likely
            raise unusable(self.folder, error) from None

    def _insert(self, rows: list[Row]) -> None:
        self._db.executemany("INSERT OR IGNORE INTO staged VALUES (?, ?, ?, ?, ?)", rows)

    def seal(self) -> None:
        """Everything is in: commit, and build the order index."""
        for queued in self._queued:
            self._wait(queued)
        self._queued.clear()
        self._writer.shutdown()
        try:
            self._db.execute("COMMIT")
            self._db.execute("CREATE INDEX staged_order ON staged (month, log_id)")
        except sqlite3.Error as error:
            raise unusable(self.folder, error) from None
        self._sealed = True

    # -- questions of the whole ---------------------------------------------------------------

    def count(self) -> int:
        return int(self._db.execute("SELECT count(*) FROM staged").fetchone()[0])

    @property
    def copies(self) -> int:
        """Rows given that were already there: the archive's duplicates."""
        return self.offered - self.count()

    def tenants(self) -> dict[str | None, int]:
        rows = self._db.execute("SELECT tenant, count(*) FROM staged GROUP BY tenant")
        return {tenant: int(count) for tenant, count in rows}

    def span(self) -> tuple[str, str] | None:
        """The earliest and the latest date staged (canonical stamps)."""
        low, high = self._db.execute("SELECT min(date), max(date) FROM staged").fetchone()
        return (str(low), str(high)) if low is not None else None

    def count_after(self, key: list[str] | None) -> int:
        """Staged rows after a checkpoint's key."""
        if key is None:
            return self.count()
        found = self._db.execute(
            "SELECT count(*) FROM staged WHERE (month, log_id) > (?, ?)", tuple(key)
        ).fetchone()
        return int(found[0])

    def line_of(self, log_id: str) -> tuple[str, bytes] | None:
        """A staged log's date and envelope line."""
        found = self._db.execute(
            "SELECT date, line FROM staged WHERE log_id = ?", (log_id,)
        ).fetchone()
        return (str(found[0]), bytes(found[1])) if found else None

    # -- out --------------------------------------------------------------------------------

    def rows_after(self, key: Key | None, chunk: int = 2000) -> Iterator[list[Row]]:
        """Staged rows in send order after ``key`` (all when None), ``chunk`` at a time."""
        assert self._sealed
        if key is None:
            cursor = self._db.execute(
                "SELECT log_id, month, date, tenant, line FROM staged ORDER BY month, log_id"
            )
        else:
            cursor = self._db.execute(
                "SELECT log_id, month, date, tenant, line FROM staged "
                "WHERE (month, log_id) > (?, ?) ORDER BY month, log_id",
                key,
            )
        while True:
            rows = cursor.fetchmany(chunk)
            if not rows:
                return
            yield rows

    def close(self) -> None:
        """Close and delete it (its folder too)."""
        with contextlib.suppress(Exception):
            self._writer.shutdown(cancel_futures=True)
        with contextlib.suppress(sqlite3.Error):
            self._db.close()
        shutil.rmtree(self.folder, ignore_errors=True)


def unusable(folder: Path, error: BaseException) -> StateError:
    """The staging database cannot be written: a full disk, most likely (exit 5)."""
    reason = getattr(error, "strerror", None) or str(error)
    return StateError(
        f"The staging database in {folder} cannot be written: {reason}. Nothing more was sent.",
        hint="It needs about 1.4 times the archive's uncompressed size, beside the state file: "
        "free room there, or point --state at a disk that has it.",
    )
