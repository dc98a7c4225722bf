"""Selecting log objects by the date and load balancer in their names; listing only the days asked for."""

from __future__ import annotations

from datetime import date

import pytest

from alblake.aws.s3_listing import day_prefixes
from alblake.ingest.filters import ObjectFilter, parse_day

KEY = (
    "AWSLogs/123456789012/elasticloadbalancing/us-east-1/2026/03/02/123456789012_elasticloadbalancing_us-east-1_"
    "app.web-prod.50dc6c495c0c9188_20260302T0005Z_10.0.0.1_abc.log.gz"
)


@pytest.mark.parametrize(
    ("object_filter", "accepted"),
    [
        (ObjectFilter(), True),
        (ObjectFilter(since=date(2026, 3, 2), until=date(2026, 3, 2)), True),
        (ObjectFilter(since=date(2026, 3, 3)), False),
        (ObjectFilter(until=date(2026, 3, 1)), False),
        (ObjectFilter(elb="web-prod"), True),
        (ObjectFilter(elb="app/web-prod/50dc6c495c0c9188"), True),
        (ObjectFilter(elb="api-prod"), False),
    ],
)
def test_filter_by_name(object_filter: ObjectFilter, accepted: bool) -> None:
    assert object_filter.accepts_name(KEY) is accepted


def test_a_name_without_date_passes_only_without_a_filter() -> None:
    assert ObjectFilter().accepts_name("export.log")
    assert not ObjectFilter(elb="web-prod").accepts_name("export.log")


def test_parse_day() -> None:
    assert parse_day("2026-03-02") == date(2026, 3, 2)
    with pytest.raises(ValueError, match="expected YYYY-MM-DD"):
        parse_day("03/02/2026")


def test_day_prefixes_list_only_the_days_of_the_range() -> None:
    region = "logs/AWSLogs/123456789012/elasticloadbalancing/eu-west-1/"
    days = ObjectFilter(since=date(2026, 2, 27), until=date(2026, 3, 1))
    assert day_prefixes(region, days) == [f"{region}2026/02/27/", f"{region}2026/02/28/", f"{region}2026/03/01/"]
    assert day_prefixes(region, ObjectFilter(since=date(2026, 2, 27))) == [region]  # open range: one listing
    assert day_prefixes("logs/AWSLogs/", days) == ["logs/AWSLogs/"]  # not a region folder
    assert day_prefixes(region, ObjectFilter(since=date(2026, 3, 2), until=date(2026, 3, 1))) == []
