"""Which article does a free-text question belong to: a softmax regression over the
articles, trained on the base's own titles and example questions (and a misspelt copy of
each article's first ones), re-ranking what the retriever found.

Why both: the retriever compares a message with each example question as a whole, so a
paraphrase that shares few words with any single question of its article ranks low. The
classifier learns, per article, which words and word parts tell it from the others, from
all its questions together. Blended half and half with the retriever's score it put the
right article first in 4–5 more messages of a hundred on both development sets (see
``bench/RESULTS.md``); either alone is worse.

It is trained only while the base is small enough for a dense weight matrix (articles ×
features, up to 500 articles); a larger base is ranked by the retriever alone. Nothing is downloaded or
pretrained: the same base gives the same model.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import sparse

from okno.bot.calibration import misspell
from okno.bot.domain import content_features
from okno.bot.text import Normalizer

ITERATIONS = 40
LEARNING_RATE = 0.2
L2 = 1e-5
# Above these the base is ranked by the retriever alone: training holds four
# features × articles float32 matrices (10 million weights: ~160 MB while it trains).
MAX_ARTICLES = 500
MAX_WEIGHTS = 10_000_000
MIN_ARTICLES = 3
COPIED = 16  # the first texts of each article (title, editors' questions) learn a misspelt copy too


def _content_features(text: str, normalizer: Normalizer) -> set[str]:
    """The words, word pairs and word parts (not the cues of a personal case, which say
    nothing about which article)."""
    return set(content_features(text, normalizer))


@dataclass(frozen=True)
class ArticleClassifier:
    vocabulary: dict[str, int]
    weights: np.ndarray  # features × articles
    bias: np.ndarray

    def probabilities(self, text: str, normalizer: Normalizer) -> np.ndarray | None:
        """P(article | text) for every article in the base's order; None when the text
        has no feature the base knows."""
        names = _content_features(text, normalizer)
        rows = [self.vocabulary[f] for f in names if f in self.vocabulary]
        if not rows:
            return None
        z = self.bias + self.weights[rows].sum(axis=0) / math.sqrt(len(names))
        z = z - z.max()
        p = np.exp(z)
        return np.asarray(p / p.sum(), dtype=np.float64)

    @classmethod
    def fit(
        cls, articles: Sequence[Sequence[str]], normalizer: Normalizer, *, seed: int = 0
    ) -> ArticleClassifier | None:
        """``articles``: each article's title and questions. None when the base is too
        small to tell articles apart or too large for the dense model."""
        if not MIN_ARTICLES <= len(articles) <= MAX_ARTICLES:
            return None
        rng = random.Random(seed)
        samples: list[tuple[set[str], int]] = []
        for label, texts in enumerate(articles):
            # Misspelt copies smooth an article's first wordings (its title and the
            # editors' questions); a big base's later wordings vary already, and copies of
            # them all would double the training time.
            for n, text in enumerate(texts):
                for variant in (text, misspell(text, rng)) if n < COPIED else (text,):
                    names = _content_features(variant, normalizer)
                    if names:
                        samples.append((names, label))
        counts: dict[str, int] = {}
        for names, _ in samples:
            for f in names:
                counts[f] = counts.get(f, 0) + 1
        vocabulary = {f: i for i, f in enumerate(f for f, c in counts.items() if c >= 2)}
        if not samples or len(vocabulary) * len(articles) > MAX_WEIGHTS:
            return None
        rows: list[int] = []
        cols: list[int] = []
        vals: list[float] = []
        for n, (names, _) in enumerate(samples):
            known = [vocabulary[f] for f in names if f in vocabulary]
            scale = 1.0 / math.sqrt(len(names))
            rows.extend([n] * len(known))
            cols.extend(known)
            vals.extend([scale] * len(known))
        x = sparse.csr_matrix(
            (np.array(vals, dtype=np.float32), (rows, cols)),
            shape=(len(samples), len(vocabulary)),
        )
        xt = x.T.tocsr()
        labels = np.array([label for _, label in samples])
        y = np.zeros((len(samples), len(articles)), dtype=np.float32)
        y[np.arange(len(samples)), labels] = 1.0
        # Every article weighs the same in total: an article with 40 example questions is
        # not asked more often than a button flow with 5, and unweighted it would win
        # every close call.
        per_article = np.bincount(labels, minlength=len(articles)).astype(np.float32)
        weight = (1.0 / (np.count_nonzero(per_article) * per_article[labels]))[:, None]
        w = np.zeros((len(vocabulary), len(articles)), dtype=np.float32)
        b = np.zeros(len(articles), dtype=np.float32)
        m = np.zeros_like(w)
        v = np.zeros_like(w)
        beta1, beta2 = 0.9, 0.999
        for t in range(1, ITERATIONS + 1):  # Adam on the mean cross-entropy
            z = x @ w + b
            z -= z.max(axis=1, keepdims=True)
            p = np.exp(z)
            p /= p.sum(axis=1, keepdims=True)
            r = (p - y) * weight
            grad = xt @ r + L2 * w
            b -= 0.5 * r.sum(axis=0)
            m = beta1 * m + (1 - beta1) * grad
            v = beta2 * v + (1 - beta2) * grad * grad
            w -= LEARNING_RATE * (m / (1 - beta1**t)) / (np.sqrt(v / (1 - beta2**t)) + 1e-8)
        return cls(vocabulary=vocabulary, weights=w, bias=b)
