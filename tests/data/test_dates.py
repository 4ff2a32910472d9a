"""Dates of Arabic news: the parser on hand-written cases, and date splits through the real CLI."""

from __future__ import annotations

import json

import datasets
import pytest

from tests.helpers import labelled_articles, run_cli
from train.data.dates import parse_date


@pytest.mark.parametrize("value, expected", [
    # ISO 8601, with time and zone: the date as written, in the article's own zone.
    ("2018-02-18", "2018-02-18"),
    ("2018-02-18T21:35:43+04:00", "2018-02-18"),
    ("2018-02-18T23:59:00Z", "2018-02-18"),
    ("2018-02-18 21:35", "2018-02-18"),
    # RFC 2822, as in RSS feeds.
    ("Sun, 18 Feb 2018 21:35:43 +0400", "2018-02-18"),
    ("Tue, 12 Jun 2018 05:45:05 GMT", "2018-06-12"),
    # Day first, as Arabic news writes numeric dates.
    ("18/02/2018", "2018-02-18"),
    ("18-02-2018", "2018-02-18"),
    ("18.02.2018", "2018-02-18"),
    ("3/4/2018", "2018-04-03"),
    ("18/02/2018 21:35", "2018-02-18"),
    ("18/02/2018 - 09:30 م", "2018-02-18"),
    ("١٨/٠٢/٢٠١٨", "2018-02-18"),
    ("۱۸/۰۲/۲۰۱۸", "2018-02-18"),
    # Year first is always year, month, day.
    ("2018/02/18", "2018-02-18"),
    # Month names: Egyptian and Gulf, Levantine and Iraqi, Maghreb; weekdays, Eastern Arabic digits, both names.
    ("18 فبراير 2018", "2018-02-18"),
    ("18 شباط 2018", "2018-02-18"),
    ("١٨ شباط ٢٠١٨", "2018-02-18"),
    ("الأحد 18 فبراير 2018", "2018-02-18"),
    ("الأحد، 18 فبراير 2018 - 21:35", "2018-02-18"),
    ("18 فبراير/شباط 2018", "2018-02-18"),
    ("1 كانون الثاني 2019", "2019-01-01"),
    ("31 كانون الأول 2018", "2018-12-31"),
    ("5 تشرين الأول 2018", "2018-10-05"),
    ("12 تشرين الثاني 2018", "2018-11-12"),
    ("9 آب 2018", "2018-08-09"),
    ("9 أغسطس 2018", "2018-08-09"),
    ("20 أيار 2018", "2018-05-20"),
    ("7 جويلية 2018", "2018-07-07"),
    ("7 يوليه 2018", "2018-07-07"),
    ("7 إبريل 2018م", "2018-04-07"),
    ("", ""),
    ("   ", ""),
])
def test_understood_dates(value, expected):
    assert parse_date(value) == expected


@pytest.mark.parametrize("value", [
    "02/18/2018",          # month first: not a day-first date; needs split.date_format
    "31/02/2018",          # no such day
    "2018/31/12",          # year, day, month: needs split.date_format
    "18 فبراير",           # no year
    "18 شباط/مارس 2018",   # two names for different months
    "18 بانكوك 2018",      # not a month
    "1439 جمادى الآخرة 2",  # Hijri
    "yesterday",
    "18/02/2018 foo",
])
def test_dates_not_understood(value):
    assert parse_date(value) is None


def test_date_format_decides_numeric_dates_and_the_rest_still_parse():
    assert parse_date("03/04/2018") == "2018-04-03"
    assert parse_date("03/04/2018", "%m/%d/%Y") == "2018-03-04"
    assert parse_date("02/18/2018", "%m/%d/%Y") == "2018-02-18"
    # With a format, a numeric date it does not match is not read day first behind the user's back.
    assert parse_date("18/02/2018", "%m/%d/%Y") is None
    assert parse_date("2018/31/12", "%Y/%d/%m") == "2018-12-31"
    assert parse_date("Sun, 18 Feb 2018 21:35:43 +0400", "%m/%d/%Y") == "2018-02-18"
    assert parse_date("18 شباط 2018", "%m/%d/%Y") == "2018-02-18"


def _dated(dates: list[str]) -> list[dict]:
    articles = labelled_articles(len(dates))
    for article, date in zip(articles, dates, strict=True):
        article["date"] = date
    return articles


def _splits(folder) -> dict[str, dict[str, str]]:
    built = datasets.load_from_disk(str(folder))
    return {name: {row["id"]: row["date"] for row in split} for name, split in built.items()}


def test_day_first_dates_after_the_cutoff_go_to_test(corpus, tmp_path):
    # 1 to 28 of each month, 2024: day first, as Arabic outlets write them; the cutoff is 1 October.
    dates = [f"{1 + i % 28:02d}/{1 + i % 12:02d}/2024" for i in range(40)]
    dates[:6] = ["٠٥/١١/٢٠٢٤", "18 شباط 2024", "الأحد 3 نوفمبر 2024", "2024-11-03T10:00:00+03:00",
                 "Sun, 03 Nov 2024 10:00:00 +0300", "30.09.2024"]
    result = run_cli("data", "build", corpus(_dated(dates), split={"strategy": "date", "date_cutoff": "2024-10-01"}))
    assert result.exit_code == 0, result.output
    splits = _splits(tmp_path / "built")
    late = {article_id for article_id, date in
            {k: v for split in splits.values() for k, v in split.items()}.items() if date >= "2024-10-01"}
    assert late and late == set(splits["test"])
    assert {"a000", "a002", "a003", "a004"} <= set(splits["test"])
    assert splits["test"]["a000"] == "2024-11-05"
    every = {k: v for split in splits.values() for k, v in split.items()}
    assert every["a001"] == "2024-02-18" and every["a005"] == "2024-09-30"


def test_unparseable_date_names_line_and_value_when_split_by_date(corpus, tmp_path):
    dates = [f"2024-{1 + i % 12:02d}-{1 + i % 28:02d}" for i in range(20)]
    dates[4] = "2024/31/12"
    dates[7] = ""
    split = {"strategy": "date", "date_cutoff": "2024-10-01"}
    result = run_cli("data", "build", corpus(_dated(dates), split=split))
    assert result.exit_code == 1, result.output
    assert "articles.jsonl:5 [a004]: date '2024/31/12' not understood" in result.output
    assert "split.date_format" in result.output
    assert "articles.jsonl:8 [a007]: no date" in result.output
    assert not (tmp_path / "built").exists()

    # validation.on_invalid: reject sets them aside with the reason.
    config = corpus(_dated(dates), split=split, validation={"on_invalid": "reject"})
    assert run_cli("data", "build", config).exit_code == 0
    rejects = [json.loads(line) for line in (tmp_path / "built" / "rejects.jsonl").read_text().splitlines()]
    assert {(r["id"], r["kind"]) for r in rejects} == {("a004", "bad_date"), ("a007", "bad_date")}

    # split.date_format reads the odd one (the ISO dates still parse).
    dates[7] = "2024-03-03"
    assert run_cli("data", "build", corpus(_dated(dates), split={**split, "date_format": "%Y/%d/%m"})).exit_code == 0
    assert _splits(tmp_path / "built")["test"]["a004"] == "2024-12-31"


def test_date_format_decides_day_and_month_order(corpus, tmp_path):
    dates = [f"2024-{1 + i % 9:02d}-15" for i in range(20)]
    dates[0] = "11/03/2024"  # 11 March day first; 3 November month first
    split = {"strategy": "date", "date_cutoff": "2024-10-01"}
    assert run_cli("data", "build", corpus(_dated(dates), split=split)).exit_code == 0
    assert "a000" in _splits(tmp_path / "built")["train"] | _splits(tmp_path / "built")["validation"]
    assert run_cli("data", "build", corpus(_dated(dates), split={**split, "date_format": "%m/%d/%Y"})).exit_code == 0
    assert _splits(tmp_path / "built")["test"] == {"a000": "2024-11-03"}


def test_dates_not_understood_are_kept_and_counted_without_a_date_split(corpus, tmp_path):
    dates = [f"2024-{1 + i % 12:02d}-{1 + i % 28:02d}" for i in range(20)]
    dates[2] = "قبل ساعتين"
    result = run_cli("data", "build", corpus(_dated(dates)))
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "built" / "report.json").read_text(encoding="utf-8"))
    assert report["cleaning"]["dates_not_understood"] == 1
    every = {k: v for split in _splits(tmp_path / "built").values() for k, v in split.items()}
    assert every["a002"] == "قبل ساعتين"
