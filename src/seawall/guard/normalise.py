# ruff: noqa: RUF001, RUF002, RUF003 (look-alike letters are this module's subject)
"""One canonical view of untrusted text, so spelling tricks cannot hide a pattern.

The guard's patterns are written once, in lower case and without accents, and run
over this view. It undoes what attackers use to slip past literal matching:

- invisible characters (zero-width spaces and joiners, soft hyphens, bidi
  controls, Unicode tag characters) are deleted;
- NFKC folds full-width letters, ligatures and mathematical alphabets to plain
  letters; casefold lowers case (and ``ß`` to ``ss``);
- accents are stripped (``révélez`` reads ``revelez``, ``игнорируй`` reads
  ``игнорируи``): patterns match with and without them;
- in a word that mixes Latin with Cyrillic or Greek, the look-alike letters
  become the Latin ones (``іgnоrе`` with Cyrillic letters reads ``ignore``);
  words wholly in Cyrillic or Greek are left alone, so Russian stays Russian;
- in a token that mixes letters with digits, leetspeak digits become letters
  (``1gn0r3`` reads ``ignore``); plain numbers are left alone;
- letters spaced out one by one are joined (``i g n o r e`` reads ``ignore``);
- typographic quotes and dashes become ASCII ones (``don’t`` reads ``don't``);
- runs of spaces and tabs become one space (line breaks are kept: some patterns
  look for markers at the start of a line).

ASCII text skips the Unicode steps, which is most text and the fast path.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

# Characters that render as nothing. Tag characters are deleted here too; the
# encoding checks decode them separately (they smuggle ASCII).
INVISIBLE = frozenset(
    (
        *(0x00AD, 0x034F, 0x061C, 0x115F, 0x1160, 0x17B4, 0x17B5, 0x180E, 0x3164, 0xFEFF),
        *range(0x200B, 0x2010),
        *range(0x202A, 0x202F),
        *range(0x2060, 0x2070),
        *range(0xE0000, 0xE0080),
    )
)
# A character class of them: deleting by regex is ten times faster than str.translate.
_INVISIBLE_RUN = re.compile(
    "[\u00ad\u034f\u061c\u115f\u1160\u17b4\u17b5\u180e\u3164\ufeff\u200b-\u200f"
    "\u202a-\u202e\u2060-\u206f\U000e0000-\U000e007f]+"
)

# Cyrillic and Greek letters (after casefold) that look like Latin ones. Greek
# letters common in science (alpha, beta, gamma, delta, mu) are left out.
CONFUSABLES = {
    "а": "a", "в": "b", "е": "e", "ё": "e", "к": "k", "м": "m", "н": "h", "о": "o",
    "р": "p", "с": "c", "т": "t", "у": "y", "х": "x", "і": "i", "ї": "i", "ј": "j",
    "ѕ": "s", "ԁ": "d", "ԛ": "q", "ԝ": "w", "һ": "h", "ӏ": "l", "ɡ": "g", "ɑ": "a",
    "ı": "i", "ο": "o", "ι": "i", "ν": "v", "ρ": "p", "τ": "t", "κ": "k", "υ": "u",
    "χ": "x", "η": "n", "ζ": "z", "ω": "w",
}  # fmt: skip
_UNCONFUSE = str.maketrans(CONFUSABLES)
# Where Latin touches a look-alike: the only words worth rewriting. The pattern
# starts with the look-alike, rare in Latin text, so the engine skips ahead in C.
_LOOK_ALIKES = "".join(CONFUSABLES)
MIXED_SCRIPT = re.compile(f"[{_LOOK_ALIKES}](?:(?<=[a-z].)|(?=[a-z]))")

# "@" is left alone: rewriting it would break the e-mail addresses some rules match.
_LEET = str.maketrans({"0": "o", "1": "i", "3": "e", "4": "a", "5": "s", "7": "t",
                       "8": "b", "9": "g", "$": "s"})  # fmt: skip
# Starts with the digit (rare in prose) so the regex engine skips ahead in C.
_LEET_PAIR = re.compile(r"[013457-9$](?:(?<=[a-z].)|(?=[a-z]))")
_TOKEN_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789$")

# Three or more single letters separated by one space, dot, dash or underscore.
# Looked for only if the text's shape (letters "a", separators " ") shows them.
_SPACED = re.compile(r"\b[a-z](?:[ ._-][a-z]\b){2,}")
_SHAPE = bytes(
    0x61 if chr(byte).isalpha() and byte < 0x80 else 0x20 if chr(byte) in " ._-" else 0x23
    for byte in range(256)
)
# Typographic punctuation NFKC keeps, as ASCII ("don’t" reads "don't").
_TYPOGRAPHIC = {"‘": "'", "’": "'", "‚": "'", "‛": "'", "′": "'", "“": '"', "”": '"',
                "„": '"', "‟": '"', "″": '"', "«": '"', "»": '"', "‐": "-", "‑": "-",
                "‒": "-", "–": "-", "—": "-", "―": "-", "−": "-"}  # fmt: skip
_TYPOGRAPHIC_RUN = re.compile("[" + "".join(_TYPOGRAPHIC) + "]")
_SPACED_GAPS = re.compile(r"[ ._-]")
# Horizontal whitespace worth rewriting: a run, or one character other than space.
_BLANK = " \t\r\x0b\x0c\x1c-\x1f\x85\u2028\u2029"
_BLANKS = re.compile(f"[{_BLANK}]{{2,}}|[{_BLANK[1:]}]")
# Whitespace NFKC leaves as it is; any other kind has become a plain space.
_ODD_BLANKS = ("  ", "\t", "\r", "\x0b", "\x0c", "\x1c", "\x1d", "\x1e", "\x1f", "\x85",
               "\u2028", "\u2029")  # fmt: skip
_COMBINING = re.compile("[\u0300-\u036f]")


@dataclass(frozen=True, slots=True)
class Normalised:
    """The canonical view of a text, and what normalising it found on the way."""

    text: str
    # Look-alike letters that sat inside Latin words (and were rewritten).
    look_alikes: int = 0
    # Whether the text held invisible characters (deleted here).
    invisible: bool = False


def strip_accents(text: str) -> str:
    """``text`` without combining accents (also used on the patterns' source)."""
    decomposed = unicodedata.normalize("NFD", text)
    return text if len(decomposed) == len(text) else _COMBINING.sub("", decomposed)


def normalise(text: str) -> str:
    """The canonical view of ``text`` that the guard's patterns match against."""
    return normalised(text).text


def normalised(text: str) -> Normalised:
    """``normalise``, keeping what the Unicode checks want to know too."""
    look_alikes = 0
    invisible = False
    if text.isascii():
        folded = text.lower()
    else:
        visible = _INVISIBLE_RUN.sub("", text)
        invisible = len(visible) != len(text)
        folded = unicodedata.normalize("NFKC", visible).casefold()
        folded = strip_accents(folded)
        if _TYPOGRAPHIC_RUN.search(folded):
            folded = _TYPOGRAPHIC_RUN.sub(lambda match: _TYPOGRAPHIC[match.group()], folded)
        look_alikes = len(MIXED_SCRIPT.findall(folded))
        if look_alikes:
            folded = _rewrite_words(folded, MIXED_SCRIPT, _UNCONFUSE)
    if _LEET_PAIR.search(folded):
        folded = _rewrite_words(folded, _LEET_PAIR, _LEET)
    shape = folded.encode("utf-8", "surrogatepass").translate(_SHAPE)
    if b" a a a" in shape or shape.startswith(b"a a a"):
        folded = _SPACED.sub(lambda match: _SPACED_GAPS.sub("", match.group()), folded)
    # Every blank but the space is unprintable: most texts pass the first test alone.
    if ("  " in folded or not folded.isprintable()) and any(
        blank in folded for blank in _ODD_BLANKS
    ):
        folded = _BLANKS.sub(" ", folded)
    return Normalised(folded, look_alikes, invisible)


def _rewrite_words(text: str, seeds: re.Pattern[str], table: dict[int, str]) -> str:
    """``text`` with ``table`` applied to every word that contains a ``seeds`` match.

    Seeds are rare in ordinary text, so words are found by walking out from each
    seed rather than by tokenising the whole text.
    """
    pieces: list[str] = []
    done = 0
    for seed in seeds.finditer(text):
        if seed.start() < done:
            continue
        start, end = seed.start(), seed.end()
        while start > done and _in_word(text[start - 1]):
            start -= 1
        while end < len(text) and _in_word(text[end]):
            end += 1
        pieces.append(text[done:start])
        pieces.append(text[start:end].translate(table))
        done = end
    pieces.append(text[done:])
    return "".join(pieces)


def _in_word(char: str) -> bool:
    return char in _TOKEN_CHARS or char.isalpha()
