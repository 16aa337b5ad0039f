"""models.features: the one encoder of model inputs, row by row and vectorised, with Korean errors."""

from __future__ import annotations

import datetime as dt
import io

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from api.datasets.ingest import parse_csv
from api.demo.generate import generate_demo_datasets
from api.demo.vocab import DAEGU_SIGUNGU
from models.features import (
    ALIASES,
    DEFAULT_HOUR_BANDS,
    FEATURE_ORDER,
    FeatureError,
    encode_frame,
    encode_row,
    feature_schema,
    hour_band,
)
from models.interpret import build_bands
from models.metadata import ModelMetadata

VOCAB = {
    "기상상태": ["맑음", "흐림", "비", "눈", "안개", "기타"],
    "노면상태": ["건조", "젖음/습기", "서리/결빙", "적설", "침수", "기타"],
    "도로형태": [
        "교차로 - 교차로부근", "교차로 - 교차로안", "교차로 - 교차로횡단보도내", "기타 - 기타", "단일로 - 고가도로위",
        "단일로 - 교량", "단일로 - 기타", "단일로 - 지하차도(도로)내", "단일로 - 터널", "미분류 - 미분류",
        "주차장 - 주차장",
    ],
    "사고유형": ["차대사람", "차대차", "차량단독"],
    "시간대": ["심야", "출근시간대", "일반시간대", "퇴근시간대"],
    "시군구": list(DAEGU_SIGUNGU),
    "요일": ["월요일", "화요일", "수요일", "목요일", "금요일", "토요일", "일요일"],
}  # fmt: skip
CATEGORICAL = ["기상상태", "노면상태", "도로형태", "사고유형", "시간대", "시군구", "요일"]
NUMERIC = ["사고시", "사고연", "사고월", "사고일"]


def make_meta(**changes) -> ModelMetadata:
    fields = dict(
        name="test", version="v", feature_order=list(FEATURE_ORDER), categorical_features=CATEGORICAL,
        numeric_features=NUMERIC, categories={k: sorted(v) for k, v in VOCAB.items()},
        hour_bands=dict(DEFAULT_HOUR_BANDS), target_transform="log1p", metrics={},
        target_quantiles=[float(i) for i in range(101)], bands=build_bands([float(i) for i in range(101)]),
        training_fingerprint="", training_rows=0, created_at="2026-11-24T00:00:00+00:00",
        lightgbm_version="4.7.0", source="trained",
    )  # fmt: skip
    fields.update(changes)
    return ModelMetadata(**fields)


META = make_meta()
RAW = {
    "ID": "ACCIDENT_00001",
    "사고일시": "2019-01-06 19",  # a Sunday
    "기상상태": "맑음",
    "시군구": "대구광역시 중구 대신동",
    "도로형태": "단일로 - 기타",
    "노면상태": "건조",
    "사고유형": "차대사람",
    "법규위반": "안전운전불이행",
    "ECLO": 5,
}


def code(feature: str, value: str) -> float:
    return float(META.categories[feature].index(value))


def column(name: str) -> int:
    return list(FEATURE_ORDER).index(name)


def test_raw_row_derives_numbers_weekday_and_time_band():
    x = encode_row(RAW, META)
    assert x.shape == (1, 11) and x.dtype == np.float64
    assert x[0, column("사고연")] == 2019 and x[0, column("사고월")] == 1 and x[0, column("사고일")] == 6
    assert x[0, column("사고시")] == 19
    assert x[0, column("요일")] == code("요일", "일요일")
    assert x[0, column("시간대")] == code("시간대", "퇴근시간대")
    assert x[0, column("시군구")] == code("시군구", "대구광역시 중구 대신동")


@pytest.mark.parametrize(
    ("hour", "band"),
    [(0, "심야"), (6, "심야"), (7, "출근시간대"), (9, "출근시간대"), (10, "일반시간대"), (17, "일반시간대"),
     (18, "퇴근시간대"), (20, "퇴근시간대"), (21, "심야"), (23, "심야")],
)  # fmt: skip
def test_default_hour_bands(hour, band):
    assert hour_band(hour, META) == band
    x = encode_row({**RAW, "사고일시": f"2019-01-06 {hour:02d}"}, META)
    assert x[0, column("시간대")] == code("시간대", band)


def test_model_hour_bands_are_used():
    meta = make_meta(hour_bands={str(h): "심야" for h in range(24)})
    assert hour_band(12, meta) == "심야"
    with pytest.raises(FeatureError):
        hour_band(24, meta)


@pytest.mark.parametrize(
    "value",
    ["2019-01-06 19", " 2019-1-6 19 ", "2019-01-06 19:45", "2019-01-06T19:45:10", "2019/01/06 19",
     dt.datetime(2019, 1, 6, 19, 30), np.datetime64("2019-01-06T19:00"), pd.Timestamp("2019-01-06 19:00")],
)  # fmt: skip
def test_datetime_forms(value):
    assert np.array_equal(encode_row({**RAW, "사고일시": value}, META), encode_row(RAW, META))


@pytest.mark.parametrize(
    "value",
    ["2019-02-30 10", "2019-01-06 24", "2019-01-06", "어제", "2019-13-01 00", 20190106, "1999-12-31 23",
     dt.datetime(1999, 1, 1, 5)],
)  # fmt: skip
def test_bad_datetime(value):
    with pytest.raises(FeatureError) as info:
        encode_row({**RAW, "사고일시": value}, META)
    assert info.value.field == "사고일시"


def test_eleven_features_directly_with_aliases_and_string_numbers():
    direct = {
        "weather": "맑음", "road_surface": "건조", "road_type": "단일로 - 기타", "accident_type": "차대사람",
        "time_band": "퇴근시간대", "district": "대구광역시 중구 대신동", "weekday": "일요일",
        "year": "2019", "month": 1, "day": 6.0, "hour": " 19 ",
    }  # fmt: skip
    assert set(direct) == {a for a, k in ALIASES.items() if k != "사고일시"}
    assert np.array_equal(encode_row(direct, META), encode_row(RAW, META))
    korean = {ALIASES[k]: v for k, v in direct.items()}
    assert np.array_equal(encode_row(korean, META), encode_row(RAW, META))


def test_explicit_values_win_over_datetime():
    x = encode_row({**RAW, "사고시": 8, "요일": "월요일"}, META)
    assert x[0, column("사고시")] == 8
    assert x[0, column("시간대")] == code("시간대", "출근시간대")  # derived from the explicit hour
    assert x[0, column("요일")] == code("요일", "월요일")
    x = encode_row({**RAW, "시간대": "심야"}, META)
    assert x[0, column("시간대")] == code("시간대", "심야") and x[0, column("사고시")] == 19


def test_bad_category_names_field_value_and_valid_values():
    with pytest.raises(FeatureError) as info:
        encode_row({**RAW, "기상상태": "폭풍"}, META)
    error = info.value
    assert (error.field, error.value, error.valid_count) == ("기상상태", "폭풍", 6)
    assert error.valid == META.categories["기상상태"]
    assert "기상상태" in error.message and "'폭풍'" in error.message and "모두 6개" in error.message
    assert error.to_detail() == {"field": "기상상태", "value": "폭풍", "valid": error.valid, "valid_count": 6}
    with pytest.raises(FeatureError) as info:
        encode_row({**RAW, "시군구": "서울특별시 강남구 역삼동"}, META)
    assert info.value.valid_count == 199 and len(info.value.valid) == 10 and "…" in info.value.message


def test_missing_and_unknown_fields():
    with pytest.raises(FeatureError) as info:
        encode_row({k: v for k, v in RAW.items() if k != "노면상태"}, META)
    assert info.value.field == "노면상태" and info.value.value is None and "없습니다" in info.value.message
    with pytest.raises(FeatureError) as info:
        encode_row({k: v for k, v in RAW.items() if k != "사고일시"}, META)
    assert info.value.field in {"사고시", "사고연", "사고월", "사고일", "시간대", "요일"}
    with pytest.raises(FeatureError) as info:
        encode_row({**RAW, "wether": "맑음"}, META)
    assert info.value.field == "wether" and "weather" in info.value.message and info.value.valid_count == 12
    with pytest.raises(FeatureError):
        encode_row({**RAW, "weather": "흐림"}, META)  # 기상상태 twice
    with pytest.raises(FeatureError):
        encode_row({**RAW, "노면상태": None, "road_surface": "건조"}, META)  # twice, even if one is empty


@pytest.mark.parametrize(
    ("field", "value"),
    [("사고시", 24), ("사고시", -1), ("사고시", 7.5), ("사고월", 0), ("사고월", "13"), ("사고일", 32),
     ("사고연", 1999), ("사고연", "2019년"), ("사고시", True)],
)  # fmt: skip
def test_numeric_ranges(field, value):
    with pytest.raises(FeatureError) as info:
        encode_row({**RAW, field: value}, META)
    assert info.value.field == field and info.value.value == value


def test_feature_schema():
    specs = feature_schema(META)
    assert [s.name for s in specs] == list(FEATURE_ORDER)
    by_name = {s.name: s for s in specs}
    assert by_name["시군구"].type == "categorical" and len(by_name["시군구"].values) == 199
    assert (by_name["사고시"].type, by_name["사고시"].minimum, by_name["사고시"].maximum) == ("integer", 0, 23)
    assert by_name["기상상태"].alias == "weather" and "심야 21–6시" in by_name["시간대"].description


# ---- encode_frame ---------------------------------------------------------------------------------------

BAD_ROWS = [
    ({"기상상태": "폭풍"}, "기상상태"),
    ({"사고일시": "2019-02-30 10"}, "사고일시"),
    ({"사고시": 30}, "사고시"),
    ({"노면상태": None}, "노면상태"),
    ({"시군구": "  "}, "시군구"),
    ({"사고일시": None}, "사고시"),
    ({"사고일시": "1999-12-31 23"}, "사고일시"),
    ({"요일": "월"}, "요일"),
    ({"사고연": "2019.5"}, "사고연"),  # nothing to derive the hour from; 사고시 is the first number in model order
]


def mixed_rows() -> list[dict]:
    rows = []
    for i in range(5 * len(BAD_ROWS)):
        row = {**RAW, "사고일시": f"2020-03-{i % 28 + 1:02d} {i % 24:02d}", "ECLO": i}
        if i % 5 == 2:
            change, _ = BAD_ROWS[(i // 5) % len(BAD_ROWS)]
            row.update(change)
        rows.append(row)
    return rows


@pytest.mark.parametrize("kind", ["pandas", "arrow"])
def test_encode_frame_mixed_rows(kind):
    rows = mixed_rows()
    keys = list(dict.fromkeys(k for row in rows for k in row))  # from_pylist would take the first row's keys only
    full = [{k: r.get(k) for k in keys} for r in rows]
    frame = pd.DataFrame(rows) if kind == "pandas" else pa.Table.from_pylist(full)
    batch = encode_frame(frame, META)
    n = len(rows)
    bad = [i for i in range(n) if i % 5 == 2]
    assert [i for i, _ in batch.errors] == bad
    assert batch.row_index.tolist() == [i for i in range(n) if i not in bad]
    assert batch.matrix.shape == (n - len(bad), 11)
    for (i, error), expected in zip(batch.errors, [BAD_ROWS[(i // 5) % len(BAD_ROWS)][1] for i in bad], strict=True):
        assert error.field == expected, (i, error.message)
    # Row by row gives the same matrix and the same first errors.
    for position, i in enumerate(batch.row_index):
        assert np.array_equal(encode_row(rows[i], META)[0], batch.matrix[position])
    for i, error in batch.errors:
        with pytest.raises(FeatureError) as info:
            encode_row(rows[i], META)
        assert (info.value.field, info.value.message) == (error.field, error.message)


def test_encode_frame_on_demo_table_matches_rows():
    train = next(d for d in generate_demo_datasets(scale=0.02) if d.key == "train")
    table = parse_csv(train.csv_bytes).table  # 사고일시 as timestamp[ms]
    frame = pd.read_csv(io.BytesIO(train.csv_bytes))  # 사고일시 as text
    meta = META
    from_table, from_text = encode_frame(table, meta), encode_frame(frame, meta)
    assert not from_table.errors and not from_text.errors
    assert np.array_equal(from_table.matrix, from_text.matrix)
    records = frame.to_dict("records")
    rows = np.vstack([encode_row(r, meta) for r in records[:200]])
    assert np.array_equal(rows, from_table.matrix[:200])


def test_encode_frame_column_level_errors():
    with pytest.raises(FeatureError) as info:
        encode_frame(pd.DataFrame([{**RAW, "비고": "x"}]), META)
    assert info.value.field == "비고"
    assert encode_frame(pd.DataFrame([{**RAW, "비고": "x"}]), META, ignore_unknown=True).matrix.shape == (1, 11)
    with pytest.raises(FeatureError) as info:
        encode_frame(pd.DataFrame([{k: v for k, v in RAW.items() if k != "기상상태"}]), META)
    assert info.value.field == "기상상태"


def test_encode_row_is_repeatable_and_matches_the_batch_path():
    # Its speed is a benchmark figure (bench/micro.py, encode_row); here: the cached encoder tables give
    # the same answer every time, and the same answer as the vectorised path.
    first = encode_row(RAW, META)
    assert all(np.array_equal(encode_row(RAW, META), first) for _ in range(50))
    assert np.array_equal(encode_frame(pd.DataFrame([RAW]), META).matrix, first)


def test_encode_frame_of_a_large_batch_equals_its_parts():
    # Its speed is a benchmark figure (bench/micro.py, encode_frame_200k).
    rows = pd.DataFrame([RAW, {**RAW, "기상상태": "비", "사고일시": "2020-07-01 08"}] * 500)
    big = pd.concat([rows] * 200, ignore_index=True)  # 200k rows
    batch = encode_frame(big, META)
    part = encode_frame(rows, META)
    assert batch.errors == [] and np.array_equal(batch.row_index, np.arange(200_000))
    assert np.array_equal(batch.matrix, np.tile(part.matrix, (200, 1)))
