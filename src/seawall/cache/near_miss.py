"""The check after a semantic match: do the two messages differ where it matters?

Sentence embeddings place "Convert 5 miles to km" next to "Convert 8 miles to km",
"Why is my code working?" next to "Why is my code not working?", and "capital of
Austria" next to "capital of Australia". A similarity threshold cannot tell them
apart, so a match is accepted only when the two messages have:

* the same numbers, as multisets: digits and decimals, number words (five is 5),
  fractions and ordinals (third, fifth); "one" alone reads as "a" and is not counted;
* the same negations ("not", "never", "without", "n't"…), present in both or neither;
* no opposites across them: one says "increase" and the other "decrease", "show" and
  "hide", "ascending" and "descending" (a list of common pairs), or one word is the
  other with a negating prefix ("lock"/"unlock", "healthy"/"unhealthy",
  "like"/"dislike", "encrypt"/"decrypt");
* the same names: every capitalised word that does not start a sentence, acronym or
  mixed-case word (iPhone, PostgreSQL) of one message appears in the other, in any case;
* no swapped word: when the messages are the same but for words swapped in place (up
  to three words at a time, nothing added or dropped), every swapped word must be a function
  word ("to"/"for") or a spelling of the same word ("kilometres"/"kilometers").
  Otherwise the swap is what the question is about: "inhale"/"exhale",
  "iron"/"copper", "tighten a wobbly"/"loosen a stiff", which no list of opposites
  covers and which embeddings place side by side;
* the same direction: when one message is the other's words reordered, the word after
  each "to", "into", "from", "than", "but"… must stay the same ("merge main into
  feature" is not "merge feature into main").

It is deliberately strict: a rejected paraphrase costs one call upstream, an accepted
near-miss returns a wrong answer.
"""

from __future__ import annotations

import re
from collections import Counter
from difflib import SequenceMatcher


def _words(text: str) -> tuple[str, ...]:
    """The whitespace-separated words of ``text``."""
    return tuple(text.split())


_TOKEN = re.compile(r"[A-Za-z][A-Za-z'\u2019]*|\d+(?:[.,]\d+)*")
_NUMBER_WORDS = {
    word: str(value)
    for value, word in enumerate(
        _words(
            """zero one two three four five six seven eight nine ten eleven twelve thirteen
            fourteen fifteen sixteen seventeen eighteen nineteen twenty"""
        )
    )
    if word != "one"  # "one day", "one egg": an article more often than a count
} | {
    "thirty": "30",
    "forty": "40",
    "fifty": "50",
    "sixty": "60",
    "seventy": "70",
    "eighty": "80",
    "ninety": "90",
    "hundred": "100",
    "thousand": "1000",
    "million": "1000000",
    "billion": "1000000000",
    "dozen": "12",
    "twice": "x2",
    "double": "x2",
    "triple": "x3",
    "half": "1/2",
    "third": "1/3",
    "quarter": "1/4",
    "fifth": "1/5",
    "sixth": "1/6",
    "seventh": "1/7",
    "eighth": "1/8",
    "ninth": "1/9",
    "tenth": "1/10",
    "second": "#2",
}
_NEGATIONS = frozenset(
    _words(
        """not no never none nobody nothing neither nor without cannot cant dont doesnt
        didnt isnt arent wasnt werent wont wouldnt shouldnt couldnt mustnt hasnt havent
        hadnt except excluding unless non avoid ban banned abolish abolished"""
    )
)
# Common opposites, one pair per two words.
_PAIRS = _words(
    """increase decrease increasing decreasing raise lower more less most least
    higher lower maximum minimum maximize minimize max min above below before after
    over under up down on off in out enable disable enabled disabled allow forbid
    allowed forbidden permitted prohibited legal illegal include exclude including excluding
    add remove adding removing show hide showing hiding accept decline accept reject
    like dislike love hate open close opening closing start stop begin end win lose
    gain loss profit loss import export buy sell buying selling rise fall
    ascending descending asc desc increasing declining hot cold warm cool fast slow
    faster slower cheap expensive cheaper pricier cheapest priciest large small
    larger smaller largest smallest big small bigger smaller biggest smallest
    long short longer shorter longest shortest heavy light heavier lighter
    soft hard softer harder easy hard easier harder good bad better worse best worst
    pros cons advantages disadvantages benefits risks strengths weaknesses
    inside outside input output north south east west left right
    positive negative plus minus odd even dead alive true false always never
    active passive static dynamic statically dynamically push pull
    send receive sent received upload download uploading downloading
    early late earlier later earliest latest first last old new older newer
    oldest newest young old younger older youngest oldest rich poor wet dry
    full empty light dark day night summer winter spring autumn male female
    join leave connect disconnect mount unmount attach detach encode decode
    serialize deserialize compress decompress encrypt decrypt zip unzip
    install uninstall follow unfollow subscribe unsubscribe mute unmute lock unlock
    high low gain lose gaining losing gains losses increases decreases for against
    allow block allowed blocked start end starting ending beginning end with against"""
)
_OPPOSITES: dict[str, set[str]] = {}
for _a, _b in zip(_PAIRS[::2], _PAIRS[1::2], strict=True):
    _OPPOSITES.setdefault(_a, set()).add(_b)
    _OPPOSITES.setdefault(_b, set()).add(_a)
_NEGATING_PREFIXES = (
    *("un", "in", "im", "il", "ir", "dis", "non", "de", "anti", "mis", "en", "ex", "ac"),
    *("over", "under", "up", "down", "out", "pre", "post"),
)
# Words whose object gives a question its direction ("from X to Y", "A but not B").
_DIRECTIONS = frozenset(_words("to into from than over vs versus but before after"))
# Words a swap of may leave the question the same.
_FUNCTION_WORDS = frozenset(
    _words(
        """a an the to for of in on at by from into onto with about as is are was were be
        been do does did can could would should will shall may might must i me my you your
        we our it its this that these those there here what whats which who how when where
        why please some any"""
    )
)
# Capitalised words that are not names.
_NOT_NAMES = frozenset({"i", "im", "ive", "id", "ill", "ok", "okay"})


def same_meaning_parts(first: str, second: str) -> bool:
    """Whether ``first`` and ``second`` agree on numbers, negations, opposites and names."""
    a, b = _Parts(first), _Parts(second)
    return (
        a.numbers == b.numbers
        and a.negations == b.negations
        and not _opposed(a.words, b.words)
        and a.names <= b.words
        and b.names <= a.words
        and not _swapped(a.sequence, b.sequence)
        and not _reordered(a.sequence, b.sequence)
    )


def _reordered(first: list[str], second: list[str]) -> bool:
    """Whether the same words trade places around a word of direction.

    "convert Celsius to Fahrenheit" and "convert Fahrenheit to Celsius" hold the same
    words; what follows "to" tells them apart. Only pure reorderings are judged
    ("explain recursion, briefly" and "briefly, explain recursion" have no such word).
    """
    if Counter(first) != Counter(second) or first == second:
        return False
    return _directed(first) != _directed(second)


def _directed(sequence: list[str]) -> Counter[tuple[str, str]]:
    """Each word of direction with the content word that follows it."""
    found: Counter[tuple[str, str]] = Counter()
    for index, word in enumerate(sequence):
        if word in _DIRECTIONS:
            after = next((w for w in sequence[index + 1 :] if w not in _FUNCTION_WORDS), "")
            found[(word, after)] += 1
    return found


def _swapped(first: list[str], second: list[str]) -> bool:
    """Whether the two differ only by swaps of up to three words in place, one of content."""
    matcher = SequenceMatcher(a=first, b=second, autojunk=False)
    changes = [op for op in matcher.get_opcodes() if op[0] != "equal"]
    if not changes or any(
        tag != "replace" or i2 - i1 > 3 or j2 - j1 > 3 for tag, i1, i2, j1, j2 in changes
    ):
        return False
    return any(_content_swap(first[i1:i2], second[j1:j2]) for _, i1, i2, j1, j2 in changes)


def _content_swap(old: list[str], new: list[str]) -> bool:
    """Whether replacing ``old`` by ``new`` changes a content word (not just its spelling)."""
    old = [w for w in old if w not in _FUNCTION_WORDS]
    new = [w for w in new if w not in _FUNCTION_WORDS]
    if not old or not new:  # words added or dropped, not swapped
        return False
    return not (
        len(old) == len(new) and all(_spelling(x, y) for x, y in zip(old, new, strict=True))
    )


def _opposed(first: set[str], second: set[str]) -> bool:
    """Whether a word of one message is the opposite of a word only the other has."""
    for word in first - second:
        if _OPPOSITES.get(word, set()) & (second - first):
            return True
        if any(_prefixed(word, other) or _prefixed(other, word) for other in second - first):
            return True
    return False


def _prefixed(word: str, other: str) -> bool:
    """Whether the two are one stem under opposing prefixes ("unlock"/"lock",
    "encrypt"/"decrypt", "inhale"/"exhale", "overweight"/"underweight")."""
    for prefix in _NEGATING_PREFIXES:
        if not word.startswith(prefix):
            continue
        stem = word[len(prefix) :]
        if len(stem) < 4:
            continue
        if other == stem or any(other == p + stem for p in _NEGATING_PREFIXES if p != prefix):
            return True
    return False


def _spelling(first: str, second: str) -> bool:
    """Whether two words are spellings of one ("kilometres"/"kilometers", "colour"/"color")
    rather than two words ("ethanol"/"methanol"): same start, nearly the same letters."""
    return first[:3] == second[:3] and SequenceMatcher(a=first, b=second).ratio() >= 0.8


class _Parts:
    """The tokens of one message that a paraphrase must keep."""

    __slots__ = ("names", "negations", "numbers", "sequence", "words")

    def __init__(self, text: str) -> None:
        tokens = _TOKEN.findall(text)
        self.sequence = [
            token.replace(",", "") if token[0].isdigit() else _normal(token) for token in tokens
        ]
        self.words: set[str] = set(self.sequence)
        self.numbers: Counter[str] = Counter()
        self.negations: set[str] = set()
        self.names: set[str] = set()
        sentence_start = True
        for token, follows in zip(tokens, _followers(text, tokens), strict=True):
            word = _normal(token)
            if token[0].isdigit():
                self.numbers[token.replace(",", "")] += 1
            elif word in _NUMBER_WORDS:
                self.numbers[_NUMBER_WORDS[word]] += 1
            if word in _NEGATIONS:
                self.negations.add("not")
            if _is_name(token, sentence_start) and word not in _NOT_NAMES:
                self.names.add(word)
            sentence_start = follows


def _normal(token: str) -> str:
    """Lower case, apostrophes dropped ("don't" is "dont"), a possessive 's removed."""
    word = token.lower().replace("\u2019", "'")
    if word.endswith("'s"):
        word = word[:-2]
    return word.replace("'", "")


def _is_name(token: str, sentence_start: bool) -> bool:
    if not token[0].isalpha():
        return False
    inner_capital = any(c.isupper() for c in token[1:])
    if inner_capital:  # iPhone, PostgreSQL, NASA
        return True
    return token[0].isupper() and not sentence_start


def _followers(text: str, tokens: list[str]) -> list[bool]:
    """For each token, whether a new sentence starts after it (., ?, ! or : follows)."""
    result: list[bool] = []
    position = 0
    for token in tokens:
        start = text.index(token, position)
        end = start + len(token)
        next_token = _TOKEN.search(text, end)
        gap = text[end : next_token.start() if next_token else len(text)]
        result.append(any(mark in gap for mark in ".?!:\n"))
        position = end
    return result
