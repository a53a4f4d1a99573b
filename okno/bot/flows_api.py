"""Button flows and the branch/ATM directory over HTTP: the editor's API, imports, exports,
and the nearest places to a point."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import structlog
import yaml
from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, Field
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from okno.bot import articles, flows, places
from okno.bot.models import Flow, FlowVersion, Place
from okno.bot.service import yaml_problem
from okno.bot.uploads import text_body, yaml_body
from okno.errors import BadRequest, NotFound
from okno.http import State, require, write
from okno.inputs import Input
from okno.operators.models import User
from okno.security import audit

log = structlog.get_logger("okno.bot")
router = APIRouter(prefix="/api/v1/bot", tags=["bot flows"])
BotReader = Annotated[User, require("bot.read")]
BotManager = Annotated[User, require("bot.manage")]
Asker = Annotated[User, require("bot.ask")]  # staff and integrators look up branches


class FlowOut(BaseModel):
    id: str
    title: str
    questions: list[str]
    articles: list[str]
    topic: str | None
    channels: list[str]
    start: str
    steps: dict[str, Any]
    version: int
    is_active: bool
    updated_at: datetime
    updated_by: str | None = None
    yaml: str = Field(description="The flow in the import format, as the editor shows it.")


class FlowsOut(BaseModel):
    flows: list[FlowOut]


class FlowSave(Input):
    flow: dict[str, Any] | None = Field(
        default=None, description="The flow in the import format (id, title, ...)."
    )
    yaml: str | None = Field(
        default=None, max_length=200_000, description="Or the same as YAML text (the editor)."
    )
    version: int | None = Field(
        default=None, ge=1, description="The version being edited; a newer one saved since → 409."
    )


class FlowVersionOut(BaseModel):
    version: int
    content: dict[str, Any]
    changed_by: str | None
    source: str
    at: datetime


class FlowHistoryOut(BaseModel):
    versions: list[FlowVersionOut]


class ImportCounts(BaseModel):
    created: int
    updated: int
    unchanged: int
    deactivated: int = 0


class PlaceOut(BaseModel):
    id: str
    kind: str
    name: str
    city: str
    address: str
    hours: str
    services: list[str]
    lat: float
    lon: float
    distance_km: float | None


class PlacesOut(BaseModel):
    places: list[PlaceOut]
    total: int = Field(description="Active places in the directory.")


def _out(flow: Flow, names: dict[int, str]) -> FlowOut:
    return FlowOut(
        id=flow.external_id,
        title=flow.title,
        questions=list(flow.questions or []),
        articles=list(flow.articles or []),
        topic=flow.topic,
        channels=list(flow.channels or []),
        start=flow.start,
        steps=flow.steps,
        version=flow.version,
        is_active=flow.is_active,
        updated_at=flow.updated_at,
        updated_by=names.get(flow.updated_by or 0),
        yaml=yaml.safe_dump(
            flows.exported(flow), allow_unicode=True, sort_keys=False, default_flow_style=False
        ),
    )


@router.get("/flows", response_model=FlowsOut)
async def list_flows(user: BotReader, state: State) -> FlowsOut:
    """Every flow, the switched-off ones too (they keep their history)."""
    async with state.db.read() as session:
        rows = (await session.scalars(select(Flow).order_by(Flow.title))).all()
        names = await articles.names(session, {f.updated_by for f in rows if f.updated_by})
    return FlowsOut(flows=[_out(f, names) for f in rows])


@router.get("/flows/export")
async def export_flows(user: BotReader, request: Request, state: State) -> dict[str, Any]:
    """Every active flow in the import format (recorded in the audit log)."""

    async def export(session: AsyncSession) -> dict[str, Any]:
        out = await flows.export_flows(session)
        await audit.record(
            session,
            action=audit.EXPORT,
            actor=audit.actor_of(user, request),
            object_type="flows",
            details={"kind": "flows", "flows": len(out["flows"])},
        )
        return out

    return await write(state, export)


async def _get(session: AsyncSession, flow_id: str) -> Flow:
    flow = await flows.flow_by_external_id(session, flow_id)
    if flow is None:
        raise NotFound(f"there is no flow '{flow_id}'", code="flow_not_found")
    return flow


@router.get("/flows/{flow_id}", response_model=FlowOut)
async def get_flow(flow_id: str, user: BotReader, state: State) -> FlowOut:
    async with state.db.read() as session:
        flow = await _get(session, flow_id)
        return _out(
            flow, await articles.names(session, {flow.updated_by} if flow.updated_by else set())
        )


@router.put("/flows/{flow_id}", response_model=FlowOut)
async def save_flow(flow_id: str, body: FlowSave, user: BotManager, state: State) -> FlowOut:
    """Create or change a flow (the editor's save). Checked like an import; a problem names
    the step it is in."""
    if (body.flow is None) == (body.yaml is None):
        raise BadRequest("send either flow or yaml", code="bad_flow")
    given: Any = body.flow
    if body.yaml is not None:
        try:
            given = yaml.safe_load(body.yaml)
        except yaml.YAMLError as exc:
            raise BadRequest(f"not valid YAML: {yaml_problem(exc)}", code="bad_flow") from None
        if not isinstance(given, dict):
            raise BadRequest("the flow must be a mapping (id, title, steps, ...)", code="bad_flow")
    raw = {**given, "id": flow_id}
    try:
        item = flows.clean_flow(raw)
    except flows.FlowError as exc:
        raise BadRequest(str(exc), code="bad_flow") from None

    async def run(session: AsyncSession) -> FlowOut:
        flow, outcome = await flows.save_flow(
            session, item, actor_id=user.id, source="edit", expected_version=body.version
        )
        log.info("bot.flow_saved", flow=flow.external_id, outcome=outcome, actor_id=user.id)
        return _out(flow, {user.id: user.display_name})

    result = await write(state, run)
    state.kb.invalidate()  # suggestions and answers see it at once
    return result


@router.delete("/flows/{flow_id}", status_code=204)
async def switch_off_flow(flow_id: str, user: BotManager, state: State) -> None:
    """Switch a flow off (never deleted: its history and past dialogs keep their meaning)."""

    async def run(session: AsyncSession) -> None:
        flow = await _get(session, flow_id)
        await flows.switch_off(session, flow, actor_id=user.id)

    await write(state, run)
    state.kb.invalidate()  # suggestions and answers see it at once


@router.get("/flows/{flow_id}/history", response_model=FlowHistoryOut)
async def flow_history(flow_id: str, user: BotReader, state: State) -> FlowHistoryOut:
    async with state.db.read() as session:
        flow = await _get(session, flow_id)
        rows = (
            await session.scalars(
                select(FlowVersion)
                .where(FlowVersion.flow_id == flow.id)
                .order_by(FlowVersion.version.desc())
            )
        ).all()
        names = await articles.names(session, {v.changed_by for v in rows if v.changed_by})
    return FlowHistoryOut(
        versions=[
            FlowVersionOut(
                version=v.version,
                content=v.content,
                changed_by=names.get(v.changed_by or 0),
                source=v.source,
                at=v.at,
            )
            for v in rows
        ]
    )


@router.post("/flows/import", response_model=ImportCounts)
async def import_flows(request: Request, user: BotManager, state: State) -> ImportCounts:
    """Flows from a YAML or JSON body (`flows:` list); all or nothing."""
    data = await yaml_body(request, code="bad_flow_file")

    async def run(session: AsyncSession) -> flows.FlowImport:
        return await flows.import_flows(session, data, actor_id=user.id)

    report = await write(state, run)
    state.kb.invalidate()  # suggestions and answers see it at once
    log.info("bot.flows_imported", actor_id=user.id, created=report.created, updated=report.updated)
    return ImportCounts(created=report.created, updated=report.updated, unchanged=report.unchanged)


@router.post("/places/import", response_model=ImportCounts)
async def import_places(
    request: Request,
    user: BotManager,
    state: State,
    replace: Annotated[
        bool, Query(description="Places missing from the file are switched off.")
    ] = False,
) -> ImportCounts:
    """The branch/ATM directory from a CSV body (header: id,kind,name,city,address,lat,lon,
    hours,services); all or nothing, bad rows named by line."""
    text = await text_body(request)

    async def run(session: AsyncSession) -> places.PlacesImport:
        return await places.import_places(session, text, replace=replace)

    report = await write(state, run)
    log.info(
        "bot.places_imported", actor_id=user.id, created=report.created, updated=report.updated
    )
    return ImportCounts(
        created=report.created,
        updated=report.updated,
        unchanged=report.unchanged,
        deactivated=report.deactivated,
    )


@router.get("/places", response_model=PlacesOut)
async def nearest_places(
    user: Asker,
    state: State,
    lat: Annotated[float, Query(ge=-90, le=90)],
    lon: Annotated[float, Query(ge=-180, le=180)],
    kind: Annotated[str, Query(pattern="^(branch|atm|any)$")] = "any",
    limit: Annotated[int, Query(ge=1, le=50)] = 5,
) -> PlacesOut:
    """The nearest active branches/ATMs to a point, with distances (staff and integrators)."""
    async with state.db.read() as session:
        near = await places.nearest(session, lat, lon, kind=kind, limit=limit)
        total = await session.scalar(select(func.count()).where(Place.is_active.is_(True)))
    return PlacesOut(places=[PlaceOut(**n.as_dict()) for n in near], total=int(total or 0))
