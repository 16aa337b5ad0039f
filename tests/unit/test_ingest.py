"""Decoding, kind detection and kind-specific parsing of uploaded CSVs."""

from __future__ import annotations

import datetime as dt

import pyarrow as pa
import pytest

from api.datasets.decoding import decode_to_utf8
from api.datasets.ingest import parse_csv
from api.datasets.kinds import DatasetKind, detect_kind, find_coordinate_columns
from api.datasets.parquet import from_parquet, to_parquet
from api.errors import InvalidInput, UnsupportedMediaType

TRAIN_HEADER = (
    "ID,사고일시,요일,기상상태,시군구,도로형태,노면상태,사고유형,사고유형 - 세부분류,법규위반,가해운전자 차종,"
    "가해운전자 성별,가해운전자 연령,가해운전자 상해정도,피해운전자 차종,피해운전자 성별,피해운전자 연령,"
    "피해운전자 상해정도,사망자수,중상자수,경상자수,부상자수,ECLO"
)
TRAIN_ROW = (
    "ACCIDENT_00000,2019-01-01 00,화요일,맑음,대구광역시 중구 대신동,단일로 - 기타,건조,차대사람,길가장자리구역통행중,"
    "안전운전불이행,승용,여,51세,상해없음,보행자,여,70세,중상,0,1,0,0,5"
)


class TestDecoding:
    def test_utf8_passes_through(self):
        data = "가,나\n1,2\n".encode()
        assert decode_to_utf8(data) == (data, "utf-8")

    def test_bom_is_stripped(self):
        assert decode_to_utf8("\ufeff가\n1\n".encode()) == ("가\n1\n".encode(), "utf-8-sig")

    def test_cp949_is_transcoded(self):
        text = "시군구명,설치장소\n남구,대명로 앞\n"
        assert decode_to_utf8(text.encode("cp949")) == (text.encode(), "cp949")

    def test_euc_kr_is_read_as_cp949(self):
        text = "이름\n대구\n"
        assert decode_to_utf8(text.encode("euc-kr"))[0] == text.encode()

    def test_undecodable_names_every_encoding_tried(self):
        with pytest.raises(InvalidInput) as info:
            decode_to_utf8(b"a\n\xff\xfe\n")
        assert info.value.detail["encodings_tried"] == ["utf-8", "utf-8-sig", "cp949"]
        assert info.value.status_code == 422


class TestEncodingsInParse:
    """parse_csv checks only the first MB up front; Arrow's own validation must catch the rest."""

    ascii_rows = "".join(f"{i},plain text {i}\n" for i in range(60_000))  # > 1 MB of ASCII

    def test_cp949_after_an_ascii_first_megabyte(self):
        parsed = parse_csv(("id,note\n" + self.ascii_rows + "60000,대구 중구\n").encode("cp949"))
        assert parsed.encoding == "cp949"
        assert parsed.table.schema.field("note").type == pa.string()
        assert parsed.table.column("note")[-1].as_py() == "대구 중구"

    def test_cp949_in_a_column_read_as_text_after_the_first_megabyte(self):
        # Coordinate columns are read as strings (junk becomes missing), so Arrow's check fails there.
        rows = "".join(f"{i},35.87,128.6\n" for i in range(60_000))
        parsed = parse_csv(("id,lat,lon\n" + rows + "60000,없음,128.6\n").encode("cp949"))
        assert parsed.encoding == "cp949" and parsed.table.num_rows == 60_001
        assert parsed.table.column("lat")[-1].as_py() is None

    def test_bom_file_is_read_in_place(self):
        parsed = parse_csv("\ufeff이름,값\n대구,1\n".encode())
        assert parsed.encoding == "utf-8-sig" and parsed.table.column_names == ["이름", "값"]

    def test_bytes_valid_in_no_encoding_after_the_first_megabyte(self):
        with pytest.raises(InvalidInput) as info:
            parse_csv(("id,note\n" + self.ascii_rows).encode() + b"1,\xff\xfe\n")
        assert info.value.detail["encodings_tried"] == ["utf-8", "utf-8-sig", "cp949"]

    def test_old_mac_line_endings_are_rows(self):
        assert parse_csv(b"a,b\r1,2\r").table.num_rows == 1


class TestKindDetection:
    @pytest.mark.parametrize(
        ("columns", "kind"),
        [
            (TRAIN_HEADER.split(","), DatasetKind.ACCIDENT),
            (TRAIN_HEADER.split(",")[:8], DatasetKind.ACCIDENT_TEST),
            (["무인교통단속카메라관리번호", "위도", "경도"], DatasetKind.CCTV),
            (["보안등위치명", "설치개수", "위도", "경도"], DatasetKind.LIGHTS),
            (["시설종류", "대상시설명", "위도", "경도"], DatasetKind.ZONES),
            (["주차장관리번호", "주차장명"], DatasetKind.PARKING),
            (["주차장명", "주차구획수"], DatasetKind.PARKING),
            (["a", "b"], DatasetKind.GENERIC),
            (["사고일시", "ECLO"], DatasetKind.GENERIC),  # a fragment is not an accident table
        ],
    )
    def test_detect(self, columns, kind):
        assert detect_kind(columns) is kind

    @pytest.mark.parametrize(
        ("columns", "expected"),
        [
            (["위도", "경도"], ("위도", "경도")),
            (["LAT", "Lng", "x"], ("LAT", "Lng")),
            (["latitude", "longitude"], ("latitude", "longitude")),
            (["y", "x"], ("y", "x")),
            (["위도"], None),
        ],
    )
    def test_coordinate_columns(self, columns, expected):
        found = find_coordinate_columns(columns)
        assert (found and (found.lat, found.lon)) == expected or (found is None and expected is None)


class TestParsing:
    def test_accident_time_becomes_a_timestamp(self):
        parsed = parse_csv(f"{TRAIN_HEADER}\n{TRAIN_ROW}\n".encode())
        assert parsed.kind is DatasetKind.ACCIDENT
        assert parsed.table.schema.field("사고일시").type == pa.timestamp("ms")
        assert parsed.table.column("사고일시")[0].as_py() == dt.datetime(2019, 1, 1, 0)
        # Text that looks numeric stays text in accident tables; the casualty counts are integers.
        assert parsed.table.schema.field("가해운전자 연령").type == pa.string()
        assert parsed.table.schema.field("ECLO").type == pa.int64()

    def test_bad_accident_time_names_row_and_value(self):
        bad_row = TRAIN_ROW.replace("2019-01-01 00", "2019/01/01")
        with pytest.raises(InvalidInput) as info:
            parse_csv(f"{TRAIN_HEADER}\n{TRAIN_ROW}\n{bad_row}\n".encode())
        assert info.value.detail == {"column": "사고일시", "row": 2, "value": "2019/01/01", "invalid_count": 1}

    def test_install_year_stays_an_integer_year(self):
        parsed = parse_csv("보안등위치명,설치개수,설치연도\n대명1동1,1,2010.0\n대명1동2,2,\n".encode("cp949"))
        assert parsed.kind is DatasetKind.LIGHTS and parsed.encoding == "cp949"
        assert parsed.table.schema.field("설치연도").type == pa.int64()
        assert parsed.table.column("설치연도").to_pylist() == [2010, None]

    def test_fractional_year_is_refused(self):
        with pytest.raises(InvalidInput, match="연도"):
            parse_csv("설치연도\n2010.5\n".encode())

    def test_coordinates_become_floats_and_junk_becomes_missing(self):
        parsed = parse_csv("위도,경도\n35.87,128.6\n없음,128.5\n,\n0,0\n".encode())
        assert parsed.table.schema.field("위도").type == pa.float64()
        assert parsed.table.column("위도").to_pylist() == [35.87, None, None, 0.0]

    def test_empty_columns_are_text_and_blank_names_get_one(self):
        parsed = parse_csv(b" a ,,c\n1,,x\n2,,y\n")
        assert parsed.table.column_names == ["a", "열2", "c"]
        assert parsed.table.schema.field("열2").type == pa.string()

    def test_quoted_commas_and_newlines_are_fields(self):
        parsed = parse_csv('이름,주소\n"가","대구, 중구"\n'.encode())
        assert parsed.table.column("주소").to_pylist() == ["대구, 중구"]

    @pytest.mark.parametrize(
        ("data", "error", "detail"),
        [
            (b"", InvalidInput, {"reason": "empty"}),
            (b"a,b\n", InvalidInput, {"reason": "header_only"}),
            (b"a,b", InvalidInput, {"reason": "header_only"}),
            (b"%PDF-1.4 ...", UnsupportedMediaType, {"detected": "PDF"}),
            (b"a,b\n\x00\x00,1\n", UnsupportedMediaType, {"detected": "binary"}),
            (b"a,a\n1,2\n", InvalidInput, {"duplicate_columns": ["a"]}),
        ],
    )
    def test_rejections(self, data, error, detail):
        with pytest.raises(error) as info:
            parse_csv(data)
        assert detail.items() <= info.value.detail.items()
        assert any("가" <= ch <= "힣" for ch in info.value.message)

    def test_ragged_row_line_number_counts_the_header(self):
        with pytest.raises(InvalidInput) as info:
            parse_csv(b"a,b\n1,2\n3,4,5\n6,7\n")
        assert info.value.detail["line"] == 3 and info.value.detail["actual_columns"] == 3

    def test_sha_is_of_the_uploaded_bytes(self):
        import hashlib

        data = "\ufeffa\n1\n".encode()
        assert parse_csv(data).content_sha256 == hashlib.sha256(data).hexdigest()

    def test_inferred_times_look_the_same_reloaded(self):
        parsed = parse_csv(b"t,ts,d\n09:00,2020-01-01 10:00:00,2020-01-01\n")
        assert parsed.table.schema.field("t").type == pa.time32("ms")
        assert parsed.table.schema.field("ts").type == pa.timestamp("ms")
        assert from_parquet(to_parquet(parsed.table)).equals(parsed.table)

    def test_parquet_round_trip_keeps_types(self):
        parsed = parse_csv(f"{TRAIN_HEADER}\n{TRAIN_ROW}\n".encode())
        assert from_parquet(to_parquet(parsed.table)).equals(parsed.table)
