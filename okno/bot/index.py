"""The knowledge-base retriever: which articles answer a question, and how sure we are.

Two views of every article's title and example questions are indexed:

* **lemmas** (dictionary forms, slang mapped to the bank's words), TF-IDF weighted — word
  order and word forms stop mattering ("карту заблокировать" = "блокировка карты" is not,
  but "заблокировать карту" = "карту заблокируйте" is);
* **character trigrams** of the lemma text — what is left of typos and of words the
  dictionary does not know still overlaps.

A question scores each document by cosine in both spaces (mixed), an article by its best
document. Scoring is a few ``numpy.bincount`` calls over posting lists, so a 10,000-article
base answers in a few milliseconds. This is the character n-gram baseline DESIGN.md asks
every later bot change to be measured against (``bench/bot_eval.py``).
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np

from okno.bot.text import Normalizer, Vocabulary, fold, load_synonyms, tokens

LEMMA_WEIGHT = 0.6
CHAR_WEIGHT = 0.4
ANSWER_FACTOR = 0.75  # the answer text counts, but less than the questions
MAX_DF_SHARE = 0.3
QUESTION_SHARE = 0.4  # best single question vs the article as a whole  # character n-grams in more documents than this say nothing


@dataclass(frozen=True)
class Entry:
    """What the retriever needs of an article."""

    article_id: str
    title: str
    questions: tuple[str, ...]
    answer: str
    topic: str | None
    channels: tuple[str, ...] = ()  # empty: every channel
    valid_from: datetime | None = None
    valid_to: datetime | None = None

    def shown(self, channel: str | None, now: datetime | None) -> bool:
        if channel and self.channels and channel not in self.channels:
            return False
        if now is not None:
            if self.valid_from is not None and now < self.valid_from:
                return False
            if self.valid_to is not None and now >= self.valid_to:
                return False
        return True


@dataclass(frozen=True)
class Hit:
    article_id: str
    title: str
    topic: str | None
    score: float


def char_grams(text: str, n: int = 3) -> list[str]:
    grams: list[str] = []
    for word in text.split():
        padded = f" {word} "
        grams.extend(padded[i : i + n] for i in range(max(1, len(padded) - n + 1)))
    return grams


@dataclass
class _Space:
    """One vector space: feature -> (doc indices, weights), idf, document norms."""

    postings: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)
    idf: dict[str, float] = field(default_factory=dict)

    @classmethod
    def build(cls, docs: Sequence[list[str]], *, max_df_share: float = 1.0) -> _Space:
        n = len(docs)
        df: Counter[str] = Counter()
        for features in docs:
            df.update(set(features))
        limit = max(2, int(n * max_df_share)) if max_df_share < 1.0 else n + 1
        idf = {f: math.log((1 + n) / (1 + d)) + 1.0 for f, d in df.items() if d <= limit}
        rows: defaultdict[str, list[tuple[int, float]]] = defaultdict(list)
        for i, features in enumerate(docs):
            counts = Counter(f for f in features if f in idf)
            weights = {f: (1 + math.log(c)) * idf[f] for f, c in counts.items()}
            norm = math.sqrt(sum(w * w for w in weights.values())) or 1.0
            for f, w in weights.items():
                rows[f].append((i, w / norm))
        space = cls(idf=idf)
        for f, items in rows.items():
            space.postings[f] = (
                np.fromiter((i for i, _ in items), dtype=np.int32, count=len(items)),
                np.fromiter((w for _, w in items), dtype=np.float32, count=len(items)),
            )
        return space

    def scores(self, features: list[str], n_docs: int) -> np.ndarray:
        counts = Counter(f for f in features if f in self.idf)
        if not counts:
            return np.zeros(n_docs, dtype=np.float32)
        weights = {f: (1 + math.log(c)) * self.idf[f] for f, c in counts.items()}
        norm = math.sqrt(sum(w * w for w in weights.values())) or 1.0
        idx = [self.postings[f][0] for f in weights]
        vals = [self.postings[f][1] * (w / norm) for f, w in weights.items()]
        return np.bincount(np.concatenate(idx), weights=np.concatenate(vals), minlength=n_docs)


class Retriever:
    """An immutable index over a set of articles (rebuilt when the base changes)."""

    def __init__(self, entries: Iterable[Entry]) -> None:
        self.entries = list(entries)
        synonyms = load_synonyms()
        plain = Normalizer(synonyms)
        vocabulary: set[str] = set()
        for e in self.entries:
            for text in (e.title, *e.questions, e.answer):
                vocabulary.update(tokens(text))
        self.normalizer = Normalizer(synonyms, Vocabulary(vocabulary))
        lemma_docs: list[list[str]] = []
        char_docs: list[list[str]] = []
        owner: list[int] = []
        factor: list[float] = []
        for i, e in enumerate(self.entries):
            for text, weight in [
                (e.title, 1.0),
                *((q, 1.0) for q in e.questions),
                (e.answer, ANSWER_FACTOR),
            ]:
                lemmas = plain.lemmas(text)
                if not lemmas:
                    continue
                lemma_docs.append(lemmas)
                char_docs.append(char_grams(" ".join(lemmas)))
                owner.append(i)
                factor.append(weight)
        self.n_docs = len(owner)
        self.owner = np.array(owner, dtype=np.int32)
        self.factor = np.array(factor, dtype=np.float32)
        self.lemma_space = _Space.build(lemma_docs)
        self.char_space = _Space.build(char_docs, max_df_share=MAX_DF_SHARE)
        # the whole article as one document: a paraphrase that matches no single example
        # question still shares words with the article as a whole
        whole_lemmas: list[list[str]] = [[] for _ in self.entries]
        for lemmas, i in zip(lemma_docs, owner, strict=True):
            whole_lemmas[i].extend(lemmas)
        self.article_lemmas = _Space.build(whole_lemmas)
        self.article_chars = _Space.build(
            [char_grams(" ".join(ls)) for ls in whole_lemmas], max_df_share=MAX_DF_SHARE
        )

    def __len__(self) -> int:
        return len(self.entries)

    def search(
        self,
        text: str,
        *,
        limit: int = 5,
        channel: str | None = None,
        now: datetime | None = None,
        partial: bool = False,
    ) -> list[Hit]:
        """Best articles first. ``partial``: the last word is still being typed, so it is
        compared by its letters only (a prefix has no dictionary form yet)."""
        if not self.entries:
            return []
        if partial:
            words = tokens(text)
            head = " ".join(words[:-1])
            lemmas = self.normalizer.lemmas(head) if head else []
            chars = char_grams(" ".join([*lemmas, *(words[-1:])]))
        else:
            lemmas = self.normalizer.lemmas(text)
            chars = char_grams(" ".join(lemmas))
        if not lemmas and not chars:
            return []
        doc_scores = (
            LEMMA_WEIGHT * self.lemma_space.scores(lemmas, self.n_docs)
            + CHAR_WEIGHT * self.char_space.scores(chars, self.n_docs)
        ) * self.factor
        best = np.zeros(len(self.entries), dtype=np.float64)
        np.maximum.at(best, self.owner, doc_scores)
        whole = LEMMA_WEIGHT * self.article_lemmas.scores(lemmas, len(self.entries)) + (
            CHAR_WEIGHT * self.article_chars.scores(chars, len(self.entries))
        )
        best = QUESTION_SHARE * best + (1 - QUESTION_SHARE) * whole
        order = np.argsort(-best)
        hits: list[Hit] = []
        for i in order:
            score = float(best[i])
            if score <= 0.0:
                break
            entry = self.entries[int(i)]
            if not entry.shown(channel, now):
                continue
            hits.append(Hit(entry.article_id, entry.title, entry.topic, round(score, 4)))
            if len(hits) >= limit:
                break
        return hits


def normalized(text: str) -> str:
    """The folded text the retriever sees (for logs and debugging, never for matching)."""
    return " ".join(tokens(fold(text)))
