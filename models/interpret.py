"""Interpretation of a predicted ECLO: Korean severity bands and the percentile among training accidents.

ECLO weights one casualty as 사망 10, 중상 5, 경상 3, 부상신고 1. The band cut points are fixed on that
scale so that a label means the same thing for every model version:

- 경미 (ECLO < 4): at most about one light injury (경상 3 points) plus a reported injury (1 point). This is
  the typical accident: the training median and lower quartile are both 3 (DATA.md).
- 보통 (4 ≤ ECLO < 7): more than one light injury, up to about one serious injury (중상 5) plus a little.
  The training upper quartile (6) lies here.
- 심각 (7 ≤ ECLO < 10): more than one serious injury equivalent — e.g. 중상 1 + 경상 1 (8) or 경상 3 (9).
  Roughly the top 10–15 % of training accidents.
- 매우 심각 (ECLO ≥ 10): at least one death (10) or two serious injuries (10) equivalent; about the top 5–10 %.

A prediction is an expected value (on the log1p scale, a geometric-type mean), so predictions spread less
than single accidents: 매우 심각 predictions are rare by design. Each band's description states its
grounding and the share of training accidents that fall in it, computed from the model's training quantiles.
"""

from __future__ import annotations

import bisect
import functools
from collections.abc import Sequence
from typing import Any

import numpy as np

from models.metadata import InterpretationBand

# (label, lower, upper, grounding in casualty terms)
BAND_CUTS: tuple[tuple[str, float, float | None, str], ...] = (
    ("경미", 0.0, 4.0, "경상자 1명(3점)과 부상신고 1명(1점) 이하에 해당하는 피해 수준"),
    ("보통", 4.0, 7.0, "경상자 1명을 넘고 중상자 1명(5점) 남짓까지의 피해 수준"),
    ("심각", 7.0, 10.0, "중상자 1명을 넘는 피해(예: 중상 1명+경상 1명=8점, 경상 3명=9점) 수준"),
    ("매우 심각", 10.0, None, "사망자 1명(10점) 또는 중상자 2명(10점) 이상에 해당하는 피해 수준"),
)


def quantiles_of(values: np.ndarray) -> list[float]:
    """101 quantiles (0 %, 1 %, …, 100 %) of training ECLO values."""
    return [float(q) for q in np.quantile(np.asarray(values, dtype=np.float64), np.linspace(0.0, 1.0, 101))]


class PercentileScale:
    """Position (0–100) of an ECLO among training accidents, interpolated on the quantile function.

    ECLO is discrete, so the quantile function has plateaus (e.g. 3 from the 25th to the 50th percentile);
    a value on a plateau gets its middle, values between plateaus are interpolated. Monotonic in eclo.
    The plateau tables are built once per model, not per call (this sits on the prediction hot path).
    """

    def __init__(self, quantiles: Sequence[float]) -> None:
        q = np.asarray(quantiles, dtype=np.float64)
        grid = np.linspace(0.0, 100.0, len(q))
        self._values, first = np.unique(q, return_index=True)
        last = len(q) - 1 - np.unique(q[::-1], return_index=True)[1]
        self._first, self._last = grid[first], grid[last]
        # The same tables as Python lists, for one float at a time (a single prediction): two np.interp
        # calls on a scalar cost several times the arithmetic.
        self._value_list = self._values.tolist()
        self._first_list, self._last_list = self._first.tolist(), self._last.tolist()

    def __call__(self, eclo: float | np.ndarray) -> Any:
        """Takes a float (returns a float) or an array (returns an array)."""
        if isinstance(eclo, float | int):
            return self._one(float(eclo))
        low = np.interp(eclo, self._values, self._first, left=0.0, right=100.0)
        high = np.interp(eclo, self._values, self._last, left=0.0, right=100.0)
        result = np.clip((low + high) / 2.0, 0.0, 100.0)
        return float(result) if np.ndim(result) == 0 else result

    def _one(self, x: float) -> float:
        """The array path's value for one float, computed as np.interp computes it (so equal to the bit)."""
        xs = self._value_list
        if x < xs[0]:
            return 0.0
        if x > xs[-1]:
            return 100.0
        if len(xs) == 1:  # one knot: np.interp answers its value, for NaN too
            j, on_knot = 0, True
        elif x != x:  # NaN stays NaN, as through np.interp and np.clip
            return x
        else:
            j = bisect.bisect_right(xs, x) - 1  # xs[j] <= x < xs[j + 1], or x == xs[-1]
            on_knot = xs[j] == x
        if on_knot:
            low, high = self._first_list[j], self._last_list[j]
        else:
            low = _between(x, xs[j], xs[j + 1], self._first_list[j], self._first_list[j + 1])
            high = _between(x, xs[j], xs[j + 1], self._last_list[j], self._last_list[j + 1])
        return min(max((low + high) / 2.0, 0.0), 100.0)


def _between(x: float, x0: float, x1: float, y0: float, y1: float) -> float:
    """np.interp's formula between two knots (numpy's compiled_base.c: slope first, then from the left)."""
    return (y1 - y0) / (x1 - x0) * (x - x0) + y0


def percentile(eclo: float | np.ndarray, quantiles: Sequence[float]) -> Any:
    """PercentileScale(quantiles)(eclo), for one-off use."""
    return PercentileScale(quantiles)(eclo)


def share_below(threshold: float, quantiles: Sequence[float]) -> float:
    """Approximate share (0–100 %) of training accidents with ECLO < threshold."""
    q = np.asarray(quantiles, dtype=np.float64)
    return float(np.searchsorted(q, threshold, side="left") / (len(q) - 1) * 100.0) if len(q) > 1 else 0.0


def build_bands(quantiles: Sequence[float]) -> list[InterpretationBand]:
    """The four bands with descriptions that cite the training share of each (from the quantiles)."""
    bands = []
    for label, lower, upper, grounding in BAND_CUTS:
        share = (share_below(upper, quantiles) if upper is not None else 100.0) - share_below(lower, quantiles)
        span = f"ECLO {lower:g} 이상 {upper:g} 미만" if upper is not None else f"ECLO {lower:g} 이상"
        description = (
            f"{span}: {grounding}. ECLO는 사망 10, 중상 5, 경상 3, 부상신고 1점으로 환산한 인명 피해이며, "
            f"학습 데이터 사고의 약 {max(share, 0.0):.0f}%가 이 구간에 속합니다."
        )
        bands.append(InterpretationBand(label=label, lower=lower, upper=upper, description=description))
    return bands


def band_for(eclo: float, bands: Sequence[InterpretationBand]) -> InterpretationBand:
    """The band containing eclo (values below the first band's lower bound fall into the first band)."""
    for band in bands:
        if band.upper is None or eclo < band.upper:
            return band
    return bands[-1]


def labels_for(eclo: np.ndarray, bands: Sequence[InterpretationBand]) -> list[str]:
    """Band label of each value of an array (vectorised band_for)."""
    uppers = [band.upper for band in bands[:-1]]
    index = np.searchsorted(np.asarray(uppers, dtype=np.float64), np.asarray(eclo, dtype=np.float64), side="right")
    return [bands[i].label for i in index.tolist()]


def _span(band: InterpretationBand) -> str:
    return f"ECLO {band.lower:g} 이상" + (f" {band.upper:g} 미만" if band.upper is not None else "")


@functools.lru_cache(maxsize=64)  # bands are frozen and few: every single prediction asks for its band's
def sentence_parts(band: InterpretationBand) -> tuple[str, str, str]:
    """describe()'s sentence for a band around its two numbers: (before ECLO, between ECLO and percentile,
    after). Batches build it from these, computed once per band."""
    return (
        "예측 ECLO ",
        f"는 '{band.label}' 구간({_span(band)})입니다. 학습 데이터 사고 중 약 ",
        "번째 백분위에 해당합니다.",
    )


def describe(eclo: float, band: InterpretationBand, pct: float) -> str:
    """One Korean sentence for a predicted ECLO in its band at its percentile."""
    before, between, after = sentence_parts(band)
    return f"{before}{eclo:.2f}{between}{pct:.0f}{after}"


def interpretation(
    eclo: float,
    bands: Sequence[InterpretationBand],
    quantiles: Sequence[float],
    *,
    scale: PercentileScale | None = None,
) -> tuple[str, str]:
    """(label, one Korean sentence) for a predicted ECLO."""
    band = band_for(eclo, bands)
    pct = (scale or PercentileScale(quantiles))(eclo)
    return band.label, describe(eclo, band, pct)
