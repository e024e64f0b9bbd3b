"""Redaction: secrets and personal data in free text replaced by ``[REDACTED:<kind>]``.

Request logs with payloads use it on prompts and answers. Where a shape alone would
catch ordinary numbers, a check confirms the match: payment cards pass the Luhn
check, IBANs have their country's length and pass the mod-97 check, phone numbers
have as many digits as phone numbers do. A phone number without a country code must be written with
separators ("020 7946 0958", "(555) 123-4567"): a bare run of digits is as likely an
order number.

Each pattern starts with a literal or a character class, never with a look-behind:
the regex engine then skips to the next place the pattern can start in C, and a
text is read at about 15 MB/s (one alternation of all kinds read about 1 MB/s).
Candidates of all patterns are taken leftmost first, the earlier rule first at the
same place; after each, every pattern looks again from where it ended, so a
candidate overlapping it hides nothing further on. A candidate that fails its check
is left as it is and is not read again as another kind: a 16-digit number that is
not a card is not a phone number either.

Streams are redacted by the output guard (``guard/output_scan.py``), which cuts the
text only between the stretches that ``stretches`` lists, so that what it releases
piece by piece reads as the whole text would. For that, every pattern must be
recognised within its first couple of hundred characters: a JWT is one as soon as
its header is followed by ``.eyJ`` (the start of its payload), a private key as soon
as its BEGIN line is complete.
"""

from __future__ import annotations

import heapq
import re
from collections.abc import Callable, Collection
from dataclasses import dataclass

Span = tuple[int, int]
# Where the finding is in a candidate match, or None when the candidate is no such thing.
Check = Callable[[str, re.Match[str]], Span | None]


@dataclass(frozen=True, slots=True)
class Finding:
    """One secret or piece of personal data: its kind and where it is in the text."""

    kind: str
    start: int
    end: int


def _luhn_valid(digits: str) -> bool:
    total = 0
    for position, char in enumerate(reversed(digits)):
        digit = ord(char) - 48
        if position % 2:
            digit = digit * 2 - 9 if digit > 4 else digit * 2
        total += digit
    return total % 10 == 0


def _card(text: str, match: re.Match[str]) -> Span | None:
    digits = "".join(char for char in match.group() if char.isdigit())
    return match.span() if _luhn_valid(digits) else None


# ISO 13616: the length of an IBAN in each country that issues them.
_IBAN_LENGTHS = {
    "AD": 24, "AE": 23, "AL": 28, "AT": 20, "AZ": 28, "BA": 20, "BE": 16, "BG": 22,
    "BH": 22, "BI": 27, "BR": 29, "BY": 28, "CH": 21, "CR": 22, "CY": 28, "CZ": 24,
    "DE": 22, "DJ": 27, "DK": 18, "DO": 28, "EE": 20, "EG": 29, "ES": 24, "FI": 18,
    "FK": 18, "FO": 18, "FR": 27, "GB": 22, "GE": 22, "GI": 23, "GL": 18, "GR": 27,
    "GT": 28, "HR": 21, "HU": 28, "IE": 22, "IL": 23, "IQ": 23, "IS": 26, "IT": 27,
    "JO": 30, "KW": 30, "KZ": 20, "LB": 28, "LC": 32, "LI": 21, "LT": 20, "LU": 20,
    "LV": 21, "LY": 25, "MC": 27, "MD": 24, "ME": 22, "MK": 19, "MN": 20, "MR": 27,
    "MT": 31, "MU": 30, "NI": 28, "NL": 18, "NO": 15, "OM": 23, "PK": 24, "PL": 28,
    "PS": 29, "PT": 25, "QA": 29, "RO": 24, "RS": 22, "RU": 33, "SA": 24, "SC": 31,
    "SD": 18, "SE": 24, "SI": 19, "SK": 24, "SM": 27, "SO": 23, "ST": 25, "SV": 28,
    "TL": 23, "TN": 24, "TR": 26, "UA": 29, "VA": 22, "VG": 24, "XK": 20,
}  # fmt: skip


def _iban(text: str, match: re.Match[str]) -> Span | None:
    # The pattern may run on into the next word ("... 0130 00 BIC"): the country's
    # length says where the IBAN ends.
    candidate = match.group()
    length = _IBAN_LENGTHS.get(candidate[:2])
    if length is None:
        return None
    ends = [index + 1 for index, char in enumerate(candidate) if char != " "]
    if len(ends) < length:
        return None
    end = ends[length - 1]
    if end < len(candidate) and candidate[end] != " ":
        return None
    compact = candidate[:end].replace(" ", "")
    number = "".join(str(int(char, 36)) for char in compact[4:] + compact[:4])
    return (match.start(), match.start() + end) if int(number) % 97 == 1 else None


def _phone(shortest: int, longest: int) -> Check:
    def check(text: str, match: re.Match[str]) -> Span | None:
        digits = sum(char.isdigit() for char in match.group())
        return match.span() if shortest <= digits <= longest else None

    return check


_EMAIL_LOCAL = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._%+-")


def _email(text: str, match: re.Match[str]) -> Span:
    # The pattern starts at the @ (a literal the engine finds fast); the local part
    # is read backwards from there, at most 64 characters as RFC 5321 allows.
    start = match.start()
    floor = max(0, start - 64)
    while start > floor and text[start - 1] in _EMAIL_LOCAL:
        start -= 1
    return start, match.end()


def _whole(text: str, match: re.Match[str]) -> Span:
    return match.span()


@dataclass(frozen=True, slots=True)
class _Rule:
    kind: str
    pattern: re.Pattern[str]
    check: Check
    # Literals one of which every match holds; none: every match holds a digit.
    signs: tuple[str, ...]


def _rule(kind: str, signs: str, pattern: str, check: Check = _whole) -> _Rule:
    """A rule; ``signs`` lists, "|"-separated, literals one of which each match holds."""
    return _Rule(kind, re.compile(pattern), check, tuple(signs.split("|")) if signs else ())


# A private key runs on to this line, or to the end of the text.
PRIVATE_KEY_END = re.compile(r"-----END (?:[A-Z0-9]+ )*PRIVATE KEY-----")


def _private_key(text: str, match: re.Match[str]) -> Span:
    # The pattern is the BEGIN line alone: matching it again is cheap however long
    # the key, and a cut-short key is redacted to the end of the text.
    end = PRIVATE_KEY_END.search(text, match.end())
    return match.start(), len(text) if end is None else end.end()


# Look-behinds come after the first character: "not inside a longer word or number".
_RULES = (
    _rule(
        "private_key", "-----BEGIN ", r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY-----", _private_key
    ),
    # The header and the start of the payload make a JWT: a token cut short is one too.
    _rule(
        "jwt",
        "eyJ",
        r"eyJ(?<![\w-]eyJ)[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]*(?:\.[A-Za-z0-9_-]+)?",
    ),
    # OpenAI (sk-, sk-proj-), Anthropic (sk-ant-) and Seawall (sk-sw-) keys.
    _rule("api_key", "sk-", r"sk-(?<![\w-]sk-)(?=[A-Za-z_-]*[0-9])[A-Za-z0-9_-]{20,}"),
    # AWS access key ids, GitHub, Google and Slack tokens.
    _rule("api_key", "AKIA|ASIA", r"A[KS]IA(?<!\wA[KS]IA)[A-Z0-9]{16}(?![A-Za-z0-9])"),
    _rule("api_key", "_", r"gh(?<!\wgh)[pousr]_[A-Za-z0-9]{36,}"),
    _rule("api_key", "github_pat_", r"github_pat_(?<!\wgithub_pat_)[A-Za-z0-9_]{22,}"),
    _rule("api_key", "AIza", r"AIza(?<!\wAIza)[A-Za-z0-9_-]{35}"),
    _rule("api_key", "xox", r"xox(?<!\wxox)[abposr]-[A-Za-z0-9-]{10,}"),
    # The token only: "Bearer" stays, to say what was there.
    _rule(
        "bearer_token",
        "earer",
        r"earer(?<=\b[Bb]earer) +(?P<token>[A-Za-z0-9._~+/-]{16,}=*)",
        lambda text, match: match.span("token"),
    ),
    _rule(
        "email",
        "@",
        r"@(?<=[A-Za-z0-9._%+-]@)(?:[A-Za-z0-9-]{1,63}\.){1,8}[A-Za-z]{2,24}\b",
        _email,
    ),
    _rule("iban", "", r"[A-Z](?<![\w][A-Z])[A-Z][0-9]{2}(?: ?[A-Z0-9]){11,32}", _iban),
    # Issuers' numbers start with 2 to 6; never digits inside a word or a decimal.
    _rule(
        "card",
        "",
        r"[2-6](?<![\w.][2-6])[0-9](?:[ -]?[0-9]){11,17}(?![\w]|\.[0-9])",
        _card,
    ),
    _rule(
        "phone",
        "",
        r"\+(?<![\w+]\+)[1-9](?>[0-9]{0,2})(?>(?:[ .-]?(?:\([0-9]{1,4}\)|[0-9]{1,5}))+)",
        _phone(8, 15),
    ),
    # North American: (555) 123-4567, 555-123-4567, 555.123.4567.
    _rule("phone", "", r"\((?<![\w+.]\()[2-9][0-9]{2}\) ?[0-9]{3}[ .-][0-9]{4}(?![\w])"),
    _rule("phone", "", r"[2-9](?<![\w+.][2-9])[0-9]{2}([ .-])[0-9]{3}\1[0-9]{4}(?![\w])"),
    # A trunk 0, then groups with one kind of separator: 020 7946 0958, 06.12.34.56.78.
    _rule(
        "phone",
        "",
        r"0(?<![\w+.,]0)[0-9]{1,4}([ .-])[0-9]{2,8}(?:\1[0-9]{2,8}){0,4}(?![0-9])",
        _phone(9, 13),
    ),
)

KINDS: tuple[str, ...] = tuple(dict.fromkeys(rule.kind for rule in _RULES))
# Secrets are redacted from answers always; personal data per policy.
SECRET_KINDS: tuple[str, ...] = ("api_key", "bearer_token", "jwt", "private_key")
PII_KINDS: tuple[str, ...] = ("email", "phone", "card", "iban")


@dataclass(frozen=True, slots=True)
class RunOn:
    """How a token that can run on without bound goes on: runs of its characters,
    joined by at most ``joins`` single dots in all (each followed by more of it),
    then any number of ``padding`` characters, which end it.

    A stream that has already replaced the start of one drops what follows while
    it goes on (guard/output_scan.py).
    """

    run: re.Pattern[str]
    joins: int = 0
    padding: str = ""


RUNS_ON: dict[str, RunOn] = {
    "api_key": RunOn(re.compile(r"[A-Za-z0-9_-]*")),
    # header.payload.signature
    "jwt": RunOn(re.compile(r"[A-Za-z0-9_-]*"), joins=2),
    # Dots are among a bearer token's own characters; base64 padding ends it.
    "bearer_token": RunOn(re.compile(r"[A-Za-z0-9._~+/-]*"), padding="="),
    # The domain: up to 8 labels and the top-level domain.
    "email": RunOn(re.compile(r"[A-Za-z0-9-]*"), joins=8),
}


@dataclass(frozen=True, slots=True)
class Stretch:
    """A stretch of text a pattern took: a finding, or a candidate its check turned down.

    A text may be cut between stretches and each part read on its own (with the
    characters before it as context) as the whole would be; a cut inside one would
    read its halves apart.
    """

    start: int
    end: int
    finding: Finding | None


# What a text must hold for any rule to match: a digit, one of these characters, or
# one of the signs (most prose holds none). Each rule runs only if its own signs are there.
_SIGN_CHARS = b"0123456789@_-"
_DIGIT = re.compile("[0-9]")
_LETTER_SIGNS = tuple(
    sign for rule in _RULES for sign in rule.signs if not set(sign) & set(_SIGN_CHARS.decode())
)


def _rules_for(window: str) -> list[tuple[int, _Rule]]:
    """The rules (with their order) that can match in ``window``: those whose signs it holds."""
    raw = window.encode("utf-8", "surrogatepass")
    if len(raw.translate(None, _SIGN_CHARS)) == len(raw):
        # A plain loop: a generator or one regex of the signs costs several times more.
        for sign in _LETTER_SIGNS:
            if sign in window:
                break
        else:
            return []
    digits = _DIGIT.search(window) is not None
    return [
        (order, rule)
        for order, rule in enumerate(_RULES)
        if (any(sign in window for sign in rule.signs) if rule.signs else digits)
    ]


def stretches(text: str, start: int = 0) -> list[Stretch]:
    """Every stretch taken in ``text[start:]``, in order; what precedes ``start`` is context."""
    # The next match of each pattern, leftmost first (the earlier rule first at a place).
    # A rule whose signs ``text[start:]`` lacks cannot match there and is not run.
    ahead: list[tuple[int, int, re.Match[str]]] = []
    for order, rule in _rules_for(text[start:] if start else text):
        match = rule.pattern.search(text, start)
        if match is not None:
            ahead.append((match.start(), order, match))
    if not ahead:
        return []
    heapq.heapify(ahead)
    taken: list[Stretch] = []
    done = start  # where the last candidate taken, found or not, ended
    while ahead:
        begin, order, match = ahead[0]
        rule = _RULES[order]
        if begin >= done:
            span = rule.check(text, match)
            if span is None:
                done = match.end()
                taken.append(Stretch(begin, done, None))
            else:
                # An email's local part, read backwards, stops where the last candidate ended.
                found_start = max(span[0], done)
                done = span[1]
                finding = Finding(rule.kind, found_start, done)
                taken.append(Stretch(min(begin, found_start), done, finding))
        # The pattern's next match starts where the text is free again: a match
        # overlapping a stretch does not hide the ones that start after it.
        following = rule.pattern.search(text, done)
        if following is None:
            heapq.heappop(ahead)
        else:
            heapq.heapreplace(ahead, (following.start(), order, following))
    return taken


def _check_kinds(kinds: Collection[str]) -> None:
    """Refuse kinds that no pattern finds, naming the known ones."""
    unknown = set(kinds).difference(KINDS)
    if unknown:
        raise ValueError(f"unknown kinds {sorted(unknown)}; known: {', '.join(KINDS)}")


def find(text: str, kinds: Collection[str] | None = None) -> list[Finding]:
    """Every secret and piece of personal data in ``text`` (of ``kinds``; default all)."""
    if kinds is not None:
        _check_kinds(kinds)
    return [
        stretch.finding
        for stretch in stretches(text)
        if stretch.finding is not None and (kinds is None or stretch.finding.kind in kinds)
    ]


def label(kind: str) -> str:
    """What a finding of ``kind`` is replaced by."""
    return f"[REDACTED:{kind}]"


def redact(text: str, kinds: Collection[str] | None = None) -> str:
    """``text`` with each finding of ``kinds`` (default all) replaced by ``[REDACTED:<kind>]``."""
    findings = find(text, kinds)
    if not findings:
        return text
    parts: list[str] = []
    done = 0
    for finding in findings:
        parts.append(text[done : finding.start])
        parts.append(label(finding.kind))
        done = finding.end
    parts.append(text[done:])
    return "".join(parts)
