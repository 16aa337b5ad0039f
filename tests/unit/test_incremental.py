"""Parsing an upload in pieces while it arrives must give exactly what parse_csv gives on the whole body.

Pieces are made tiny here (a few KB) so that every file below is cut into many of them, and the chunks the
"network" delivers have random sizes, so cuts land everywhere: inside rows, right after a newline, inside
multibyte characters.
"""

from __future__ import annotations

import random

import pyarrow as pa
import pytest

from api.datasets.incremental import StreamingUpload, UploadedCsv
from api.datasets.ingest import parse_csv, sha256_hex
from api.datasets.parquet import from_parquet
from api.demo.generate import generate_demo_datasets
from api.errors import DomainError, PayloadTooLarge

PIECE = 4096


@pytest.fixture(scope="module")
def demo():
    return {d.key: d.csv_bytes for d in generate_demo_datasets(seed=3, scale=0.02)}


async def stream(data: bytes, *, piece_bytes: int = PIECE, seed: int = 0, limit: int = 1 << 30) -> UploadedCsv:
    rng = random.Random(seed)
    async with StreamingUpload(limit, piece_bytes=piece_bytes) as upload:
        at = 0
        while at < len(data):
            size = rng.choice([1, 7, 100, 1000, 3000, 9000])
            upload.feed(data[at : at + size])
            at += size
        return await upload.finish()


def whole(data: bytes):
    try:
        return parse_csv(data)
    except DomainError as exc:
        return exc


async def assert_same_as_whole(data: bytes, *, streamed: bool, seed: int = 0) -> None:
    result = await stream(data, seed=seed)
    assert result.size == len(data) and result.sha256() == sha256_hex(data)
    assert result.content() == data
    assert (result.early is not None) is streamed
    if result.early is None:
        return
    parsed, parquet = result.early
    expected = whole(data)
    assert not isinstance(expected, DomainError), expected
    assert parsed.table.num_rows == expected.table.num_rows
    assert parsed.table.schema == expected.table.schema
    assert parsed.table.equals(expected.table)
    assert (parsed.kind, parsed.encoding) == (expected.kind, expected.encoding)
    assert from_parquet(parquet).equals(expected.table)


@pytest.mark.parametrize("key", ["accident", "test", "cctv", "lights", "zones", "parking", "train"])
async def test_every_demo_kind_streams_to_the_same_table(demo, key):
    assert len(demo[key]) > 3 * PIECE
    for seed in range(3):
        await assert_same_as_whole(demo[key], streamed=True, seed=seed)


async def test_cp949_streams_piece_by_piece():
    rows = "".join(f"대구 {i}번지,{i}\n" for i in range(3000))
    data = ("주소,값\n" + rows).encode("cp949")
    await assert_same_as_whole(data, streamed=True)
    assert (await stream(data)).early[0].encoding == "cp949"


async def test_bom_and_quoted_commas_stream():
    rows = "".join(f'{i},"대구, 중구 {i}",{i * 0.5}\n' for i in range(2000))
    await assert_same_as_whole(("\ufeff번호,주소,값\n" + rows).encode(), streamed=True)


@pytest.mark.parametrize(
    ("case", "data"),
    [
        # A later piece holds a value the first piece's type cannot take (int64 -> double).
        ("type widens later", b"a,b\n" + b"1,x\n" * 3000 + b"1.5,y\n"),
        # The first piece cannot settle a column (all empty there).
        ("empty column at first", b"a,b\n" + b",x\n" * 3000 + b"2,y\n"),
        # CP949 bytes after an ASCII start.
        ("cp949 later", b"a,b\n" + b"1,x\n" * 3000 + "2,대구\n".encode("cp949")),
        # Old Mac line endings: no newline to cut at, so one piece - which parses like the whole.
        ("cr only", b"a,b\r" + b"1,x\r" * 3000),
    ],
)
async def test_what_pieces_cannot_settle_is_left_to_the_whole_parse(case, data):
    streamed = case == "cr only"
    await assert_same_as_whole(data, streamed=streamed)
    if not streamed:
        expected = whole(data)
        assert not isinstance(expected, DomainError)  # the fallback still reads these files


@pytest.mark.parametrize(
    ("case", "data", "detail"),
    [
        ("ragged later", b"a,b\n" + b"1,x\n" * 3000 + b"1,2,3\n", {"line": 3002}),
        ("bad accident time later", None, {"column": "사고일시"}),
        ("header only", b"a,b\n", {"reason": "header_only"}),
        (
            "invalid everywhere",
            b"a,b\n" + b"1,x\n" * 3000 + b"1,\xff\xfe\n",
            {"encodings_tried": ["utf-8", "utf-8-sig", "cp949"]},
        ),
    ],
)
async def test_errors_come_from_the_whole_parse(demo, case, data, detail):
    if data is None:
        lines = demo["accident"].split(b"\n")
        bad = lines[-2].replace(lines[-2].split(b",")[1], b"2019/01/01", 1)
        data = b"\n".join([*lines[:-2], bad, b""])
    result = await stream(data)
    assert result.early is None
    error = whole(result.content())
    assert isinstance(error, DomainError) and detail.items() <= error.detail.items()


async def test_the_size_limit_stops_the_upload_while_it_arrives():
    upload = StreamingUpload(limit=10_000, piece_bytes=PIECE)
    async with upload:
        upload.feed(b"a,b\n" + b"1,2\n" * 2000)
        with pytest.raises(PayloadTooLarge) as info:
            upload.feed(b"1,2\n" * 1000)
    assert info.value.detail["limit_bytes"] == 10_000


async def test_leaving_without_finishing_stops_the_work(demo):
    with pytest.raises(RuntimeError):
        async with StreamingUpload(1 << 30, piece_bytes=PIECE) as upload:
            upload.feed(demo["accident"][: 10 * PIECE])
            raise RuntimeError("client went away")
    assert upload._work.failed


async def test_a_refused_upload_holds_none_of_its_body(demo):
    """The exception's traceback keeps the stream alive until the cyclic GC runs: it must hold no bytes by then."""
    upload = StreamingUpload(limit=10 * PIECE, piece_bytes=PIECE)
    with pytest.raises(PayloadTooLarge):
        async with upload:
            data = demo["accident"]
            for start in range(0, len(data), PIECE // 4):
                upload.feed(data[start : start + PIECE // 4])
    assert upload._pieces == [] and upload._pending == []
    assert upload._work._tables == []


async def test_one_piece_when_the_file_is_small():
    data = b"a,b\n1,x\n2,y\n"
    result = await stream(data, piece_bytes=1 << 20)
    assert result.early is not None and result.early[0].table.num_rows == 2
    assert result.early[0].table.schema.field("a").type == pa.int64()


async def test_a_cut_inside_a_quoted_multiline_value_never_splits_the_row():
    # Half the line breaks are inside quotes, so with many seeds some cuts land inside a value; and the
    # value's second line reads as a valid row of its own, so a split would go unnoticed by Arrow.
    rows = "".join(f'{i},끝,"첫 줄 {i}\n{i},둘째,줄"\n' for i in range(1500))
    data = ("번호,값,메모\n" + rows).encode()
    expected = parse_csv(data)
    assert expected.table.num_rows == 1500 and expected.table.column("메모")[3].as_py() == "첫 줄 3\n3,둘째,줄"
    gave_up = 0
    for seed in range(12):
        result = await stream(data, seed=seed)
        if result.early is None:
            gave_up += 1
            continue
        assert result.early[0].table.equals(expected.table)
    assert gave_up > 0  # the cut-inside-quotes case was exercised


async def test_a_failing_parquet_write_never_leaves_a_piece_out(demo, monkeypatch):
    import api.datasets.incremental as incremental

    real = incremental.parquet_writer

    def flaky_writer(schema, sink):
        writer = real(schema, sink)
        calls = {"n": 0}
        original = writer.write_table

        def write_table(table):
            calls["n"] += 1
            if calls["n"] == 3:
                raise RuntimeError("disk full")
            original(table)

        writer.write_table = write_table
        return writer

    monkeypatch.setattr(incremental, "parquet_writer", flaky_writer)
    result = await stream(demo["accident"])
    assert result.early is None  # the whole-body parse takes over
    assert parse_csv(result.content()).table.num_rows == demo["accident"].count(b"\n") - 1
