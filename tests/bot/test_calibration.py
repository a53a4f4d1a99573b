"""The bot's confidence: a probability learned from the knowledge base itself."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
import yaml

from okno.bot.calibration import load_off_topic, misspell
from okno.bot.index import Entry, Retriever
from okno.bot.service import confidence, decide

KB = Path(__file__).resolve().parents[2] / "okno" / "bot" / "data" / "demo_kb.yaml"


@pytest.fixture(scope="module")
def demo() -> Retriever:
    articles = yaml.safe_load(KB.read_text(encoding="utf-8"))["articles"]
    return Retriever(
        Entry(a["id"], a["title"], tuple(a["questions"]), a["answer"], a.get("topic"))
        for a in articles
    )


def test_a_plain_question_is_answered_and_chatter_is_handed_off(demo: Retriever) -> None:
    for text in ("как заблокировать карту", "какие ставки по вкладам", "где ближайший банкомат"):
        d = decide(demo, text, threshold=0.5)
        assert d.decision == "answer" and d.confidence >= 0.5, text
    for text in ("какая завтра погода в казани", "посоветуй сериал на вечер", "как сварить кашу"):
        d = decide(demo, text, threshold=0.5)
        assert d.decision == "handoff" and d.confidence < 0.5, text


def test_confidence_is_a_probability_and_only_full_searches_carry_it(demo: Retriever) -> None:
    hits = demo.search("не приходит смс с кодом")
    assert hits and hits[0].confidence is not None and 0.0 <= confidence(hits) <= 1.0
    assert all(h.confidence is None for h in hits[1:])
    assert all(h.confidence is None for h in demo.search("не приходит см", partial=True))


def test_the_same_base_gives_the_same_confidence(demo: Retriever) -> None:
    again = Retriever(demo.entries)
    for text in ("сменить пин-код", "перевод не дошёл"):
        assert confidence(again.search(text)) == confidence(demo.search(text))


def test_a_base_without_example_questions_still_decides() -> None:
    r = Retriever([Entry("a", "Как открыть вклад", (), "В приложении.", "deposits")])
    assert r.calibrator is None
    d = decide(r, "открыть вклад", threshold=0.3)
    assert d.decision == "answer" and d.article_id == "a"


def test_the_shipped_off_topic_messages_load() -> None:
    lines = load_off_topic()
    assert len(lines) > 100 and all(line.strip() for line in lines)


def test_a_misspelt_copy_keeps_its_words_but_not_its_letters() -> None:
    rng = random.Random(1)
    text = "Как заблокировать карту в приложении?"
    changed = [misspell(text, rng) for _ in range(20)]
    assert all(len(c.split()) == 5 for c in changed)
    assert any(c != "как заблокировать карту в приложении" for c in changed)
