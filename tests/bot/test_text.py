"""How the bot reads Russian: layout slips, word forms, slang, typos."""

from __future__ import annotations

import pytest

from okno.bot.text import Normalizer, Vocabulary, fix_layout, lemma, load_synonyms


@pytest.mark.parametrize(
    ("typed", "meant"),
    [
        ("pf,kjrbhjdfnm rfhne", "заблокировать карту"),
        ("ifkjv", "шалом"),
        ("Ghbdtn", "Привет"),
    ],
)
def test_text_typed_with_the_english_layout_is_read_as_russian(typed: str, meant: str) -> None:
    assert fix_layout(typed) == meant


@pytest.mark.parametrize(
    "text", ["Apple Pay не работает", "Google Pay", "iPhone", "PIN 1234", "ok"]
)
def test_real_latin_words_are_left_alone(text: str) -> None:
    assert fix_layout(text) == text


def test_word_forms_meet_in_one_dictionary_form() -> None:
    assert {lemma("карту"), lemma("карты"), lemma("картой"), lemma("карта")} == {"карта"}
    assert lemma("ёлка") == "елка"


def test_slang_becomes_the_banks_words() -> None:
    n = Normalizer(load_synonyms())
    assert n.lemmas("заблочить кредитку") == ["заблокировать", "кредитный", "карта"]
    assert "наличный" in n.lemmas("снять нал")
    assert "приложение" in n.lemmas("не работает прилага")
    assert "оператор" in n.lemmas("дайте живого человека")


def test_a_typo_is_mended_against_the_knowledge_bases_words() -> None:
    vocabulary = Vocabulary(["заблокировать", "карту", "кэшбэк", "перевод"])
    n = Normalizer(load_synonyms(), vocabulary)
    assert n.lemmas("заблакировать крту") == ["заблокировать", "карта"]
    # a real word is never "mended" into another one
    assert vocabulary.mend("перевал") == "перевал"


@pytest.mark.parametrize(
    ("slang", "word"),
    [
        ("эпл пей", "apple"),
        ("новая симка", "sim"),
        ("фейс айди", "face"),
        ("докинуть на вклад", "пополнить"),
        ("справка 2-ндфл", "доход"),
        ("пишут в телеге", "мессенджер"),
    ],
)
def test_the_thesaurus_knows_everyday_banking_words(slang: str, word: str) -> None:
    assert word in Normalizer(load_synonyms()).lemmas(slang)


def test_a_person_mentioned_in_passing_is_not_a_request_for_one() -> None:
    n = Normalizer(load_synonyms())
    assert "оператор" not in n.lemmas("карта для близкого человека")
    assert "оператор" in n.lemmas("позовите человека")
