from __future__ import annotations

from pathlib import Path

from backfill.checks.preflight import schema_differences
from backfill.tinybird.datafile import parse_datafile, seed_datafile_text

ROOT = Path(__file__).parents[2]


def test_the_packaged_schema_is_the_repository_one_verbatim() -> None:
    assert (
        seed_datafile_text() == (ROOT / "tinybird" / "datasources" / "auth0.datasource").read_text()
    )


def test_seed_schema_reads_the_envelope() -> None:
    schema = parse_datafile(seed_datafile_text())
    assert schema.column("log_id").jsonpath == "$.log_id"  # type: ignore[union-attr]
    assert schema.column("scope").jsonpath == "$.data.scope[:]"  # type: ignore[union-attr]
    assert schema.partition_key == "toYYYYMM(date)"
    assert schema_differences(schema, schema) == []


def test_a_schema_stamping_ingest_time_differs() -> None:
    text = seed_datafile_text().replace(
        "`date` DateTime64(3) `json:$.data.date` DEFAULT now(),",
        "`date` DateTime64(3) DEFAULT now(),",
    )
    differences = schema_differences(parse_datafile(text), parse_datafile(seed_datafile_text()))
    assert differences == ["column date reads no jsonpath, DEFAULT now(), not $.data.date"]
