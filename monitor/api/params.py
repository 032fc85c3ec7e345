"""Path and query parameters, range-checked at the edge so no input reaches the store
that the store cannot hold.

Ids are ``INTEGER`` columns: 32-bit on PostgreSQL, so ``2**31`` in a ``WHERE`` is an
overflow there (a 500 before these bounds), while SQLite would take it. Every id, page
cursor and offset is therefore bounded by ``MAX_ID`` on both backends, and a number
outside it is answered 422 naming the parameter, never looked up. Names and free-text
filters refuse control characters (PostgreSQL cannot hold a NUL in text), and digits are
ASCII digits only: ``"³".isdigit()`` is true, but ``int("³")`` is an error. Where a run
id shares a string parameter with request ids, a number past ``MAX_ID`` is "not found".
"""

from __future__ import annotations

import re
from typing import Annotated

from fastapi import Path, Query

__all__ = [
    "MAX_ID",
    "Before",
    "FilterText",
    "NamePath",
    "Offset",
    "RowId",
    "RunKey",
    "is_run_id",
    "run_number",
]

MAX_ID = 2**31 - 1
"""The largest id the store can hold on every backend (PostgreSQL ``INTEGER``)."""

_DIGITS = re.compile(r"[0-9]+")
_TEXT = r"^[^\x00-\x1f\x7f]+$"

RowId = Annotated[int, Path(ge=1, le=MAX_ID, description="An id (1 to 2147483647).")]
Before = Annotated[
    int | None,
    Query(
        ge=1,
        le=MAX_ID,
        description="Only items with a smaller id: the previous page's ``next_before``.",
    ),
]
Offset = Annotated[int, Query(ge=0, le=MAX_ID, description="Items to skip.")]
NamePath = Annotated[
    str,
    Path(
        max_length=64,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$",
        description="A configured name.",
    ),
]
FilterText = Annotated[
    str | None, Query(max_length=200, pattern=_TEXT, description="Only items with this value.")
]
RunKey = Annotated[
    str,
    Path(
        max_length=64,
        pattern=r"^[A-Za-z0-9._-]+$",
        description="A run id (digits) or the id of a request of ``POST /v1/runs``.",
    ),
]


def run_number(text: str) -> int | None:
    """``text`` as a number when it is ASCII digits, ``None`` when it is not one.

    Where a run id shares a string parameter with other ids (``/v1/runs/{run_id}``, the
    ``baseline`` query), its document says only "digits"; a number no run can have is
    then answered as not found (``is_run_id`` is false), without asking the store."""
    return int(text) if _DIGITS.fullmatch(text) else None


def is_run_id(number: int) -> bool:
    """Whether the store can hold ``number`` as an id."""
    return 1 <= number <= MAX_ID
