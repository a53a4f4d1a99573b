"""Does the customer ask the bank to act on their own case? "Верните мне 590 рублей",
"проверьте мою заявку номер 448812", "по карте на 4417 минус 300 рублей, откуда" — only a
person who can open the account can settle these, however well an article about fees or
applications matches their words. Like a request for a person, such a message goes to one
whatever the bot thinks of the rest of it.

Five signs, each one a customer rarely writes when asking how something works:

- a demand, in the imperative, that the bank undo, check or settle something (верните,
  проверьте, посмотрите, разберитесь, пересчитайте, оспорьте, снимите…), or "прошу / требую"
  followed by one of those verbs. Asking for information (подскажите, объясните, помогите)
  is not a demand, and neither are the actions a customer asks how to do themselves
  (заблокируйте, переведите, откройте): the base explains those;
- "when will you…" with one of those verbs ("когда уже снимете ограничения", "когда вернёте");
- a claim already filed ("заявление подала неделю назад"): the customer follows up on it;
- a reference to one file: an application, contract, claim or operation number;
- a card named by its last four digits ("по карте на 4417", "*4417").

A told story without any of these ("вчера списали 2000, я ничего не покупал") stays with the
knowledge base and its in-domain model: it is often the very question an article answers.
"""

from __future__ import annotations

import re

from okno.bot.text import _morph, fold, lemma, tokens

# Verbs of acting on one account (dictionary forms).
DEMANDS = frozenset(
    """
    вернуть возвратить проверить посмотреть разобраться пересчитать убрать оспорить
    компенсировать возместить начислить зачислить наказать исправить аннулировать снять
    отменить списать
    """.split()
)
# First-person words of demanding: "прошу вернуть", "требую пересчитать".
ASKS = frozenset({"просить", "требовать"})

REFERENCE = re.compile(
    r"№\s*\d|(?:номер\w*|договор\w*|обращени\w*|заявк\w*|заявлени\w*|операци\w*|претензи\w*)"
    r"\s*(?:№\s*)?\d[\d/-]{3,}"
)
# A claim the customer has already filed, in either order: "заявление писал", "подала
# претензию".
CLAIM = r"(?:заявлени|претензи|обращени|жалоб)\w*"
FILED = r"(?:подал|написал|писал|оставил|отправил|оформил|отнес|отнёс)\w*"
FILED_CLAIM = re.compile(rf"{CLAIM}(?:\s+\w+){{0,2}}\s+{FILED}|{FILED}(?:\s+\w+){{0,2}}\s+{CLAIM}")
WHEN = frozenset({"когда"})
# A card by its last digits; "на 5000 рублей" is an amount, not a card.
CARD = re.compile(
    r"\*\s?\d{4}\b|(?:оканчива|заканчива|окончани)\w*\s+(?:на\s+)?\d{4}\b"
    r"|карт\w*\s+(?:на\s+)?\d{4}\b(?!\s*(?:р\b|р\.|руб|₽|тыс|т\.|\$|€|евро|долл|к\b|в\s))"
)


def tells_own_case(text: str) -> bool:
    words = tokens(text)
    folded = fold(text)
    if REFERENCE.search(folded) or CARD.search(folded) or FILED_CLAIM.search(folded):
        return True
    for i, word in enumerate(words):
        base = lemma(word)
        if base in DEMANDS and _imperative(word):
            return True
        if base in DEMANDS and _you_will(word) and WHEN & set(words[max(0, i - 3) : i]):
            return True
        if base in ASKS and _first_person(word):
            if any(lemma(w) in DEMANDS for w in words[i + 1 : i + 3]):
                return True
    return False


def _imperative(word: str) -> bool:
    """Any reading in the imperative: "посмотрите" is also "you will look", and the
    dictionary lists that first."""
    return any("impr" in p.tag for p in _morph().parse(word))


def _first_person(word: str) -> bool:
    return any("1per" in p.tag and "sing" in p.tag for p in _morph().parse(word)[:1])


def _you_will(word: str) -> bool:
    return any("2per" in p.tag and "plur" in p.tag for p in _morph().parse(word)[:1])
