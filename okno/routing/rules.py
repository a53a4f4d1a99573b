"""Pure routing rules: channel weights and first-response targets, business hours.

Kept free of the database so the simulation, the service and the tests share one truth.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError


# How much of an operator's capacity a dialog takes, and how soon it wants a first answer.
# A chat customer watches the screen; a messenger customer glances back now and then; an
# e-mail customer expects an answer within hours. Per-channel overrides live in the
# channel's config ("weight", "first_response_seconds").
@dataclass(frozen=True)
class ChannelRule:
    weight: float
    first_response_seconds: int


MESSENGERS = ("telegram", "viber", "vk", "whatsapp", "facebook", "apple")
DEFAULT_RULES: dict[str, ChannelRule] = {
    "widget": ChannelRule(1.0, 30),
    "api": ChannelRule(1.0, 30),
    "phone": ChannelRule(1.0, 20),
    "email": ChannelRule(0.25, 4 * 3600),
    **{kind: ChannelRule(0.5, 120) for kind in MESSENGERS},
}
FALLBACK_RULE = ChannelRule(1.0, 60)
VIP_BONUS = 50  # a VIP customer goes before others of the same queue
FRONT_BONUS = 1000  # re-queued after an operator left: before everyone else
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def channel_rule(kind: str, config: dict[str, Any] | None = None) -> ChannelRule:
    base = DEFAULT_RULES.get(kind, FALLBACK_RULE)
    cfg = config or {}
    weight = cfg.get("weight", base.weight)
    target = cfg.get("first_response_seconds", base.first_response_seconds)
    try:
        return ChannelRule(float(weight), int(target))
    except (TypeError, ValueError):
        return base


# ------------------------------------------------------------------ business hours


class HoursError(ValueError):
    """The hours setting cannot be understood (shown to the admin next to the field)."""


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise HoursError(f"unknown time zone {name!r}") from None


def _span(text: str) -> tuple[time, time]:
    try:
        start, end = (time.fromisoformat(p.strip()) for p in text.split("-", 1))
    except ValueError:
        raise HoursError(f"hours must look like 09:00-18:00, not {text!r}") from None
    if end <= start and end != time(0, 0):
        raise HoursError(f"{text!r} ends before it starts")
    return start, end


def validate_hours(hours: dict[str, Any] | None) -> dict[str, Any] | None:
    """Check an hours setting; returns it normalised, or raises HoursError."""
    if not hours:
        return None
    if not isinstance(hours, dict):
        raise HoursError("hours must be an object")
    _zone(str(hours.get("timezone", "Europe/Moscow")))
    weekly = hours.get("weekly") or {}
    if not isinstance(weekly, dict):
        raise HoursError("weekly must map mon..sun to lists like ['09:00-18:00']")
    for day, spans in weekly.items():
        if day not in DAYS:
            raise HoursError(f"unknown day {day!r}; use mon, tue, wed, thu, fri, sat, sun")
        if not isinstance(spans, list):
            raise HoursError(f"{day}: a list of spans like ['09:00-18:00']")
        for span in spans:
            _span(str(span))
    for day in hours.get("holidays") or []:
        try:
            date.fromisoformat(str(day))
        except ValueError:
            raise HoursError(f"holiday {day!r} is not a date like 2026-12-31") from None
    return {
        "timezone": str(hours.get("timezone", "Europe/Moscow")),
        "weekly": {d: list(weekly[d]) for d in DAYS if d in weekly},
        "holidays": sorted(str(d) for d in hours.get("holidays") or []),
    }


def _spans_on(hours: dict[str, Any], day: date) -> list[tuple[time, time]]:
    if day.isoformat() in set(hours.get("holidays") or []):
        return []
    return [_span(s) for s in (hours.get("weekly") or {}).get(DAYS[day.weekday()], [])]


def is_open(hours: dict[str, Any] | None, now: datetime) -> bool:
    """Is the queue serving at ``now`` (an aware datetime)? No hours: always."""
    if not hours:
        return True
    local = now.astimezone(_zone(hours.get("timezone", "Europe/Moscow")))
    t = local.time()
    for start, end in _spans_on(hours, local.date()):
        if start <= t and (t < end or end == time(0, 0)):
            return True
    return False


def next_opening(hours: dict[str, Any] | None, now: datetime) -> datetime | None:
    """When the queue opens next (aware, in the queue's zone); None when open or never."""
    if not hours or is_open(hours, now):
        return None
    zone = _zone(hours.get("timezone", "Europe/Moscow"))
    local = now.astimezone(zone)
    for offset in range(0, 15):
        day = local.date() + timedelta(days=offset)
        for start, _end in sorted(_spans_on(hours, day)):
            opening = datetime.combine(day, start, tzinfo=zone)
            if opening > local:
                return opening
    return None
