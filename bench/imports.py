"""The import's benchmark: ``auth0-backfill import`` of gzipped NDJSON archives into a sink that
acknowledges at once, at two archive sizes, so its throughput and its flat memory show.

    python -m bench.run --imports                        # 300,000 and 1,000,000 records
    python -m bench.run --imports --import-sizes 50000   # a quicker look

Method
- The archive: Management API records from the sandbox's generator (``Tenant.record``, about
  1.1 kB each as NDJSON, over a year), gzipped (level 6) in files of 100,000 records, with no
  suffix (as Firehose writes them). Made once and kept in ``.bench/archives/``.
- The sink: a minimal Tinybird on 127.0.0.1 in this process (``FakeTinybird``), not the
  sandbox's: the sandbox stores rows in chdb, whose inserts cost more CPU than the import itself
  and share the same two cores, so it would measure chdb. This one answers the data source's
  details and the Query API's questions the import asks (an empty data source), and
  acknowledges each ``wait=true`` append at once with its row count, after inflating it to count
  the rows (its CPU is counted apart, ``sink_cpu_seconds``).
- The job: the real CLI, ``python -m backfill import DIR --quiet --json``, in a child of
  ``_launch.py`` (its own peak RSS and CPU, see that module), with a fresh state file.
- Where the time goes: the same archive read in this process, one stage more each time (read
  and inflate; + cut into items and parse; + make the envelopes; + stage in SQLite), CPU seconds
  of each; sending is the job's wall time less its reading phase (``reading_seconds`` in its
  summary).
"""

from __future__ import annotations

import gzip
import json
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from backfill.archive import compression, layouts
from backfill.archive.reading import Reader, Rules
from backfill.archive.rejects import Rejects
from backfill.archive.shapes import Found, classify
from backfill.archive.sources import expand
from backfill.archive.staging import Staging
from backfill.records.envelope import serialize, to_envelope
from backfill.run.stopper import Stopper
from bench.measure import LAUNCHER, ROOT, note

ARCHIVES = ROOT / ".bench" / "archives"
SIZES = (300_000, 1_000_000)
PER_FILE = 100_000
SEED = 28


# -- the archive -----------------------------------------------------------------------------


def archive(records: int) -> Path:
    """A folder of gzipped NDJSON files holding ``records`` Management API records."""
    folder = ARCHIVES / f"api-{records}"
    done = folder / ".complete"
    if done.exists():
        return folder
    from backfill.sandbox.generator import Tenant

    note(f"making an archive of {records:,} records in {folder} (once)")
    folder.mkdir(parents=True, exist_ok=True)
    tenant = Tenant(SEED, records, 365.0)
    for part, first in enumerate(range(0, records, PER_FILE)):
        lines = (
            json.dumps(tenant.record(index), separators=(",", ":")).encode() + b"\n"
            for index in range(first, min(first + PER_FILE, records))
        )
        (folder / f"part-{part:04d}").write_bytes(gzip.compress(b"".join(lines), 6))
    done.write_text("")
    return folder


# -- the sink --------------------------------------------------------------------------------


class FakeTinybird:
    """Acknowledges every append at once; counts rows; answers the import's questions."""

    def __init__(self) -> None:
        self.rows = 0
        self.appends = 0
        self.cpu_seconds = 0.0
        self._lock = threading.Lock()
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                self._answer(200, {"name": "auth0"})

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if self.path.startswith("/v0/events"):
                    self._answer(200, owner.append(body, self.headers))
                elif self.path.startswith("/v0/sql"):
                    self._answer(200, {"data": [{"rows": 0, "first": None, "last": None}]})
                else:
                    self._answer(404, {"error": "not found"})

            def _answer(self, status: int, body: dict[str, Any]) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def append(self, body: bytes, headers: Any) -> dict[str, int]:
        began = time.thread_time()
        if headers.get("Content-Encoding") == "gzip" and body:
            body = zlib.decompress(body, 31)
        rows = body.count(b"\n")
        with self._lock:
            self.rows += rows
            self.appends += 1
            self.cpu_seconds += time.thread_time() - began
        return {"successful_rows": rows, "quarantined_rows": 0}

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


# -- one run ---------------------------------------------------------------------------------


def run_import(folder: Path, records: int) -> dict[str, Any]:
    sink = FakeTinybird()
    workdir = Path(tempfile.mkdtemp(prefix="bench-import-"))
    result_path = workdir / "launch.json"
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("AUTH0_", "TINYBIRD_"))
    }
    env.update({"TINYBIRD_HOST": sink.url, "TINYBIRD_TOKEN": "p.bench", "PYTHONPATH": str(ROOT)})
    command = [
        sys.executable, "-I", "-S", str(LAUNCHER), str(result_path), "--",
        sys.executable, "-m", "backfill", "import", str(folder), "--quiet", "--json",
        "--state", str(workdir / "state.json"),
    ]  # fmt: skip
    try:
        done = subprocess.run(
            command, env=env, cwd=workdir, capture_output=True, text=True, check=False
        )
        launch = json.loads(result_path.read_text())
    finally:
        sink.close()
    summary = json.loads(done.stdout) if done.stdout.strip() else {}
    wall = launch["wall_seconds"]
    decompressed = sum(
        len(zlib.decompress(path.read_bytes(), 31)) for path in sorted(folder.glob("part-*"))
    )
    return {
        "records": records,
        "exit_code": launch["exit_code"],
        "stderr_tail": done.stderr[-600:],
        "wall_seconds": wall,
        "job_seconds": summary.get("seconds"),
        "reading_seconds": summary.get("reading_seconds"),
        "records_per_second": records / wall,
        "megabytes_per_second": decompressed / 1e6 / wall,
        "archive_bytes": sum(path.stat().st_size for path in folder.glob("part-*")),
        "ndjson_bytes": decompressed,
        "cpu_seconds": launch["cpu_user_seconds"] + launch["cpu_system_seconds"],
        "peak_rss_mib": launch["max_rss_kib"] / 1024,
        "rows_landed": sink.rows,
        "appends": sink.appends,
        "sink_cpu_seconds": sink.cpu_seconds,
        "exactly_once": sink.rows == records and summary.get("rows_sent") == records,
    }


# -- where the time goes ---------------------------------------------------------------------


def stages(folder: Path) -> dict[str, float]:
    """CPU seconds of reading the archive in this process, one stage more at a time."""
    sources = expand((str(folder),))
    found: dict[str, float] = {}

    def timed(name: str, work: Any) -> None:
        began = time.process_time()
        work()
        found[name] = time.process_time() - began

    def inflate() -> None:
        for source in sources:
            for _ in compression.chunks(source.open(), source.name):
                pass

    def parse() -> None:
        for source in sources:
            _, items = layouts.items(compression.chunks(source.open(), source.name))
            for item in items:
                classify(item.value)

    def transform() -> None:
        for source in sources:
            _, items = layouts.items(compression.chunks(source.open(), source.name))
            for item in items:
                found_ = classify(item.value)
                if isinstance(found_, Found):
                    serialize(to_envelope(found_.record))

    def stage() -> None:
        with tempfile.TemporaryDirectory() as scratch:
            staging = Staging.create(Path(scratch) / "state.json")
            try:
                stopper = Stopper.__new__(Stopper)  # not started: reading is never stopped here
                reader = Reader(
                    staging, Rules(), Rejects(Path(scratch) / "rejects", 0),
                    stop=threading.Event(), signum=lambda: None,
                )  # fmt: skip
                del stopper
                reader.read(sources)
            finally:
                staging.close()

    timed("inflate", inflate)
    timed("parse", parse)
    timed("transform", transform)
    began_threads = resource.getrusage(resource.RUSAGE_SELF)
    timed("stage", stage)
    ended_threads = resource.getrusage(resource.RUSAGE_SELF)
    found["stage_all_threads"] = (ended_threads.ru_utime + ended_threads.ru_stime) - (
        began_threads.ru_utime + began_threads.ru_stime
    )
    return found


def measure_imports(sizes: tuple[int, ...]) -> list[dict[str, Any]]:
    results = []
    for records in sizes:
        folder = archive(records)
        note(f"import of {records:,} records")
        figures = run_import(folder, records)
        if records == min(sizes):
            note("where the time goes (in this process, one stage more at a time)")
            figures["stages_cpu_seconds"] = stages(folder)
        results.append(figures)
    return results


def import_report(results: list[dict[str, Any]], command: str) -> str:
    lines = [
        "## Import: gzipped NDJSON into a sink that acknowledges at once",
        "",
        f"`{command}`",
        "",
        "| records | wall s | records/s | MB/s (NDJSON) | reading s | sending s | job CPU s "
        "| peak RSS MiB | landed | exactly once |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|:--:|",
    ]
    for item in results:
        reading = item["reading_seconds"] or 0.0
        sending = (item["job_seconds"] or 0.0) - reading
        lines.append(
            f"| {item['records']:,} | {item['wall_seconds']:.1f} | "
            f"{item['records_per_second']:,.0f} | {item['megabytes_per_second']:.1f} | "
            f"{reading:.1f} | {sending:.1f} | {item['cpu_seconds']:.1f} | "
            f"{item['peak_rss_mib']:.0f} | {item['rows_landed']:,} | "
            f"{'yes' if item['exactly_once'] else 'NO'} |"
        )
    for item in results:
        found = item.get("stages_cpu_seconds")
        if not found:
            continue
        per = 1e6 / item["records"]
        lines += [
            "",
            f"Where the time goes ({item['records']:,} records, CPU µs per record, in one "
            "process; each stage includes the ones before):",
            "",
            "| read + inflate | + cut and parse | + envelope | + staging (all threads) |",
            "|---:|---:|---:|---:|",
            f"| {found['inflate'] * per:.1f} | {found['parse'] * per:.1f} | "
            f"{found['transform'] * per:.1f} | {found['stage_all_threads'] * per:.1f} |",
        ]
    for item in results:
        if item["exit_code"] != 0:
            lines += ["", f"FAILED ({item['records']:,}): {item['stderr_tail']}"]
    return "\n".join(lines)
