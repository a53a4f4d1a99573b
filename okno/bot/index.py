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
import random
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime

import numpy as np

from okno.bot.calibration import Calibrator, load_off_topic, misspell
from okno.bot.classifier import ArticleClassifier
from okno.bot.domain import DomainModel
from okno.bot.text import Normalizer, Vocabulary, fold, load_synonyms, tokens

LEMMA_WEIGHT = 0.6
CHAR_WEIGHT = 0.4
ANSWER_FACTOR = 0.75  # the answer text counts, but less than the questions
MAX_DF_SHARE = 0.3  # character n-grams in more documents than this say nothing
QUESTION_SHARE = 0.4  # best single question vs the article as a whole
CALIBRATION_SAMPLE = 400  # held-out questions the confidence model learns from, at most
# titles and questions below which a base is too small to say what its domain is
DOMAIN_MIN_EXAMPLES = 30
CLASSIFIER_SHARE = 0.5  # of the ranking of a whole question (okno.bot.classifier)


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
    score: float  # how well the article matches (retrieval score, not a probability)
    # the first hit of a full search: the calibrated probability that it is the answer
    confidence: float | None = None
    # and the probability that the message is a question for the base at all
    # (``okno.bot.domain``); None when the base is too small to tell
    in_domain: float | None = None


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

    def vector(self, features: Iterable[str] | Counter[str]) -> dict[str, float]:
        """The unit TF-IDF vector of a text's features, as the index weighs them."""
        if isinstance(features, Counter):
            counts = Counter({f: c for f, c in features.items() if c > 0 and f in self.idf})
        else:
            counts = Counter(f for f in features if f in self.idf)
        weights = {f: (1 + math.log(c)) * self.idf[f] for f, c in counts.items()}
        norm = math.sqrt(sum(w * w for w in weights.values())) or 1.0
        return {f: w / norm for f, w in weights.items()}

    def raw(self, counts: Counter[str]) -> dict[str, float]:
        """A document's TF-IDF weights before normalising."""
        return {f: (1 + math.log(c)) * self.idf[f] for f, c in counts.items() if f in self.idf}

    def cosine_without(
        self,
        query: dict[str, float],
        whole: tuple[Counter[str], dict[str, float], float],
        part: Counter[str],
    ) -> float:
        """Cosine of a unit query vector with a document (its counts, raw weights and
        squared norm) from which the features ``part`` were taken out."""
        counts, weights, squared = whole
        changed: dict[str, float] = {}
        for f, c in part.items():
            if f in weights:
                left = counts[f] - c
                w = (1 + math.log(left)) * self.idf[f] if left > 0 else 0.0
                squared += w * w - weights[f] * weights[f]
                changed[f] = w
        if squared <= 1e-12:
            return 0.0
        dot = sum(q * changed.get(f, weights.get(f, 0.0)) for f, q in query.items())
        return dot / math.sqrt(squared)

    def scores(self, features: list[str], n_docs: int) -> np.ndarray:
        weights = self.vector(features)
        if not weights:
            return np.zeros(n_docs, dtype=np.float64)
        idx = [self.postings[f][0] for f in weights]
        vals = [self.postings[f][1] * w for f, w in weights.items()]
        return np.bincount(np.concatenate(idx), weights=np.concatenate(vals), minlength=n_docs)


_Whole = tuple[Counter[str], dict[str, float], float]  # counts, raw weights, squared norm


@dataclass(frozen=True)
class _HeldOut:
    """An example question taken out of the index, to see if it is found without itself."""

    doc: int
    lemmas: Counter[str]
    chars: Counter[str]
    article_lemmas: _Whole
    article_chars: _Whole
    rest_words: frozenset[str]  # the article's lemmas without the question's own


class Retriever:
    """An immutable index over a set of articles (rebuilt when the base changes), with the
    calibrated confidence model trained on it (see ``okno.bot.calibration``) and the model
    of which messages are questions for it at all (``okno.bot.domain``)."""

    def __init__(
        self,
        entries: Iterable[Entry],
        *,
        off_topic: Sequence[str] | None = None,
        classify: bool = True,
    ) -> None:
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
        questions: list[tuple[int, str]] = []  # (document, text) of every example question
        for i, e in enumerate(self.entries):
            for text, weight, is_question in [
                (e.title, 1.0, False),
                *((q, 1.0, True) for q in e.questions),
                (e.answer, ANSWER_FACTOR, False),
            ]:
                lemmas = plain.lemmas(text)
                if not lemmas:
                    continue
                if is_question:
                    questions.append((len(owner), text))
                lemma_docs.append(lemmas)
                char_docs.append(char_grams(" ".join(lemmas)))
                owner.append(i)
                factor.append(weight)
        self.n_docs = len(owner)
        self.owner = np.array(owner, dtype=np.int32)
        self.factor = np.array(factor, dtype=np.float64)
        # documents come in article order, so an article's documents are one slice
        self.with_docs = np.zeros(len(self.entries), dtype=bool)
        self.with_docs[self.owner] = True
        self.starts = np.searchsorted(self.owner, np.flatnonzero(self.with_docs)).astype(np.intp)
        self.ends = np.append(self.starts[1:], self.n_docs).astype(np.intp)
        self.slot = np.cumsum(self.with_docs) - 1  # article -> its index in starts
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
        self.article_words = [frozenset(ls) for ls in whole_lemmas]
        self.max_idf = max(self.lemma_space.idf.values(), default=1.0)
        # messages that are not banking questions: how close a message is to them
        off_lines = list(off_topic) if off_topic is not None else load_off_topic()
        off_docs = [ls for ls in (plain.lemmas(t) for t in off_lines) if ls]
        self.off_lemmas = _Space.build(off_docs)
        self.off_chars = _Space.build([char_grams(" ".join(ls)) for ls in off_docs])
        self.n_off = len(off_docs)
        self.calibrator: Calibrator | None = None
        if self.entries and questions:
            self.calibrator = self._calibrate(questions, lemma_docs, whole_lemmas, off_docs)
        self.classifier: ArticleClassifier | None = None
        if classify:
            self.classifier = ArticleClassifier.fit(
                [[t for t in (e.title, *e.questions) if t.strip()] for e in self.entries],
                self.normalizer,
                seed=len(self.entries),
            )
        examples = [t for e in self.entries for t in (e.title, *e.questions) if t.strip()]
        self.domain: DomainModel | None = None
        if len(examples) >= DOMAIN_MIN_EXAMPLES and off_lines:
            self.domain = DomainModel.fit(
                examples, off_lines, self.normalizer, seed=len(self.entries)
            )

    def __len__(self) -> int:
        return len(self.entries)

    # ------------------------------------------------------------------ scoring

    def _query(self, text: str, partial: bool) -> tuple[list[str], list[str]]:
        if partial:
            words = tokens(text)
            head = " ".join(words[:-1])
            lemmas = self.normalizer.lemmas(head) if head else []
            return lemmas, char_grams(" ".join([*lemmas, *(words[-1:])]))
        lemmas = self.normalizer.lemmas(text)
        return lemmas, char_grams(" ".join(lemmas))

    def _scores(
        self,
        lemmas: list[str],
        chars: list[str],
        *,
        held_out: _HeldOut | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Every article's score, and every document's own score. ``held_out``: a document
        and its article's lemmas without it, scored as if it were not in the index (for
        training the calibrator on the base's own questions)."""
        n = len(self.entries)
        doc_scores = (
            LEMMA_WEIGHT * self.lemma_space.scores(lemmas, self.n_docs)
            + CHAR_WEIGHT * self.char_space.scores(chars, self.n_docs)
        ) * self.factor
        whole = LEMMA_WEIGHT * self.article_lemmas.scores(lemmas, n) + (
            CHAR_WEIGHT * self.article_chars.scores(chars, n)
        )
        if held_out is not None:
            doc_scores[held_out.doc] = 0.0
            whole[int(self.owner[held_out.doc])] = (
                LEMMA_WEIGHT
                * self.article_lemmas.cosine_without(
                    self.article_lemmas.vector(lemmas), held_out.article_lemmas, held_out.lemmas
                )
                + CHAR_WEIGHT
                * self.article_chars.cosine_without(
                    self.article_chars.vector(chars), held_out.article_chars, held_out.chars
                )
            )
        best = np.zeros(n, dtype=np.float64)
        if self.n_docs:
            best[self.with_docs] = np.maximum.reduceat(doc_scores, self.starts)
        return QUESTION_SHARE * best + (1 - QUESTION_SHARE) * whole, doc_scores

    def _off_topic(self, lemmas: list[str], chars: list[str], *, skip: int | None = None) -> float:
        if not self.n_off:
            return 0.0
        scores = LEMMA_WEIGHT * self.off_lemmas.scores(lemmas, self.n_off) + (
            CHAR_WEIGHT * self.off_chars.scores(chars, self.n_off)
        )
        if skip is not None:
            scores[skip] = 0.0
        return float(scores.max())

    def _features(
        self,
        lemmas: list[str],
        scores: np.ndarray,
        doc_scores: np.ndarray,
        top: int,
        second: float,
        off_topic: float,
        held_out: _HeldOut | None = None,
    ) -> np.ndarray:
        first = float(scores[top])
        match = 0.0
        if self.with_docs[top]:
            slot = self.slot[top]
            match = float(doc_scores[self.starts[slot] : self.ends[slot]].max())
        idf = self.lemma_space.idf
        postings = self.lemma_space.postings
        article_words = self.article_words[top]
        held = -1
        if held_out is not None:  # as if the held-out question were not in the base
            held = held_out.doc
            if int(self.owner[held]) == top:
                article_words = held_out.rest_words

        def is_known(w: str) -> bool:
            return w in idf and not (len(postings[w][0]) == 1 and postings[w][0][0] == held)

        # words the base never uses weigh as its rarest words do: "пицца", "стих"
        rare = self.max_idf
        weight = [idf.get(w, rare) for w in lemmas]
        total = sum(weight) or 1.0
        known = sum(x for w, x in zip(lemmas, weight, strict=True) if is_known(w)) / total
        covered = sum(x for w, x in zip(lemmas, weight, strict=True) if w in article_words) / total
        return np.array(
            [
                first,
                second,
                first - second,
                off_topic,
                first - off_topic,
                match,
                known,
                covered,
                math.log1p(len(lemmas)),
            ]
        )

    def _calibrate(
        self,
        questions: list[tuple[int, str]],
        lemma_docs: list[list[str]],
        whole_lemmas: list[list[str]],
        off_docs: list[list[str]],
    ) -> Calibrator:
        """Learn confidence from this base: its own questions held out (as written and
        misspelt) and the off-topic messages."""
        rng = random.Random(len(self.entries))
        if len(questions) > CALIBRATION_SAMPLE:
            questions = rng.sample(questions, CALIBRATION_SAMPLE)
        rows: list[np.ndarray] = []
        labels: list[float] = []
        wholes: dict[int, tuple[_Whole, _Whole]] = {}
        for doc, text in questions:
            article = int(self.owner[doc])
            if article not in wholes:
                lemma_counts = Counter(whole_lemmas[article])
                char_counts = Counter(char_grams(" ".join(whole_lemmas[article])))
                raw_lemmas = self.article_lemmas.raw(lemma_counts)
                raw_chars = self.article_chars.raw(char_counts)
                wholes[article] = (
                    (lemma_counts, raw_lemmas, sum(w * w for w in raw_lemmas.values())),
                    (char_counts, raw_chars, sum(w * w for w in raw_chars.values())),
                )
            own = Counter(lemma_docs[doc])
            # char n-grams at the joins of the question's lemmas stay in: a near miss
            rest = _HeldOut(
                doc,
                own,
                Counter(char_grams(" ".join(lemma_docs[doc]))),
                *wholes[article],
                frozenset(w for w, c in wholes[article][0][0].items() if c > own[w]),
            )
            for variant in (text, misspell(text, rng)):
                lemmas, chars = self._query(variant, False)
                if not lemmas:
                    continue
                scores, doc_scores = self._scores(lemmas, chars, held_out=rest)
                order = np.argsort(-scores)[:2]
                if scores[order[0]] <= 0.0:
                    continue
                second = float(scores[order[1]]) if len(order) > 1 else 0.0
                off = self._off_topic(lemmas, chars)
                rows.append(
                    self._features(lemmas, scores, doc_scores, int(order[0]), second, off, rest)
                )
                labels.append(float(order[0] == article))
        for i, lemmas in enumerate(off_docs):
            chars = char_grams(" ".join(lemmas))
            scores, doc_scores = self._scores(lemmas, chars)
            order = np.argsort(-scores)[:2]
            if scores[order[0]] <= 0.0:
                continue
            second = float(scores[order[1]]) if len(order) > 1 else 0.0
            off = self._off_topic(lemmas, chars, skip=i)
            rows.append(self._features(lemmas, scores, doc_scores, int(order[0]), second, off))
            labels.append(0.0)
        x, y = np.vstack(rows), np.array(labels)
        self.calibration_data = (x, y)  # what it learned from, for diagnostics
        return Calibrator.fit(x, y)

    # ------------------------------------------------------------------ searching

    def search(
        self,
        text: str,
        *,
        limit: int = 5,
        channel: str | None = None,
        now: datetime | None = None,
        partial: bool = False,
        rerank: bool = False,
    ) -> list[Hit]:
        """Best articles first. ``partial``: the last word is still being typed, so it is
        compared by its letters only (a prefix has no dictionary form yet). A full search
        also says how sure it is of the first hit (``Hit.confidence``). ``rerank``: order
        by the retriever's score blended with the article classifier's probability (for a
        whole question the bot answers; a hit's score is then the blend)."""
        if not self.entries:
            return []
        lemmas, chars = self._query(text, partial)
        if not lemmas and not chars:
            return []
        scores, doc_scores = self._scores(lemmas, chars)
        ranking = scores
        if rerank and not partial and self.classifier is not None:
            probabilities = self.classifier.probabilities(text, self.normalizer)
            best = float(scores.max())
            if probabilities is not None and best > 0.0:
                # on the retriever's scale (the best score), so floors keep their meaning
                ranking = CLASSIFIER_SHARE * best * probabilities + (1 - CLASSIFIER_SHARE) * scores
        order = np.argsort(-ranking)
        shown: list[int] = []
        want = max(limit, 2)
        for i in order:
            if ranking[i] <= 0.0:
                break
            if self.entries[int(i)].shown(channel, now):
                shown.append(int(i))
                if len(shown) >= want:
                    break
        hits = [
            Hit(e.article_id, e.title, e.topic, round(float(ranking[i]), 4))
            for i in shown[:limit]
            for e in (self.entries[i],)
        ]
        if hits and not partial and self.calibrator is not None:
            second = float(scores[shown[1]]) if len(shown) > 1 else 0.0
            x = self._features(
                lemmas, scores, doc_scores, shown[0], second, self._off_topic(lemmas, chars)
            )
            hits[0] = replace(hits[0], confidence=round(self.calibrator.probability(x), 4))
        if hits and not partial and self.domain is not None:
            in_domain = self.domain.probability(text, self.normalizer)
            hits[0] = replace(hits[0], in_domain=round(in_domain, 4))
        return hits


def normalized(text: str) -> str:
    """The folded text the retriever sees (for logs and debugging, never for matching)."""
    return " ".join(tokens(fold(text)))
