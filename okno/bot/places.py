"""The bank's branch and ATM directory: CSV import and the places nearest to a customer.

The CSV is what a bank's branch network team keeps in a spreadsheet: one row per place,
with a header. Distances are great-circle (haversine) over the earth's mean radius, which
is well within a street's accuracy at city scale.
"""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from okno.bot.models import Place
from okno.bot.service import ARTICLE_ID
from okno.db.base import utcnow
from okno.errors import BadRequest

COLUMNS = ("id", "kind", "name", "city", "address", "lat", "lon", "hours", "services")
REQUIRED = ("id", "kind", "name", "address", "lat", "lon")
KINDS = ("branch", "atm")
EARTH_RADIUS_KM = 6371.0088
MAX_ROWS = 100_000


def distance_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(a)))


def _number(value: str, name: str, low: float, high: float) -> float:
    try:
        number = float(value.replace(",", "."))
    except ValueError:
        raise ValueError(f"{name} must be a number like 55.7558") from None
    if not low <= number <= high or math.isnan(number):
        raise ValueError(f"{name} must be between {low:g} and {high:g}")
    return number


def clean_row(row: dict[str, str]) -> dict[str, Any]:
    values = {k: (row.get(k) or "").strip() for k in COLUMNS}
    for key in REQUIRED:
        if not values[key]:
            raise ValueError(f"{key} is empty")
    if not ARTICLE_ID.match(values["id"]):
        raise ValueError("id must be 1-100 Latin letters, digits, '-', '_' or '.'")
    if values["kind"] not in KINDS:
        raise ValueError("kind must be branch or atm")
    for key, limit in (("name", 300), ("city", 100), ("address", 500), ("hours", 500)):
        if len(values[key]) > limit:
            raise ValueError(f"{key} is longer than {limit} characters")
    return {
        "external_id": values["id"],
        "kind": values["kind"],
        "name": values["name"],
        "city": values["city"],
        "address": values["address"],
        "lat": _number(values["lat"], "lat", -90, 90),
        "lon": _number(values["lon"], "lon", -180, 180),
        "hours": values["hours"],
        "services": [s.strip() for s in values["services"].split(";") if s.strip()],
    }


@dataclass
class PlacesImport:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    deactivated: int = 0
    errors: list[dict[str, Any]] = field(default_factory=list)


def parse_csv(text: str) -> list[dict[str, Any]]:
    """Rows checked; BadRequest lists the bad lines (by line number) and stores nothing."""
    sample = text[:4096]
    try:
        dialect: Any = csv.Sniffer().sniff(sample, delimiters=",;\t")
    except csv.Error:
        dialect = csv.excel
    reader = csv.DictReader(io.StringIO(text), dialect=dialect)
    header = [h.strip() for h in (reader.fieldnames or [])]
    missing = [c for c in REQUIRED if c not in header]
    if missing:
        raise BadRequest(
            f"the CSV header lacks {', '.join(missing)}; expected {','.join(COLUMNS)}",
            code="bad_places_file",
        )
    reader.fieldnames = header
    rows: list[dict[str, Any]] = []
    errors: list[dict[str, Any]] = []
    seen: set[str] = set()
    for row in reader:
        line = reader.line_num
        if len(rows) + len(errors) >= MAX_ROWS:
            raise BadRequest(f"at most {MAX_ROWS} rows", code="bad_places_file")
        try:
            item = clean_row(row)
            if item["external_id"] in seen:
                raise ValueError("this id appears twice in the file")
            seen.add(item["external_id"])
            rows.append(item)
        except ValueError as exc:
            errors.append({"line": line, "id": row.get("id"), "problem": str(exc)})
    if errors:
        raise BadRequest(
            f"{len(errors)} row(s) cannot be imported; nothing was changed",
            code="bad_places",
            errors=errors[:50],
        )
    return rows


async def import_places(session: AsyncSession, text: str, *, replace: bool = False) -> PlacesImport:
    """Create or update places by id; with `replace`, places missing from the file are
    switched off (the file is the whole directory)."""
    rows = parse_csv(text)
    report = PlacesImport()
    ids = [r["external_id"] for r in rows]
    existing = (
        {
            p.external_id: p
            for p in (await session.scalars(select(Place).where(Place.external_id.in_(ids)))).all()
        }
        if ids
        else {}
    )
    now = utcnow()
    for item in rows:
        place = existing.get(item["external_id"])
        if place is None:
            session.add(Place(**item, is_active=True, updated_at=now))
            report.created += 1
            continue
        changed = not place.is_active or any(getattr(place, k) != v for k, v in item.items())
        if not changed:
            report.unchanged += 1
            continue
        for key, value in item.items():
            setattr(place, key, value)
        place.is_active = True
        place.updated_at = now
        report.updated += 1
    if replace:
        result = await session.execute(
            update(Place)
            .where(Place.is_active.is_(True), Place.external_id.not_in(ids or [""]))
            .values(is_active=False, updated_at=now)
        )
        report.deactivated = int(getattr(result, "rowcount", 0) or 0)
    return report


@dataclass(frozen=True)
class Nearby:
    place: Place
    km: float

    def as_dict(self) -> dict[str, Any]:
        p = self.place
        return {
            "id": p.external_id,
            "kind": p.kind,
            "name": p.name,
            "city": p.city,
            "address": p.address,
            "hours": p.hours,
            "services": list(p.services or []),
            "lat": p.lat,
            "lon": p.lon,
            "distance_km": round(self.km, 2),
        }


async def nearest(
    session: AsyncSession, lat: float, lon: float, *, kind: str = "any", limit: int = 3
) -> list[Nearby]:
    """The closest active places: first within a box of about ±50 km, then anywhere (a
    customer far from every branch still gets the nearest ones)."""
    query = select(Place).where(Place.is_active.is_(True))
    if kind in KINDS:
        query = query.where(Place.kind == kind)
    for box in (0.5, None):
        q = query
        if box is not None:
            wide = box / max(0.1, math.cos(math.radians(lat)))
            q = q.where(Place.lat.between(lat - box, lat + box)).where(
                Place.lon.between(lon - wide, lon + wide)
            )
        places = (await session.scalars(q)).all()
        if len(places) >= limit or box is None:
            ranked = sorted(
                (Nearby(p, distance_km(lat, lon, p.lat, p.lon)) for p in places),
                key=lambda n: n.km,
            )
            return ranked[:limit]
    return []


async def in_city(
    session: AsyncSession, words: set[str], *, kind: str = "any", limit: int = 3
) -> list[Place]:
    """Places in a city the customer named (for channels where they type instead of
    sharing a location)."""
    query = select(Place).where(Place.is_active.is_(True), Place.city != "")
    if kind in KINDS:
        query = query.where(Place.kind == kind)
    cities = (await session.scalars(query.with_only_columns(Place.city).distinct())).all()
    named = [c for c in cities if c.casefold() in words]
    if not named:
        return []
    rows = await session.scalars(query.where(Place.city.in_(named)).order_by(Place.name))
    return list(rows.all())[:limit]
