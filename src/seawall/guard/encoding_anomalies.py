"""Hidden and disguised text: encoded blobs, invisible characters, look-alike letters.

An attacker hides an instruction where a pattern cannot read it but a model can:
base64, hex, base32, binary, ascii85, Morse, URL or backslash escapes, HTML
entities, rot13, reversed text, or Unicode tag characters that render as nothing.
Each encoded run is decoded (bounded) and the decoded text re-checked with the
injection patterns; a hit is ``encoding.<kind>`` (``encoding.base64``,
``encoding.unicode_tags``, ...). A long run that decodes to nothing readable is a
weak ``encoding.blob``: images and keys are blobs too.

The tricks themselves are reported as well, at lower scores: ``unicode.tag_chars``
(hidden tag text that is no injection), ``unicode.zero_width`` (zero-width
characters inside a word), ``unicode.homoglyph`` (a word mixing Latin with
Cyrillic or Greek look-alikes), ``unicode.bidi`` (bidirectional overrides that
reorder what a reader sees), ``chars.special_ratio`` (mostly symbols) and
``chars.repeated`` (one character repeated at length).

Costly steps run only behind a cheap gate: rot13 only when the text contains
rot13 of a trigger word, each decoder only where its regex finds a candidate.
"""

from __future__ import annotations

import base64
import binascii
import codecs
import html
import re
import urllib.parse
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from itertools import compress
from typing import Any

import ahocorasick  # type: ignore[import-not-found]

from seawall.guard.detection import Detection, excerpt
from seawall.guard.injection_patterns import check_injection
from seawall.guard.normalise import Normalised, normalised

# Decoded text at least this sure to be an injection is an encoded attack; hiding
# it is itself a sign of intent, so the detection is at least this sure too.
ENCODED_INJECTION_SCORE = 0.85
_DECODED_LIMIT = 65_536
_MIN_READABLE = 0.85
_MAX_DEPTH = 2
# Escapes closer than this belong to one stretch, decoded with this much around it.
_STRETCH = 300
_MAX_PLACES = 256


@dataclass(frozen=True, slots=True)
class AnomalyThresholds:
    """Where an oddity becomes worth reporting."""

    # An undecodable base64 or hex run at least this long is an ``encoding.blob``.
    blob_chars: int = 256
    # ``chars.special_ratio``: share of characters that are ASCII symbols (not
    # letters, digits, spaces, quotes, commas, colons, periods or hyphens), in
    # texts at least ``special_min_chars`` long. Prose sits near 0, code and JSON
    # near 0.1 to 0.2; 0.5 is mostly symbols.
    special_ratio: float = 0.5
    special_min_chars: int = 200
    # ``chars.repeated``: one non-space character repeated at least this often.
    repeated_run: int = 128
    # Encoded candidates decoded per text, so a text full of them stays cheap.
    max_decodes: int = 32

    def __post_init__(self) -> None:
        if self.repeated_run < 2 or self.blob_chars < 1 or self.max_decodes < 0:
            raise ValueError("repeated_run must be at least 2, blob_chars at least 1")
        if not 0.0 < self.special_ratio <= 1.0:
            raise ValueError("special_ratio must be above 0 and at most 1")


_TAG_RUN = re.compile("[\U000e0000-\U000e007f]+")
_FLAG_BASE = "\U0001f3f4"  # a waving black flag: tag characters after it spell a region
_ZERO_WIDTH_ANY = re.compile("[\u200b-\u200d\u2060-\u2064\ufeff]")
_ZERO_WIDTH = re.compile(
    "[A-Za-z\u0400-\u04ff][\u200b-\u200d\u2060-\u2064\ufeff]+[A-Za-z\u0400-\u04ff]"
)
_BIDI = re.compile("[\u202a-\u202e\u2066-\u2069]")
_OVERRIDES = frozenset("\u202d\u202e")
# Punctuation that prose and JSON use freely (quotes, commas, colons, periods,
# hyphens) does not count: a JSON object is not an anomaly.
_SYMBOLS_ASCII = b"!#$%&()*+/;<=>?@[\\]^_`{|}~"

# Each regex starts with a plain character class or literal: the engine then skips
# to the next place it can start in C. Runs without spaces are looked for only in
# the text's long tokens.
_LONG_TOKEN = 16
_BASE64 = re.compile(r"[A-Za-z0-9+/_-]{20,}={0,2}(?:\n[A-Za-z0-9+/_-]{8,}={0,2})*")
_HEX = re.compile(r"[0-9a-fA-F]{16,}")
_HEX_SPACED = re.compile(r"[0-9a-fA-F][0-9a-fA-F][ ,:](?:[0-9a-fA-F]{2}[ ,:]){6,}[0-9a-fA-F]{2}")
_BASE32 = re.compile(r"[A-Z2-7]{16,}={0,6}")
_BINARY = re.compile(r"[01][01]{7}(?:[ ,]?[01]{8}){3,}")
_ASCII85 = re.compile(r"<~[!-u\s]{4,65536}?~>")
_MORSE = re.compile(r"[.-][.-]{0,5}(?:(?: / | {1,3}|/)[.-]{1,6}){7,}")
_ESCAPES = re.compile(r"(?:\\u[0-9a-fA-F]{4}|\\U[0-9a-fA-F]{8}|\\x[0-9a-fA-F]{2}){4,}")
_PERCENT = re.compile(r"%[0-9a-fA-F]{2}")
_ENTITY = re.compile(r"&#(?:x[0-9a-fA-F]{1,6}|[0-9]{1,7});")
_ROT13_TRIGGERS = ("vtaber", "vafgehpgvba", "flfgrz", "qvfertneq", "cebzcg", "erirny")
_REVERSED_TRIGGERS = ("snoitcurtsni", "erongi", "tpmorp", "dragersid", "laever")

_MORSE_CODE = {
    ".-": "a", "-...": "b", "-.-.": "c", "-..": "d", ".": "e", "..-.": "f", "--.": "g",
    "....": "h", "..": "i", ".---": "j", "-.-": "k", ".-..": "l", "--": "m", "-.": "n",
    "---": "o", ".--.": "p", "--.-": "q", ".-.": "r", "...": "s", "-": "t", "..-": "u",
    "...-": "v", ".--": "w", "-..-": "x", "-.--": "y", "--..": "z", "-----": "0",
    ".----": "1", "..---": "2", "...--": "3", "....-": "4", ".....": "5", "-....": "6",
    "--...": "7", "---..": "8", "----.": "9",
}  # fmt: skip

# What a decoder takes: the candidate's text. What it gives: the decoded text, or None.
Decoder = Callable[[str], "str | None"]


class EncodingAnomalies:
    """The encoding and Unicode checks, with their thresholds; built once, shared."""

    def __init__(self, thresholds: AnomalyThresholds | None = None) -> None:
        self.thresholds = thresholds or AnomalyThresholds()
        self._repeated = re.compile(rf"(\S)\1{{{self.thresholds.repeated_run - 1},}}")
        # A shorter text can hold neither a run nor a symbol ratio worth reporting.
        self._oddity_chars = min(self.thresholds.special_min_chars, self.thresholds.repeated_run)

    def check(self, text: str, view: Normalised | None = None) -> list[Detection]:
        """Every anomaly in ``text``; ``view`` is its ``normalised`` view if already made."""
        view = normalised(text) if view is None else view
        found: list[Detection] = []
        if view.invisible:
            found.extend(self._invisible_tricks(text))
        if view.look_alikes:
            score = 0.65 if view.look_alikes >= 2 else 0.5
            detail = f"{view.look_alikes} look-alike letters in Latin words"
            found.append(Detection("unicode.homoglyph", score, detail))
        if len(text) >= self._oddity_chars:
            found.extend(self._character_oddities(text))
        found.extend(self._encoded(text, view.text))
        return found

    def _invisible_tricks(self, text: str) -> Iterator[Detection]:
        for run in _TAG_RUN.finditer(text):
            if run.start() > 0 and text[run.start() - 1] == _FLAG_BASE:
                continue  # a subdivision flag such as Scotland's
            hidden = "".join(chr(ord(char) - 0xE0000) for char in run.group())
            hits = check_injection(hidden)
            if hits:
                yield _encoded_hit("unicode_tags", hits)
            else:
                yield Detection("unicode.tag_chars", 0.7, f"hidden text: {excerpt(hidden)}")
            break
        if _ZERO_WIDTH_ANY.search(text):
            inside = len(_ZERO_WIDTH.findall(text))
            if inside:
                score = 0.6 if inside >= 3 else 0.5
                yield Detection("unicode.zero_width", score, f"{inside} inside words")
        bidi = _BIDI.findall(text)
        if bidi:
            score = 0.6 if _OVERRIDES.intersection(bidi) else 0.4
            yield Detection("unicode.bidi", score, f"{len(bidi)} bidirectional controls")

    def _character_oddities(self, text: str) -> Iterator[Detection]:
        limits = self.thresholds
        if len(text) >= limits.special_min_chars:
            # ASCII punctuation only: counting every Unicode symbol costs ten times more.
            raw = text.encode("utf-8", "surrogatepass")
            symbols = len(raw) - len(raw.translate(None, delete=_SYMBOLS_ASCII))
            ratio = symbols / len(text)
            if ratio >= limits.special_ratio:
                yield Detection("chars.special_ratio", 0.35, f"{ratio:.0%} symbols")
        repeated = self._first_repeat(text)
        if repeated is not None:
            length = repeated.end() - repeated.start()
            yield Detection("chars.repeated", 0.3, f"{repeated.group(1)!r} x {length}")

    def _first_repeat(self, text: str) -> re.Match[str] | None:
        """A run of one character at least ``repeated_run`` long, if there is one.

        Such a run covers two positions half its length apart on a grid of that
        step, which hold the same character: only those places are searched.
        """
        step = self.thresholds.repeated_run // 2
        for at in range(0, len(text) - step, step):
            if text[at] == text[at + step] and not text[at].isspace():
                found = self._repeated.search(text, max(0, at - 2 * step), at + 3 * step)
                if found is not None:
                    return found
        return None

    def _encoded(self, text: str, norm: str) -> Iterator[Detection]:
        limits = self.thresholds
        budget = limits.max_decodes
        blob = False
        seen: set[tuple[str, str]] = set()  # a run repeated in the text is decoded once
        for kind, candidates, decode in _candidates(text):
            for candidate in candidates:
                if budget <= 0:
                    break
                if (kind, candidate) in seen:
                    continue
                seen.add((kind, candidate))
                budget -= 1
                decoded = decode(candidate)
                if decoded is None:
                    blob = blob or (kind in _BLOB_KINDS and len(candidate) >= limits.blob_chars)
                    continue
                hits = _injections_within(decoded, _MAX_DEPTH)
                if hits:
                    yield _encoded_hit(kind, hits)
                    break
        if blob:
            yield Detection("encoding.blob", 0.3, "a long encoded run that is not text")
        for kind, decoded in _whole_text_views(text, norm):
            if (kind, decoded) in seen:
                continue
            seen.add((kind, decoded))
            hits = check_injection(decoded)
            if hits:
                yield _encoded_hit(kind, hits)


def check_encoding(text: str) -> list[Detection]:
    """Encoding and Unicode anomalies in ``text`` at the default thresholds."""
    return _DEFAULT.check(text)


_BLOB_KINDS = frozenset({"base64", "hex"})


def _candidates(text: str) -> Iterator[tuple[str, Iterator[str], Decoder]]:
    """Each decoder with the runs of ``text`` it should try, behind cheap gates."""
    tokens = text.split()
    # Filtered without a Python-level loop: this runs on every text, most of which
    # (ordinary prose) has no long token at all.
    if tokens and max(map(len, tokens)) >= _LONG_TOKEN:
        long_tokens = list(compress(tokens, map(_LONG_TOKEN.__le__, map(len, tokens))))
        # Consecutive long tokens stay on consecutive lines: wrapped base64 rejoins.
        joined = "\n".join(long_tokens)
        yield "base64", _lines_too(_runs(_BASE64, joined)), _base64
        yield "hex", _runs(_HEX, joined), _hex
        yield "base32", _runs(_BASE32, joined), _base32
    if text.count("01") >= 8:  # binary of text: bytes start 01 (letters) or 00
        yield "binary", _runs(_BINARY, text), _binary
    if text.count(" 6") + text.count(" 7") >= 8:  # spaced hex of text: letters are 6x, 7x
        yield "hex", _runs(_HEX_SPACED, text), _hex
    if "<~" in text:
        yield "ascii85", _runs(_ASCII85, text), _ascii85
    if ".-" in text or "-." in text:
        yield "morse", _runs(_MORSE, text), _morse
    if "\\" in text and ("\\u" in text or "\\x" in text or "\\U" in text):
        yield "escapes", _runs(_ESCAPES, text), _escapes


def _runs(regex: re.Pattern[str], text: str) -> Iterator[str]:
    return (match.group() for match in regex.finditer(text))


def _lines_too(runs: Iterator[str]) -> Iterator[str]:
    """Each run, then its lines on their own: lines taken for one wrapped run may not be."""
    for run in runs:
        yield run
        if "\n" in run:
            yield from run.split("\n")


def _encoded_hit(kind: str, hits: list[Detection]) -> Detection:
    top = max(hits, key=lambda hit: hit.score)
    score = max(ENCODED_INJECTION_SCORE, top.score)
    return Detection(f"encoding.{kind}", score, f"decodes to {top.rule}: {top.detail}")


def _injections_within(decoded: str, depth: int) -> list[Detection]:
    """Injections in decoded text, or in text encoded again inside it (hex in base64)."""
    hits = check_injection(decoded)
    if hits or depth <= 1:
        return hits
    for regex, decode in (
        (_BASE64, _base64),
        (_HEX, _hex),
        (_HEX_SPACED, _hex),
        (_ESCAPES, _escapes),
    ):
        match = regex.search(decoded)
        inner = decode(match.group()) if match is not None else None
        if inner is not None:
            hits = _injections_within(inner, depth - 1)
            if hits:
                return hits
    return []


def _whole_text_views(text: str, norm: str) -> Iterator[tuple[str, str]]:
    """Decodings of stretches of the text, each only where the text carries its sign.

    Most texts carry none: plain ``in`` tests and one Aho-Corasick pass for the
    rot13 and reversed triggers rule them all out before any regex runs.
    """
    if "%" in text:
        for stretch in _stretches(text, [m.start() for m in _PERCENT.finditer(text)], 4):
            yield "url", urllib.parse.unquote(stretch)
    if "&#" in text:
        for stretch in _stretches(text, [m.start() for m in _ENTITY.finditer(text)], 4):
            yield "html_entities", html.unescape(stretch)
    if next(_TRIGGERS.iter(norm), None) is None:
        return
    for stretch in _stretches(norm, _places(norm, _ROT13_TRIGGERS), 1):
        yield "rot13", codecs.encode(stretch, "rot13")
    for stretch in _stretches(norm, _places(norm, _REVERSED_TRIGGERS), 1):
        yield "reversed", stretch[::-1]


def _automaton(words: tuple[str, ...]) -> Any:
    found = ahocorasick.Automaton()
    for word in words:
        found.add_word(word, word)
    found.make_automaton()
    return found


_TRIGGERS = _automaton((*_ROT13_TRIGGERS, *_REVERSED_TRIGGERS))


def _places(text: str, triggers: tuple[str, ...]) -> list[int]:
    return [at for trigger in triggers if (at := text.find(trigger)) >= 0]


def _stretches(text: str, places: list[int], least: int) -> Iterator[str]:
    """The text around clusters of at least ``least`` places, a cluster's gaps bounded."""
    places = sorted(places)[:_MAX_PLACES]
    start = 0
    while start < len(places):
        end = start
        while end + 1 < len(places) and places[end + 1] - places[end] <= _STRETCH:
            end += 1
        if end - start + 1 >= least:
            yield text[max(0, places[start] - _STRETCH) : places[end] + _STRETCH]
        start = end + 1


def _readable(raw: bytes) -> str | None:
    """``raw`` as text if it is text: UTF-8 and mostly printable (maybe another layer)."""
    try:
        decoded = raw[:_DECODED_LIMIT].decode("utf-8")
    except UnicodeDecodeError:
        return None
    if not decoded:
        return None
    printable = sum(1 for char in decoded if char.isprintable() or char in "\n\r\t")
    return decoded if printable / len(decoded) >= _MIN_READABLE else None


def _base64(run: str) -> str | None:
    compact = "".join(run.split()).rstrip("=")
    if "-" in compact or "_" in compact:
        if "+" in compact or "/" in compact:
            return None
        compact = compact.replace("-", "+").replace("_", "/")
    compact = compact[: len(compact) - len(compact) % 4 if len(compact) % 4 == 1 else None]
    try:
        raw = base64.b64decode(compact + "=" * (-len(compact) % 4), validate=True)
    except (binascii.Error, ValueError):
        return None
    return _readable(raw)


def _hex(run: str) -> str | None:
    digits = re.sub(r"[^0-9a-fA-F]", "", run[2:] if run[:2] in ("0x", "0X") else run)
    try:
        return _readable(bytes.fromhex(digits[: len(digits) // 2 * 2]))
    except ValueError:
        return None


def _base32(run: str) -> str | None:
    compact = run.rstrip("=")
    try:
        return _readable(base64.b32decode(compact + "=" * (-len(compact) % 8)))
    except (binascii.Error, ValueError):
        return None


def _binary(run: str) -> str | None:
    bits = "".join(char for char in run if char in "01")
    return _readable(bytes(int(bits[i : i + 8], 2) for i in range(0, len(bits) - 7, 8)))


def _ascii85(run: str) -> str | None:
    try:
        return _readable(base64.a85decode(run, adobe=True, ignorechars=b" \t\r\n"))
    except ValueError:
        return None


def _morse(run: str) -> str | None:
    words = re.split(r" ?/ ?| {3}", run)
    letters = [
        "".join(_MORSE_CODE.get(code, "?") for code in word.split()) for word in words if word
    ]
    decoded = " ".join(letters)
    return decoded if decoded.count("?") * 10 < len(decoded) else None


def _escapes(run: str) -> str | None:
    try:
        return _readable(codecs.decode(run, "unicode_escape").encode("utf-8", "surrogatepass"))
    except (UnicodeDecodeError, UnicodeEncodeError):
        return None


_DEFAULT = EncodingAnomalies()
