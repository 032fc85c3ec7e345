"""Parse the human durations the config accepts: ``"250ms"``, ``"30s"``, ``"5m"``, ``"1h30m"``."""

from __future__ import annotations

import math
import re
from datetime import timedelta

_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}
_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w)")
# Messages never echo the value: it may have come from an environment variable.
_EXPECTED = "expected a duration like '30s', '5m' or '1h'"
_WHOLE = re.compile(r"(?:\d+(?:\.\d+)?(?:ms|s|m|h|d|w))+")
MAX_DAYS = 100 * 366
"""The longest duration accepted: a century. ``timedelta`` itself overflows past 999,999,999
days, and no timeout, window or retention means more than this."""


def parse_duration(value: object) -> timedelta:
    """Turn ``"30s"``, ``"5m"``, ``"1h30m"`` or a number of seconds into a ``timedelta``.

    Raises ``ValueError`` with the expected form for anything else, including negatives,
    NaN and anything longer than ``MAX_DAYS`` (``"99999999999999999999d"``, ``1e400``).
    """
    if isinstance(value, timedelta):
        seconds = value.total_seconds()
    elif isinstance(value, bool):
        raise ValueError(_EXPECTED)
    elif isinstance(value, int | float):
        # A TOML integer may have any number of digits: past a float's range it is inf.
        seconds = math.inf if value > 1e300 else -math.inf if value < -1e300 else float(value)
    elif isinstance(value, str) and _WHOLE.fullmatch(value.strip()):
        seconds = sum(float(n) * _UNITS[u] for n, u in _PART.findall(value.strip()))
    else:
        raise ValueError(_EXPECTED)
    if math.isnan(seconds):
        raise ValueError(_EXPECTED)
    if seconds < 0:
        raise ValueError("a duration must not be negative")
    if seconds > MAX_DAYS * 86400:
        raise ValueError(f"a duration must be at most {MAX_DAYS} days")
    return timedelta(seconds=seconds)


def format_duration(value: timedelta) -> str:
    """The shortest string ``parse_duration`` reads back to the same value (whole ms)."""
    ms = round(value.total_seconds() * 1000)
    if ms == 0:
        return "0s"
    parts = []
    for unit, size in (("d", 86_400_000), ("h", 3_600_000), ("m", 60_000), ("s", 1000)):
        count, ms = divmod(ms, size)
        if count:
            parts.append(f"{count}{unit}")
    if ms:
        parts.append(f"{ms}ms")
    return "".join(parts)
