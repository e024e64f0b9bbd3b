"""Redaction: each kind of secret and personal data goes; numbers that only look alike stay."""

from __future__ import annotations

import pytest

from seawall.monitoring.redact import KINDS, Finding, find, redact
from seawall.tenancy.keys import new_secret

JWT = (
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4ifQ"
    ".SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c"
)
PEM = (
    "-----BEGIN RSA PRIVATE KEY-----\n"
    "MIIEowIBAAKCAQEAu1SU1LfVLPHCozMxH2Mo4lgOEePzNm0tRgeLezV6ffAt0gun\n"
    "VTLw7onLRnrq0/IzW7yWR7QkrmBL7jTKEn5u+qKhbwKfBstIs+bMY2Zkp18gnTxK\n"
    "-----END RSA PRIVATE KEY-----"
)

SECRETS = [
    ("api_key", "sk-proj-Ab3dEf6hIj9kLm2nOp5qRs8tUv1wXy4z"),
    ("api_key", "sk-Ab3dEf6hIj9kLm2nOp5qRs8tUv1wXy4zAb3dEf6h"),
    ("api_key", "sk-ant-api03-Xy4zAb3dEf6hIj9kLm2nOp5qRs8tUv1w-AA"),
    ("api_key", new_secret()),  # Seawall's own keys
    ("api_key", "AKIAIOSFODNN7EXAMPLE"),
    ("api_key", "ghp_1a2B3c4D5e6F7g8H9i0J1k2L3m4N5o6P7q8R"),
    ("api_key", "github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuv"),
    ("api_key", "AIzaSyD-9tSrke72PouQMnMX-a7eZSW0jkFMBWY"),
    ("api_key", "xoxb-1234567890-0987654321-AbCdEfGhIjKlMnOp"),
    ("jwt", JWT),
    ("private_key", PEM),
    ("email", "jane.doe+billing@example.co.uk"),
    ("email", "j_smith@mail-server.example.com"),
    ("card", "4111 1111 1111 1111"),
    ("card", "5500-0000-0000-0004"),
    ("card", "378282246310005"),  # American Express, 15 digits
    ("card", "4012888888881881"),
    ("iban", "DE89 3704 0044 0532 0130 00"),
    ("iban", "GB82WEST12345698765432"),
    ("iban", "FR14 2004 1010 0505 0001 3M02 606"),
    ("iban", "NO9386011117947"),
    ("phone", "+44 20 7946 0958"),
    ("phone", "+1 (555) 123-4567"),
    ("phone", "+33612345678"),
    ("phone", "+49 (0)30 1234567"),
    ("phone", "(555) 123-4567"),
    ("phone", "555-123-4567"),
    ("phone", "555.123.4567"),
    ("phone", "020 7946 0958"),
    ("phone", "07700 900123"),
    ("phone", "06 12 34 56 78"),
    ("phone", "030 12345678"),
]


@pytest.mark.parametrize(("kind", "secret"), SECRETS)
def test_each_kind_is_replaced_by_its_label(kind: str, secret: str) -> None:
    text = f"Hi, here it is: {secret}. Thanks!"
    assert redact(text) == f"Hi, here it is: [REDACTED:{kind}]. Thanks!"


LOOK_ALIKES = [
    "card 4111 1111 1111 1112 failed",  # fails the Luhn check
    "ref 4111111111111112",
    "IBAN DE88 3704 0044 0532 0130 00",  # bad check digits
    "IBAN GB82WEST12345698765431",
    "In 2024 the plan costs $1,299.99 or €1 234,50 a year.",
    "Order #1234567890 shipped; invoice 20240115-0042 and ticket 8675309.",
    "Released 05.06.2024 at 12:30, version 0.12.3, build 2.7.18, PID 48213.",
    "ISBN 0-306-40615-2, IP 10.0.0.1, coordinates 51.5074, -0.1278",
    "Tokens: 1048576 prompt, 16384 completion; latency 123.45 ms; 99.9% up.",
    "sk-learn-style pipeline; the ask-for-help button; the risk-free plan",
    "Send it to the team @ the office, or email support at example dot com.",
    "A bearer of bad news; bearer bonds are rare.",
    "-----BEGIN PUBLIC KEY----- is fine to share",
]


@pytest.mark.parametrize("text", LOOK_ALIKES)
def test_ordinary_text_and_numbers_are_left_alone(text: str) -> None:
    assert redact(text) == text


def test_findings_say_where_each_thing_is() -> None:
    text = "Mail ops@example.org or call +44 20 7946 0958"
    assert find(text) == [Finding("email", 5, 20), Finding("phone", 29, 45)]
    assert text[5:20] == "ops@example.org" and text[29:45] == "+44 20 7946 0958"


def test_a_bearer_token_goes_and_the_word_bearer_stays() -> None:
    assert (
        redact("Authorization: Bearer abcdef0123456789ABCDEF.ghi")
        == "Authorization: Bearer [REDACTED:bearer_token]"
    )


def test_an_iban_ends_where_its_country_says_not_at_the_next_word() -> None:
    assert (
        redact("Pay to DE89 3704 0044 0532 0130 00 BIC COBADEFFXXX today")
        == "Pay to [REDACTED:iban] BIC COBADEFFXXX today"
    )


def test_a_private_key_cut_short_is_redacted_to_the_end() -> None:
    cut = PEM[:120]
    assert redact(f"my key: {cut}") == "my key: [REDACTED:private_key]"


def test_a_rejected_card_is_not_read_again_as_a_phone_number() -> None:
    # 16 digits that fail the Luhn check are some other number: not a card, not a phone.
    assert redact("order 5555 5555 5555 4445 placed") == "order 5555 5555 5555 4445 placed"


def test_many_findings_in_one_text() -> None:
    text = (
        "From: jane@example.com\nKey: sk-ant-api03-Xy4zAb3dEf6hIj9kLm2nOp5qRs8tUv1w\n"
        "Card 4111-1111-1111-1111 exp 12/27, phone (555) 123-4567, year 2027."
    )
    assert redact(text) == (
        "From: [REDACTED:email]\nKey: [REDACTED:api_key]\n"
        "Card [REDACTED:card] exp 12/27, phone [REDACTED:phone], year 2027."
    )


def test_only_the_kinds_asked_for() -> None:
    text = "jane@example.com, 4111 1111 1111 1111, +44 20 7946 0958"
    assert (
        redact(text, kinds={"email"}) == "[REDACTED:email], 4111 1111 1111 1111, +44 20 7946 0958"
    )
    assert redact(text, kinds={"card", "phone"}) == (
        "jane@example.com, [REDACTED:card], [REDACTED:phone]"
    )
    with pytest.raises(ValueError, match="unknown kinds"):
        redact(text, kinds={"passport"})


def test_every_kind_is_known() -> None:
    assert set(KINDS) == {kind for kind, _ in SECRETS} | {"bearer_token"}


def test_a_long_text_without_secrets_comes_back_unchanged() -> None:
    text = "The quick brown fox, 42 times in 2024, paid $3.50 for order 77. " * 20_000
    assert redact(text) is text


@pytest.mark.parametrize(
    ("kind", "secret"),
    [
        ("api_key", "AKIAABCDEFGHIJKLMNOP"),
        ("api_key", "ASIAQRSTUVWXYZABCDEF"),
        ("api_key", "AIzaSyDabcdefghijklmnopqrstuvwxyzABCDEF"),
        ("jwt", "eyJhbGciOiJIUzIiLCJ.eyJzdWIiOiJqb2hu"),
    ],
)
def test_a_secret_of_letters_alone_in_prose_without_digits_is_found(kind: str, secret: str) -> None:
    # Prose without digits, "@", "-" or "_" skips most patterns: the letters still count.
    text = f"Here is what you asked for {secret} and nothing else"
    assert redact(text) == f"Here is what you asked for [REDACTED:{kind}] and nothing else"


def test_a_bearer_token_of_letters_alone_is_found() -> None:
    text = "Send the header Bearer abcdefghijklmnopqrstuvwxyzABCDEF with it"
    assert redact(text) == "Send the header Bearer [REDACTED:bearer_token] with it"
