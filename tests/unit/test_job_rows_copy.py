"""The binary COPY stream of a job part's rows (stored through PostgreSQL by the job tests)."""

from __future__ import annotations

import struct

import numpy as np
import pytest

from api.predictions.repository import job_rows_copy


def test_each_row_is_one_fixed_width_record_with_its_values():
    stream = job_rows_copy(7, np.array([0, 5, 2**31 - 1]), np.array([1.5, 2.25, 3.0]), 4).getvalue()
    assert stream.startswith(b"PGCOPY\n\xff\r\n\x00") and stream.endswith(b"\xff\xff")
    body = stream[19:-2]
    record = len(body) // 3
    assert len(body) == 3 * record
    second = body[record : 2 * record]
    fields, _, job_id, _, row_index, _, version, _, eclo = struct.unpack(">hiqiiiiid", second[:42])
    assert (fields, job_id, row_index, version, eclo) == (5, 7, 5, 4, 2.25)
    assert second[42:] == struct.pack(">i", 3) + b"job"


@pytest.mark.parametrize("bad", [2**31, -1])
def test_a_row_index_the_column_cannot_hold_is_refused_not_wrapped(bad):
    with pytest.raises(ValueError):
        job_rows_copy(7, np.array([0, bad]), np.array([1.0, 2.0]), 4)
