"""Does the customer ask for a person? A request always goes to one ("позовите оператора",
"хочу поговорить с живым человеком"), whatever the bot thinks of the rest of the message.

A mention is not a request: "звонил сотрудник банка, просил перевести деньги", "как быстро
отвечает оператор", "хотим платить зарплату сотрудникам" and "хотим, чтобы сотрудники
получали зарплату на карты" are questions for the base,
and handing them off because they name a person costs the customer an answer they could
have had at once. So the person word (``оператор`` after the thesaurus has mapped
сотрудник, менеджер, живой человек… onto it) counts only when it is nearly the whole
message, or when a word of asking for contact stands right beside it.
"""

from __future__ import annotations

import re

from okno.bot.domain import _imperative
from okno.bot.text import STOP, Normalizer, _morph, lemma, tokens

PERSON = "оператор"
# Verbs and nouns of getting in touch: they ask for a person a few words away
# ("поговорить с вашим сотрудником", "связаться с живым оператором").
CONTACT = frozenset(
    """
    позвать соединить переключить поговорить пообщаться общаться связаться связь вызвать
    подключить пригласить обсудить консультация
    """.split()
)
# Words of wanting that ask only when they stand next to it ("нужен специалист",
# "хочу оператора", "можно человека", "дайте менеджера").
WANT = frozenset("хотеть нужный нужно надо можно дать давать требоваться ждать пусть".split())
# Words of answering between the wanting and the person ("жду ответа сотрудника", "пусть
# ответит оператор"); on their own they describe ("как быстро отвечает оператор").
REPLY = frozenset("ответ ответить отвечать подключиться".split())
# "Человек" alone is anyone ("перевод другому человеку"); it means a person of the bank
# only in a message that says nothing else ("человек ответит?", "есть тут человек?").
HUMAN = "человек"
# Words that do not make a request into a question ("оператор срочно", "сотрудник банка").
FILLER = frozenset("банк живой срочно нормальный настоящий какой-нибудь кто-нибудь".split())

SOMEONE = frozenset({"кто"})  # "с кем-нибудь" reads as "с", "кто", "нибудь"
QUESTION = frozenset({"как", "сколько", "когда", "долго", "почему", "зачем"})

ADDRESS = re.compile(r"^\W*(\w+)\s*[,!:—-]")
# Staff in the plural doing something ("чтобы сотрудники получали зарплату на карты"): a
# company's employees, the subject of the sentence, not someone asked for.
STAFF_DOING = re.compile(
    r"\b(?:сотрудники|операторы|специалисты|консультанты|менеджеры|работники)\s+([а-яё]+)"
)


def asks_for_person(text: str, normalizer: Normalizer) -> bool:
    sequence = normalizer.sequence(text)
    where = [i for i, w in enumerate(sequence) if w == PERSON]
    if _someone_to_talk_to(sequence):
        return True
    if not where:
        rest = [w for w in sequence if w not in STOP and w not in FILLER and w != HUMAN]
        return HUMAN in sequence and all(w in REPLY or w in WANT or w in CONTACT for w in rest)
    content = [w for w in sequence if w not in STOP and w not in FILLER and w != PERSON]
    if len(content) <= 1:
        return True
    called = ADDRESS.match(text)  # "Оператор, карту заблокировать" — called by name
    if called and normalizer.sequence(called.group(1)) == [PERSON]:
        return True
    words = tokens(text)
    staff_doing = _staff_doing(text.lower(), mentions=len(where))
    for i in where:
        before = sequence[max(0, i - 3) : i]
        after = sequence[i + 1 : i + 3]
        if CONTACT & set(before) or CONTACT & set(after[:1]):
            return True
        if not staff_doing and (_wanted(sequence, i) or WANT & set(after[:1])):
            return True
        near = [*before[-2:], *after]
        if any(_imperative(w) for w in words if _lemma_in(w, near, normalizer)):
            return True
    return False


def _staff_doing(text: str, *, mentions: int) -> bool:
    """Every one of the ``mentions`` staff words is a plural subject of a verb other than
    answering or getting in touch: "хотим, чтобы сотрудники получали зарплату" wants
    something of the staff, not them ("хочу, чтобы со мной связались специалисты" and
    "хочу оператора, а то сотрудники молчат" still ask)."""
    found = list(STAFF_DOING.finditer(text))
    if not found or len(found) < mentions:
        return False
    for m in found:
        verb = m.group(1)
        if not _finite_verb(verb) or lemma(verb) in CONTACT | REPLY:
            return False
    return True


def _finite_verb(word: str) -> bool:
    return "VERB" in _morph().parse(word)[0].tag


def _someone_to_talk_to(sequence: list[str]) -> bool:
    """ "Хочу поговорить с кем-нибудь из банка", "соедините с кем-то": a word of getting
    in touch with an unnamed someone."""
    return any(
        w in CONTACT and SOMEONE & set(sequence[i + 1 : i + 3]) for i, w in enumerate(sequence)
    )


def _wanted(sequence: list[str], i: int) -> bool:
    """The nearest word before it that means something is a word of wanting: "мне нужен
    живой специалист" and "жду ответа сотрудника" ask, "можно показывать сотруднику" does
    not."""
    for j in range(i - 1, -1, -1):
        word = sequence[j]
        if word in WANT:  # "сколько ждать ответа оператора" asks how long, not for one
            return not QUESTION & set(sequence[max(0, j - 3) : j])
        if word not in STOP and word not in FILLER and word not in REPLY:
            return False
    return False


def _lemma_in(word: str, lemmas: list[str], normalizer: Normalizer) -> bool:
    return bool(set(normalizer.sequence(word)) & set(lemmas))


# A greeting and nothing else ("вечерочка доброго, банк"): read by the dictionary alone, not
# mended against the base, which would make "приветик" into "привезти".
GREETINGS = frozenset(
    """
    добрый доброе день денек денечек вечер вечерок вечерочек утро утречко ночь сутки время
    здравствовать здравствуйте здравствуй здаров здорово привет приветик приветствовать
    салют хай хаюшка хеллоу hello hi алло ау эй
    """.split()
)
# Whom a greeting is addressed to.
ADDRESSEES = frozenset("банк бот робот чат поддержка".split())


def only_greets(text: str) -> bool:
    words = [lemma(w) for w in tokens(text)]
    said = [w for w in words if w not in STOP and w not in ADDRESSEES]
    return bool(set(words) & GREETINGS) and all(w in GREETINGS for w in said)
