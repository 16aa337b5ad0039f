"""Deterministic synthetic demo datasets in the exact shapes of the Daegu road-safety files.

Nothing here is real data: every dataset's display name contains "데모". The accident outcomes are
drawn from a hidden severity model over the model features (accident type, hour, road form, surface,
weather, place, weekday, month), so a model trained on the demo train file learns something real.
All randomness comes from one seed, so the same call always returns the same bytes.

Over 400 lines on purpose: it is one generator; all seven recipes draw on one shared `_World` (place effects,
where each 동 lies) and one hidden severity model, which read best side by side.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from api.demo import vocab as v

DEFAULT_SEED = 20241124
MIN_ROWS = 120  # enough for a handful of bad coordinates to stay under 1 % of rows

DEMO_TRAIN_NAME = "데모 대구 교통사고 학습 데이터 (train)"  # the first `make run` trains the demo model on it

# key -> (display name, base row count at scale 1.0, encoding of the real file)
_SPECS: dict[str, tuple[str, int, str]] = {
    "train": (DEMO_TRAIN_NAME, 39_609, "utf-8"),
    "test": ("데모 대구 교통사고 평가 데이터 (test)", 10_963, "utf-8"),
    "accident": ("데모 전국 교통사고 데이터 (countrywide_accident)", 100_000, "utf-8"),
    "cctv": ("데모 대구 CCTV 정보", 1_065, "cp949"),
    "lights": ("데모 대구 보안등 정보", 71_913, "cp949"),
    "zones": ("데모 대구 어린이 보호 구역 정보", 650, "cp949"),
    "parking": ("데모 대구 주차장 정보", 1_100, "cp949"),
}

# Hidden severity model: value -> (shift of the logit of "serious or fatal", shift of log extra casualties).
_EFFECTS: dict[str, dict[str, tuple[float, float]]] = {
    "사고유형": {"차대차": (0.0, 0.15), "차대사람": (2.3, -1.0), "차량단독": (1.0, -1.0)},
    "도로형태": {
        "단일로 - 터널": (1.2, 1.0), "단일로 - 고가도로위": (0.8, 0.6), "단일로 - 교량": (0.7, 0.5),
        "단일로 - 지하차도(도로)내": (0.7, 0.6), "교차로 - 교차로안": (0.2, 0.45), "교차로 - 교차로부근": (0.0, 0.2),
        "교차로 - 교차로횡단보도내": (0.6, -0.2), "주차장 - 주차장": (-1.2, -0.8), "기타 - 기타": (-0.4, -0.2),
    },
    "노면상태": {"젖음/습기": (0.4, 0.25), "서리/결빙": (0.9, 0.5), "적설": (0.8, 0.5), "침수": (0.7, 0.3)},
    "기상상태": {"비": (0.2, 0.1), "눈": (0.4, 0.2), "안개": (0.8, 0.4), "기타": (0.1, 0.0)},
    "시간대": {"심야": (0.9, 0.3), "출근시간대": (-0.3, -0.1), "퇴근시간대": (0.1, 0.2)},
    "요일": {"토요일": (0.3, 0.45), "일요일": (0.35, 0.5)},
    "구군": {
        "달성군": (0.8, 0.3), "중구": (-0.6, -0.3), "동구": (0.3, 0.1), "서구": (0.2, 0.0),
        "남구": (-0.2, -0.1), "수성구": (-0.3, -0.1), "북구": (0.0, 0.1), "달서구": (0.1, 0.2),
    },
    # Detail types are not model features: they add realistic noise the model cannot explain.
    "세부분류": {"정면충돌": (0.6, 0.3), "추돌": (-0.1, 0.35), "횡단중": (0.2, 0.0), "공작물충돌": (0.3, 0.0)},
}  # fmt: skip
# Provinces outside Daegu: rural ones see faster roads and worse outcomes.
_PROVINCE_SEVERITY = {"서울특별시": -0.25, "경기도": 0.0, "전라남도": 0.45, "경상북도": 0.4, "충청남도": 0.3}
_MEAN_EXTRA_CASUALTIES = 0.467  # DATA.md: casualties per accident average 1.467
_SERIOUS_LOGIT = -2.6  # calibrated so the (serious + fatal) share of casualties is about 18 %
_FATAL_GIVEN_SERIOUS_LOGIT = -6.7
_MINOR_LOGIT = -1.9  # 부상 is about 10 % of the non-serious casualties


@dataclass(frozen=True)
class DemoDataset:
    """One synthetic CSV file, encoded the way the real file is."""

    name: str  # Korean display name, always contains "데모"
    key: str  # train, test, accident, cctv, lights, zones, parking
    filename: str
    csv_bytes: bytes
    encoding: str  # "utf-8" or "cp949", as the real file is encoded


def generate_demo_datasets(seed: int = DEFAULT_SEED, *, scale: float = 1.0) -> list[DemoDataset]:
    """Generate the seven demo datasets; the same seed and scale always give byte-identical CSVs."""
    if scale <= 0:
        raise ValueError("scale must be positive")
    # Independent child streams keep each dataset stable even if another one's recipe changes.
    streams = np.random.SeedSequence(seed).spawn(len(_SPECS) + 1)
    world = _World(np.random.default_rng(streams[0]))
    rows = {key: max(MIN_ROWS, round(base * scale)) for key, (_, base, _) in _SPECS.items()}
    builders: dict[str, Callable[[np.random.Generator, int], pd.DataFrame]] = {
        "train": lambda rng, n: world.accidents(rng, n, "ACCIDENT_", 5, 0, daegu_only=True),
        "test": lambda rng, n: world.test(rng, n, first_id=rows["train"]),
        "accident": lambda rng, n: world.accidents(rng, n, "COUNTRYWIDE_ACCIDENT_", 6, 0, daegu_only=False),
        "cctv": world.cctv,
        "lights": world.lights,
        "zones": world.zones,
        "parking": world.parking,
    }
    out = []
    for stream, (key, (name, _, encoding)) in zip(streams[1:], _SPECS.items(), strict=True):
        frame = builders[key](np.random.default_rng(stream), rows[key])
        text = frame.to_csv(index=False, lineterminator="\n")
        out.append(DemoDataset(name, key, f"demo_{key}.csv", text.encode(encoding), encoding))
    return out


def _pick(rng: np.random.Generator, table: Mapping[str, float], n: int) -> np.ndarray:
    """Sample n values of a vocabulary with the given (unnormalised) shares."""
    p = np.fromiter(table.values(), float)
    return np.array(list(table), dtype=object)[rng.choice(len(p), size=n, p=p / p.sum())]


def _pick_by(rng: np.random.Generator, keys: np.ndarray, tables: Mapping[str, Mapping[str, float]]) -> np.ndarray:
    """Sample a value per row from the table selected by that row's key."""
    out = np.empty(len(keys), dtype=object)
    for key, table in tables.items():
        mask = keys == key
        out[mask] = _pick(rng, table, int(mask.sum()))
    return out


def _effect(values: np.ndarray, table: Mapping[str, tuple[float, float]]) -> np.ndarray:
    """Per-row (severity, count) shifts, shape (n, 2); values missing from the table shift nothing."""
    uniq, inverse = np.unique(values.astype(str), return_inverse=True)
    return np.array([table.get(u, (0.0, 0.0)) for u in uniq]).reshape(-1, 2)[inverse]


def _dates(rng: np.random.Generator, n: int, first: str, last: str) -> tuple[np.ndarray, ...]:
    """Random accident hours: "YYYY-MM-DD HH" labels with weekday index (Mon=0), hour and month."""
    days = np.arange(np.datetime64(first), np.datetime64(last) + 1)
    day = rng.integers(0, len(days), n)
    weights = np.array(v.HOUR_WEIGHTS)
    hour = rng.choice(24, size=n, p=weights / weights.sum())
    labels = np.char.add(np.char.add(days.astype(str)[day], " "), np.char.zfill(hour.astype(str), 2))
    weekday = (days.astype("int64")[day] + 3) % 7  # 1970-01-01 was a Thursday
    month = days.astype("datetime64[M]").astype("int64")[day] % 12 + 1
    return labels.astype(object), weekday, hour, month


class _World:
    """Fixed per-seed facts shared by all datasets: place effects and where each 동 lies."""

    def __init__(self, rng: np.random.Generator) -> None:
        self.sigungu = np.array(v.DAEGU_SIGUNGU, dtype=object)
        self.gu = np.array([s.split()[1] for s in v.DAEGU_SIGUNGU], dtype=object)
        self.dong = np.array([s.split()[2] for s in v.DAEGU_SIGUNGU], dtype=object)
        gu_index = np.unique(self.gu, return_inverse=True)[1]
        gu_share = np.array([v.DISTRICT_SHARES[g] for g in self.gu]) / np.bincount(gu_index)[gu_index]
        self.place_p = gu_share * rng.lognormal(0, 0.6, len(gu_share))  # some 동 see far more traffic
        self.place_p /= self.place_p.sum()
        self.place_effect = _effect(self.gu, _EFFECTS["구군"]) + rng.normal(0, [0.45, 0.25], (len(self.gu), 2))
        self.other = np.array(v.OTHER_SIGUNGU, dtype=object)
        province = np.array([_PROVINCE_SEVERITY.get(s.split()[0], 0.1) for s in v.OTHER_SIGUNGU])
        self.other_effect = np.c_[province, np.zeros(len(province))] + rng.normal(0, [0.3, 0.15], (len(province), 2))
        spread = np.where(self.gu == "달성군", 0.06, 0.014)
        centre = np.array([v.DISTRICT_CENTRES[g] for g in self.gu])
        self.centre = centre + rng.normal(0, 1, centre.shape) * spread[:, None]

    # ---- accidents -------------------------------------------------------------------------------
    def _features(self, rng: np.random.Generator, n: int, first: str, last: str, daegu_only: bool):
        """The accident-feature columns (no ID) and each row's hidden (severity, count) shift."""
        labels, weekday, hour, month = _dates(rng, n, first, last)
        place = rng.choice(len(self.sigungu), size=n, p=self.place_p)
        sigungu, place_effect = self.sigungu[place], self.place_effect[place]
        if not daegu_only:  # about 7 % of the country's accidents happen in Daegu
            other = rng.random(n) >= 0.07
            idx = rng.integers(0, len(self.other), n)[other]
            sigungu[other], place_effect[other] = self.other[idx], self.other_effect[idx]
        weather = _pick(rng, v.WEATHER, n)
        weather[(weather == "눈") & (month >= 4) & (month <= 10)] = "비"  # no summer snow
        cols = {
            "사고일시": labels,
            "요일": np.array(v.WEEKDAYS, dtype=object)[weekday],
            "기상상태": weather,
            "시군구": sigungu,
            "도로형태": _pick(rng, v.ROAD_FORMS, n),
            "노면상태": _pick_by(rng, weather, v.SURFACE_BY_WEATHER),
            "사고유형": _pick(rng, v.ACCIDENT_TYPES, n),
        }
        band = np.array(v.HOUR_BANDS, dtype=object)[hour]
        shift = place_effect + sum(_effect(cols[c], _EFFECTS[c]) for c in ("사고유형", "도로형태", "노면상태"))
        shift += _effect(cols["기상상태"], _EFFECTS["기상상태"]) + _effect(band, _EFFECTS["시간대"])
        shift += _effect(cols["요일"], _EFFECTS["요일"])
        shift[:, 0] += 0.15 * np.cos(2 * np.pi * (month - 1) / 12) + 0.25 * ((hour >= 1) & (hour <= 4))
        return cols, shift

    def test(self, rng, n, first_id):
        cols, _ = self._features(rng, n, "2022-01-01", "2022-12-31", daegu_only=True)
        return pd.DataFrame({"ID": _ids("ACCIDENT_", first_id, n, 5), **cols}, columns=v.TEST_COLUMNS)

    def accidents(self, rng, n, prefix, width, first_id, *, daegu_only):
        cols, shift = self._features(rng, n, "2019-01-01", "2021-12-31", daegu_only)
        cols["ID"] = _ids(prefix, first_id, n, width)  # the column order below puts it first
        kind = cols["사고유형"]
        cols["사고유형 - 세부분류"] = _pick_by(rng, kind, v.DETAIL_BY_TYPE)
        shift += _effect(cols["사고유형 - 세부분류"], _EFFECTS["세부분류"])
        violation = _pick(rng, v.VIOLATIONS, n)
        violation[(kind == "차대사람") & (rng.random(n) < 0.25)] = "보행자보호의무위반"
        cols["법규위반"] = violation
        counts = _casualties(rng, shift)
        cols.update(_people(rng, kind, counts))
        for name, count in zip(("사망자수", "중상자수", "경상자수", "부상자수"), counts, strict=True):
            cols[name] = count
        cols["ECLO"] = 10 * counts[0] + 5 * counts[1] + 3 * counts[2] + counts[3]
        return pd.DataFrame(cols, columns=v.ACCIDENT_COLUMNS)

    # ---- facilities ------------------------------------------------------------------------------
    def _places(self, rng: np.random.Generator, n: int, noise: float = 0.006) -> dict[str, Any]:
        """Facility locations clustered around each 동's centre, with addresses that agree."""
        place = rng.choice(len(self.sigungu), size=n, p=self.place_p)
        gu, dong = self.gu[place], self.dong[place]
        (lat0, lat1), (lon0, lon1) = v.DAEGU_BOX["lat"], v.DAEGU_BOX["lon"]
        point = self.centre[place] + rng.normal(0, noise, (n, 2))
        lat = np.round(np.clip(point[:, 0], lat0 + 0.001, lat1 - 0.001), 6)
        lon = np.round(np.clip(point[:, 1], lon0 + 0.001, lon1 - 0.001), 6)
        road = np.array([v.ROADS[g][i] for g, i in zip(gu, rng.integers(0, 5, n), strict=True)], dtype=object)
        number, lot, sub = rng.integers(1, 400, n), rng.integers(1, 2000, n), rng.integers(0, 30, n)
        road_addr = [f"대구광역시 {g} {r} {k}" for g, r, k in zip(gu, road, number, strict=True)]
        lot_addr = [
            f"대구광역시 {g} {d} {k}" + (f"-{s}" if s else "") for g, d, k, s in zip(gu, dong, lot, sub, strict=True)
        ]
        return dict(gu=gu, dong=dong, lat=lat, lon=lon, road=road, road_addr=road_addr, lot_addr=lot_addr)

    def cctv(self, rng, n):
        p = self._places(rng, n)
        prefix = _pick(rng, {"과속": 0.45, "신호": 0.3, "주차": 0.15, "구간": 0.1}, n)
        road_kind = _pick(rng, {"시도": 0.85, "일반국도": 0.1, "지방도": 0.05}, n)
        route_no = _pick_by(rng, road_kind, {"일반국도": {"4": 1, "5": 1, "25": 1}, "지방도": {"905": 1, "909": 1}})
        speed = rng.choice([30, 50, 60, 70, 80], size=n, p=[0.45, 0.35, 0.14, 0.04, 0.02])
        section = rng.random(n) < 0.03  # average-speed sections are rare
        landmark = _pick(rng, {"초등학교": 3, "사거리": 3, "삼거리": 2, "교차로": 2, "육교": 1, "정류장": 1}, n)
        # School-zone cameras (30 km/h) mostly went up in the 2019-2022 school-zone programme.
        year = np.where(speed == 30, rng.integers(2018, 2023, n), rng.integers(2005, 2023, n)).astype(float)
        return pd.DataFrame(
            {
                "무인교통단속카메라관리번호": prefix + (_cumcount(prefix) + 1).astype(str),
                "시도명": "대구광역시",
                "시군구명": p["gu"],
                "도로종류": road_kind,
                "도로노선번호": route_no,
                "도로노선명": p["road"],
                "도로노선방향": rng.integers(1, 4, n),
                "소재지도로명주소": p["road_addr"],
                "소재지지번주소": p["lot_addr"],
                "위도": p["lat"],
                "경도": p["lon"],
                "설치장소": p["road"] + " " + p["dong"] + landmark + " 앞",
                "단속구분": rng.choice([1, 2, 3, 4], size=n, p=[0.45, 0.35, 0.1, 0.1]),
                "제한속도": speed,
                "단속구간위치구분": pd.Series(rng.integers(1, 3, n), dtype="Int64").where(section),
                "과속단속구간길이": pd.Series(rng.integers(8, 40, n) * 100, dtype="Int64").where(section),
                "보호구역구분": np.where(speed == 30, 1.0, 99.0),
                "설치연도": year,
            },
            columns=v.CCTV_COLUMNS,
        ).pipe(_with_bad_coordinates, rng)

    def lights(self, rng, n):
        p = self._places(rng, n, noise=0.008)
        stem = np.array([d[:-1] if d.endswith("동") else d for d in p["dong"]], dtype=object)
        numbered = np.array([d.endswith("동") for d in p["dong"]])
        stem = np.where(numbered, stem + rng.integers(1, 5, n).astype(str) + "동", stem)
        has_coords = rng.random(n) < 0.61
        lat, lon = _spoil_coordinates(rng, p["lat"], p["lon"], has_coords)
        return pd.DataFrame(
            {
                "보안등위치명": stem + (_cumcount(stem) + 1).astype(str),
                "설치개수": rng.choice([1, 2, 3], size=n, p=[0.9, 0.09, 0.01]),
                # numpy's stubs take no None as an array-like; NumPy makes it an object array, as wanted here.
                "소재지도로명주소": np.where(rng.random(n) < 0.48, np.array(p["road_addr"], dtype=object), None),  # type: ignore[call-overload]
                "소재지지번주소": p["lot_addr"],
                "위도": np.where(has_coords, lat, np.nan),
                "경도": np.where(has_coords, lon, np.nan),
                "설치연도": np.where(rng.random(n) < 0.41, rng.integers(1995, 2023, n), np.nan),
                "설치형태": _pick(rng, {"한전주": 0.55, "전용주": 0.3, "건축물": 0.1, "기타": 0.05}, n),
            },
            columns=v.LIGHTS_COLUMNS,
        )

    def zones(self, rng, n):
        p = self._places(rng, n)
        kind = _pick(rng, {"초등학교": 0.3, "유치원": 0.3, "어린이집": 0.35, "특수학교": 0.02, "학원": 0.03}, n)
        adjective = _pick(rng, dict.fromkeys(("해맑은", "새싹", "푸른", "햇살", "꿈나무", "한빛", "숲속"), 1), n)
        stem = np.array([d.rstrip("0123456789가") for d in p["dong"]], dtype=object)
        school = np.isin(kind, ["초등학교", "특수학교"])
        name = np.where(school, "대구" + stem + np.where(kind == "특수학교", "학교", kind), stem + adjective + kind)
        cctv = rng.random(n) < 0.75
        return pd.DataFrame(
            {
                "시설종류": kind,
                "대상시설명": name,
                "소재지도로명주소": p["road_addr"],
                "소재지지번주소": p["lot_addr"],
                "위도": p["lat"],
                "경도": p["lon"],
                "관리기관명": "대구광역시 " + p["gu"] + "청",
                "관할경찰서명": [v.POLICE[g] for g in p["gu"]],
                "CCTV설치여부": np.where(cctv, "Y", "N"),
                "CCTV설치대수": np.where(cctv, rng.integers(1, 6, n), 0),
                "보호구역도로폭": rng.choice([6, 8, 10, 12, 15, 20], size=n),
                "데이터기준일자": "2022-06-30",
            },
            columns=v.ZONES_COLUMNS,
        ).pipe(_with_bad_coordinates, rng)

    def parking(self, rng, n):
        p = self._places(rng, n)
        public = rng.random(n) < 0.6
        kind = _pick(rng, {"노상": 0.35, "노외": 0.55, "부설": 0.1}, n)
        days = _pick(rng, {"평일+토요일+공휴일": 0.7, "평일+토요일": 0.2, "평일": 0.1}, n)
        all_day = rng.random(n) < 0.4
        start, end = np.where(all_day, "00:00", "09:00"), np.where(all_day, "23:59", "18:00")
        sat, hol = np.char.find(days.astype(str), "토요일") >= 0, np.char.find(days.astype(str), "공휴일") >= 0
        paid = rng.random(n) < 0.75
        gu_code = np.array([f"{150 + list(v.ROADS).index(g)}" for g in p["gu"]], dtype=object)
        serial = np.char.zfill(np.arange(1, n + 1).astype(str), 6)
        brand = _pick(rng, dict.fromkeys(("제일", "중앙", "센트럴", "스마트"), 1), n)
        public_name = p["dong"] + np.where(kind == "노상", " 노상공영주차장", " 공영주차장")
        lots = np.where(kind == "노상", rng.integers(5, 60, n), np.rint(rng.lognormal(3.8, 0.8, n)).astype(int) + 5)
        return pd.DataFrame(
            {
                "주차장관리번호": gu_code + np.where(public, "-1-", "-2-") + serial,
                "주차장명": np.where(public, public_name, p["dong"] + " " + brand + "주차장"),
                "주차장구분": np.where(public, "공영", "민영"),
                "주차장유형": kind,
                "소재지도로명주소": p["road_addr"],
                "소재지지번주소": p["lot_addr"],
                "주차구획수": lots,
                "급지구분": rng.integers(1, 4, n),
                "운영요일": days,
                "평일운영시작시각": start,
                "평일운영종료시각": end,
                "토요일운영시작시각": np.where(sat, start, "00:00"),
                "토요일운영종료시각": np.where(sat, end, "00:00"),
                "공휴일운영시작시각": np.where(hol, start, "00:00"),
                "공휴일운영종료시각": np.where(hol, end, "00:00"),
                "요금정보": np.where(paid, "유료", "무료"),
                "주차기본시간": rng.choice([30, 60], size=n),
                "주차기본요금": np.where(paid, rng.choice([300, 500, 600, 1000], size=n), 0),
                "추가단위시간": rng.choice([10, 15, 30], size=n),
                "추가단위요금": np.where(paid, rng.choice([100, 200, 300, 500], size=n), 0),
                "위도": p["lat"],
                "경도": p["lon"],
            },
            columns=v.PARKING_COLUMNS,
        ).pipe(_with_bad_coordinates, rng)


def _ids(prefix: str, first: int, n: int, width: int) -> np.ndarray:
    return np.char.add(prefix, np.char.zfill(np.arange(first, first + n).astype(str), width)).astype(object)


def _cumcount(values: np.ndarray) -> np.ndarray:
    """1st, 2nd, ... occurrence of each value (0-based), for readable sequential identifiers."""
    return pd.Series(values).groupby(values, sort=False).cumcount().to_numpy()


def _casualties(rng: np.random.Generator, shift: np.ndarray) -> tuple[np.ndarray, ...]:
    """Fatal, serious, light and minor casualty counts per accident; every accident has at least one."""
    n = len(shift)
    rate = np.exp(shift[:, 1])
    rate *= _MEAN_EXTRA_CASUALTIES / rate.mean()
    extra = rng.poisson(rate * rng.gamma(3.0, 1 / 3.0, n))  # gamma mixing: a few pile-ups with many hurt
    owner = np.repeat(np.arange(n), 1 + extra)  # one entry per casualty, naming its accident
    serious_p = 1 / (1 + np.exp(-(_SERIOUS_LOGIT + shift[owner, 0])))
    fatal_p = 1 / (1 + np.exp(-(_FATAL_GIVEN_SERIOUS_LOGIT + 1.2 * shift[owner, 0])))
    serious = rng.random(len(owner)) < serious_p
    fatal = serious & (rng.random(len(owner)) < fatal_p)
    # Milder accidents more often leave only a reported (1-point) injury.
    minor_p = 1 / (1 + np.exp(-(_MINOR_LOGIT - 1.0 * shift[owner, 0])))
    minor = ~serious & (rng.random(len(owner)) < minor_p)
    light = ~serious & ~minor
    return tuple(np.bincount(owner[m], minlength=n) for m in (fatal, serious & ~fatal, light, minor))


def _people(rng: np.random.Generator, kind: np.ndarray, counts: tuple[np.ndarray, ...]) -> dict[str, np.ndarray]:
    """Driver and victim columns; single-vehicle accidents have no victim driver (empty columns)."""
    n = len(kind)
    worst = np.select([c > 0 for c in counts], ["사망", "중상", "경상", "부상신고"], "상해없음").astype(object)
    driver_injury = _pick(rng, {"상해없음": 0.75, "경상": 0.12, "부상신고": 0.08, "기타불명": 0.05}, n)
    pedestrian, single = kind == "차대사람", kind == "차량단독"
    victim_age = np.where(pedestrian, rng.normal(52, 20, n), rng.normal(45, 15, n))
    cols = {
        "가해운전자 차종": _pick(rng, v.VEHICLES, n),
        "가해운전자 성별": _pick(rng, v.DRIVER_GENDERS, n),
        "가해운전자 연령": _ages(rng, rng.normal(47, 14, n), 16, 0.01),
        "가해운전자 상해정도": np.where(single, worst, driver_injury),
        "피해운전자 차종": np.where(pedestrian, "보행자", _pick(rng, v.VEHICLES, n)).astype(object),
        "피해운전자 성별": _pick(rng, v.VICTIM_GENDERS, n),
        "피해운전자 연령": _ages(rng, victim_age, 1, 0.015),
        "피해운전자 상해정도": worst,
    }
    for name in ("피해운전자 차종", "피해운전자 성별", "피해운전자 연령", "피해운전자 상해정도"):
        cols[name][single] = None
    return cols


def _ages(rng: np.random.Generator, raw: np.ndarray, youngest: int, unknown_share: float) -> np.ndarray:
    ages = np.char.add(np.clip(np.rint(raw), youngest, 98).astype(int).astype(str), "세").astype(object)
    ages[rng.random(len(raw)) < unknown_share] = "미분류"
    return ages


def _spoil_coordinates(rng: np.random.Generator, lat: np.ndarray, lon: np.ndarray, eligible: np.ndarray):
    """Corrupt a handful (~0.3 %, at least one) of eligible points the way real files are corrupt."""
    lat, lon = lat.astype(float).copy(), lon.astype(float).copy()
    candidates = np.flatnonzero(eligible)
    chosen = rng.choice(candidates, size=max(1, round(0.003 * len(candidates))), replace=False)
    for i, row in enumerate(np.sort(chosen)):
        style = i % 4
        if style == 0:  # never geocoded
            lat[row], lon[row] = 0.0, 0.0
        elif style == 1:  # latitude and longitude swapped
            lat[row], lon[row] = lon[row], lat[row]
        elif style == 2:  # longitude lost
            lon[row] = 0.0
        else:  # a typo that lands in the sea east of Korea
            lon[row] = lon[row] + 12.0
    return lat, lon


def _with_bad_coordinates(frame: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    frame["위도"], frame["경도"] = _spoil_coordinates(
        rng, frame["위도"].to_numpy(), frame["경도"].to_numpy(), np.ones(len(frame), bool)
    )
    return frame
