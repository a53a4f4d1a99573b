"""Reply suggestions for operators: up to three replies to the customer's newest message,
from the knowledge base and from what operators answered to similar questions before.

* **Knowledge base.** The retriever's hits for the message, only articles allowed in the
  dialog's channel and within their validity dates; the suggestion is the article's answer.
* **Earlier operator answers.** Pairs (a customer's message → the next operator reply in
  the same dialog, not a note) from the last ``OKNO_REPLY_SUGGESTIONS_HISTORY_DAYS`` days,
  at most ``OKNO_REPLY_SUGGESTIONS_HISTORY_PAIRS`` of the newest. Each distinct answer is
  one retriever entry whose questions are the customer messages it answered (the answer's
  own words are not indexed: long answers would win on length alone). The index
  lives in memory, one per process and database, and is rebuilt (in a thread, off the event
  loop) when older than ``OKNO_REPLY_SUGGESTIONS_REFRESH_SECONDS``.

Both kinds are ranked by score together: a candidate must reach ``MIN_SCORE`` and
``RELATIVE_CUT`` of the best one, and near-identical replies (the same article, or texts
at least ``SAME_TEXT`` % alike, e.g. an operator who pasted the article) count once.

The suggestions for a message are computed on the first request and stored
(``reply_suggestions``, unique per message and rank), so every operator sees the same
ones and what was done with each — accepted, edited or rejected — is recorded once.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import timedelta

import structlog
from rapidfuzz import fuzz
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from okno.bot.index import Entry, Retriever
from okno.bot.models import ReplySuggestion
from okno.bot.service import KnowledgeBase
from okno.channels.models import Channel
from okno.conversations import service as conversations
from okno.conversations.models import Conversation, Message
from okno.db.base import utcnow
from okno.errors import BadRequest, Conflict, NotFound
from okno.operators.models import User
from okno.settings import Settings

log = structlog.get_logger("okno.bot.assist")

MAX_SUGGESTIONS = 3
# Scores are the retriever's (0..1). On the labelled set (bench/bot_eval) 0.3 keeps 91% of
# the right articles among the top three and a third of the wrong ones; keeping only what
# scores within 70% of the best drops most of the rest.
MIN_SCORE = 0.3
RELATIVE_CUT = 0.7
SAME_TEXT = 90  # rapidfuzz ratio (0..100) from which two replies are the same reply
MIN_ANSWER_CHARS = 10  # "Минуту", "Добрый день" are not replies worth offering
MAX_ANSWER_CHARS = 2000
MAX_QUESTIONS_PER_ANSWER = 50
ROWS_PER_PAIR = 4  # messages read per wanted pair (greetings, follow-ups, bot turns)

# What an answer written for one customer may carry of that customer: card and account
# numbers, codes, passport numbers (six digits or more in a row), phone numbers (ten or
# more digits with spaces, brackets or dashes between), e-mail addresses.
_LONG_DIGITS = re.compile(r"\d{6,}")
_PHONE_LIKE = re.compile(r"(?<![\w])\+?\d(?:[\s()\-]*\d){9,}")
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_WORDS = re.compile(r"\w+")


def quotes_personal_data(text: str) -> bool:
    """True when ``text`` looks like it quotes someone's personal data.

    Deliberately simple (masking in general is a separate concern): any run of six or more
    digits, anything that looks like a phone or card number (ten or more digits separated by
    spaces, brackets or dashes), or an e-mail address. Such an earlier answer is never
    offered to another customer's dialog, even when it was right for its own — a bank's
    hotline number in an answer is caught too, which is the safe side of the line. Names
    are not recognised here.
    """
    return bool(_LONG_DIGITS.search(text) or _PHONE_LIKE.search(text) or _EMAIL.search(text))


def same_words(text: str) -> str:
    """The text reduced to its lower-case words (what near-identical replies share)."""
    return " ".join(_WORDS.findall(text.casefold().replace("ё", "е")))


def plain(text: str) -> str:
    """Whitespace-normalised text: what "sent as suggested" compares."""
    return " ".join(text.split())


@dataclass(frozen=True)
class Candidate:
    source: str  # kb, history
    ref: str  # article id, or the id of the earlier operator message
    text: str
    score: float


# ------------------------------------------------------------------ earlier answers


@dataclass(frozen=True)
class Pair:
    """A customer's message and the operator reply that followed it in the same dialog."""

    conversation_id: int
    question: str
    answer_id: int
    answer: str


async def answered_pairs(session: AsyncSession, *, days: int, limit: int) -> list[Pair]:
    """The newest ``limit`` (question → operator answer) pairs of the last ``days`` days.

    Customer messages since the dialog's previous reply are all questions of the next
    operator reply; a bot reply answers them instead (they are dropped). Notes and system
    lines are skipped. Reads at most ``limit * ROWS_PER_PAIR`` of the newest messages.
    """
    since = utcnow() - timedelta(days=days)
    rows = (
        await session.execute(
            select(Message.id, Message.conversation_id, Message.author_kind, Message.text)
            .where(
                Message.created_at >= since,
                Message.internal.is_(False),
                Message.author_kind.in_(("customer", "operator", "bot")),
            )
            .order_by(Message.id.desc())
            .limit(limit * ROWS_PER_PAIR)
        )
    ).all()
    pairs: list[Pair] = []
    waiting: dict[int, list[str]] = {}
    for message_id, conversation_id, author_kind, text in sorted(rows, key=lambda r: r[0]):
        text = (text or "").strip()
        if author_kind == "customer":
            if text:
                waiting.setdefault(conversation_id, []).append(text)
            continue
        questions = waiting.pop(conversation_id, [])
        if author_kind == "operator" and text:
            pairs.extend(Pair(conversation_id, q, message_id, text) for q in questions)
    pairs.sort(key=lambda p: p.answer_id, reverse=True)
    return pairs[:limit]


@dataclass
class HistoryIndex:
    """A retriever over distinct earlier answers; ``origins``: the dialogs each came from."""

    retriever: Retriever
    origins: dict[str, frozenset[int]]
    built_at: float
    answers: dict[str, str] = field(default_factory=dict)


@dataclass
class _Answer:
    ref: str
    text: str
    questions: list[str] = field(default_factory=list)
    origins: set[int] = field(default_factory=set)


def build_history(pairs: Sequence[Pair], *, built_at: float) -> HistoryIndex:
    """Group pairs by answer (same words = same answer), newest wording and id kept; skip
    answers too short, too long or quoting personal data. CPU-bound: run in a thread."""
    grouped: dict[str, _Answer] = {}
    for pair in sorted(pairs, key=lambda p: p.answer_id, reverse=True):
        if not MIN_ANSWER_CHARS <= len(pair.answer) <= MAX_ANSWER_CHARS:
            continue
        if quotes_personal_data(pair.answer):
            continue
        key = same_words(pair.answer)
        if not key:
            continue
        answer = grouped.setdefault(key, _Answer(ref=str(pair.answer_id), text=pair.answer))
        if (
            pair.question not in answer.questions
            and len(answer.questions) < MAX_QUESTIONS_PER_ANSWER
        ):
            answer.questions.append(pair.question)
        answer.origins.add(pair.conversation_id)
    entries = [
        Entry(article_id=a.ref, title="", questions=tuple(a.questions), answer="", topic=None)
        for a in grouped.values()
    ]
    return HistoryIndex(
        retriever=Retriever(entries, classify=False),
        origins={a.ref: frozenset(a.origins) for a in grouped.values()},
        built_at=built_at,
        answers={a.ref: a.text for a in grouped.values()},
    )


class History:
    """This process's index of earlier answers for one database, rebuilt when stale.

    The request that finds it stale reads the pairs and waits for the rebuild (in a
    thread); requests meanwhile use the previous index rather than queue behind it.
    """

    def __init__(self) -> None:
        self.index: HistoryIndex | None = None
        self._lock = asyncio.Lock()

    def _fresh(self, index: HistoryIndex | None, refresh_seconds: float) -> bool:
        return index is not None and time.monotonic() - index.built_at < refresh_seconds

    async def current(self, session: AsyncSession, *, settings: Settings) -> HistoryIndex | None:
        """The index (None when history suggestions are off or could not be built)."""
        days = settings.reply_suggestions_history_days
        limit = settings.reply_suggestions_history_pairs
        if days <= 0 or limit <= 0:
            return None
        refresh = settings.reply_suggestions_refresh_seconds
        seen = self.index
        if self._fresh(seen, refresh):
            return seen
        if seen is not None and self._lock.locked():
            return seen  # another request is rebuilding it
        async with self._lock:
            if self.index is not seen or self._fresh(self.index, refresh):
                return self.index
            started = time.monotonic()
            try:
                pairs = await answered_pairs(session, days=days, limit=limit)
                self.index = await asyncio.to_thread(build_history, pairs, built_at=started)
            except Exception as exc:  # suggestions are a help: keep serving the KB part
                log.warning("assist.history_failed", error=type(exc).__name__, exc_info=exc)
                return seen
            log.info(
                "assist.history_built",
                pairs=len(pairs),
                answers=len(self.index.answers),
                seconds=round(time.monotonic() - started, 3),
            )
            return self.index


_HISTORIES: dict[str, History] = {}


def forget_histories() -> None:
    """Drop every process-level index (a database replaced under the same URL: a restore,
    or the test suite's reset between tests)."""
    _HISTORIES.clear()


def history_for(database_url: str) -> History:
    """One index of earlier answers per database in this process."""
    return _HISTORIES.setdefault(database_url, History())


# ------------------------------------------------------------------ choosing


def kb_candidates(
    kb: KnowledgeBase, retriever: Retriever, text: str, *, channel: str | None
) -> list[Candidate]:
    hits = retriever.search(text, limit=MAX_SUGGESTIONS + 2, channel=channel, now=utcnow())
    out = []
    for hit in hits:
        entry = kb.answers.get(hit.article_id)
        if entry is not None and entry.answer.strip():
            out.append(Candidate("kb", hit.article_id, entry.answer.strip(), hit.score))
    return out


def history_candidates(
    index: HistoryIndex | None, text: str, *, conversation_id: int
) -> list[Candidate]:
    if index is None:
        return []
    out = []
    for hit in index.retriever.search(text, limit=MAX_SUGGESTIONS + 2):
        if index.origins.get(hit.article_id, frozenset()) <= {conversation_id}:
            continue  # only ever said in this very dialog: not an earlier answer to offer
        out.append(Candidate("history", hit.article_id, index.answers[hit.article_id], hit.score))
    return out


def choose(candidates: Sequence[Candidate], *, limit: int = MAX_SUGGESTIONS) -> list[Candidate]:
    """Best first (the knowledge base first on a tie), above the floors, without repeats.

    Of two near-identical replies the article is kept (it is maintained, the earlier
    answer is a copy of it), in the place and with the score of the better one."""
    pool = sorted(candidates, key=lambda c: (-c.score, c.source != "kb"))
    if not pool:
        return []
    floor = max(MIN_SCORE, RELATIVE_CUT * pool[0].score)
    chosen: list[Candidate] = []
    for c in pool:
        if c.score < floor:
            break
        words = same_words(c.text)
        twin = next(
            (
                i
                for i, o in enumerate(chosen)
                if (o.source, o.ref) == (c.source, c.ref)
                or fuzz.ratio(words, same_words(o.text)) >= SAME_TEXT
            ),
            None,
        )
        if twin is not None:
            if c.source == "kb" and chosen[twin].source != "kb":
                chosen[twin] = replace(c, score=chosen[twin].score)
            continue
        if len(chosen) < limit:
            chosen.append(c)
    return chosen


# ------------------------------------------------------------------ reading and storing


@dataclass
class Suggestions:
    """What the operator is offered for the dialog's newest customer message."""

    conversation_id: int
    message_id: int | None
    answered: bool
    rows: list[ReplySuggestion]


async def newest_customer_message(session: AsyncSession, conversation_id: int) -> Message | None:
    found: Message | None = await session.scalar(
        select(Message)
        .where(Message.conversation_id == conversation_id, Message.author_kind == "customer")
        .order_by(Message.id.desc())
        .limit(1)
    )
    return found


async def is_answered(session: AsyncSession, message: Message) -> bool:
    """Whether a reply the customer sees (an operator's or the bot's) followed ``message``."""
    later = await session.scalar(
        select(Message.id)
        .where(
            Message.conversation_id == message.conversation_id,
            Message.id > message.id,
            Message.internal.is_(False),
            Message.author_kind.in_(("operator", "bot")),
        )
        .limit(1)
    )
    return later is not None


async def stored(session: AsyncSession, *, message_id: int) -> list[ReplySuggestion]:
    rows = await session.scalars(
        select(ReplySuggestion)
        .where(ReplySuggestion.message_id == message_id)
        .order_by(ReplySuggestion.rank)
    )
    return list(rows.all())


async def read_suggestions(
    session: AsyncSession, *, conversation_id: int, actor: User
) -> tuple[Suggestions, Conversation, Message | None]:
    """The stored suggestions for the dialog's newest customer message (Forbidden /
    NotFound as for the dialog itself), the dialog, and that message."""
    conversation = await conversations.access_conversation(session, conversation_id, actor)
    message = await newest_customer_message(session, conversation_id)
    if message is None:
        return Suggestions(conversation_id, None, False, []), conversation, None
    answered = await is_answered(session, message)
    rows = await stored(session, message_id=message.id)
    return Suggestions(conversation_id, message.id, answered, rows), conversation, message


async def compute(
    session: AsyncSession,
    *,
    conversation: Conversation,
    message: Message,
    kb: KnowledgeBase,
    history: History,
    settings: Settings,
) -> list[Candidate]:
    """Up to three replies to ``message`` (reads only; nothing is stored)."""
    text = message.text.strip()
    if not text:
        return []
    channel = await session.get(Channel, conversation.channel_id)
    retriever = await kb.current(session)
    found = kb_candidates(kb, retriever, text, channel=channel.kind if channel else None)
    index = await history.current(session, settings=settings)
    found += history_candidates(index, text, conversation_id=conversation.id)
    return choose(found)


async def store(
    session: AsyncSession, *, conversation_id: int, message_id: int, chosen: list[Candidate]
) -> list[ReplySuggestion]:
    """Keep ``chosen`` as the suggestions for the message, unless some are stored already
    (then those win: the first request decides what everyone sees). A racing insert fails
    on the unique (message, rank) and its retry finds the winner's rows."""
    existing = await stored(session, message_id=message_id)
    if existing or not chosen:
        return existing
    now = utcnow()
    rows = [
        ReplySuggestion(
            conversation_id=conversation_id,
            message_id=message_id,
            rank=rank,
            source=c.source,
            ref=c.ref[:100],
            text=c.text,
            score=round(c.score, 4),
            created_at=now,
        )
        for rank, c in enumerate(chosen, start=1)
    ]
    session.add_all(rows)
    await session.flush()
    return rows


# ------------------------------------------------------------------ decisions


async def access_suggestion(
    session: AsyncSession, suggestion_id: int, actor: User, *, lock: bool = False
) -> ReplySuggestion:
    """The suggestion if ``actor`` may see its dialog; NotFound / Forbidden otherwise."""
    row = await session.get(ReplySuggestion, suggestion_id, with_for_update=lock)
    if row is None:
        raise NotFound(
            f"reply suggestion {suggestion_id} does not exist", code="suggestion_not_found"
        )
    await conversations.access_conversation(session, row.conversation_id, actor)
    return row


def _undecided(row: ReplySuggestion) -> None:
    if row.outcome is not None:
        raise Conflict(
            f"this suggestion was already {row.outcome}; a decision is final",
            code="suggestion_decided",
            outcome=row.outcome,
        )


async def reject(session: AsyncSession, *, suggestion_id: int, actor: User) -> ReplySuggestion:
    """Record that the operator turned the suggestion down; 409 if already decided."""
    row = await access_suggestion(session, suggestion_id, actor, lock=True)
    _undecided(row)
    row.outcome = "rejected"
    row.decided_by = actor.id
    row.decided_at = utcnow()
    await session.flush()
    return row


async def record_sent(
    session: AsyncSession, *, suggestion_id: int, message: Message, actor: User
) -> ReplySuggestion:
    """``message`` was sent from the suggestion: ``accepted`` when its text is the
    suggestion's (whitespace aside), ``edited`` otherwise. Call in the sending transaction:
    a refusal (another dialog's suggestion, a note, already decided) undoes the send."""
    row = await access_suggestion(session, suggestion_id, actor, lock=True)
    if row.conversation_id != message.conversation_id:
        raise BadRequest(
            f"suggestion {suggestion_id} belongs to another dialog",
            code="suggestion_of_another_dialog",
            conversation_id=row.conversation_id,
        )
    if message.internal:
        raise BadRequest(
            "a suggested reply is for the customer, not for an internal note",
            code="suggestion_for_note",
        )
    _undecided(row)
    row.outcome = "accepted" if plain(message.text) == plain(row.text) else "edited"
    row.sent_message_id = message.id
    row.decided_by = actor.id
    row.decided_at = utcnow()
    await session.flush()
    return row
