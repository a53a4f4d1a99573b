"""Finding personal data in realistic customer messages: every card, phone, passport, INN,
SNILS, account and e-mail masked however it is written, and the numbers that only look
alike (order numbers, amounts, dates, codes, card-like digits failing Luhn) left alone."""

from __future__ import annotations

import pytest

from okno.security import pii

# (message, what must not survive masking, the kinds found)
LEAKS = [
    ("Моя карта 4111 1111 1111 1111, заблокируйте срочно", ["4111 1111 1111 1111"], ["card"]),
    ("номер карты 4276-3800-1234-5679 не работает", ["4276-3800-1234-5679"], ["card"]),
    ("Карта мир 2202201234567895 не проходит оплата", ["2202201234567895"], ["card"]),
    ("списали с 5486 7300 0012 3459 дважды!!!", ["5486 7300 0012 3459"], ["card"]),
    ("позвоните мне +7 (916) 123-45-67 после обеда", ["916) 123-45-67", "123-45-67"], ["phone"]),
    ("тел 8 916 1234567", ["8 916 1234567"], ["phone"]),
    ("мой номер 9161234567 привязан к карте", ["9161234567"], ["phone"]),
    ("+79161234567 это мой", ["+79161234567"], ["phone"]),
    ("паспорт 45 06 123456 выдан ОВД Тверского р-на", ["45 06 123456", "123456"], ["passport"]),
    ("серия 4506 номер 123456", ["4506", "123456"], ["passport"]),
    ("ИНН 500100732259, прошу выдать справку", ["500100732259"], ["inn"]),
    ("СНИЛС 112-233-445 95 для госуслуг", ["112-233-445 95"], ["snils"]),
    ("переведите на счёт 40817810099910004312", ["40817810099910004312"], ["account"]),
    ("пишите на ivan.petrov@mail.ru пожалуйста", ["ivan.petrov@mail.ru", "ivan.petrov"], ["email"]),
    (
        "Добрый день. Карта 4111111111111111, тел. 8(903)555-12-34, почта a.b@yandex.ru",
        ["4111111111111111", "555-12-34", "a.b@yandex.ru"],
        ["card", "phone", "email"],
    ),
]

LEFT_ALONE = [
    "заказ № 4111111111111112 от 12.03.2024 на 15 000 руб",  # fails Luhn
    "перевод 1500.50 рублей 23.11.2026 не дошёл",
    "код из смс 123456 не подходит",
    "кредит 1 500 000 на 60 месяцев под 19,9%",
    "отделение на ул. Ленина 12, с 9 до 18",
    "ваша заявка 2024-000123 принята",
    "проценты за период 01.10.2026-31.10.2026",
]


@pytest.mark.parametrize(("message", "secrets", "kinds"), LEAKS)
def test_personal_data_is_masked_however_it_is_written(
    message: str, secrets: list[str], kinds: list[str]
) -> None:
    masked = pii.mask(message)
    for secret in secrets:
        assert secret not in masked, masked
    assert [f.kind for f in pii.find(message)] == kinds
    digits_left = "".join(ch for ch in masked if ch.isdigit())
    assert len(digits_left) <= 4 * kinds.count("card") + 4 * kinds.count("account"), masked


@pytest.mark.parametrize("message", LEFT_ALONE)
def test_numbers_that_are_not_personal_data_stay(message: str) -> None:
    assert pii.mask(message) == message
    assert pii.find(message) == []


def test_masks_keep_what_tells_items_apart() -> None:
    assert pii.mask("карта 4111 1111 1111 1111") == "карта •••• 1111"
    assert pii.mask("счёт 40817810099910004312") == "счёт ••••4312"
    assert pii.mask("почта ivan@bank.ru") == "почта i•••@bank.ru"
    assert pii.mask("звоните +7 916 123-45-67") == "звоните [телефон]"


def test_checksums() -> None:
    assert pii.luhn_ok("4111111111111111") and not pii.luhn_ok("4111111111111112")
    assert pii.inn_ok("7707083893") and pii.inn_ok("500100732259")
    assert not pii.inn_ok("7707083894")
    assert pii.snils_ok("11223344595") and not pii.snils_ok("11223344596")
