"""api.analysis predict_eclo / predict_eclo_batch: same numbers as the served model, and useful questions back."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from api.analysis import ToolContext, run_tool
from api.datasets.ingest import parse_csv
from api.demo.generate import generate_demo_datasets
from models.features import encode_frame
from models.loaded import LoadedModel
from models.train import train_eclo

ROW = {
    "사고일시": "2021-07-03 23",
    "기상상태": "비",
    "노면상태": "젖음/습기",
    "도로형태": "교차로 - 교차로안",
    "사고유형": "차대사람",
    "시군구": "대구광역시 달성군 화원읍",
}


@pytest.fixture(scope="module")
def frames() -> dict[str, pd.DataFrame]:
    return {d.key: parse_csv(d.csv_bytes).table.to_pandas() for d in generate_demo_datasets(scale=0.05)}


@pytest.fixture(scope="module")
def model(frames) -> LoadedModel:
    loaded = LoadedModel(train_eclo(frames["train"], num_boost_round=40))
    loaded.warm()
    return loaded


def predict(model, features, **datasets):
    return run_tool("predict_eclo", {"features": features}, ToolContext(datasets=datasets, model=model))


def test_single_prediction_matches_the_model(model):
    out = predict(model, ROW)
    assert out.record.ok, out.text
    expected = model.predict_row(ROW)
    label, sentence = model.interpret(expected)
    assert f"예측 ECLO: {expected:.2f} ({label})" in out.text and sentence in out.text
    assert "시간대=심야(자동)" in out.text and "요일=토요일(자동)" in out.text and "기상상태=비," in out.text
    assert out.record.rows_touched == 1 and out.record.dataset is None
    assert eval(out.record.snippet, {"model": model}) == expected  # the snippet is model.predict_row({...})


def test_aliases_json_text_and_numeric_parts_give_the_same_prediction(model):
    aliases = {
        "weather": "비", "road_surface": "젖음/습기", "road_type": "교차로 - 교차로안", "accident_type": "차대사람",
        "district": "대구광역시 달성군 화원읍", "datetime": "2021-07-03 23",
    }  # fmt: skip
    parts = {k: v for k, v in ROW.items() if k != "사고일시"} | {
        "사고연": "2021", "사고월": 7, "사고일": 3.0, "사고시": 23, "요일": "토요일",
    }  # fmt: skip
    expected = f"예측 ECLO: {model.predict_row(ROW):.2f}"
    for features in (aliases, parts, json.dumps(ROW, ensure_ascii=False)):
        out = predict(model, features)
        assert out.record.ok and expected in out.text, out.text
    raw_row = ROW | {"ID": "ACCIDENT_00001", "ECLO": 3, "피해운전자 성별": None}  # a raw accident row works too
    assert expected in predict(model, raw_row).text


def test_missing_features_are_all_named_with_their_values(model):
    out = predict(model, {"기상상태": "비"})
    assert not out.record.ok and out.record.rows_touched == 0
    for needle in (
        "노면상태 값이 없습니다",
        "도로형태 값이 없습니다",
        "사고유형 값이 없습니다",
        "시군구 값이 없습니다",
    ):
        assert needle in out.text
    assert "사고일시 값이 없습니다" in out.text and "YYYY-MM-DD HH" in out.text
    assert "차대사람, 차대차, 차량단독" in out.text and "건조" in out.text
    assert "사용자에게 물어본" in out.text and "노면상태" in out.record.summary


def test_invalid_values_and_typos(model):
    out = predict(model, ROW | {"기상상태": "폭우", "시군구": "화원읍"})
    assert not out.record.ok
    assert "기상상태 값 '폭우'은(는) 올바르지 않습니다" in out.text and "맑음" in out.text
    assert "'대구광역시 달성군 화원읍'" in out.text  # a close vocabulary value is suggested
    typo = {k: v for k, v in ROW.items() if k != "기상상태"} | {"기상상테": "비"}
    out = predict(model, typo)
    assert not out.record.ok and "혹시 '기상상태'" in out.text and "기상상태 값이 없습니다" in out.text
    out = predict(model, ROW | {"사고일시": "어제 밤"})
    assert not out.record.ok and "사고일시 값 '어제 밤'" in out.text
    out = predict(model, ROW | {"weather": "비"})  # the same feature twice
    assert not out.record.ok and "두 번" in out.text


@pytest.mark.parametrize("features", [None, [], "not json", 5, ["기상상태", "비"]])
def test_features_must_be_an_object(model, features):
    out = predict(model, features)
    assert not out.record.ok and ("객체" in out.text or "필수 인자" in out.text)


def test_no_model():
    out = predict(None, ROW)
    assert not out.record.ok and out.text.startswith("활성 모델이 없습니다")
    batch = run_tool("predict_eclo_batch", {}, ToolContext(datasets={"t": pd.DataFrame({"a": [1]})}))
    assert not batch.record.ok and batch.text.startswith("활성 모델이 없습니다")


def test_batch_matches_encode_frame_and_predict(model, frames):
    frame = frames["train"].head(300).copy()
    frame.loc[3, "기상상태"] = "우박"
    frame.loc[5, "사고일시"] = pd.NaT
    ctx = ToolContext(datasets={"train": frame}, model=model)
    out = run_tool("predict_eclo_batch", {}, ctx)
    assert out.record.ok, out.text
    batch = encode_frame(frame, model.metadata, ignore_unknown=True)
    predicted = model.predict(batch.matrix)
    assert len(batch.errors) == 2 and len(predicted) == 298
    assert "예측 대상 300행: 유효 298행, 무효 2행" in out.text
    assert "첫 무효 행 (행 3): 기상상태 값 '우박'" in out.text
    mean = f"{predicted.mean():.4f}".rstrip("0").rstrip(".")
    assert f"평균 {mean}," in out.text
    labels = pd.Series(model.labels(predicted)).value_counts()
    for band in model.metadata.bands:
        assert f"{band.label} {int(labels.get(band.label, 0)):,} (" in out.text
    mae = np.abs(frame["ECLO"].to_numpy()[batch.row_index] - predicted).mean()
    assert f"평균절대오차 {mae:.4f}".rstrip("0") in out.text
    namespace = {"df": frame, "pd": pd, "np": np, "model": model}
    lines = out.record.snippet.split("\n")
    exec("\n".join(lines[:-1]), namespace)
    described = eval(lines[-1], namespace)
    assert described["count"] == 298 and described["mean"] == pytest.approx(predicted.mean())
    assert out.record.rows_touched == 300


def test_batch_with_conditions_and_limits(model, frames):
    frame = frames["train"]
    ctx = ToolContext(datasets={"train": frame, "cctv": frames["cctv"]}, model=model)
    args = {"dataset": "train", "conditions": [{"column": "사고유형", "op": "==", "value": "차대사람"}], "limit": 25}
    out = run_tool("predict_eclo_batch", args, ctx)
    pedestrians = frame[frame["사고유형"] == "차대사람"]
    assert out.record.ok and out.record.rows_touched == 25
    assert f"대상 {len(pedestrians):,}행 중 앞 25행만 예측" in out.text
    expected = model.predict(encode_frame(pedestrians.head(25), model.metadata, ignore_unknown=True).matrix)
    assert f"최댓값 {expected.max():.4f}".rstrip("0") in out.text
    huge = run_tool("predict_eclo_batch", {"dataset": "train", "limit": 10**9}, ctx)
    assert huge.record.ok and "10,000(으)로 조정" in huge.text and huge.record.rows_touched == min(len(frame), 10_000)
    wrong = run_tool("predict_eclo_batch", {"dataset": "cctv"}, ctx)
    assert not wrong.record.ok and "예측할 수 없습니다" in wrong.text and "기상상태" in wrong.text
    missing = run_tool("predict_eclo_batch", {}, ctx)
    assert not missing.record.ok and "dataset" in missing.text


def test_predict_eclo_needs_no_dataset(model, frames):
    two = ToolContext(datasets={"a": frames["train"], "b": frames["cctv"]}, model=model)
    out = run_tool("predict_eclo", {"features": ROW, "dataset": "a"}, two)
    assert out.record.ok and out.record.dataset is None
    assert run_tool("predict_eclo", {"features": ROW}, ToolContext(datasets={}, model=model)).record.ok
