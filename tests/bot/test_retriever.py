"""The retriever and the answer-or-hand-off decision on a small base."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from okno.bot.index import Entry, Retriever
from okno.bot.service import decide

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
BASE = [
    Entry(
        "card-block",
        "Как заблокировать карту",
        ("Потерял карту, что делать", "Украли карту"),
        "Заблокируйте карту в приложении: Карты → Заблокировать.",
        "cards",
    ),
    Entry(
        "sbp",
        "Перевод по номеру телефона",
        ("Как перевести по номеру телефона", "Перевод через СБП"),
        "Платежи → По номеру телефона.",
        "transfers",
    ),
    Entry(
        "deposit-open",
        "Как открыть вклад",
        ("Хочу открыть депозит", "Открыть вклад онлайн"),
        "Откройте вклад в приложении: Вклады → Открыть.",
        "deposits",
    ),
    Entry(
        "promo-nye",
        "Новогодний кешбэк",
        ("Какой кешбэк в декабре",),
        "До 10% в декабре.",
        "cards",
        valid_from=NOW - timedelta(days=1),
        valid_to=NOW + timedelta(days=30),
    ),
    Entry(
        "promo-old",
        "Летний кешбэк",
        ("Кешбэк летом",),
        "Летом до 5%.",
        "cards",
        valid_to=NOW - timedelta(days=60),
    ),
    Entry(
        "app-only",
        "Вход по отпечатку",
        ("Как войти по отпечатку пальца",),
        "Настройки → Вход.",
        "app",
        channels=("api",),
    ),
]


def test_word_order_forms_slang_and_layout_find_the_same_article() -> None:
    r = Retriever(BASE)
    for text in (
        "карту заблокировать",
        "заблочить карточку",
        "pf,kjrbhjdfnm rfhne",
        "потеряла карточку",
    ):
        assert r.search(text, now=NOW)[0].article_id == "card-block", text
    assert r.search("перевод по сбп", now=NOW)[0].article_id == "sbp"


def test_typing_suggests_after_a_few_letters() -> None:
    r = Retriever(BASE)
    assert r.search("как откр", partial=True, now=NOW)[0].article_id == "deposit-open"
    assert r.search("перев", partial=True, now=NOW)[0].article_id == "sbp"


def test_articles_outside_their_dates_or_channels_are_never_shown() -> None:
    r = Retriever(BASE)
    found = [h.article_id for h in r.search("кешбэк", limit=10, now=NOW)]
    assert "promo-nye" in found and "promo-old" not in found
    later = [h.article_id for h in r.search("кешбэк", limit=10, now=NOW + timedelta(days=40))]
    assert "promo-nye" not in later
    assert "app-only" not in [
        h.article_id for h in r.search("вход по отпечатку", channel="widget", now=NOW)
    ]
    assert r.search("вход по отпечатку", channel="api", now=NOW)[0].article_id == "app-only"


def test_the_bot_answers_when_sure_and_hands_off_otherwise() -> None:
    r = Retriever(BASE)
    answers = {e.article_id: e for e in BASE}
    sure = decide(r, "как заблокировать карту", threshold=0.4, now=NOW, answers=answers)
    assert (sure.decision, sure.article_id, sure.topic) == ("answer", "card-block", "cards")
    assert sure.answer and "Заблокировать" in sure.answer
    unsure = decide(r, "какая завтра погода в Казани", threshold=0.4, now=NOW, answers=answers)
    assert unsure.decision == "handoff" and unsure.article_id is None


def test_asking_for_a_person_always_reaches_a_person() -> None:
    r = Retriever(BASE)
    for text in (
        "позовите оператора",
        "нужен живой человек, карту заблокировать",
        "соедините с сотрудником",
        "пожалуйста, пусть ответит оператор",
        "жду ответа сотрудника",
        "человек ответит?",
        "хочу поговорить с кем-нибудь, кто реально работает в банке",
    ):
        d = decide(r, text, threshold=0.0, now=NOW)
        assert (d.decision, d.reason) == ("handoff", "human_requested"), text
    # the topic still goes along, so routing sends it to the right queue
    assert decide(r, "оператор, карту заблокировать", threshold=0.0, now=NOW).topic == "cards"


def test_naming_a_person_is_not_asking_for_one() -> None:
    """A question that mentions staff is still a question: the customer gets the answer."""
    r = Retriever(BASE)
    for text in (
        "звонил сотрудник банка, сказал заблокировать карту, это правда?",
        "можно показывать сотруднику код из смс",
        "хотим переводить зарплату сотрудникам по номеру телефона",
        "как быстро отвечает оператор",
        "как долго обычно ждать ответа сотрудника в чате",
        "можно перевести деньги другому человеку по номеру телефона",
        "хотим, чтобы сотрудники получали зарплату на карты",
    ):
        d = decide(r, text, threshold=0.0, now=NOW)
        assert d.reason != "human_requested", text
    for text in (
        "хочу поговорить с вашим сотрудником",
        "мне нужен специалист",
        "менеджера позовите",
        "хочу, чтобы со мной связались специалисты",
        "хочу, чтобы сотрудник перезвонил",
        "хочу оператора, а то сотрудники молчат",
    ):
        assert decide(r, text, threshold=0.0, now=NOW).reason == "human_requested", text


def test_a_bare_greeting_is_not_answered_with_an_article() -> None:
    """ "Добрый вечер, банк" names the bank but asks nothing: a person greets back."""
    r = Retriever(BASE)
    for text in ("добрый вечер, банк", "вечерочка доброго", "приветик", "здрасьте, бот"):
        d = decide(r, text, threshold=0.0, now=NOW)
        assert (d.decision, d.reason) == ("handoff", "empty"), text
    d = decide(r, "добрый вечер, как заблокировать карту", threshold=0.0, now=NOW)
    assert (d.decision, d.article_id) == ("answer", "card-block")
