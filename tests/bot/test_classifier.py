"""The article classifier that re-ranks what the retriever found for a whole question."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from okno.bot.classifier import MAX_ARTICLES, ArticleClassifier
from okno.bot.index import Entry, Retriever
from okno.bot.text import Normalizer, load_synonyms

ROOT = Path(__file__).resolve().parents[2]
KB = ROOT / "okno" / "bot" / "data" / "demo_kb.yaml"
DEV = ROOT / "bench" / "bot_eval" / "phrasings.yaml"


def _folded(text: str) -> str:
    return " ".join(text.lower().replace("ё", "е").split())


@pytest.fixture(scope="module")
def demo() -> Retriever:
    """The demo base without the development phrasings it has learned as questions
    (bench/bot_eval/README.md), so they are new to it here."""
    articles = yaml.safe_load(KB.read_text(encoding="utf-8"))["articles"]
    learned = {
        _folded(p["text"]) for p in yaml.safe_load(DEV.read_text(encoding="utf-8"))["phrasings"]
    }
    return Retriever(
        Entry(
            a["id"],
            a["title"],
            tuple(q for q in a["questions"] if _folded(q) not in learned),
            a["answer"],
            a.get("topic"),
        )
        for a in articles
    )


def test_reranking_puts_more_right_articles_first(demo: Retriever) -> None:
    """On the development phrasings (customers' own words, typos, slang), the blend of
    retriever and classifier finds the right article first more often than the retriever
    alone, and never loses it from the first three more often."""
    phrasings = [
        p for p in yaml.safe_load(DEV.read_text(encoding="utf-8"))["phrasings"] if p["article"]
    ]
    plain = blended = plain3 = blended3 = 0
    for p in phrasings:
        alone = [h.article_id for h in demo.search(p["text"], limit=3)]
        both = [h.article_id for h in demo.search(p["text"], limit=3, rerank=True)]
        plain += alone[:1] == [p["article"]]
        blended += both[:1] == [p["article"]]
        plain3 += p["article"] in alone
        blended3 += p["article"] in both
    assert demo.classifier is not None
    assert blended >= plain + 0.02 * len(phrasings), (plain, blended)
    assert blended3 >= plain3, (plain3, blended3)


def test_a_blended_ranking_reports_its_own_scores_best_first(demo: Retriever) -> None:
    hits = demo.search("кредитку заблочить срочно", limit=5, rerank=True)
    scores = [h.score for h in hits]
    assert scores == sorted(scores, reverse=True) and 0 < scores[0] <= 1


def test_too_large_or_too_small_a_base_is_ranked_by_the_retriever_alone() -> None:
    normalizer = Normalizer(load_synonyms())
    big = [[f"вопрос номер {i}", f"статья {i}"] for i in range(MAX_ARTICLES + 1)]
    assert ArticleClassifier.fit(big, normalizer) is None
    assert ArticleClassifier.fit([["как открыть вклад"], ["где банкомат"]], normalizer) is None


def test_a_button_flow_with_few_questions_is_not_outvoted_by_a_long_article() -> None:
    """The demo card-block article has ~40 example questions, its button flow five; asked
    the flow's own question, the customer gets the flow (the buttons), not the article."""
    articles = yaml.safe_load(KB.read_text(encoding="utf-8"))["articles"]
    flows = yaml.safe_load((KB.parent / "demo_flows.yaml").read_text(encoding="utf-8"))["flows"]
    base = Retriever(
        [
            *(
                Entry(f"flow:{f['id']}", f["title"], tuple(f.get("questions", [])), "", None)
                for f in flows
            ),
            *(
                Entry(a["id"], a["title"], tuple(a["questions"]), a["answer"], None)
                for a in articles
            ),
        ]
    )
    for text, flow in (
        ("как заблокировать карту", "flow:card-block"),
        ("где ближайший банкомат", "flow:nearest-atm"),
    ):
        assert base.search(text, limit=3, rerank=True)[0].article_id == flow, text
