"""Compression recognised by its bytes, whatever the name; a stream cut short is an error that
names the source, never a shorter file read silently."""

from __future__ import annotations

import bz2
import gzip
import io
import lzma

import pytest
import zstandard

from backfill.archive.compression import chunks, sniff
from backfill.errors import DataError

DATA = b"".join(b'{"log_id":"%d","text":"%s"}\n' % (n, b"x" * (n % 50)) for n in range(20000))


def zstd_frames(data: bytes) -> bytes:
    compressor = zstandard.ZstdCompressor()
    middle = len(data) // 2
    return compressor.compress(data[:middle]) + compressor.compress(data[middle:])


COMPRESSED = {
    "gzip": gzip.compress(DATA[:1000]) + gzip.compress(DATA[1000:]),  # two members, as cat makes
    "zstd": zstd_frames(DATA),
    "bzip2": bz2.compress(DATA),
    "xz": lzma.compress(DATA),
}


@pytest.mark.parametrize("kind", sorted(COMPRESSED))
def test_each_compression_is_recognised_by_its_bytes(kind: str) -> None:
    packed = COMPRESSED[kind]
    assert sniff(packed[:8]) == kind
    assert b"".join(chunks(io.BytesIO(packed), "archive")) == DATA


def test_plain_bytes_are_read_as_they_are() -> None:
    assert sniff(DATA[:8]) is None
    assert b"".join(chunks(io.BytesIO(DATA), "plain")) == DATA
    assert b"".join(chunks(io.BytesIO(b""), "empty")) == b""


@pytest.mark.parametrize("kind", ["gzip", "zstd", "bzip2", "xz"])
def test_a_stream_cut_short_names_the_source(kind: str) -> None:
    packed = COMPRESSED[kind]
    with pytest.raises(DataError) as raised:
        b"".join(chunks(io.BytesIO(packed[: len(packed) * 2 // 3]), "s3://bucket/part-0007"))
    assert "s3://bucket/part-0007" in str(raised.value)
    assert raised.value.exit_code == 9


def test_damaged_gzip_data_is_an_error() -> None:
    packed = bytearray(COMPRESSED["gzip"])
    packed[40:60] = b"\x00" * 20
    with pytest.raises(DataError, match=r"damaged|cut short"):
        b"".join(chunks(io.BytesIO(bytes(packed)), "part"))
