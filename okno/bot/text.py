"""Russian text as the bot reads it: keyboard-layout slips undone, letters folded, words
reduced to dictionary forms (pymorphy3), slang mapped to the bank's words, typos mended
against the knowledge base's own vocabulary (rapidfuzz).

Everything is offline: pymorphy3's dictionary ships inside its wheel.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import lru_cache
from pathlib import Path

import pymorphy3
import yaml
from rapidfuzz import fuzz, process

DATA = Path(__file__).parent / "data"
WORD = re.compile(r"[а-яa-z0-9]+")

# The same keys on the QWERTY and ЙЦУКЕН layouts: "ifkjv" typed with the wrong layout on
# is "шалом"; punctuation keys carry letters too (",", ".", ";", "'", "[", "]", "`").
_LATIN = "qwertyuiop[]asdfghjkl;'zxcvbnm,.`"
_CYRILLIC = "йцукенгшщзхъфывапролджэячсмитьбюё"
TO_CYRILLIC = str.maketrans(
    {
        **dict(zip(_LATIN, _CYRILLIC, strict=True)),
        **{a.upper(): b.upper() for a, b in zip(_LATIN, _CYRILLIC, strict=True) if a.isalpha()},
        '"': "Э",
        "<": "Б",
        ">": "Ю",
        "{": "Х",
        "}": "Ъ",
        ":": "Ж",
        "~": "Ё",
    }
)


@lru_cache(maxsize=1)
def _morph() -> pymorphy3.MorphAnalyzer:
    return pymorphy3.MorphAnalyzer()


@lru_cache(maxsize=200_000)
def lemma(word: str) -> str:
    """The dictionary form (карту, картой → карта); numbers and Latin words as they are."""
    if not word or not ("а" <= word[0] <= "я" or word[0] == "ё"):
        return word
    return str(_morph().parse(word)[0].normal_form).replace("ё", "е")


@lru_cache(maxsize=200_000)
def is_known(word: str) -> bool:
    return bool(_morph().word_is_known(word))


def fold(text: str) -> str:
    return text.lower().replace("ё", "е")


def fix_layout(text: str) -> str:
    """Undo a wrong keyboard layout: mostly-Latin text whose Cyrillic reading is made of
    real Russian words, while the Latin one is not (so "Apple Pay" stays as it is)."""
    letters = [c for c in text if c.isalpha()]
    if not letters or sum(c.isascii() for c in letters) < 0.6 * len(letters):
        return text
    converted = text.translate(TO_CYRILLIC)
    words = WORD.findall(fold(converted))
    latin = WORD.findall(text.lower())
    russian = sum(1 for w in words if len(w) > 1 and ("а" <= w[0] <= "я") and is_known(w))
    english_like = sum(1 for w in latin if len(w) > 2 and re.search(r"[aeiouy]", w))
    if words and russian >= max(1, 0.5 * len(words)) and russian > english_like * 0.5:
        return converted
    return text


def tokens(text: str) -> list[str]:
    return WORD.findall(fold(fix_layout(text)))


class Vocabulary:
    """What the knowledge base says, for mending typos: a word the dictionary does not know
    is replaced by the closest word of the knowledge base (if close enough)."""

    def __init__(self, words: Iterable[str]) -> None:
        self.words = sorted({w for w in words if len(w) >= 3})
        self.known = set(self.words)

    @lru_cache(maxsize=100_000)  # noqa: B019 - one vocabulary per index, kept for its life
    def mend(self, word: str) -> str:
        if len(word) < 4 or word in self.known or is_known(word) or not self.words:
            return word
        found = process.extractOne(word, self.words, scorer=fuzz.ratio, score_cutoff=78)
        return str(found[0]) if found else word


def load_synonyms() -> dict[str, list[str]]:
    """Slang and colloquial words → the bank's words (lemmas), from data/synonyms.yaml."""
    raw = yaml.safe_load((DATA / "synonyms.yaml").read_text(encoding="utf-8")) or {}
    out: dict[str, list[str]] = {}
    for canonical, variants in raw.items():
        target = [lemma(w) for w in WORD.findall(fold(str(canonical)))]
        for variant in variants or []:
            out[" ".join(lemma(w) for w in WORD.findall(fold(str(variant))))] = target
    return out


# Words that carry no meaning for telling articles apart (dictionary forms): question words,
# pronouns, prepositions, politeness. Without them "какая погода" stops matching "какой
# кешбэк", and a bare "здравствуйте" says nothing at all.
STOP = frozenset(
    """
    а без бы в во вы где да для до его ее же за здравствовать здравствуйте и из или им их к
    как какой когда ко который кто ли между мне мой мочь мы на над надо нам нас не него нет
    ни но ну о об один он она они оно от по под подсказать пожалуйста после при привет про
    раз с свой сейчас сказать скажите со спасибо так такой там тот ты у уже хотеть хотеться
    что чтобы это этот я добрый день вечер утро доброе здравствуй алло быть есть весь всё
    все ещё еще очень только можно нужно нужный почему зачем сколько вопрос вообще просто
    """.split()
)


class Normalizer:
    """Text → lemmas the index compares, with synonyms applied (one or two words long)."""

    def __init__(self, synonyms: dict[str, list[str]], vocabulary: Vocabulary | None = None):
        self.synonyms = synonyms
        self.vocabulary = vocabulary
        # Building an index reads every question three or four times (retriever, confidence,
        # in-domain model, classifier); remembering the answer halves the build.
        self._read = lru_cache(maxsize=50_000)(self._sequence)

    def lemmas(self, text: str) -> list[str]:
        return [w for w in self.sequence(text) if w not in STOP]

    def sequence(self, text: str) -> list[str]:
        """Every word's lemma in order, little words included (who asks whom for what)."""
        return list(self._read(text))

    def _sequence(self, text: str) -> tuple[str, ...]:
        words = tokens(text)
        if self.vocabulary is not None:
            words = [self.vocabulary.mend(w) for w in words]
        lemmas = [lemma(w) for w in words]
        out: list[str] = []
        i = 0
        while i < len(lemmas):
            pair = " ".join(lemmas[i : i + 2])
            if i + 1 < len(lemmas) and pair in self.synonyms:
                out.extend(self.synonyms[pair])
                i += 2
                continue
            out.extend(self.synonyms.get(lemmas[i], [lemmas[i]]))
            i += 1
        return tuple(out)
