"""How sure the bot is: a small logistic model that turns what the retriever saw (scores,
margins, how much of the message the knowledge base knows, how close it is to messages that
are not banking questions) into the probability that the best article is the right answer.

It is trained on the knowledge base itself every time the index is rebuilt: each example
question is held out of the index in turn (and a misspelt copy of it too), and it is then
either found again (a positive) or not (a negative); the messages of ``data/off_topic.yaml``
— greetings, chatter, questions that are not a bank's, personal disputes for a person —
are negatives. Nothing is downloaded or pretrained: the same base gives the same model.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import yaml

DATA = Path(__file__).parent / "data"

FEATURES = (
    "top",  # blended score of the best article
    "second",  # of the runner-up
    "margin",  # top - second
    "off_topic",  # best similarity to a message that is not a banking question
    "lead",  # top - off_topic
    "lemma_match",  # best single question of the top article, by lemmas only
    "known",  # share of the message's words the knowledge base uses at all
    "covered",  # share of the message's words the top article uses
    "length",  # log(1 + words)
)


# What the model uses of them. Measured on the development set (bench/bot_eval.py): the
# best-article score, its lead over the off-topic messages and how much of the message
# the article covers separate questions for the base from the rest best; the margin and
# the single-question match mostly tell which of two articles, which the ranking does.
USED = ("top", "lead", "covered")
COLUMNS = [FEATURES.index(name) for name in USED]


def load_off_topic(path: Path | None = None) -> list[str]:
    """The shipped messages that need no article: every category of off_topic.yaml."""
    raw = yaml.safe_load((path or DATA / "off_topic.yaml").read_text(encoding="utf-8")) or {}
    return [str(line) for lines in raw.values() for line in lines or [] if str(line).strip()]


def misspell(text: str, rng: random.Random) -> str:
    """A customer's version of an editor's question: a letter dropped, doubled or swapped
    in a word or two, lower case, no punctuation."""
    words = [w for w in text.lower().replace("ё", "е").strip(" ?!.").split() if w]
    for _ in range(rng.choice((1, 2))):
        long = [i for i, w in enumerate(words) if len(w) >= 5]
        if not long:
            break
        i = rng.choice(long)
        w = words[i]
        j = rng.randrange(1, len(w) - 1)
        kind = rng.randrange(3)
        if kind == 0:
            w = w[:j] + w[j + 1 :]
        elif kind == 1:
            w = w[:j] + w[j] + w[j:]
        else:
            w = w[: j - 1] + w[j] + w[j - 1] + w[j + 1 :]
        words[i] = w
    if len(words) > 2 and rng.random() < 0.3:  # and the words in another order
        rng.shuffle(words)
    return " ".join(words)


@dataclass(frozen=True)
class Calibrator:
    """Standardised features → logistic regression → probability."""

    mean: np.ndarray
    scale: np.ndarray
    weights: np.ndarray
    bias: float

    def probability(self, x: np.ndarray) -> float:
        x = x[COLUMNS]
        z = float(((x - self.mean) / self.scale) @ self.weights) + self.bias
        return 1.0 / (1.0 + math.exp(-max(-30.0, min(30.0, z))))

    @classmethod
    def fit(
        cls,
        x: np.ndarray,
        y: np.ndarray,
        *,
        sample_weight: np.ndarray | None = None,
        l2: float = 1.0,
    ) -> Calibrator:
        """Maximum likelihood with an L2 penalty, by Newton's method (a few features, so
        each step is one small linear solve)."""
        x = x[:, COLUMNS]
        mean = x.mean(axis=0)
        scale = x.std(axis=0)
        scale[scale < 1e-9] = 1.0
        z = np.hstack([(x - mean) / scale, np.ones((len(x), 1))])
        sw = np.ones(len(x)) if sample_weight is None else sample_weight
        w = np.zeros(z.shape[1])
        penalty = np.full(z.shape[1], l2)
        penalty[-1] = 0.0  # the bias is not shrunk
        for _ in range(50):
            p = 1.0 / (1.0 + np.exp(-np.clip(z @ w, -30, 30)))
            grad = z.T @ (sw * (p - y)) + penalty * w
            hess = (z * (sw * p * (1 - p))[:, None]).T @ z + np.diag(penalty + 1e-9)
            step = np.linalg.solve(hess, grad)
            w -= step
            if np.abs(step).max() < 1e-6:
                break
        return cls(mean=mean, scale=scale, weights=w[:-1], bias=float(w[-1]))
