"""How a scoring job's input is split into parts: evenly over a process's loops, at most CHUNK_ROWS each."""

from __future__ import annotations

import pytest

from api.predictions.scoring.run import CHUNK_ROWS, MIN_SPLIT_ROWS, balanced_part_rows


@pytest.mark.parametrize(
    ("rows", "parts"),
    [(1, 1), (MIN_SPLIT_ROWS, 1), (50_000, 2), (150_000, 2), (300_000, 4), (1_000_000, 10), (1_050_000, 12)],
)
def test_parts_are_even_over_two_loops_and_never_above_the_chunk(rows, parts):
    size = balanced_part_rows(rows, loops=2)
    assert size <= CHUNK_ROWS or rows <= MIN_SPLIT_ROWS
    assert -(-rows // size) == parts


def test_one_loop_gets_as_few_parts_as_the_chunk_allows():
    assert balanced_part_rows(300_000, loops=1) == CHUNK_ROWS
