"""Running button flows inside a dialog: show a step, wait for the customer's button,
typed option or location, go on; call the bank's back-end for a verified customer; hand
the dialog to a person when asked or when something fails.

Everything here runs inside the bot job's transaction, so the messages a step says and
the dialog's new place in the flow commit together: a retried job cannot say a step twice.
The one slow part, the back-end call, runs in its own job (`bot.action`) whose HTTP request
is made before its transaction opens (`prepare`), so no database lock waits on the bank.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import structlog
from rapidfuzz import fuzz
from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncSession

from okno.bot import places
from okno.bot.flows import FLOW_PREFIX, WAITING_KINDS, active_flows, flow_by_external_id
from okno.bot.index import Entry
from okno.bot.models import Flow, FlowState
from okno.conversations import actions
from okno.conversations.models import Conversation
from okno.db.base import utcnow
from okno.jobs import service as jobs

log = structlog.get_logger("okno.bot")
ACTION = "bot.action"
MAX_CHAIN = 50  # steps run in one go; the import check forbids loops, this is a backstop
PENDING_FOR = timedelta(minutes=2)  # a back-end call older than this is given up
NOT_VERIFIED = (
    "Эта операция доступна после входа в интернет-банк или приложение. "
    "Передаю ваш вопрос специалисту — он ответит здесь же."
)
BACKEND_FAILED = (
    "Извините, сейчас не получается получить эти данные. "
    "Передаю ваш вопрос специалисту — он ответит здесь же."
)
NOTHING_NEAR = "К сожалению, поблизости ничего не нашлось. Передаю ваш вопрос специалисту."


def option_payload(flow: Flow, step: str, index: int) -> str:
    return f"{FLOW_PREFIX}{flow.external_id}:{step}:{index}"


def start_payload(flow_id: str) -> str:
    return f"{FLOW_PREFIX}{flow_id}"


@dataclass(frozen=True)
class Press:
    """A decoded button payload: start a flow, or choose an option of one of its steps."""

    flow_id: str
    step: str | None = None
    index: int | None = None


def decode(payload: str | None) -> Press | None:
    if not payload or not payload.startswith(FLOW_PREFIX):
        return None
    parts = payload[len(FLOW_PREFIX) :].split(":")
    if len(parts) == 1 and parts[0]:
        return Press(parts[0])
    if len(parts) == 3 and parts[2].isdigit():
        return Press(parts[0], parts[1], int(parts[2]))
    return None


@dataclass
class Context:
    """What a flow step may need to know about where it runs."""

    channel_kind: str | None
    answers: dict[str, Entry]
    message_id: int


def shown(flow: Flow, channel_kind: str | None) -> bool:
    return flow.is_active and (not flow.channels or (channel_kind or "") in flow.channels)


async def flow_for_article(
    session: AsyncSession, article_id: str, channel_kind: str | None
) -> Flow | None:
    """The active flow that takes over this article's questions, if any."""
    for flow in await active_flows(session):
        if article_id in (flow.articles or []) and shown(flow, channel_kind):
            return flow
    return None


async def state_of(session: AsyncSession, conversation: Conversation) -> FlowState | None:
    return await session.get(FlowState, conversation.id)


async def leave(session: AsyncSession, conversation: Conversation) -> None:
    await session.execute(delete(FlowState).where(FlowState.conversation_id == conversation.id))


async def _wait_at(
    session: AsyncSession, conversation: Conversation, flow: Flow, step: str, **data: Any
) -> None:
    state = await state_of(session, conversation)
    now = utcnow()
    if state is None:
        session.add(
            FlowState(
                conversation_id=conversation.id,
                flow_id=flow.id,
                step=step,
                data=data,
                started_at=now,
                updated_at=now,
            )
        )
    else:
        state.flow_id, state.step, state.data, state.updated_at = flow.id, step, data, now
    await session.flush()


async def start(
    session: AsyncSession, conversation: Conversation, flow: Flow, ctx: Context
) -> None:
    await run(session, conversation, flow, flow.start, ctx)


async def run(
    session: AsyncSession, conversation: Conversation, flow: Flow, name: str, ctx: Context
) -> None:
    """Say steps from `name` on until one waits for the customer, hands off or ends."""
    for _ in range(MAX_CHAIN):
        step = flow.steps.get(name)
        if step is None:  # an edit removed it while the dialog was inside the flow
            await leave(session, conversation)
            return
        kind = step["kind"]
        if kind == "message":
            await actions.bot_says(session, conversation, text=step["text"])
        elif kind == "article":
            entry = ctx.answers.get(step["article"])
            if entry is not None and entry.shown(ctx.channel_kind, utcnow()):
                await actions.bot_says(session, conversation, text=entry.answer)
        elif kind == "choice":
            buttons = [
                {"label": o["label"], "payload": option_payload(flow, name, i)}
                for i, o in enumerate(step["options"])
            ]
            await actions.bot_says(
                session, conversation, text=step["text"], meta={"buttons": buttons}
            )
            await _wait_at(session, conversation, flow, name)
            return
        elif kind == "location":
            await actions.bot_says(
                session, conversation, text=step["text"], meta={"ask_location": True}
            )
            await _wait_at(session, conversation, flow, name)
            return
        elif kind == "handoff":
            await leave(session, conversation)
            await actions.hand_off(
                session,
                conversation,
                topic=step.get("topic") or flow.topic,
                reason="flow",
                **({"note": step["text"]} if step.get("text") else {}),
            )
            return
        elif kind == "action":
            if not conversation.verified_as:
                await leave(session, conversation)
                await actions.hand_off(
                    session,
                    conversation,
                    topic=flow.topic,
                    reason="not_verified",
                    note=step.get("unverified_text") or NOT_VERIFIED,
                )
                return
            await _wait_at(session, conversation, flow, name, pending=True)
            await jobs.enqueue(
                session,
                kind=ACTION,
                queue="bot",
                priority=0,
                payload={
                    "conversation_id": conversation.id,
                    "flow_id": flow.id,
                    "step": name,
                    "message_id": ctx.message_id,
                },
                dedup_key=f"{ACTION}:{conversation.id}:{ctx.message_id}:{name}",
            )
            return
        if "next" not in step:
            await leave(session, conversation)
            return
        name = step["next"]
    log.warning("bot.flow_chain_too_long", flow=flow.external_id, conversation_id=conversation.id)
    await leave(session, conversation)


def _option_for(step: dict[str, Any], text: str) -> int | None:
    """Which option the customer typed: its number, or its label (typos forgiven)."""
    typed = text.strip().casefold().rstrip(".)")
    options = step.get("options", [])
    if typed.isdigit() and 1 <= int(typed) <= len(options):
        return int(typed) - 1
    best, best_score = None, 0.0
    for i, option in enumerate(options):
        score = fuzz.ratio(typed, option["label"].casefold())
        if score > best_score:
            best, best_score = i, score
    return best if best_score >= 85 else None


async def press(
    session: AsyncSession, conversation: Conversation, pressed: Press, ctx: Context
) -> bool:
    """A button pressed (also an old one, further up the dialog): start its flow or go where
    its option leads. False when it names nothing that exists any more."""
    flow = await flow_by_external_id(session, pressed.flow_id)
    if flow is None or not shown(flow, ctx.channel_kind):
        return False
    if pressed.step is None:
        await start(session, conversation, flow, ctx)
        return True
    step = flow.steps.get(pressed.step)
    options = step.get("options", []) if step else []
    if pressed.index is None or not 0 <= pressed.index < len(options):
        return False
    await run(session, conversation, flow, options[pressed.index]["next"], ctx)
    return True


async def resume(
    session: AsyncSession,
    conversation: Conversation,
    state: FlowState,
    ctx: Context,
    *,
    text: str,
    location: tuple[float, float] | None,
    words: set[str],
) -> bool:
    """The customer answered the step the dialog waits at. False when the answer does not
    fit the step (a new question instead): the dialog leaves the flow and the caller
    treats the message as a question."""
    flow = await session.get(Flow, state.flow_id)
    step = flow.steps.get(state.step) if flow else None
    if flow is None or step is None or not flow.is_active:
        await leave(session, conversation)
        return False
    if step["kind"] == "action":
        # Waiting for the bank's answer: the action job speaks next, unless it is stuck.
        if utcnow() - state.updated_at < PENDING_FOR:
            return True
        await leave(session, conversation)
        return False
    if step["kind"] == "choice":
        index = _option_for(step, text)
        if index is None:
            await leave(session, conversation)
            return False
        await run(session, conversation, flow, step["options"][index]["next"], ctx)
        return True
    if step["kind"] == "location":
        found: list[dict[str, Any]]
        if location is not None:
            near = await places.nearest(
                session, location[0], location[1], kind=step["places"], limit=step["limit"]
            )
            found = [n.as_dict() for n in near]
        else:
            in_city = await places.in_city(session, words, kind=step["places"], limit=step["limit"])
            if not in_city:
                await leave(session, conversation)
                return False
            found = [places.Nearby(p, 0.0).as_dict() | {"distance_km": None} for p in in_city]
        if not found:
            await leave(session, conversation)
            await actions.hand_off(
                session, conversation, topic=flow.topic, reason="flow", note=NOTHING_NEAR
            )
            return True
        await actions.bot_says(
            session, conversation, text=places_text(found), meta={"places": found}
        )
        if "next" in step:
            await run(session, conversation, flow, step["next"], ctx)
        else:
            await leave(session, conversation)
        return True
    await leave(session, conversation)
    return False


def places_text(found: list[dict[str, Any]]) -> str:
    """The places as plain text too, for channels and transcripts that show no cards."""
    lines = []
    for n, place in enumerate(found, start=1):
        where = f"{place['name']}, {place['address']}"
        if place.get("distance_km") is not None:
            km = place["distance_km"]
            where += f" — {int(km * 1000)} м" if km < 1 else f" — {km:.1f} км".replace(".", ",")
        if place.get("hours"):
            where += f". {place['hours']}"
        lines.append(f"{n}. {where}")
    return "Ближайшие к вам:\n" + "\n".join(lines)


def waits(step: dict[str, Any]) -> bool:
    return step.get("kind") in WAITING_KINDS
