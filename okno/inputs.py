"""What every request body and parameter has in common: bounded ids, no NUL characters.

PostgreSQL cannot store a NUL character in text and its id columns are 32-bit; without
these bounds such input would reach the database and come back as a 500.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated, Any

from fastapi import Path, Query
from pydantic import BaseModel, ConfigDict, Field, model_validator

from okno.errors import BadRequest

MAX_ID = 2**31 - 1
MAX_SEQ = 2**62

IdPath = Annotated[int, Path(ge=1, le=MAX_ID)]
SeqQuery = Annotated[int, Query(ge=0, le=MAX_SEQ)]
# A seq cursor the client may leave out (None), e.g. ``before_seq`` beside ``after_seq``.
OptionalSeqQuery = Annotated[int | None, Query(ge=0, le=MAX_SEQ)]
IdQuery = Annotated[int | None, Query(ge=1, le=MAX_ID)]
KeyQuery = Annotated[str, Query(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_-]+$")]
# An id inside a request body (a list of ids, say): the same 32-bit bound.
BodyId = Annotated[int, Field(ge=1, le=MAX_ID)]


def _strip_nul(value: Any) -> Any:
    if isinstance(value, str):
        return value.replace("\x00", "")
    if isinstance(value, dict):
        return {_strip_nul(k): _strip_nul(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_strip_nul(v) for v in value]
    return value


class Input(BaseModel):
    """Base of request bodies: unknown fields are refused, NUL characters dropped."""

    model_config = ConfigDict(extra="forbid")

    @model_validator(mode="before")
    @classmethod
    def _no_nul(cls, data: Any) -> Any:
        return _strip_nul(data)


def parse_moment(value: str, *, name: str, end: bool) -> datetime:
    """A date-time as given (UTC when it names no zone); a bare date is its whole day, so
    ``until=2026-05-31`` includes the 31st."""
    try:
        if len(value) == 10:
            start = datetime.combine(date.fromisoformat(value), time(0, 0), tzinfo=UTC)
            return start + timedelta(days=1) if end else start
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise BadRequest(
            f"{name} must be a date like 2026-05-31 or a date-time like 2026-05-31T09:00",
            code="bad_period",
            field=name,
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
