"""Bodies of the insight and comparison routes."""

from __future__ import annotations

import enum

from api.schemas import BigId, Input, Output

# One number type: `int | float` made the OpenAPI a oneOf that every integer matches twice (integers are still
# sent as integers).
Figure = float | str | None


class InsightKind(enum.StrEnum):
    DOMINANT_CATEGORY = "dominant_category"  # the most frequent value of a key column
    MISSING_VALUES = "missing_values"  # a column with many empty cells
    BUSIEST_HOUR = "busiest_hour"
    BUSIEST_WEEKDAY = "busiest_weekday"
    ECLO_BY_GROUP = "eclo_by_group"  # accident data: the highest and lowest mean ECLO of a grouping
    GROUP_COMPARISON = "group_comparison"  # two groups of one dataset
    DATASET_COMPARISON = "dataset_comparison"  # the same column of two datasets


class Insight(Output):
    kind: InsightKind
    text: str  # one Korean sentence
    columns: list[str]  # the columns it is about
    figures: dict[str, Figure]  # the numbers the sentence states, for charts and checks


class Insights(Output):
    dataset_id: int
    items: list[Insight]


class GroupFilter(Input):
    """Rows whose `column` equals `value` (compared as text, so 2021 and "2021" select the same rows)."""

    column: str
    value: str


class ComparisonSide(Input):
    dataset_id: BigId
    where: GroupFilter | None = None


class ComparisonRequest(Input):
    """Compare one column between two sides: two groups of one dataset, or two datasets."""

    column: str
    left: ComparisonSide
    right: ComparisonSide


class SideFigures(Output):
    dataset_id: int
    label: str
    rows: int  # rows of the side (after its filter)
    count: int  # of those, with a value in the column
    mean: float | None = None  # numeric columns
    median: float | None = None
    top_value: str | None = None  # text columns
    top_share: float | None = None  # percent of the side's values


class Comparison(Output):
    kind: InsightKind
    column: str
    text: str
    left: SideFigures
    right: SideFigures
