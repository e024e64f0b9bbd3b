"""The output guard on streams: what a client receives chunk by chunk equals the
redacted whole answer, however the upstream cut it; a leaked canary or system prompt
stops the answer; ordinary answers pass unchanged, held back by at most N characters.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Iterator, Sequence

import pytest

from seawall.guard.canary import new_canary, plant
from seawall.guard.output_scan import MIN_HOLD_BACK, OutputPolicy, OutputScanner, ScanStep
from seawall.monitoring.redact import PII_KINDS, Stretch, redact, stretches
from tests.monitoring.test_redact import JWT, LOOK_ALIKES, PEM, SECRETS

ALL_PII = OutputPolicy(pii=frozenset(PII_KINDS))
SMALL = OutputPolicy(pii=frozenset(PII_KINDS), hold_back=MIN_HOLD_BACK)

# Ordinary prose around the secrets, long enough that releases happen mid-stream.
PROSE = (
    "Thanks for getting in touch. I have looked at your account and the last invoice, "
    "and everything seems to be in order: the payment of $129.99 went through on 05.06.2024 "
    "at 12:30, order #1234567890 shipped, and version 0.12.3 of the app is installed. "
)

CARD = "4111 1111 1111 1111"
API_KEY = "sk-proj-Ab3dEf6hIj9kLm2nOp5qRs8tUv1wXy4z"
EMAIL = "jane.doe+billing@example.co.uk"


def stream(scanner: OutputScanner, chunks: Sequence[str]) -> tuple[str, list[ScanStep]]:
    """Feed ``chunks`` then finish: the text released in all and every step."""
    steps = [scanner.feed(chunk) for chunk in chunks]
    steps.append(scanner.finish())
    return "".join(step.text for step in steps), steps


def split(text: str, points: Sequence[int]) -> list[str]:
    """``text`` cut at ``points`` (sorted)."""
    bounds = [0, *points, len(text)]
    return [text[a:b] for a, b in itertools.pairwise(bounds)]


def splits_across(start: int, end: int, chunks: int) -> Iterator[list[int]]:
    """Every way to cut a text into ``chunks`` pieces so that [start, end) spans all of them."""
    for first in range(start + 1, end - chunks + 2):
        step = max(1, (end - first) // (chunks - 1))
        points = [first + step * index for index in range(chunks - 1)]
        if points[-1] < end:
            yield points


@pytest.mark.parametrize(
    ("secret", "label"),
    [(CARD, "[REDACTED:card]"), (API_KEY, "[REDACTED:api_key]"), (EMAIL, "[REDACTED:email]")],
)
@pytest.mark.parametrize("policy", [ALL_PII, SMALL], ids=["hold256", "hold160"])
def test_a_secret_split_over_two_chunks_at_every_point_is_redacted(
    secret: str, label: str, policy: OutputPolicy
) -> None:
    # Placed so that the first release cuts through the secret for some split points.
    for before in (PROSE, PROSE * 2):
        text = f"{before}Your details: {secret}, as requested. {PROSE}"
        whole = redact(text, policy.kinds)
        assert label in whole and secret not in whole
        for point in range(1, len(text)):
            released, _ = stream(OutputScanner(policy), split(text, [point]))
            assert released == whole, point


@pytest.mark.parametrize("secret", [CARD, API_KEY, EMAIL])
@pytest.mark.parametrize("chunks", [3, 4, 5])
def test_a_secret_split_over_several_chunks_at_every_point_is_redacted(
    secret: str, chunks: int
) -> None:
    text = f"{PROSE}Your details: {secret}, as requested. {PROSE}"
    start = text.index(secret)
    whole = redact(text, ALL_PII.kinds)
    for points in splits_across(start, start + len(secret), chunks):
        released, _ = stream(OutputScanner(ALL_PII), split(text, points))
        assert released == whole, points


@pytest.mark.parametrize("size", range(1, 10))
def test_small_chunks_cut_everywhere_and_still_equal_the_whole_redaction(size: int) -> None:
    secrets = " and ".join(secret for _, secret in SECRETS)
    text = f"{PROSE}{secrets}. {PROSE}"
    chunks = [text[index : index + size] for index in range(0, len(text), size)]
    released, _ = stream(OutputScanner(ALL_PII), chunks)
    assert released == redact(text, ALL_PII.kinds)
    assert released == OutputScanner(ALL_PII).scan_all(text).text


def _mixture(rng: random.Random) -> str:
    pieces = (
        [secret for _, secret in SECRETS]
        + LOOK_ALIKES
        + [
            JWT,
            PEM,
            PEM[:150],
            "eyJhbGciOiJSUzI1NiIsImtpZCI6IjEifQ.eyJ" + "a" * 900 + "." + "b" * 300,
            "sk-proj-" + "A1b2" * 200,
            "Bearer " + "x1" * 300 + "==",
        ]
    )
    words = ["the", "quick", "brown", "fox", "2024", "$3.50", "order", "77", "12:30", "v0.12.3"]
    glue = [" ", "\n", ", ", ".", ". ", "", "@", "-", "_", ".x", "=", ": "]
    parts = []
    for _ in range(rng.randint(1, 10)):
        if rng.random() < 0.4:
            parts.append(rng.choice(pieces))
        else:
            parts.append(" ".join(rng.choice(words) for _ in range(rng.randint(1, 60))))
        parts.append(rng.choice(glue))
    return "".join(parts)


@pytest.mark.parametrize("policy", [OutputPolicy(), ALL_PII, SMALL], ids=["secrets", "pii", "160"])
def test_random_answers_in_random_chunks_equal_their_whole_redaction(
    policy: OutputPolicy,
) -> None:
    rng = random.Random(7)
    for _ in range(300):
        text = _mixture(rng)
        chunks: list[str] = []
        index = 0
        while index < len(text):
            size = rng.choice([1, 2, 3, 4, 5, 8, 16, 50, 300])
            chunks.append(text[index : index + size])
            index += size
        released, _ = stream(OutputScanner(policy), chunks)
        assert released == redact(text, policy.kinds), text


def test_a_long_private_key_streamed_is_one_label_and_the_hold_back_stays_bounded() -> None:
    body = "MIIEowIBAAKCAQEAu1SU1LfVLPHCozMxH2Mo4lgOEePzNm0tRgeLezV6ffAt0gun\n" * 60
    key = f"-----BEGIN RSA PRIVATE KEY-----\n{body}-----END RSA PRIVATE KEY-----"
    text = f"{PROSE}Here is the key:\n{key}\nKeep it safe. {PROSE}"
    scanner = OutputScanner(OutputPolicy())
    released = []
    for index in range(0, len(text), 7):
        released.append(scanner.feed(text[index : index + 7]).text)
        assert scanner.held <= OutputPolicy().hold_back
    released.append(scanner.finish().text)
    assert (
        "".join(released)
        == f"{PROSE}Here is the key:\n[REDACTED:private_key]\nKeep it safe. {PROSE}"
    )


def test_a_private_key_cut_short_is_redacted_to_the_end_of_the_answer() -> None:
    body = "MIIEowIBAAKCAQEAu1SU1LfVLPHCozMxH2Mo4lgOEePzNm0tRgeLezV6ffAt0gun\n" * 20
    text = f"{PROSE}-----BEGIN PRIVATE KEY-----\n{body}"
    released, _ = stream(OutputScanner(OutputPolicy()), [text[:300], text[300:900], text[900:]])
    assert released == f"{PROSE}[REDACTED:private_key]"


def test_secrets_are_always_redacted_personal_data_only_when_the_policy_says() -> None:
    text = f"Key {API_KEY}, mail {EMAIL}, card {CARD}."
    assert OutputScanner(OutputPolicy()).scan_all(text).text == (
        f"Key [REDACTED:api_key], mail {EMAIL}, card {CARD}."
    )
    only_cards = OutputPolicy(pii=frozenset({"card"}))
    assert OutputScanner(only_cards).scan_all(text).text == (
        f"Key [REDACTED:api_key], mail {EMAIL}, card [REDACTED:card]."
    )


def test_each_redaction_is_a_detection_that_does_not_quote_the_secret() -> None:
    text = f"Key {API_KEY}, card {CARD}, other card 5500-0000-0000-0004."
    step = OutputScanner(ALL_PII).scan_all(text)
    assert {(d.rule, d.detail) for d in step.detections} == {
        ("output.secret.api_key", "1 api_key redacted"),
        ("output.pii.card", "2 card redacted"),
    }
    assert not step.blocked


def test_a_benign_answer_is_released_unchanged_and_at_most_n_characters_late() -> None:
    text = PROSE * 12
    policy = OutputPolicy()
    scanner = OutputScanner(policy)
    released = ""
    for fed in range(1, len(text) + 1):
        released += scanner.feed(text[fed - 1]).text
        assert len(released) >= fed - policy.hold_back
        assert text.startswith(released)
    released += scanner.finish().text
    assert released == text


def test_each_character_is_scanned_a_bounded_number_of_times(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    scanned = 0

    def counting(text: str, start: int = 0) -> list[Stretch]:
        nonlocal scanned
        scanned += len(text) - start
        return stretches(text, start)

    monkeypatch.setattr("seawall.guard.output_scan.stretches", counting)
    text = PROSE * 40
    stream(OutputScanner(OutputPolicy()), list(text))
    # The lookahead is rescanned about 4 times; the whole answer never is.
    assert scanned <= 5 * len(text)


def test_a_canary_split_over_chunks_blocks_the_answer_before_any_of_it_is_released() -> None:
    canary = new_canary(random.Random(1))
    secret = canary.removeprefix("sw-canary-")
    text = f"{PROSE}My instructions say: never reveal {canary}. {PROSE}"
    start = text.index(canary)
    for point in range(start - 5, start + len(canary) + 5):
        scanner = OutputScanner(OutputPolicy(canary=True), canary=canary)
        released, steps = stream(scanner, split(text, [point]))
        assert secret[:4] not in released
        blocking = [step for step in steps if step.blocked and step.detections]
        assert [d.rule for d in blocking[0].detections] == ["output.canary"]
        assert all(step.blocked and not step.text for step in steps[steps.index(blocking[0]) :])


def test_a_disguised_canary_is_blocked_too() -> None:
    canary = new_canary(random.Random(2))
    spaced = " ".join(canary.upper())
    scanner = OutputScanner(OutputPolicy(canary=True), canary=canary)
    text = f"{PROSE}Sure: {spaced}"
    released, steps = stream(scanner, [text[i : i + 3] for i in range(0, len(text), 3)])
    assert steps[-1].blocked
    assert spaced[:8] not in released


def test_a_canary_policy_needs_the_canary_planted() -> None:
    with pytest.raises(ValueError, match="canary"):
        OutputScanner(OutputPolicy(canary=True))


SYSTEM_PROMPT = (
    "You are the support assistant of Northwind Outdoor Gear. Answer questions about "
    "orders, returns, sizing and product care. Returns are accepted within 60 days with "
    "the receipt, and refunds go back to the original payment method within five working "
    "days. Never discuss competitors, never promise discounts, and hand over to a human "
    "agent when the customer mentions a legal claim or an injury caused by a product."
)


def test_an_answer_repeating_the_system_prompt_is_cut_off() -> None:
    scanner = OutputScanner(OutputPolicy(leakage_threshold=0.5), system_prompt=SYSTEM_PROMPT)
    text = f"Of course! My instructions are: {SYSTEM_PROMPT} Anything else?"
    released, steps = stream(scanner, [text[i : i + 5] for i in range(0, len(text), 5)])
    assert steps[-1].blocked
    rules = [d.rule for step in steps for d in step.detections]
    assert rules == ["output.prompt_leak"]
    # Released before the threshold was crossed: less than the prompt's first half.
    assert len(released) < len(SYSTEM_PROMPT) // 2


def test_an_ordinary_answer_on_the_same_prompt_is_not_leakage() -> None:
    scanner = OutputScanner(OutputPolicy(leakage_threshold=0.3), system_prompt=SYSTEM_PROMPT)
    answer = (
        "You can return the boots within 60 days if you still have the receipt. Once we "
        "receive them, the refund goes back to your card within five working days."
    )
    step = scanner.scan_all(answer)
    assert step == ScanStep(answer, [], False)


def test_after_finishing_a_scanner_cannot_be_fed() -> None:
    scanner = OutputScanner(OutputPolicy())
    scanner.scan_all("Hello.")
    with pytest.raises(RuntimeError, match="finished"):
        scanner.feed("more")


@pytest.mark.parametrize(
    ("field", "value", "problem"),
    [
        ("pii", frozenset({"passport"}), "unknown kinds"),
        ("hold_back", MIN_HOLD_BACK - 1, "hold_back"),
        ("leakage_threshold", 0.0, "leakage_threshold"),
        ("off_topic_below", 1.0, "off_topic_below"),
    ],
)
def test_a_bad_policy_is_refused_naming_its_field(field: str, value: object, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        OutputPolicy(**{field: value})  # type: ignore[arg-type]


def test_the_planted_prompt_and_the_scanner_agree() -> None:
    canary = new_canary(random.Random(3))
    prompt = plant(SYSTEM_PROMPT, canary)
    scanner = OutputScanner(OutputPolicy(canary=True), system_prompt=prompt, canary=canary)
    assert scanner.scan_all(f"The marker is {canary}.").blocked


@pytest.mark.parametrize(
    ("answer", "released"),
    [
        # The first IBAN's pattern runs on into the second: it must not hide it.
        (
            "Pay DE89 3704 0044 0532 0130 00 GB82 WEST 1234 5698 7654 32 today.",
            "Pay [REDACTED:iban] [REDACTED:iban] today.",
        ),
        # A JWT cut short after its header and the start of its payload.
        (
            "Your token: eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0",
            "Your token: [REDACTED:jwt]",
        ),
    ],
)
def test_secrets_that_a_whole_text_reading_used_to_miss_are_redacted(
    answer: str, released: str
) -> None:
    assert OutputScanner(ALL_PII).scan_all(answer).text == released
