"""The one place that turns accident rows into ECLO model features (training, API, workers, chat tools).

A row gives either the 11 features directly (Korean names or English aliases) or a raw accident row:
사고일시 ("YYYY-MM-DD HH", optionally ":MM[:SS]", or a datetime) plus the categorical columns. Rules:

- Explicit values win: 사고연/사고월/사고일/사고시, 요일 and 시간대 are derived from 사고일시 (시간대 from the hour
  through the model's own ``hour_bands``) only when they are absent. 사고일시, when given, must still parse.
- Absent means: key missing, ``None``, NaN or a blank string.
- Unknown keys are errors (typos must not silently drop a feature); the other columns of the 23-column
  accident file (ID, casualty counts, ECLO, driver columns …) are accepted and ignored.
- A categorical value is encoded as its index in ``meta.categories[feature]`` (sorted, like scikit-learn's
  LabelEncoder), passed to the model as a float; numbers are passed as they are.
- Errors are checked in a fixed order (사고일시, explicit numbers, then ``meta.feature_order``) so that
  ``encode_row`` and ``encode_frame`` report the same first bad field.

Modules: ``schema`` (the feature spec: names, aliases, ranges, the published schema), ``errors``
(FeatureError and its Korean messages), ``encoding`` (one row, and the per-model lookup tables) and
``batch`` (the vectorised twin). Import the public names from here.
"""

from models.features.batch import EncodedBatch, encode_frame
from models.features.encoding import canonical_name, encode_row, hour_band
from models.features.errors import FeatureError
from models.features.schema import (
    ACCEPTED_ALIASES,
    ALIASES,
    CATEGORICAL_FEATURES,
    DATETIME_FIELD,
    DEFAULT_HOUR_BANDS,
    FEATURE_ORDER,
    KNOWN_FIELDS,
    LEGACY_ALIASES,
    NUMERIC_FEATURES,
    NUMERIC_RANGES,
    WEEKDAYS,
    FeatureSpec,
    feature_schema,
)

__all__ = [
    "ACCEPTED_ALIASES",
    "ALIASES",
    "CATEGORICAL_FEATURES",
    "DATETIME_FIELD",
    "DEFAULT_HOUR_BANDS",
    "FEATURE_ORDER",
    "KNOWN_FIELDS",
    "LEGACY_ALIASES",
    "NUMERIC_FEATURES",
    "NUMERIC_RANGES",
    "WEEKDAYS",
    "EncodedBatch",
    "FeatureError",
    "FeatureSpec",
    "canonical_name",
    "encode_frame",
    "encode_row",
    "feature_schema",
    "hour_band",
]
