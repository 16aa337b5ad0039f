"""PercentileScale on one float (a single prediction's path) equals its array path to the bit."""

from __future__ import annotations

import numpy as np
import pytest

from models.interpret import PercentileScale, quantiles_of


@pytest.mark.parametrize("decimals", [0, 1, 2])
def test_one_float_equals_the_array_path(decimals: int) -> None:
    rng = np.random.default_rng(decimals)
    # ECLO-like values: discrete at 0 decimals, so the quantile function has plateaus.
    quantiles = quantiles_of(np.round(np.expm1(rng.normal(1.2, 0.6, 5000)), decimals))
    scale = PercentileScale(quantiles)
    knots = np.array(quantiles)
    xs = np.concatenate(
        [knots, knots + 1e-9, knots - 1e-12, rng.uniform(-5, knots[-1] + 5, 3000), [-np.inf, np.inf, np.nan]]
    )
    as_array = scale(xs)
    one_by_one = np.array([scale(float(x)) for x in xs])
    np.testing.assert_array_equal(one_by_one, as_array)  # NaN where NaN, every other value identical
    assert isinstance(scale(3.0), float) and isinstance(scale(3), float)
    assert scale(-1.0) == 0.0 and scale(knots[-1] + 1) == 100.0
    assert len(set(one_by_one[: len(knots)].tolist())) > 5  # not vacuous: the percentiles vary


def test_a_single_quantile_value() -> None:
    scale = PercentileScale([3.0] * 101)
    xs = [2.0, 3.0, 4.0, float("nan"), float("-inf"), float("inf")]
    np.testing.assert_array_equal([scale(x) for x in xs], scale(np.array(xs)))
