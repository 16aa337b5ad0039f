"""x좌표/y좌표 and similar names count as coordinates only when their values are WGS84 degrees."""

from __future__ import annotations

from api.datasets.ingest import parse_csv
from api.datasets.map_points import sample_points
from api.datasets.profile import summarize


def _csv(header: str, rows: list[str]) -> bytes:
    return ("\n".join([header, *rows]) + "\n").encode("utf-8")


def test_x_and_y_in_degrees_are_latitude_and_longitude():
    parsed = parse_csv(_csv("명칭,X좌표,Y좌표", ["가,128.60,35.87", "나,128.55,35.83", "다,없음,35.90"]))
    summary = summarize(parsed.table, parsed.kind)
    assert summary.coordinates is not None
    assert (summary.coordinates.lat_column, summary.coordinates.lon_column) == ("Y좌표", "X좌표")
    assert (summary.coordinates.valid, summary.coordinates.missing) == (2, 1)  # junk is missing, as for 위도
    points = sample_points(parsed.table, max_points=10)
    assert [(p.lat, p.lon) for p in points.points] == [(35.87, 128.60), (35.83, 128.55)]


def test_swapped_x_and_y_are_read_the_right_way_round():
    parsed = parse_csv(_csv("x 좌표,y 좌표", ["35.87,128.60", "35.83,128.55"]))
    points = sample_points(parsed.table, max_points=10)
    assert (points.lat_column, points.lon_column) == ("x 좌표", "y 좌표")
    assert points.points[0].lat == 35.87 and points.points[0].lon == 128.60


def test_projected_metres_are_not_coordinates():
    parsed = parse_csv(_csv("명칭,x좌표,y좌표", ["가,343210.5,264021.1", "나,341000.0,262500.0"]))
    assert summarize(parsed.table, parsed.kind).coordinates is None
    assert parsed.table.column("x좌표").to_pylist() == [343210.5, 341000.0]  # left as the file had them
