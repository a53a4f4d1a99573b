"""Is it a question for the base at all: the in-domain model and what the customer sees."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from okno.bot.domain import DomainModel, features
from okno.bot.index import Entry, Retriever
from okno.bot.service import decide
from okno.settings import Settings

KB = Path(__file__).resolve().parents[2] / "okno" / "bot" / "data" / "demo_kb.yaml"


@pytest.fixture(scope="module")
def demo() -> Retriever:
    articles = yaml.safe_load(KB.read_text(encoding="utf-8"))["articles"]
    return Retriever(
        Entry(a["id"], a["title"], tuple(a["questions"]), a["answer"], a.get("topic"))
        for a in articles
    )


@pytest.fixture(scope="module")
def threshold() -> float:
    return Settings().bot_answer_threshold


def test_a_request_that_borrows_bank_words_goes_to_a_person(
    demo: Retriever, threshold: float
) -> None:
    # each of these shares words with an article (вклад, доставка, купить)
    for text in (
        "придумай шутку про вклады",
        "закажи мне роллы с доставкой",
        "купи мне велосипед",
    ):
        d = decide(demo, text, threshold=threshold)
        assert d.decision == "handoff", (text, d.confidence)


def test_a_short_creative_request_about_a_card_goes_to_a_person(
    demo: Retriever, threshold: float
) -> None:
    d = decide(demo, "сочини балладу о банковской карте", threshold=threshold)
    assert d.decision == "handoff", d.confidence


def test_a_plain_bank_question_is_still_answered(demo: Retriever, threshold: float) -> None:
    for text in (
        "как заблокировать карту",
        "как заказать доставку карты",
        "можно ли купить валюту в приложении",
        "какие ставки по вкладам",
    ):
        d = decide(demo, text, threshold=threshold)
        assert d.decision == "answer", (text, d.confidence)


def test_a_demand_about_my_own_charge_goes_to_a_person(demo: Retriever, threshold: float) -> None:
    mine = decide(
        demo, "с меня сняли 3100 за услугу, которую я не заказывал, верните", threshold=threshold
    )
    general = decide(demo, "как оспорить списание по карте", threshold=threshold)
    assert mine.decision == "handoff" and general.decision == "answer"


def test_only_the_first_hit_of_a_full_search_says_if_it_is_in_domain(demo: Retriever) -> None:
    hits = demo.search("как пополнить вклад")
    assert hits[0].in_domain is not None and 0.0 <= hits[0].in_domain <= 1.0
    assert all(h.in_domain is None for h in hits[1:])
    assert all(h.in_domain is None for h in demo.search("как пополнить вк", partial=True))


def test_the_same_base_gives_the_same_domain_model(demo: Retriever) -> None:
    again = Retriever(demo.entries)
    assert again.domain is not None and demo.domain is not None
    assert again.domain.weights == demo.domain.weights


def test_a_small_base_does_without_the_domain_model() -> None:
    r = Retriever(
        [Entry("a", "Как открыть вклад", ("Открыть вклад онлайн",), "В приложении.", "deposits")]
    )
    assert r.domain is None
    hits = r.search("открыть вклад")
    assert hits[0].in_domain is None
    assert decide(r, "открыть вклад", threshold=0.3).decision == "answer"


def test_the_model_learns_the_domain_from_its_examples(demo: Retriever) -> None:
    model = DomainModel.fit(
        ["как открыть вклад", "ставка по вкладу", "пополнить вклад", "закрыть вклад досрочно"],
        ["какая погода", "расскажи сказку", "привет", "спой песню"],
        demo.normalizer,
    )
    assert model.probability("вклад под проценты", demo.normalizer) > 0.5
    assert model.probability("сказку про погоду", demo.normalizer) < 0.5


def test_features_mark_an_amount_a_demand_and_the_customer_themself(demo: Retriever) -> None:
    on = set(features("верните мне 500 рублей", demo.normalizer))
    assert {"q:amount", "q:imperative", "q:me", "q:me+imperative"} <= on
    assert "q:amount" not in set(features("как вернуть деньги", demo.normalizer))
