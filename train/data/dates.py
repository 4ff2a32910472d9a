"""Reading the dates of Arabic news articles into ISO dates (YYYY-MM-DD).

Understood: ISO 8601 (with time and zone), RFC 2822 ("Sun, 18 Feb 2018 21:35:43 +0400"), numeric dates written day
first as Arabic news writes them (18/02/2018, 18-02-2018, 18.02.2018; year first, 2018/02/18, is year-month-day),
and month names ("18 فبراير 2018", "18 شباط 2018", "18 فبراير/شباط 2018": Egyptian and Gulf, Levantine and Iraqi,
Maghreb names), each with an optional weekday before and a time after, in Western or Eastern Arabic digits. A date
with a time zone keeps the day as written in its own zone.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import re

_DIGITS = str.maketrans("٠١٢٣٤٥٦٧٨٩۰۱۲۳۴۵۶۷۸۹", "0123456789" * 2)
_ALEFS = str.maketrans({"أ": "ا", "إ": "ا", "آ": "ا", "ٱ": "ا", "ى": "ي", "ـ": None})
_DIACRITICS = re.compile("[\u064b-\u0652\u0670]")

_MONTHS = {
    1: ("يناير", "كانون الثاني", "جانفي"),
    2: ("فبراير", "شباط", "فيفري"),
    3: ("مارس", "آذار"),
    4: ("أبريل", "إبريل", "نيسان", "أفريل"),
    5: ("مايو", "أيار", "ماي"),
    6: ("يونيو", "يونيه", "حزيران", "جوان"),
    7: ("يوليو", "يوليه", "تموز", "جويلية", "يوليوز"),
    8: ("أغسطس", "آب", "أوت", "غشت"),
    9: ("سبتمبر", "أيلول", "شتنبر"),
    10: ("أكتوبر", "تشرين الأول"),
    11: ("نوفمبر", "تشرين الثاني", "نونبر"),
    12: ("ديسمبر", "كانون الأول", "دجنبر"),
}


def _fold(text: str) -> str:
    """Western digits, one alef, no diacritics or tatweel, lower case: one spelling for matching."""
    return _DIACRITICS.sub("", text.translate(_DIGITS).translate(_ALEFS)).lower()


_MONTH_OF = {_fold(name): number for number, names in _MONTHS.items() for name in names}
_MONTH = "|".join(re.sub(" ", r"\\s+", name) for name in sorted(_MONTH_OF, key=len, reverse=True))
_WEEKDAY = r"(?:(?:يوم\s+)?(?:الاحد|الاثنين|الثلاثاء|الاربعاء|الخميس|الجمعة|السبت)\s*[,،-]?\s*)?"
_TIME = (r"(?:\s*[,،|-]?\s*(?:الساعة\s*)?\d{1,2}:\d{2}(?::\d{2})?(?:\s*(?:ص|م|صباحا|مساء|am|pm))?"
         r"(?:\s*(?:gmt|utc|[+-]\d{2}:?\d{2}))?)?")
_AD = r"(?:\s*م)?"  # "2018م": the Gregorian year
_DAY_FIRST = re.compile(rf"{_WEEKDAY}(\d{{1,2}})([/.-])(\d{{1,2}})\2(\d{{4}}){_AD}{_TIME}\s*")
_YEAR_FIRST = re.compile(rf"{_WEEKDAY}(\d{{4}})([/.-])(\d{{1,2}})\2(\d{{1,2}}){_TIME}\s*")
_NAMED = re.compile(rf"{_WEEKDAY}(\d{{1,2}})\s+({_MONTH})(?:\s*/\s*({_MONTH}))?\s*[,،]?\s*(\d{{4}}){_AD}{_TIME}\s*")


def parse_date(value: str, date_format: str | None = None) -> str | None:
    """The ISO date (YYYY-MM-DD) of a date as written; "" for no date, None for a date that is not understood.

    `date_format` (a strptime format) is tried first and decides every all-numeric date: with it, numeric dates
    are not read day first. Without it, numeric dates are read day first (18/02/2018), as Arabic news writes them;
    02/18/2018 is then not understood rather than guessed.
    """
    value = value.strip()
    if not value:
        return ""
    plain, folded = value.translate(_DIGITS), _fold(value)
    readers = [(_iso, plain), (_year_first, folded)]
    if date_format:
        readers.insert(0, (lambda text: dt.datetime.strptime(text, date_format).date(), plain))
    else:
        readers.append((_day_first, folded))
    readers += [(_named, folded), (_rfc2822, plain)]
    for reader, text in readers:
        try:
            date = reader(text)
        except (ValueError, TypeError, IndexError, OverflowError):
            continue
        if date is not None:
            return date.isoformat()
    return None


def _iso(text: str) -> dt.date:
    return dt.datetime.fromisoformat(text).date()


def _rfc2822(text: str) -> dt.date:
    return email.utils.parsedate_to_datetime(text).date()


def _day_first(text: str) -> dt.date | None:
    match = _DAY_FIRST.fullmatch(text)
    return dt.date(int(match[4]), int(match[3]), int(match[1])) if match else None


def _year_first(text: str) -> dt.date | None:
    match = _YEAR_FIRST.fullmatch(text)
    return dt.date(int(match[1]), int(match[3]), int(match[4])) if match else None


def _named(text: str) -> dt.date | None:
    match = _NAMED.fullmatch(text)
    if not match:
        return None
    month = _MONTH_OF[re.sub(r"\s+", " ", match[2])]
    if match[3] and _MONTH_OF[re.sub(r"\s+", " ", match[3])] != month:
        return None  # "18 فبراير/مارس 2018": two months, no date
    return dt.date(int(match[4]), month, int(match[1]))
