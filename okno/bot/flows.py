"""Button flows: the bank's decision trees (block a card, refund times, the nearest ATM...),
their file format, checks, import/export and history.

A flow is a set of named steps. Steps that only talk (message, article) run on at once;
steps that wait (choice, location) keep the dialog's place in `bot_flow_states` until the
customer presses a button, types an option or shares a location. The runner is
`okno.bot.flow_runner`; this module only knows what a well-formed flow looks like.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from okno.bot.models import Flow, FlowVersion
from okno.bot.service import ARTICLE_ID, _strings
from okno.db.base import utcnow
from okno.errors import BadRequest, Conflict

STEP_KINDS = ("message", "choice", "location", "action", "handoff", "article")
WAITING_KINDS = ("choice", "location")  # steps that wait for the customer
PLACE_KINDS = ("branch", "atm", "any")
MAX_STEPS = 100
MAX_OPTIONS = 10
MAX_LABEL = 40  # what fits on a messenger's keyboard button
MAX_TEXT = 4000
FLOW_PREFIX = "flow:"  # how flows appear among the retriever's entries and in payloads


class FlowError(ValueError):
    """What is wrong with a flow, with the step it is in."""


def _text(raw: dict[str, Any], key: str, where: str, *, required: bool) -> str:
    value = raw.get(key)
    if value is None or value == "":
        if required:
            raise FlowError(f"{where}: '{key}' is required")
        return ""
    if not isinstance(value, str | int | float):
        raise FlowError(f"{where}: '{key}' must be text")
    text = str(value).strip()
    if len(text) > MAX_TEXT:
        raise FlowError(f"{where}: '{key}' is longer than {MAX_TEXT} characters")
    return text


def _step_name(value: Any, where: str) -> str:
    name = str(value or "").strip()
    if not ARTICLE_ID.match(name):
        raise FlowError(f"{where}: step names are 1-100 Latin letters, digits, '-', '_' or '.'")
    return name


def clean_step(name: str, raw: Any) -> dict[str, Any]:
    """One step, checked and reduced to the fields its kind uses."""
    where = f"step '{name}'"
    if not isinstance(raw, dict):
        raise FlowError(f"{where}: must be a mapping with a 'kind'")
    kind = raw.get("kind", "message")
    if kind not in STEP_KINDS:
        raise FlowError(f"{where}: kind must be one of {', '.join(STEP_KINDS)}")
    step: dict[str, Any] = {"kind": kind}
    if raw.get("next") not in (None, ""):
        step["next"] = _step_name(raw["next"], f"{where} next")
    if kind in ("message", "choice", "location"):
        step["text"] = _text(raw, "text", where, required=True)
    elif kind in ("handoff", "action"):
        step["text"] = _text(raw, "text", where, required=kind == "action")
    if kind == "choice":
        options = raw.get("options")
        if not isinstance(options, list) or not options:
            raise FlowError(f"{where}: a choice needs a list of options")
        if len(options) > MAX_OPTIONS:
            raise FlowError(f"{where}: at most {MAX_OPTIONS} options")
        cleaned = []
        for i, option in enumerate(options, start=1):
            if not isinstance(option, dict):
                raise FlowError(f"{where} option {i}: must be a mapping with label and next")
            label = _text(option, "label", f"{where} option {i}", required=True)
            if len(label) > MAX_LABEL:
                raise FlowError(f"{where} option {i}: label longer than {MAX_LABEL} characters")
            cleaned.append(
                {"label": label, "next": _step_name(option.get("next"), f"{where} option {i}")}
            )
        labels = [o["label"].casefold() for o in cleaned]
        if len(set(labels)) != len(labels):
            raise FlowError(f"{where}: two options have the same label")
        step["options"] = cleaned
        step.pop("next", None)  # a choice goes where the option says
    elif kind == "location":
        place_kind = raw.get("places", "any")
        if place_kind not in PLACE_KINDS:
            raise FlowError(f"{where}: places must be one of {', '.join(PLACE_KINDS)}")
        limit = raw.get("limit", 3)
        if not isinstance(limit, int) or not 1 <= limit <= 5:
            raise FlowError(f"{where}: limit must be a whole number from 1 to 5")
        step["places"] = place_kind
        step["limit"] = limit
    elif kind == "action":
        action = str(raw.get("action") or "").strip()
        if not ARTICLE_ID.match(action):
            raise FlowError(f"{where}: 'action' names the bank back-end call (e.g. balance)")
        step["action"] = action
        params = raw.get("params") or {}
        if not isinstance(params, dict) or not all(
            isinstance(k, str) and isinstance(v, str | int | float | bool)
            for k, v in params.items()
        ):
            raise FlowError(f"{where}: params must map names to plain values")
        step["params"] = params
        for key in ("fallback_text", "unverified_text"):
            if raw.get(key):
                step[key] = _text(raw, key, where, required=False)
    elif kind == "handoff":
        if raw.get("topic"):
            step["topic"] = _text(raw, "topic", where, required=False)[:100]
        step.pop("next", None)
    elif kind == "article":
        article = str(raw.get("article") or "").strip()
        if not ARTICLE_ID.match(article):
            raise FlowError(f"{where}: 'article' is the id of a knowledge-base article")
        step["article"] = article
    return step


def _targets(step: dict[str, Any]) -> list[str]:
    if step["kind"] == "choice":
        return [o["next"] for o in step["options"]]
    return [step["next"]] if "next" in step else []


def check_graph(start: str, steps: dict[str, dict[str, Any]]) -> None:
    """Every `next` names a step, and no loop runs without waiting for the customer (it
    would talk forever)."""
    if start not in steps:
        raise FlowError(f"start: there is no step '{start}'")
    for name, step in steps.items():
        for target in _targets(step):
            if target not in steps:
                raise FlowError(f"step '{name}': goes to '{target}', which is not a step")
    for name in steps:
        seen = [name]
        current = steps[name]
        while current["kind"] not in WAITING_KINDS and "next" in current:
            target = current["next"]
            if target in seen:
                loop = " → ".join([*seen[seen.index(target) :], target])
                raise FlowError(f"steps {loop} loop without waiting for the customer")
            seen.append(target)
            current = steps[target]


def clean_flow(raw: Any) -> dict[str, Any]:
    """One flow from an import file or the editor, checked; FlowError says what is wrong."""
    if not isinstance(raw, dict):
        raise FlowError("each flow must be a mapping with id, title, start and steps")
    flow_id = str(raw.get("id", "")).strip()
    if not ARTICLE_ID.match(flow_id):
        raise FlowError("id must be 1-100 Latin letters, digits, '-', '_' or '.'")
    title = str(raw.get("title") or "").strip()
    if not title or len(title) > 300:
        raise FlowError("title is required (at most 300 characters)")
    if not raw.get("questions") and not raw.get("articles"):
        raise FlowError(
            "a flow needs questions that start it, or articles whose questions start it"
        )
    raw_steps = raw.get("steps")
    if not isinstance(raw_steps, dict) or not raw_steps:
        raise FlowError("steps must be a mapping of step name to step")
    if len(raw_steps) > MAX_STEPS:
        raise FlowError(f"at most {MAX_STEPS} steps")
    steps = {
        _step_name(name, f"step '{name}'"): clean_step(str(name), step)
        for name, step in raw_steps.items()
    }
    start = _step_name(raw.get("start") or next(iter(steps)), "start")
    check_graph(start, steps)
    topic = raw.get("topic")
    try:
        questions = _strings(raw.get("questions"), "questions")
        articles = _strings(raw.get("articles"), "articles")
        channels = _strings(raw.get("channels"), "channels")
    except ValueError as exc:
        raise FlowError(str(exc)) from None
    return {
        "external_id": flow_id,
        "title": title,
        "questions": questions,
        "articles": articles,
        "topic": (str(topic).strip()[:100] or None) if topic is not None else None,
        "channels": channels,
        "start": start,
        "steps": steps,
    }


FIELDS = ("title", "questions", "articles", "topic", "channels", "start", "steps")


def content(flow: Flow) -> dict[str, Any]:
    return {key: getattr(flow, key) for key in FIELDS}


@dataclass
class FlowImport:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    errors: list[dict[str, Any]] = field(default_factory=list)


async def save_flow(
    session: AsyncSession,
    item: dict[str, Any],
    *,
    actor_id: int | None,
    source: str,
    expected_version: int | None = None,
) -> tuple[Flow, str]:
    """Create or update one checked flow; (flow, created|updated|unchanged). A stale
    `expected_version` (someone saved in between) is refused rather than overwritten."""
    flow = await session.scalar(select(Flow).where(Flow.external_id == item["external_id"]))
    now = utcnow()
    if flow is None:
        if expected_version:
            raise Conflict("this flow no longer exists", code="flow_missing")
        flow = Flow(**item, version=1, updated_at=now, updated_by=actor_id)
        session.add(flow)
        await session.flush()
        outcome = "created"
    else:
        if expected_version is not None and expected_version != flow.version:
            raise Conflict(
                f"someone saved this flow in the meantime (version {flow.version}); "
                "reload it and make your change again",
                code="flow_conflict",
            )
        before = content(flow)
        was_active = flow.is_active
        for key in FIELDS:
            setattr(flow, key, item[key])
        flow.is_active = True
        if content(flow) == before and was_active:
            return flow, "unchanged"
        flow.version += 1
        flow.updated_at = now
        flow.updated_by = actor_id
        outcome = "updated"
    session.add(
        FlowVersion(
            flow_id=flow.id,
            version=flow.version,
            content=content(flow),
            changed_by=actor_id,
            source=source,
            at=now,
        )
    )
    return flow, outcome


async def import_flows(
    session: AsyncSession, data: Any, *, actor_id: int | None = None
) -> FlowImport:
    """All or nothing, like the knowledge base: a bad flow is named by position and id."""
    if not isinstance(data, dict) or not isinstance(data.get("flows"), list):
        raise BadRequest("the file must have a list under 'flows'", code="bad_flow_file")
    report = FlowImport()
    cleaned: list[dict[str, Any]] = []
    seen: set[str] = set()
    for n, raw in enumerate(data["flows"], start=1):
        try:
            item = clean_flow(raw)
            if item["external_id"] in seen:
                raise FlowError("this id appears twice in the file")
            seen.add(item["external_id"])
            cleaned.append(item)
        except FlowError as exc:
            ident = raw.get("id") if isinstance(raw, dict) else None
            report.errors.append({"position": n, "id": ident, "problem": str(exc)})
    if report.errors:
        raise BadRequest(
            f"{len(report.errors)} flow(s) cannot be imported; nothing was changed",
            code="bad_flows",
            errors=report.errors[:50],
        )
    for item in cleaned:
        _, outcome = await save_flow(session, item, actor_id=actor_id, source="import")
        setattr(report, outcome, getattr(report, outcome) + 1)
    return report


STEP_ORDER = (
    "kind",
    "text",
    "options",
    "places",
    "limit",
    "action",
    "params",
    "article",
    "topic",
    "unverified_text",
    "fallback_text",
    "next",
)


def exported(flow: Flow) -> dict[str, Any]:
    """The flow in the import format, each step's fields in reading order (the database
    may keep them in any order)."""
    item: dict[str, Any] = {"id": flow.external_id, **content(flow)}
    item["steps"] = {
        name: {k: step[k] for k in sorted(step, key=lambda k: STEP_ORDER.index(k))}
        for name, step in (flow.steps or {}).items()
    }
    return {k: v for k, v in item.items() if v not in (None, [], "", {})}


async def export_flows(session: AsyncSession) -> dict[str, Any]:
    rows = (
        await session.scalars(
            select(Flow).where(Flow.is_active.is_(True)).order_by(Flow.external_id)
        )
    ).all()
    return {"flows": [exported(f) for f in rows]}


async def active_flows(session: AsyncSession) -> list[Flow]:
    return list((await session.scalars(select(Flow).where(Flow.is_active.is_(True)))).all())


async def flow_by_external_id(session: AsyncSession, flow_id: str) -> Flow | None:
    return await session.scalar(select(Flow).where(Flow.external_id == flow_id))


async def switch_off(session: AsyncSession, flow: Flow, *, actor_id: int | None) -> None:
    """Off, with a history entry saying who did it; dialogs inside it leave at their next
    message (the runner checks)."""
    if not flow.is_active:
        return
    now = utcnow()
    flow.is_active = False
    flow.version += 1
    flow.updated_at, flow.updated_by = now, actor_id
    session.add(
        FlowVersion(
            flow_id=flow.id,
            version=flow.version,
            content=content(flow),
            changed_by=actor_id,
            source="off",
            at=now,
        )
    )
