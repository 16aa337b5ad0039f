"""The synthetic demo datasets: exact shapes from DATA.md, determinism, consistency and learnability."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest

from api.demo.generate import DemoDataset, generate_demo_datasets
from api.demo.vocab import DAEGU_SIGUNGU

SMALL = 0.02

# Column orders written out from DATA.md on purpose, so the test does not trust the module's own constants.
ACCIDENT_COLUMNS = [
    "ID", "사고일시", "요일", "기상상태", "시군구", "도로형태", "노면상태", "사고유형", "사고유형 - 세부분류",
    "법규위반", "가해운전자 차종", "가해운전자 성별", "가해운전자 연령", "가해운전자 상해정도",
    "피해운전자 차종", "피해운전자 성별", "피해운전자 연령", "피해운전자 상해정도",
    "사망자수", "중상자수", "경상자수", "부상자수", "ECLO",
]  # fmt: skip
EXPECTED_COLUMNS = {
    "train": ACCIDENT_COLUMNS,
    "accident": ACCIDENT_COLUMNS,
    "test": ["ID", "사고일시", "요일", "기상상태", "시군구", "도로형태", "노면상태", "사고유형"],
    "cctv": [
        "무인교통단속카메라관리번호", "시도명", "시군구명", "도로종류", "도로노선번호", "도로노선명", "도로노선방향",
        "소재지도로명주소", "소재지지번주소", "위도", "경도", "설치장소", "단속구분", "제한속도",
        "단속구간위치구분", "과속단속구간길이", "보호구역구분", "설치연도",
    ],
    "lights": [
        "보안등위치명", "설치개수", "소재지도로명주소", "소재지지번주소", "위도", "경도", "설치연도", "설치형태",
    ],
    "zones": [
        "시설종류", "대상시설명", "소재지도로명주소", "소재지지번주소", "위도", "경도", "관리기관명", "관할경찰서명",
        "CCTV설치여부", "CCTV설치대수", "보호구역도로폭", "데이터기준일자",
    ],
    "parking": [
        "주차장관리번호", "주차장명", "주차장구분", "주차장유형", "소재지도로명주소", "소재지지번주소", "주차구획수",
        "급지구분", "운영요일", "평일운영시작시각", "평일운영종료시각", "토요일운영시작시각", "토요일운영종료시각",
        "공휴일운영시작시각", "공휴일운영종료시각", "요금정보", "주차기본시간", "주차기본요금", "추가단위시간",
        "추가단위요금", "위도", "경도",
    ],
}  # fmt: skip
VOCABULARIES = {
    "기상상태": {"맑음", "흐림", "비", "눈", "안개", "기타"},
    "노면상태": {"건조", "젖음/습기", "서리/결빙", "적설", "침수", "기타"},
    "도로형태": {
        "교차로 - 교차로부근", "교차로 - 교차로안", "교차로 - 교차로횡단보도내", "기타 - 기타", "단일로 - 고가도로위",
        "단일로 - 교량", "단일로 - 기타", "단일로 - 지하차도(도로)내", "단일로 - 터널", "미분류 - 미분류",
        "주차장 - 주차장",
    },
    "사고유형": {"차대사람", "차대차", "차량단독"},
    "요일": {"월요일", "화요일", "수요일", "목요일", "금요일", "토요일", "일요일"},
}  # fmt: skip
CASUALTY_COLUMNS = ["사망자수", "중상자수", "경상자수", "부상자수"]
COORDINATE_KEYS = ("cctv", "lights", "zones", "parking")
WEEKDAY_NAMES = ["월요일", "화요일", "수요일", "목요일", "금요일", "토요일", "일요일"]


@pytest.fixture(scope="module")
def datasets() -> dict[str, DemoDataset]:
    return {d.key: d for d in generate_demo_datasets(scale=SMALL)}


@pytest.fixture(scope="module")
def frames(datasets: dict[str, DemoDataset]) -> dict[str, pd.DataFrame]:
    return {key: _read(d) for key, d in datasets.items()}


def _read(dataset: DemoDataset) -> pd.DataFrame:
    return pd.read_csv(io.BytesIO(dataset.csv_bytes), encoding=dataset.encoding)


def test_same_seed_gives_identical_bytes_and_other_seed_differs(datasets):
    again = {d.key: d for d in generate_demo_datasets(scale=SMALL)}
    assert again == datasets
    other = {d.key: d.csv_bytes for d in generate_demo_datasets(seed=7, scale=SMALL)}
    assert all(other[key] != d.csv_bytes for key, d in datasets.items())


def test_metadata_marks_every_dataset_as_demo(datasets):
    assert list(datasets) == ["train", "test", "accident", "cctv", "lights", "zones", "parking"]
    for key, d in datasets.items():
        assert "데모" in d.name
        assert d.filename == f"demo_{key}.csv"
        assert d.encoding == ("cp949" if key in COORDINATE_KEYS else "utf-8")


@pytest.mark.parametrize("key", list(EXPECTED_COLUMNS))
def test_columns_in_exact_order(frames, key):
    assert list(frames[key].columns) == EXPECTED_COLUMNS[key]
    assert len(frames[key]) >= 100  # a few dozen rows at least, even at small scale


def test_row_counts_follow_scale(frames):
    assert len(frames["train"]) == round(39_609 * SMALL)
    assert len(frames["accident"]) == round(100_000 * SMALL)
    assert len(frames["lights"]) == round(71_913 * SMALL)


def test_encodings_are_real(datasets):
    for key, d in datasets.items():
        if key in COORDINATE_KEYS:
            with pytest.raises(UnicodeDecodeError) as caught:
                d.csv_bytes.decode("utf-8")
            assert caught.value.start == 0  # like the real files: the very first byte is not UTF-8
        else:
            d.csv_bytes.decode("utf-8")
            assert not d.csv_bytes.startswith(b"\xef\xbb\xbf")


@pytest.mark.parametrize("key", ["train", "accident"])
def test_eclo_is_the_weighted_casualty_sum(frames, key):
    df = frames[key]
    weighted = 10 * df["사망자수"] + 5 * df["중상자수"] + 3 * df["경상자수"] + df["부상자수"]
    assert (df["ECLO"] == weighted).all()
    assert df["ECLO"].min() >= 1
    assert all(pd.api.types.is_integer_dtype(df[c]) for c in [*CASUALTY_COLUMNS, "ECLO"])


@pytest.mark.parametrize("key", ["train", "test", "accident"])
def test_weekday_matches_the_date_and_vocabularies_hold(frames, key):
    df = frames[key]
    when = pd.to_datetime(df["사고일시"], format="%Y-%m-%d %H")
    assert (df["요일"] == when.dt.day_of_week.map(dict(enumerate(WEEKDAY_NAMES)))).all()
    years = {"test": {2022}}.get(key, {2019, 2020, 2021})
    assert set(when.dt.year) <= years
    for column, allowed in VOCABULARIES.items():
        assert set(df[column]) <= allowed, column


def test_ids_follow_the_real_numbering(frames):
    train, test, accident = frames["train"], frames["test"], frames["accident"]
    assert train["ID"].iloc[0] == "ACCIDENT_00000"
    assert test["ID"].iloc[0] == f"ACCIDENT_{len(train):05d}"  # test continues where train stops
    assert accident["ID"].iloc[0] == "COUNTRYWIDE_ACCIDENT_000000"
    assert all(df["ID"].is_unique for df in (train, test, accident))


def test_places_are_daegu_in_train_and_test_and_mostly_elsewhere_countrywide(frames):
    assert len(DAEGU_SIGUNGU) == len(set(DAEGU_SIGUNGU)) == 199
    assert {"대구광역시 중구 대신동", "대구광역시 달성군 화원읍", "대구광역시 북구 칠성동2가"} <= set(DAEGU_SIGUNGU)
    assert set(frames["train"]["시군구"]) <= set(DAEGU_SIGUNGU)
    assert set(frames["test"]["시군구"]) <= set(DAEGU_SIGUNGU)
    daegu_share = frames["accident"]["시군구"].isin(DAEGU_SIGUNGU).mean()
    assert 0.02 < daegu_share < 0.2


def test_driver_columns_look_real(frames):
    df = frames["accident"]
    ages = df["가해운전자 연령"]
    assert ages.str.fullmatch(r"\d{1,2}세|미분류").all()
    assert (ages == "미분류").any()
    victim = df[["피해운전자 차종", "피해운전자 성별", "피해운전자 연령", "피해운전자 상해정도"]]
    empty = victim.isna().all(axis=1)
    assert (victim.isna().any(axis=1) == empty).all()  # the four victim columns are empty together
    assert 0.01 < empty.mean() < 0.05


@pytest.mark.parametrize("key", COORDINATE_KEYS)
def test_coordinates_cluster_in_daegu_with_a_few_bad_ones(frames, key):
    df = frames[key]
    lat, lon = df["위도"], df["경도"]
    present = lat.notna() & lon.notna()
    in_korea = lat.between(33, 39) & lon.between(124, 132) & (lat != 0) & (lon != 0)
    bad = present & ~in_korea
    assert 1 <= bad.sum() < 0.01 * len(df)
    good = present & in_korea
    assert lat[good].between(35.60, 36.02).all() and lon[good].between(128.35, 128.77).all()


def test_lights_and_cctv_keep_the_real_gaps_and_float_years(datasets, frames):
    lights = frames["lights"]
    assert 0.5 < lights["위도"].notna().mean() < 0.72
    assert 0.3 < lights["설치연도"].notna().mean() < 0.52
    assert 0.38 < lights["소재지도로명주소"].notna().mean() < 0.58
    cctv_text = datasets["cctv"].csv_bytes.decode("cp949")
    first_row = cctv_text.splitlines()[1].split(",")
    assert first_row[-1].endswith(".0") and first_row[-2].endswith(".0")  # 설치연도 2010.0, 보호구역구분 99.0
    assert frames["cctv"]["도로노선번호"].isna().mean() > 0.5


def test_rejects_non_positive_scale():
    with pytest.raises(ValueError):
        generate_demo_datasets(scale=0)


def test_eclo_is_learnable_from_the_model_features():
    from sklearn.ensemble import HistGradientBoostingRegressor

    train = _read(next(d for d in generate_demo_datasets(scale=0.5) if d.key == "train"))
    hour = train["사고일시"].str[-2:].astype(int)
    features = pd.DataFrame(
        {c: train[c].astype("category") for c in ["기상상태", "노면상태", "도로형태", "사고유형", "시군구", "요일"]}
    ).assign(hour=hour, month=train["사고일시"].str[5:7].astype(int))
    target = np.log1p(train["ECLO"].to_numpy())
    order = np.random.default_rng(0).permutation(len(train))
    fit, hold = order[: int(0.8 * len(order))], order[int(0.8 * len(order)) :]
    model = HistGradientBoostingRegressor(
        categorical_features="from_dtype", max_iter=150, learning_rate=0.05, random_state=0
    ).fit(features.iloc[fit], target[fit])
    model_rmsle = np.sqrt(np.mean((model.predict(features.iloc[hold]) - target[hold]) ** 2))
    mean_rmsle = np.sqrt(np.mean((target[fit].mean() - target[hold]) ** 2))
    assert model_rmsle < 0.97 * mean_rmsle
    # The outcome statistics stay near DATA.md's (ECLO mean 4.727, std 3.207).
    assert 4.2 < train["ECLO"].mean() < 5.3
    assert 2.5 < train["ECLO"].std() < 3.8
