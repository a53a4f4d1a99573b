"""A customer who asks the bank to act on their own case reaches a person, however well an
article matches their words; the same words asked as a question still get the article."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from okno.bot.index import Entry, Retriever
from okno.bot.own_case import tells_own_case
from okno.bot.service import decide

KB = Path(__file__).resolve().parents[2] / "okno" / "bot" / "data" / "demo_kb.yaml"


@pytest.fixture(scope="module")
def articles() -> list[dict]:
    return list(yaml.safe_load(KB.read_text(encoding="utf-8"))["articles"])


@pytest.fixture(scope="module")
def demo(articles: list[dict]) -> Retriever:
    return Retriever(
        Entry(a["id"], a["title"], tuple(a["questions"]), a["answer"], a.get("topic"))
        for a in articles
    )


@pytest.mark.parametrize(
    "text",
    [
        "верните мне 590 рублей за обслуживание кредитки, я о нём не знал",
        "посмотрите, почему мне не начислили кэшбэк за покупку 5 числа",
        "проверьте пожалуйста мою заявку на ипотеку номер 448812",
        "по карте *4417 минус 300 рублей, откуда он взялся",
        "списание по карте, оканчивающейся на 0912, я не делал",
        "прошу пересчитать проценты по вкладу, начислили меньше",
        "снимите арест с моей карты, долг приставам я уже оплатил",
        "разберитесь с вашим сотрудником в отделении на Ленина",
        "спишите мне пени 340 рублей, платёж опоздал из-за сбоя в приложении",
        "когда уже снимете ограничения с нашего счёта, документы отправили в четверг",
        "статус претензии 88-4102",
        "банкомат не выдал 15 000, заявление я подала, прошло 12 дней",
    ],
)
def test_a_demand_about_ones_own_case_goes_to_a_person_with_its_topic(
    demo: Retriever, text: str
) -> None:
    d = decide(demo, text, threshold=0.0)  # the threshold would answer anything
    assert (d.decision, d.reason) == ("handoff", "own_case"), text
    assert d.topic  # routing still learns what it is about


@pytest.mark.parametrize(
    ("text", "article"),
    [
        ("как вернуть деньги за покупку в интернете", "fraud-chargeback"),
        ("подскажите, как заблокировать карту", "card-block"),
        ("заблокируйте карту, я её потерял", "card-lost-stolen"),
        ("какой лимит на снятие по карте на 1000 рублей в день", None),
        ("объясните, почему банк может отказать в кредите", "loan-decision"),
        ("когда вернут деньги за возвращённый в магазин товар", "fraud-chargeback"),
        ("претензию подать можно онлайн?", "general-complaint"),
    ],
)
def test_a_question_in_the_same_words_is_still_answered(
    demo: Retriever, text: str, article: str | None
) -> None:
    d = decide(demo, text, threshold=0.0)
    assert d.reason != "own_case", text
    if article:
        assert article in [h.article_id for h in d.suggestions[:3]], text


def test_no_question_of_the_base_reads_as_an_own_case(articles: list[dict]) -> None:
    """If one did, its article could never be the answer to its own example question."""
    flagged = [q for a in articles for q in [a["title"], *a["questions"]] if tells_own_case(q)]
    assert flagged == []
