"""The bot's turn: a button flow's next step, an answer from the knowledge base, or the
dialog handed to a person with the recognised topic; and the self-service back-end call a
flow step makes."""

from __future__ import annotations

from typing import Any

import structlog
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from okno.bot import actions as backend
from okno.bot import clarify, flow_runner, places, service, turns
from okno.bot.flows import FLOW_PREFIX
from okno.bot.models import BotTurn, Flow, FlowState
from okno.bot.triggers import REPLY
from okno.channels.models import Channel
from okno.conversations import actions
from okno.conversations.models import Conversation, Message
from okno.db.base import utcnow
from okno.db.session import Database
from okno.jobs.worker import JobContext

log = structlog.get_logger("okno.bot")
MAX_ANSWERS = 2  # after two answers that did not settle it, a person takes over
ACTION = flow_runner.ACTION

__all__ = ["ACTION", "REPLY", "action", "prepare_action", "reply"]


async def reply(session: AsyncSession, payload: dict[str, Any], ctx: JobContext) -> None:
    message = await session.get(Message, int(payload["message_id"]))
    if message is None:
        return
    conversation = await session.get(Conversation, message.conversation_id, with_for_update=True)
    if conversation is None or conversation.status != "bot":
        return  # a person has it already, or it is closed
    channel = await session.get(Channel, conversation.channel_id)
    kind = channel.kind if channel else None
    kb = service.knowledge_for(ctx.settings.effective_database_url)
    retriever = await kb.current(session)
    run_ctx = flow_runner.Context(channel_kind=kind, answers=kb.answers, message_id=message.id)
    raw_location = payload.get("location")
    location = (float(raw_location[0]), float(raw_location[1])) if raw_location else None

    async def keep(decision: service.BotDecision, **extra: Any) -> None:
        await turns.record(
            session,
            decision,
            text=message.text,
            channel_kind=kind,
            conversation_id=conversation.id,
            message_id=message.id,
            suggested=bool(payload.get("suggested")),
            **extra,
        )

    def stepped(reason: str) -> service.BotDecision:
        """A turn the flow took (no article, nothing to be unsure about)."""
        return service.BotDecision("answer", 1.0, None, None, None, [], reason)

    # 1. A button pressed: its flow starts or goes on, wherever the dialog was.
    pressed = flow_runner.decode(payload.get("button"))
    if pressed is not None and await flow_runner.press(session, conversation, pressed, run_ctx):
        await keep(stepped("button"), flow_id=pressed.flow_id)
        return
    # 2. Inside a flow: the answer to the step it waits at (or a new question: it leaves).
    state = await flow_runner.state_of(session, conversation)
    if state is not None:
        words = set(retriever.normalizer.lemmas(message.text)) | {
            w.casefold() for w in message.text.split()
        }
        flow = await session.get(Flow, state.flow_id)
        if await flow_runner.resume(
            session,
            conversation,
            state,
            run_ctx,
            text=message.text,
            location=location,
            words=words,
        ):
            flow_id = flow.external_id if flow else None
            await keep(stepped("flow_step"), flow_id=flow_id)
            return
    # 3. A location shared outside any flow: the nearest branches and ATMs.
    if location is not None:
        near = await places.nearest(session, location[0], location[1], limit=3)
        if near:
            found = [n.as_dict() for n in near]
            await actions.bot_says(
                session, conversation, text=flow_runner.places_text(found), meta={"places": found}
            )
            await keep(stepped("location"))
            return
    # 4. A question: the one picked from the suggestions, or the free text.
    answered = await session.scalar(
        select(func.count()).where(
            BotTurn.conversation_id == conversation.id,
            BotTurn.decision == "answer",
            BotTurn.reason.in_(("confident", "picked")),
        )
    )
    picked = payload.get("article_id")
    button = payload.get("button") or await clarify.typed_choice(
        session, conversation, message.text
    )
    if isinstance(button, str) and button.startswith(clarify.ARTICLE_PREFIX):
        picked = button[len(clarify.ARTICLE_PREFIX) :]
    entry = kb.answers.get(picked) if isinstance(picked, str) else None
    if button == clarify.PERSON:
        decision = service.BotDecision("handoff", 1.0, None, None, None, [], "human_requested")
    elif entry is not None and entry.shown(kind, utcnow()):
        decision = service.BotDecision(
            "answer", 1.0, entry.article_id, entry.answer, entry.topic, [], "picked"
        )
    elif not message.text.strip():
        decision = service.BotDecision("handoff", 0.0, None, None, None, [], "attachment")
    else:
        decision = service.decide(
            retriever,
            message.text,
            threshold=ctx.settings.bot_answer_threshold,
            channel=kind,
            now=utcnow(),
            answers=kb.answers,
        )
        if (
            decision.decision == "answer"
            and not (decision.article_id or "").startswith(FLOW_PREFIX)
            and (answered or 0) >= MAX_ANSWERS
        ):
            decision = service.BotDecision(
                "handoff",
                decision.confidence,
                None,
                None,
                decision.topic,
                decision.suggestions,
                "repeated",
            )
    started = None
    if decision.decision == "answer" and decision.article_id:
        if decision.article_id.startswith(FLOW_PREFIX):
            flow_id = decision.article_id[len(FLOW_PREFIX) :]
        else:
            taking_over = await flow_runner.flow_for_article(session, decision.article_id, kind)
            flow_id = taking_over.external_id if taking_over else ""
        if flow_id and await flow_runner.press(
            session, conversation, flow_runner.Press(flow_id), run_ctx
        ):
            started = flow_id
    offered = (
        not started
        and decision.decision == "handoff"
        and await clarify.offer(session, conversation, decision, channel_kind=kind, now=utcnow())
    )
    if offered:  # the customer picks one of the likely questions, or asks for a person
        decision = service.BotDecision(
            "answer",
            decision.confidence,
            None,
            None,
            decision.topic,
            decision.suggestions,
            "clarify",
        )
    await keep(decision, picked=entry is not None, flow_id=started)
    if started or offered:
        pass  # the flow's first step, or the question with the likely articles, has spoken
    elif decision.decision == "answer" and decision.answer:
        await actions.bot_says(session, conversation, text=decision.answer)
    else:
        await flow_runner.leave(session, conversation)
        await actions.hand_off(session, conversation, topic=decision.topic, reason=decision.reason)
    log.info(
        "bot.turn",
        conversation_id=conversation.id,
        decision=decision.decision,
        reason=decision.reason,
        article_id=decision.article_id,
        confidence=decision.confidence,
        flow=started,
    )


async def _pending(
    session: AsyncSession, payload: dict[str, Any]
) -> tuple[Conversation, FlowState, Flow, dict[str, Any]] | None:
    """The dialog, its flow state and the action step, if it still waits for this call."""
    conversation = await session.get(Conversation, int(payload["conversation_id"]))
    state = await session.get(FlowState, int(payload["conversation_id"]))
    flow = await session.get(Flow, int(payload["flow_id"]))
    if conversation is None or state is None or flow is None or conversation.status != "bot":
        return None
    step = flow.steps.get(payload["step"])
    if (
        state.flow_id != flow.id
        or state.step != payload["step"]
        or not (state.data or {}).get("pending")
        or step is None
        or step.get("kind") != "action"
    ):
        return None
    return conversation, state, flow, step


async def prepare_action(db: Database, payload: dict[str, Any], ctx: JobContext) -> dict[str, Any]:
    """The back-end call, made before the job's transaction (see okno.jobs.worker)."""
    async with db.read() as session:
        found = await _pending(session, payload)
    if found is None:
        return {"skip": True}
    conversation, _, flow, step = found
    if not conversation.verified_as:
        return {"ok": False, "reason": "not verified"}
    try:
        values = await backend.call(
            ctx.settings,
            action=step["action"],
            customer_id=conversation.verified_as,
            conversation_id=conversation.id,
            params=dict(step.get("params") or {}),
            idempotency_key=f"okno-{conversation.id}-{payload['message_id']}-{payload['step']}",
        )
        return {"ok": True, "text": backend.fill(step["text"], values)}
    except backend.ActionFailed as exc:
        log.warning(
            "bot.action_failed",
            conversation_id=conversation.id,
            flow=flow.external_id,
            action=step["action"],
            reason=exc.reason,
        )
        return {"ok": False, "reason": exc.reason}


async def action(session: AsyncSession, payload: dict[str, Any], ctx: JobContext) -> None:
    """Say what the back-end answered and go on, or apologise and hand off."""
    prepared = ctx.prepared or {}
    if prepared.get("skip"):
        return
    conversation = await session.get(
        Conversation, int(payload["conversation_id"]), with_for_update=True
    )
    found = await _pending(session, payload)
    if conversation is None or found is None:
        return  # the customer moved on (another button, a person) while we waited
    _, _, flow, step = found
    channel = await session.get(Channel, conversation.channel_id)
    kb = service.knowledge_for(ctx.settings.effective_database_url)
    await kb.current(session)
    run_ctx = flow_runner.Context(
        channel_kind=channel.kind if channel else None,
        answers=kb.answers,
        message_id=int(payload["message_id"]),
    )
    if not prepared.get("ok"):
        await flow_runner.leave(session, conversation)
        await actions.hand_off(
            session,
            conversation,
            topic=flow.topic,
            reason="backend_failed",
            note=step.get("fallback_text") or flow_runner.BACKEND_FAILED,
        )
        return
    await actions.bot_says(session, conversation, text=prepared["text"])
    if "next" in step:
        await flow_runner.run(session, conversation, flow, step["next"], run_ctx)
    else:
        await flow_runner.leave(session, conversation)
