"""The learning loop: what the bot could not answer, grouped so the content team can write
the missing articles, and what operators keep typing by hand, offered as saved replies.

Unanswered questions are the bot's hand-offs for lack of a good article (reasons
``unsure`` and ``empty``; a customer who asked for a person or sent a photo is not a gap in
the knowledge base). They are grouped by meaning the way the retriever reads text: lemmas
(with the knowledge base's typo mending and slang) TF-IDF weighted, plus character
trigrams of the lemmas for what the dictionary does not know; cosine similarity, then
greedy average-linkage clustering — a question joins the group it is most similar to on
average, so one ambiguous question cannot chain two topics together.

Template candidates are operator answers (not internal notes) whose normalised text
repeats in at least K different dialogs. Answers carrying what looks like personal data
(e-mail addresses, runs of five or more digits: phones, cards, contract numbers, dates)
are never offered: a saved reply is shown to every operator.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import numpy as np
import structlog
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from okno.bot.index import char_grams
from okno.bot.models import BotTurn, TemplateDecision
from okno.bot.text import Normalizer, fold
from okno.conversations.models import Message
from okno.db.base import utcnow
from okno.replies import service as replies
from okno.replies.models import SavedReply

log = structlog.get_logger("okno.bot.learning")

UNANSWERED_REASONS = ("unsure", "empty")
MAX_TURNS = 1000  # newest unanswered questions grouped per request (an n×n matrix)
GROUP_SIMILARITY = 0.3  # average similarity to a group's questions needed to join it
LEMMA_WEIGHT = 0.6
CHAR_WEIGHT = 0.4
EXAMPLES = 5
MAX_QUESTIONS = 20
MAX_GROUPS = 200

MAX_MESSAGES = 50_000  # newest operator answers read per request
MIN_TEMPLATE_CHARS = 15  # "спасибо", "минутку" are not worth a template
MAX_TEMPLATE_CHARS = 4000  # what a saved reply holds
EMAIL = re.compile(r"[\w.+-]+@[\w-]+\.[\w.-]+")
DIGIT_RUN = re.compile(r"(?:\d[\s\-().]*){5,}")
NOT_WORD = re.compile(r"[^\w]+")
# Dismissed (and accepted) candidates are remembered by the hash of their normalised text
# (bot_template_decisions), so an edited-then-saved one is not offered again either.


# ------------------------------------------------------------------ unanswered questions


@dataclass
class UnansweredGroup:
    turn_ids: list[int]
    examples: list[str]
    topic: str | None
    newest: datetime
    count: int = 0
    questions: list[str] = field(default_factory=list)  # distinct wordings, for an article


def _tfidf(docs: Sequence[list[str]]) -> np.ndarray:
    """Unit-length TF-IDF rows; only features two documents share get a column (the rest
    change no similarity, only the norms, which are computed from all features)."""
    n = len(docs)
    df: Counter[str] = Counter()
    for d in docs:
        df.update(set(d))
    idf = {f: math.log((1 + n) / (1 + c)) + 1.0 for f, c in df.items()}
    columns = {f: j for j, f in enumerate(sorted(f for f, c in df.items() if c >= 2))}
    matrix = np.zeros((n, len(columns)), dtype=np.float32)
    for i, d in enumerate(docs):
        weights = {f: (1 + math.log(c)) * idf[f] for f, c in Counter(d).items()}
        norm = math.sqrt(sum(w * w for w in weights.values())) or 1.0
        for f, w in weights.items():
            j = columns.get(f)
            if j is not None:
                matrix[i, j] = w / norm
    return matrix


def similarity(texts: Sequence[str], normalizer: Normalizer) -> np.ndarray:
    """Pairwise similarity of questions (0..1), as the retriever would compare them."""
    lemmas = [normalizer.lemmas(t) for t in texts]
    by_lemma = _tfidf(lemmas)
    by_chars = _tfidf([char_grams(" ".join(ls)) for ls in lemmas])
    sim = LEMMA_WEIGHT * (by_lemma @ by_lemma.T) + CHAR_WEIGHT * (by_chars @ by_chars.T)
    # a question with no meaningful word at all ("???", "здравствуйте") is like only the
    # same wording
    plain = [" ".join(fold(t).split()) for t in texts]
    for i, ls in enumerate(lemmas):
        if not ls:
            sim[i, :] = [1.0 if plain[j] == plain[i] else 0.0 for j in range(len(texts))]
            sim[:, i] = sim[i, :]
    return sim


def group_questions(
    texts: Sequence[str], normalizer: Normalizer, *, threshold: float = GROUP_SIMILARITY
) -> list[list[int]]:
    """Indices of ``texts`` grouped by meaning, in the order given (greedy: each question
    joins the existing group it is most similar to on average, if that reaches
    ``threshold``, else starts a new one)."""
    n = len(texts)
    if n == 0:
        return []
    sim = similarity(texts, normalizer)
    groups: list[list[int]] = []
    # sums[i, g]: the sum of question i's similarity to every member of group g
    sums = np.zeros((n, n), dtype=np.float32)
    for i in range(n):
        best, best_score = -1, threshold
        if groups:
            k = len(groups)
            sizes = np.fromiter((len(g) for g in groups), dtype=np.float32, count=k)
            scores = sums[i, :k] / sizes
            j = int(np.argmax(scores))
            if scores[j] >= best_score:
                best = j
        if best < 0:
            groups.append([])
            best = len(groups) - 1
        groups[best].append(i)
        sums[:, best] += sim[:, i]
    return groups


async def unanswered(
    session: AsyncSession,
    *,
    normalizer: Normalizer,
    days: int = 30,
    now: datetime | None = None,
) -> list[UnansweredGroup]:
    """Questions the bot handed off for lack of an answer in the last ``days`` and not
    reviewed yet, grouped by meaning: biggest groups first, then the most recent."""
    since = (now or utcnow()) - timedelta(days=days)
    rows = (
        await session.execute(
            select(BotTurn.id, BotTurn.text, BotTurn.topic, BotTurn.at)
            .where(
                BotTurn.decision == "handoff",
                BotTurn.reason.in_(UNANSWERED_REASONS),
                BotTurn.reviewed.is_(False),
                BotTurn.at >= since,
                BotTurn.text != "",
            )
            .order_by(BotTurn.at.desc(), BotTurn.id.desc())
            .limit(MAX_TURNS)
        )
    ).all()
    rows = list(reversed(rows))  # oldest first: the first wording seeds the group
    out: list[UnansweredGroup] = []
    for members in group_questions([r.text for r in rows], normalizer):
        chosen = [rows[i] for i in members]
        newest_first = sorted(chosen, key=lambda r: (r.at, r.id), reverse=True)
        examples: list[str] = []
        seen: set[str] = set()
        for r in newest_first:
            key = " ".join(fold(r.text).split())
            if key not in seen:
                seen.add(key)
                examples.append(r.text)
        topics = Counter(r.topic for r in chosen if r.topic)
        out.append(
            UnansweredGroup(
                turn_ids=sorted(r.id for r in chosen),
                examples=examples[:EXAMPLES],
                questions=examples[:MAX_QUESTIONS],
                topic=topics.most_common(1)[0][0] if topics else None,
                newest=newest_first[0].at,
                count=len(chosen),
            )
        )
    out.sort(key=lambda g: (-g.count, -g.newest.timestamp()))
    return out[:MAX_GROUPS]


async def mark_reviewed(
    session: AsyncSession,
    *,
    turn_ids: Sequence[int],
    action: str,
    article_id: str | None,
    actor_id: int,
) -> int:
    """Take questions off the unanswered list (an admin dismissed them or wrote article
    ``article_id`` for them); returns how many were still unreviewed."""
    if not turn_ids:
        return 0
    result = await session.execute(
        update(BotTurn)
        .where(BotTurn.id.in_(sorted(set(turn_ids))), BotTurn.reviewed.is_(False))
        .values(reviewed=True, reviewed_as=article_id if action == "article" else None)
        .execution_options(synchronize_session=False)
    )
    changed = int(getattr(result, "rowcount", 0) or 0)
    log.info(
        "bot.unanswered_reviewed",
        actor_id=actor_id,
        action=action,
        article_id=article_id,
        turns=changed,
    )
    return changed


# ------------------------------------------------------------------ template candidates


@dataclass
class TemplateCandidate:
    key: str
    text: str
    dialogs: int
    uses: int
    operators: int
    last_used: datetime
    shortcut: str
    title: str


def normalise(text: str) -> str:
    """Case, ё, punctuation and spacing do not make two answers different."""
    return " ".join(NOT_WORD.sub(" ", fold(text)).replace("_", " ").split())


def personal(text: str) -> bool:
    """Looks like it carries one customer's data: an e-mail or a long run of digits."""
    return bool(EMAIL.search(text) or DIGIT_RUN.search(text))


def candidate_key(norm: str) -> str:
    return hashlib.sha1(norm.encode("utf-8")).hexdigest()


def _reply_pattern(body: str) -> re.Pattern[str]:
    """A saved reply as the normalised texts it produces once placeholders are filled in
    (a name is at most a few words, or nothing when unknown)."""
    parts = [normalise(p) for p in replies.PLACEHOLDER.split(body)[::2]]
    gap = r"\s*(?:\w+\s*){0,3}"
    return re.compile("^" + gap.join(re.escape(p) for p in parts).strip() + "$")


def _shortcut(norm: str) -> str:
    words = norm.split()[:3]
    return "-".join(words)[:30].strip("-") or "reply"


def _title(text: str) -> str:
    first = " ".join(text.split())
    return first if len(first) <= 60 else first[:59].rstrip() + "…"


async def _dismissed(session: AsyncSession) -> set[str]:
    return set((await session.scalars(select(TemplateDecision.key))).all())


async def template_candidates(
    session: AsyncSession,
    *,
    days: int = 30,
    min_dialogs: int = 3,
    now: datetime | None = None,
    limit: int = 50,
) -> list[TemplateCandidate]:
    """Operator answers of the last ``days`` repeated in at least ``min_dialogs`` dialogs,
    not personal, not a shared or team saved reply already, not dismissed; most dialogs
    first. (A personal saved reply does not count: sharing it is the point.)"""
    since = (now or utcnow()) - timedelta(days=days)
    rows = (
        await session.execute(
            select(
                Message.text, Message.conversation_id, Message.author_user_id, Message.created_at
            )
            .where(
                Message.author_kind == "operator",
                Message.internal.is_(False),
                Message.created_at >= since,
                Message.text != "",
            )
            .order_by(Message.id.desc())
            .limit(MAX_MESSAGES)
        )
    ).all()
    dialogs: dict[str, set[int]] = {}
    uses: Counter[str] = Counter()
    wordings: dict[str, Counter[str]] = {}
    operators: dict[str, set[int]] = {}
    last: dict[str, datetime] = {}
    for text, conversation_id, user_id, at in rows:
        if len(text) > MAX_TEMPLATE_CHARS or personal(text):
            continue
        norm = normalise(text)
        if len(norm) < MIN_TEMPLATE_CHARS:
            continue
        dialogs.setdefault(norm, set()).add(conversation_id)
        uses[norm] += 1
        wordings.setdefault(norm, Counter())[text.strip()] += 1
        if user_id is not None:
            operators.setdefault(norm, set()).add(user_id)
        if norm not in last or at > last[norm]:
            last[norm] = at
    frequent = [n for n, ds in dialogs.items() if len(ds) >= min_dialogs]
    if not frequent:
        return []
    saved = (
        await session.scalars(select(SavedReply.body).where(SavedReply.scope != "personal"))
    ).all()
    patterns = [_reply_pattern(b) for b in saved]
    dismissed = await _dismissed(session)
    out: list[TemplateCandidate] = []
    for norm in frequent:
        key = candidate_key(norm)
        if key in dismissed or any(p.match(norm) for p in patterns):
            continue
        text = wordings[norm].most_common(1)[0][0]
        out.append(
            TemplateCandidate(
                key=key,
                text=text,
                dialogs=len(dialogs[norm]),
                uses=uses[norm],
                operators=len(operators.get(norm, ())),
                last_used=last[norm],
                shortcut=_shortcut(norm),
                title=_title(text),
            )
        )
    out.sort(key=lambda c: (-c.dialogs, -c.last_used.timestamp()))
    return out[:limit]


async def forget_candidate(
    session: AsyncSession, *, key: str, actor_id: int, outcome: str = "dismissed"
) -> None:
    """Never offer this answer again (dismissed, or made a saved reply). Idempotent."""
    if await session.get(TemplateDecision, key) is None:
        session.add(TemplateDecision(key=key, outcome=outcome, decided_by=actor_id, at=utcnow()))
        await session.flush()
    log.info("bot.template_candidate_closed", actor_id=actor_id, key=key, outcome=outcome)
