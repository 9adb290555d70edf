"""Numbers, times, dates and durations spelled out as words, for the embedded corpus' grammars.

Every function draws from the `random.Random` passed in, so a seed fixes the output.
"""

from __future__ import annotations

import random

_ONES = (
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen "
    "seventeen eighteen nineteen"
).split()
_TENS = "_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()
_ORDINAL_ONES = (
    "_ first second third fourth fifth sixth seventh eighth ninth tenth eleventh twelfth thirteenth fourteenth "
    "fifteenth sixteenth seventeenth eighteenth nineteenth"
).split()
_ORDINAL_TENS = {20: "twentieth", 30: "thirtieth"}
MONTHS = "january february march april may june july august september october november december".split()
WEEKDAYS = "monday tuesday wednesday thursday friday saturday sunday".split()


def number_words(n: int) -> str:
    """Spell 0..999 in words: 42 -> "forty two", 105 -> "one hundred and five"."""
    if not 0 <= n <= 999:
        raise ValueError(f"number_words handles 0..999, got {n}")
    if n < 20:
        return _ONES[n]
    if n < 100:
        return _TENS[n // 10] + ("" if n % 10 == 0 else " " + _ONES[n % 10])
    rest = n % 100
    return _ONES[n // 100] + " hundred" + ("" if rest == 0 else " and " + number_words(rest))


def ordinal_words(n: int) -> str:
    """Spell an ordinal 1..31 (days of the month): 21 -> "twenty first"."""
    if not 1 <= n <= 31:
        raise ValueError(f"ordinal_words handles 1..31, got {n}")
    if n < 20:
        return _ORDINAL_ONES[n]
    if n % 10 == 0:
        return _ORDINAL_TENS[n]
    return _TENS[n // 10] + " " + _ORDINAL_ONES[n % 10]


def clock_time(rng: random.Random) -> str:
    """A spoken clock time, e.g. "seven thirty in the morning", "quarter to nine", "noon"."""
    hour = rng.randint(1, 12)
    minute = rng.choice((0, 0, 0, 5, 10, 15, 20, 30, 30, 40, 45, 50, rng.randrange(1, 60)))
    style = rng.random()
    if style < 0.05:
        return rng.choice(("noon", "midnight"))
    if style < 0.25 and minute in (15, 30, 45):
        spoken = {15: f"quarter past {_ONES[hour]}", 30: f"half past {_ONES[hour]}"}.get(minute)
        return spoken or f"quarter to {_ONES[hour % 12 + 1]}"
    if style < 0.35 and minute in (5, 10, 20):
        spoken = f"{number_words(minute)} past {_ONES[hour]}"
    elif minute == 0:
        spoken = _ONES[hour]
    elif minute < 10:
        spoken = f"{_ONES[hour]} oh {_ONES[minute]}"
    else:
        spoken = f"{_ONES[hour]} {number_words(minute)}"
    period = rng.choice(("", "", "in the morning", "in the afternoon", "in the evening", "at night", "sharp"))
    return f"{spoken} {period}".strip()


def calendar_date(rng: random.Random) -> str:
    day, month = rng.randint(1, 28), rng.choice(MONTHS)
    return rng.choice((f"the {ordinal_words(day)} of {month}", f"{month} {ordinal_words(day)}"))


def duration(rng: random.Random) -> str:
    unit = rng.choice(("seconds", "minutes", "minutes", "minutes", "hours"))
    amount = {
        "seconds": rng.choice((10, 15, 20, 30, 45, 90)),
        "minutes": rng.randint(2, 59),
        "hours": rng.randint(2, 5),
    }
    if rng.random() < 0.15:
        return rng.choice(("one minute", "an hour", "half an hour", "one hour and thirty minutes", "a minute"))
    return f"{number_words(amount[unit])} {unit}"


def small_number(rng: random.Random) -> str:
    return number_words(rng.randint(2, 12))


def temperature(rng: random.Random) -> str:
    return f"{number_words(rng.randint(16, 28))} degrees"
