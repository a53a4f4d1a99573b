"""Is a message a question for the knowledge base at all? A binary logistic regression over
sparse features of the text — content lemmas and their pairs, character 3–5-grams of the
lemmas, the little words (мне, мой, как, почему) and a few cues of a personal case (an
amount, a date, a demand in the imperative, something that happened told against what was
expected, "why did you … me") — trained on the base's own titles and example
questions (in the domain) against ``data/off_topic.yaml`` (not: chatter, requests that are
not a bank's, disputes only a person can settle).

It answers a different question from the retriever's confidence: not "is this the right
article" but "is this the kind of message the base answers". A message that needs a person
— chatter, an errand, a demand about one's own charge — can share the base's words; a long,
upset message about a lost card looks like no single example question and still belongs to
the base. Its limit: a short request whose other words are all strong bank words ("напиши
стих про карту") can still look like the base; more such lines in the off-topic corpus are
what teach it otherwise (about a hundred from four more writers taught it "сочини балладу о
банковской карте", which it used to answer).

Nothing is downloaded or pretrained: the same base and corpus give the same model.
"""

from __future__ import annotations

import itertools
import math
import random
import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from okno.bot.text import STOP, Normalizer, _morph, lemma, tokens

ITERATIONS = 50
LEARNING_RATE = 0.05
L2 = 1e-4
CHAR_SIZES = (3, 4, 5)
MAX_POSITIVES = 4000  # example questions it learns from, at most (a big base is sampled)

NUMBER = re.compile(r"\d")
AMOUNT = re.compile(r"\d[\d\s]*(?:руб|р\b|₽|тыс|к\b|\$|евро|долл)|\d{3,}")
DATE = re.compile(
    r"\b\d{1,2}[./]\d{1,2}\b|\b\d{1,2}\s*(?:числа|января|февраля|марта|апреля|мая|июня|июля"
    r"|августа|сентября|октября|ноября|декабря)|вчера|позавчера|на прошлой неделе"
)
ME = frozenset({"я", "мне", "меня", "мною"})
WAITING = re.compile(
    r"до сих пор|\bжд[уеё]\w*|уже (?:\w+ )?(?:дн|недел|месяц|час)|(?:который|третий|второй) (?:день|раз)"
)
REFERENCE = re.compile(r"№|(?:номер|договор\w*|обращени\w*|заявк\w*|заявлени\w*)\s*(?:№\s*)?\d")
YOU = frozenset({"вы", "вас", "вам", "ваш", "ваша", "ваши", "вашего", "вашей"})
# What was expected against what happened, the turn of a complaint: "закрыла карту, а
# списывать продолжают", "хотя я всё оплатил", "так и не пришли".
CONTRAST = re.compile(
    r"\bхотя\b|\bвс[её] равно\b|\bтак и не\b|\bвс[её] ещ[её]\b|\bопять\b|\bснова\b|\bвисит\b"
    r"|\bа (?:деньги|денег|на сч[её]т|на карт|в приложени|в прил|они|он|она|мне|теперь|сейчас)\b"
)
WHY_ME = re.compile(
    r"\b(?:почему|зачем|с какой стати|на каком основании|за что)\b.*"
    r"\b(?:мне|меня|мой|моя|мою|мои|моего|моей|моих|вы|нам|нас)\b"
)


@lru_cache(maxsize=100_000)
def _imperative(word: str) -> bool:
    """A verb in the imperative (верните, разберитесь, напиши), as the dictionary says."""
    if len(word) < 3 or not ("а" <= word[0] <= "я"):
        return False
    return any("impr" in p.tag for p in _morph().parse(word)[:1])


def content_features(text: str, normalizer: Normalizer) -> list[str]:
    """The message's meaningful words, their pairs and their parts (3–5 letters)."""
    content = normalizer.lemmas(text)
    out = [f"w:{w}" for w in content]
    out.extend(f"b:{a}_{b}" for a, b in itertools.pairwise(content))
    for word in content:
        padded = f" {word} "
        for n in CHAR_SIZES:
            out.extend(f"c:{padded[i : i + n]}" for i in range(max(1, len(padded) - n + 1)))
    return out


def features(text: str, normalizer: Normalizer) -> list[str]:
    """What the model sees of a message (names of the features that are on): its content
    and the cues of a personal case."""
    words = tokens(text)
    content = normalizer.lemmas(text)
    out = content_features(text, normalizer)
    small = {lemma(w) for w in words} & STOP
    out.extend(f"s:{w}" for w in small)
    me = bool(set(words) & ME) or any(lemma(w) == "мой" for w in words)
    done = any(_done_to_me(w) for w in words)
    folded = text.lower()
    you = bool(set(words) & YOU)
    imperative = any(_imperative(w) for w in words)
    amount = bool(AMOUNT.search(folded))
    date = bool(DATE.search(folded))
    question = "?" in text or bool(
        words and lemma(words[0]) in {"как", "где", "что", "можно", "почему", "какой", "сколько"}
    )
    cues = {
        "me": me,
        "you": you,
        "imperative": imperative,
        "amount": amount,
        "date": date,
        "number": bool(NUMBER.search(text)),
        "question": question,
        "me+imperative": me and imperative,
        "amount+imperative": amount and imperative,
        "me+amount": me and amount,
        "you+imperative": you and imperative,
        "done": done,
        "me+done": me and done,
        "done+amount": done and amount,
        "done+date": done and date,
        "waiting": bool(WAITING.search(folded)),
        "reference": bool(REFERENCE.search(folded)),
        "no_content": not content,
        "one_word": len(content) <= 1,
    }
    did = any(_did(w) for w in words)
    contrast = bool(CONTRAST.search(folded))
    cues |= {
        "did": did,  # something that happened, told: a story rather than a question
        "me+did": me and did,
        "contrast": contrast,
        "did+contrast": did and contrast,
        "why_me": bool(WHY_ME.search(folded)),  # "почему с меня сняли", not "почему карта…"
    }
    out.extend(f"q:{name}" for name, on in cues.items() if on)
    out.append(f"n:{min(len(content), 8)}")
    return out


# What customers put around a question without changing it: a greeting, a word about
# themselves, thanks. The base's questions are bare; without these the model would take a
# polite, chatty question for chatter.
OPENINGS = (
    "Здравствуйте!",
    "Добрый день.",
    "Подскажите, пожалуйста,",
    "У меня вопрос:",
    "Давно пользуюсь вашим банком.",
    "Извините за беспокойство,",
    "Не могу разобраться сам.",
    "Помогите, пожалуйста.",
    "Пишу уже второй раз, не нашла ответа на сайте.",
    "Доброе утро, я ваш клиент много лет.",
)
CLOSINGS = ("", "", "Спасибо!", "Заранее благодарю.", "Очень жду ответа.", "Это срочно.")


def told(question: str, rng: random.Random) -> str:
    """A base question the way a customer writes it in a chat."""
    return " ".join(
        p
        for p in (rng.choice(OPENINGS), question[:1].lower() + question[1:], rng.choice(CLOSINGS))
        if p
    )


@lru_cache(maxsize=100_000)
def _done_to_me(word: str) -> bool:
    """A verb in the past plural with no one named (отклонили, списали, потеряли): what
    "they" did, the way a customer tells their own case."""
    if len(word) < 4 or not ("а" <= word[0] <= "я"):
        return False
    tag = _morph().parse(word)[0].tag
    return "VERB" in tag and "past" in tag and "plur" in tag


@lru_cache(maxsize=100_000)
def _did(word: str) -> bool:
    """A verb in the past tense (закрыла, оплатил, перевели): something that happened."""
    if len(word) < 4 or not ("а" <= word[0] <= "я"):
        return False
    tag = _morph().parse(word)[0].tag
    return "VERB" in tag and "past" in tag


@dataclass(frozen=True)
class DomainModel:
    """Feature name → weight; probability by the logistic function."""

    weights: dict[str, float]
    bias: float

    def probability(self, text: str, normalizer: Normalizer) -> float:
        names = set(features(text, normalizer))
        if not names:
            return 0.0
        scale = 1.0 / math.sqrt(len(names))
        z = self.bias + scale * sum(self.weights.get(f, 0.0) for f in names)
        return 1.0 / (1.0 + math.exp(-max(-30.0, min(30.0, z))))

    @classmethod
    def fit(
        cls,
        positives: Sequence[str],
        negatives: Sequence[str],
        normalizer: Normalizer,
        *,
        seed: int = 0,
    ) -> DomainModel:
        """Logistic regression with an L2 penalty by gradient descent (Adam) on a sparse
        matrix held as CSR arrays; both classes weigh the same in total."""
        rng = random.Random(seed)
        if len(positives) > MAX_POSITIVES:
            positives = rng.sample(list(positives), MAX_POSITIVES)
        positives = [
            *positives,
            *(told(q, rng) for q in rng.sample(list(positives), len(positives) // 4)),
        ]
        texts: list[str] = []
        labels: list[float] = []
        for label, group in ((1.0, positives), (0.0, negatives)):
            for text in group:
                texts.append(text)
                labels.append(label)
        vocab: dict[str, int] = {}
        indices: list[int] = []
        indptr = [0]
        for text in texts:
            names = set(features(text, normalizer))
            indices.extend(vocab.setdefault(f, len(vocab)) for f in names)
            indptr.append(len(indices))
        idx = np.array(indices, dtype=np.int64)
        ptr = np.array(indptr, dtype=np.int64)
        counts = np.diff(ptr)
        rows = np.repeat(np.arange(len(texts)), counts)
        val = np.repeat(1.0 / np.sqrt(np.maximum(counts, 1)), counts)
        y = np.array(labels)
        n_pos = float(y.sum())
        n_neg = float(len(y) - n_pos)
        sw = np.where(y > 0, 0.5 / max(n_pos, 1.0), 0.5 / max(n_neg, 1.0))
        w = np.zeros(len(vocab) + 1)  # the last one is the bias
        m = np.zeros_like(w)
        v = np.zeros_like(w)
        beta1, beta2 = 0.9, 0.999
        for t in range(1, ITERATIONS + 1):
            z = np.bincount(rows, weights=val * w[idx], minlength=len(y)) + w[-1]
            p = 1.0 / (1.0 + np.exp(-np.clip(z, -30, 30)))
            r = sw * (p - y)
            grad = np.empty_like(w)
            grad[:-1] = np.bincount(idx, weights=val * r[rows], minlength=len(vocab))
            grad[:-1] += L2 * w[:-1]
            grad[-1] = r.sum()
            m = beta1 * m + (1 - beta1) * grad
            v = beta2 * v + (1 - beta2) * grad * grad
            w -= LEARNING_RATE * (m / (1 - beta1**t)) / (np.sqrt(v / (1 - beta2**t)) + 1e-8)
        order = list(vocab)
        weights = {order[i]: float(w[i]) for i in np.flatnonzero(w[:-1])}
        return cls(weights=weights, bias=float(w[-1]))
