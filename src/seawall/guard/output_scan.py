"""The output guard: one answer, streamed or whole, checked before the client sees it.

Three checks read the answer as it arrives:

- the canary (``canary``): an answer that repeats the marker planted in the system
  prompt is cut off at once;
- leakage (``leakage``): an answer that repeats a share of the system prompt's
  8-word phrases at or above the threshold is cut off;
- redaction (``monitoring/redact``): secrets always, and the personal data the
  policy names, are replaced by ``[REDACTED:<kind>]`` before release.

Once an answer is cut off (``blocked``) nothing more of it is released.

**The hold-back.** A chunk boundary may fall inside a card number or a key, so
the last characters are kept back until what follows them is known. At most
``hold_back`` characters (``N``, 256 by default) are held: when more are pending,
the text is cut ``N - N/4`` characters before its end (the *lookahead*) and the
part before the cut is released, redacted; each cut scans only the pending text,
so the work is linear in the answer (about 4 scans of each character). A cut never
falls inside a stretch of text one pattern took (``redact.stretches``): if one
spans it, the cut moves to the stretch's end. Everything before a cut is then
read exactly as the whole answer would be, as long as each pattern is recognised
within its first ``lookahead - 32`` characters (160 by default; the 32 cover the
patterns' look-aheads): e-mail addresses (local part at most 64), cards, IBANs,
phone numbers, key prefixes, a JWT's header and a private key's BEGIN line all
are. A JWT whose header is longer is missed: raise ``hold_back`` for such tokens.
One approximation remains: a run of digit groups longer than the lookahead (too
many digits for a phone number) is cut inside, and what follows the cut is read
afresh; in our tests that redacted a few characters more than the whole answer's
reading, never fewer.

**Unbounded secrets.** A private key, a JWT, a bearer token or an API key may run
on past any hold-back. When one spans the cut, its label is released at once and
what follows is dropped while it goes on: a private key to its END line (or the
end of the answer), a token while its characters continue (``redact.RUNS_ON``).
The hold-back stays bounded and the result is the whole answer's redaction.

A canary is caught before any of it is released when its disguise (spaces,
punctuation) keeps it within the lookahead. Leakage is known only once a share of
the prompt has been repeated: what was released before that stays released.

A non-streamed answer is ``feed(answer)`` then ``finish()`` (``scan_all``).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Protocol

from seawall.guard.canary import CanaryWatch
from seawall.guard.detection import Detection
from seawall.guard.leakage import LeakWatch, PromptShingles
from seawall.monitoring.redact import (
    PII_KINDS,
    PRIVATE_KEY_END,
    RUNS_ON,
    SECRET_KINDS,
    Stretch,
    label,
    stretches,
)

DEFAULT_HOLD_BACK = 256
# The lookahead (3/4 of the hold-back) must exceed the longest pattern prefix
# (a 64-character local part and "@a.bc") and CLOSED_MARGIN.
MIN_HOLD_BACK = 160
# A stretch ending this far before the pending text's end is complete: no pattern
# reads more than this past the end of its match.
CLOSED_MARGIN = 32
# Characters before the pending text kept for the patterns' look-behinds.
CONTEXT_CHARS = 32


@dataclass(frozen=True, slots=True)
class OutputPolicy:
    """What the output guard checks on a route's answers.

    Secrets (API keys, bearer tokens, JWTs, private keys) are always redacted;
    ``pii`` adds personal data kinds (email, phone, card, iban). ``canary`` says
    whether the route plants a canary in its system prompt. ``leakage_threshold``
    is the share of the system prompt's phrases an answer may not repeat (None:
    not checked). ``hold_back`` bounds the characters held back from a stream.
    ``off_topic_below`` flags answers less similar than this to the question (0:
    off; ``off_topic.OFF_TOPIC_THRESHOLD`` is the calibrated value).
    """

    pii: frozenset[str] = frozenset()
    canary: bool = False
    leakage_threshold: float | None = 0.5
    hold_back: int = DEFAULT_HOLD_BACK
    off_topic_below: float = 0.0

    def __post_init__(self) -> None:
        unknown = self.pii - set(PII_KINDS)
        if unknown:
            raise ValueError(f"pii names unknown kinds {sorted(unknown)}; known: {PII_KINDS}")
        if self.leakage_threshold is not None and not 0 < self.leakage_threshold <= 1:
            raise ValueError("leakage_threshold must be more than 0 and at most 1")
        if self.hold_back < MIN_HOLD_BACK:
            raise ValueError(f"hold_back must be at least {MIN_HOLD_BACK} characters")
        if not 0 <= self.off_topic_below < 1:
            raise ValueError("off_topic_below must be at least 0 and less than 1")

    @property
    def kinds(self) -> frozenset[str]:
        """Every kind redacted: the secrets and the chosen personal data."""
        return frozenset(SECRET_KINDS) | self.pii


@dataclass(frozen=True, slots=True)
class ScanStep:
    """What one step of the scan lets through.

    ``text`` may be sent to the client now (already redacted); ``detections`` are
    this step's findings; ``blocked`` is true once the answer is cut off, and then
    stays true with nothing more released.
    """

    text: str
    detections: list[Detection] = field(default_factory=list)
    blocked: bool = False


def rule_for(kind: str) -> str:
    """The rule id of a redaction: ``output.secret.<kind>`` or ``output.pii.<kind>``."""
    return f"output.{'secret' if kind in SECRET_KINDS else 'pii'}.{kind}"


class _Swallow(Protocol):
    """Drops the rest of a secret whose label was released; says where the secret ends."""

    def feed(self, text: str) -> str | None:
        """What follows the secret in ``text``, or None while the secret goes on."""

    def finish(self) -> str:
        """Characters held back that turned out not to belong to the secret."""

    @property
    def tail(self) -> str:
        """The last characters of the secret: context for the patterns' look-behinds."""


class _UntilEndLine:
    """A private key: everything up to its END line; the whole rest if none comes."""

    def __init__(self, seen: str) -> None:
        # Long enough to hold an END line cut by a chunk boundary.
        self._carry = seen[-CONTEXT_CHARS * 2 :]

    def feed(self, text: str) -> str | None:
        window = self._carry + text
        end = PRIVATE_KEY_END.search(window)
        if end is None:
            self._carry = window[-CONTEXT_CHARS * 2 :]
            return None
        self._carry = window[: end.end()]
        return window[end.end() :]

    def finish(self) -> str:
        return ""

    @property
    def tail(self) -> str:
        return self._carry[-CONTEXT_CHARS:]


class _WhileToken:
    """A token: its characters while they continue (a final dot waits for the next chunk)."""

    def __init__(self, kind: str, seen: str) -> None:
        self._run_on = RUNS_ON[kind]
        # The dots already in the token (an e-mail's count from its domain on).
        self._joins = seen.rpartition("@")[2].count(".")
        self._padded = bool(self._run_on.padding) and seen.endswith(self._run_on.padding)
        self._dot = ""  # a dot that may join more of the token or end a sentence
        self._tail = seen[-CONTEXT_CHARS:]

    def feed(self, text: str) -> str | None:
        window = self._dot + text
        self._dot = ""
        end = self._padding(window, 0) if self._padded else self._run(window)
        self._tail = (self._tail + window[:end])[-CONTEXT_CHARS:]
        return None if end == len(window) - len(self._dot) else window[end:]

    def _run(self, window: str) -> int:
        """Where the token ends in ``window`` (its length if it may go on)."""
        run_on = self._run_on
        end = 0
        while True:
            match = run_on.run.match(window, end)
            end = match.end() if match else end
            if end == len(window):
                return end
            if run_on.padding and window[end] == run_on.padding:
                self._padded = True
                return self._padding(window, end)
            if window[end] != "." or self._joins >= run_on.joins:
                return end
            if end + 1 == len(window):
                self._dot = "."
                return end
            after = run_on.run.match(window, end + 1)
            if after is None or after.end() == end + 1:
                return end
            self._joins += 1
            end += 1

    def _padding(self, window: str, end: int) -> int:
        padding = self._run_on.padding
        while end < len(window) and window[end] == padding:
            end += 1
        return end

    def finish(self) -> str:
        return self._dot

    @property
    def tail(self) -> str:
        return self._tail


def _swallow_for(stretch: Stretch, text: str) -> _Swallow | None:
    """How to drop the rest of a secret at the end of ``text``; None if it is complete.

    A private key is complete with its END line; a token when a character that
    cannot continue it follows (a final dot may still join more of it).
    """
    assert stretch.finding is not None
    kind = stretch.finding.kind
    seen = text[stretch.start : stretch.end]
    if kind == "private_key":
        return None if PRIVATE_KEY_END.search(seen) else _UntilEndLine(seen)
    if kind in RUNS_ON and text[stretch.end :] in ("", "."):
        return _WhileToken(kind, seen)
    return None


class OutputScanner:
    """Checks one answer, chunk by chunk, and says what of it may be released.

    ``system_prompt`` (or its ``PromptShingles``, built once per prompt version)
    enables the leakage check; ``canary`` is the marker planted in this request's
    system prompt (required when the policy plants one).
    """

    def __init__(
        self,
        policy: OutputPolicy,
        system_prompt: str | PromptShingles | None = None,
        canary: str | None = None,
    ) -> None:
        if policy.canary and canary is None:
            raise ValueError("the policy plants a canary: pass the one planted in this request")
        self._pii = policy.pii
        self._hold_back = policy.hold_back
        self._lookahead = policy.hold_back - policy.hold_back // 4
        self._canary = CanaryWatch(canary) if canary is not None else None
        self._leak: LeakWatch | None = None
        if system_prompt is not None and policy.leakage_threshold is not None:
            shingles = (
                system_prompt
                if isinstance(system_prompt, PromptShingles)
                else PromptShingles.of(system_prompt)
            )
            if shingles.checked:
                self._leak = LeakWatch(shingles, policy.leakage_threshold)
        # Most routes watch for neither: each chunk then costs a few string operations.
        self._watching = self._canary is not None or self._leak is not None
        self._context = ""  # the characters just before the pending text
        self._pending = ""  # read but not released
        self._swallow: _Swallow | None = None
        self._finished = False
        self.blocked = False

    @property
    def held(self) -> int:
        """How many characters are held back now."""
        return len(self._pending)

    def feed(self, text: str) -> ScanStep:
        """Read the next chunk of the answer; release what is safe to send."""
        if self._finished:
            raise RuntimeError("the answer was finished: start a new scanner")
        if self.blocked:
            return ScanStep("", [], True)
        detections: list[Detection] = []
        if self._watching:
            detections = self._watch(text, final=False)
            if self.blocked:
                return ScanStep("", detections, True)
        if self._swallow is None:
            self._pending += text
        else:
            self._take(text)
        if len(self._pending) <= self._hold_back:
            return ScanStep("", detections, False)
        out: list[str] = []
        self._release(len(self._pending) - self._lookahead, out, detections)
        return ScanStep("".join(out), detections, False)

    def finish(self) -> ScanStep:
        """The answer has ended: release the rest."""
        if self._finished:
            raise RuntimeError("the answer was finished already")
        self._finished = True
        if self.blocked:
            return ScanStep("", [], True)
        detections = self._watch("", final=True)
        if self.blocked:
            return ScanStep("", detections, True)
        if self._swallow is not None:
            # A private key without its END line is redacted to the end, as in a whole
            # text; a token gives back a final dot that turned out to end a sentence.
            self._context, self._pending = self._swallow.tail, self._swallow.finish()
            self._swallow = None
        out: list[str] = []
        self._release(len(self._pending), out, detections)
        return ScanStep("".join(out), detections, False)

    def scan_all(self, answer: str) -> ScanStep:
        """A whole (non-streamed) answer: ``feed`` then ``finish`` as one step."""
        first = self.feed(answer)
        if first.blocked:
            return first
        last = self.finish()
        if not first.text and not first.detections:
            return last  # an answer shorter than the hold-back: all of it comes out here
        return ScanStep(first.text + last.text, first.detections + last.detections, last.blocked)

    def _watch(self, text: str, *, final: bool) -> list[Detection]:
        found: list[Detection] = []
        if self._canary is not None and text:
            hit = self._canary.feed(text)
            if hit is not None:
                found.append(hit)
        if self._leak is not None:
            leak = self._leak.finish() if final else self._leak.feed(text)
            if leak is not None:
                found.append(leak)
        if found:
            self.blocked = True
            self._pending = ""
        return found

    def _take(self, text: str) -> None:
        """Add ``text`` to the pending text, less the rest of a secret being dropped."""
        if self._swallow is not None:
            rest = self._swallow.feed(text)
            if rest is None:
                return
            self._context, self._swallow = self._swallow.tail, None
            text = rest
        self._pending += text

    def _release(self, cut: int, out: list[str], detections: list[Detection]) -> None:
        """Release the pending text up to ``cut`` (or a stretch's end past it), redacted."""
        text = self._context + self._pending
        base = len(self._context)
        end = base + cut
        found = stretches(text, base)
        swallow: _Swallow | None = None
        for stretch in found:
            if stretch.start >= end:
                break
            if stretch.end <= end:
                continue
            if stretch.end <= len(text) - CLOSED_MARGIN:
                end = stretch.end  # complete: released whole
            elif stretch.finding is not None and self._redacts(stretch.finding.kind):
                end = stretch.end  # a secret that may go on: its label now, the rest dropped
                swallow = _swallow_for(stretch, text)
                if swallow is not None:
                    break
            else:
                # Still growing and not redacted (a run of digit groups, say): moving
                # the cut to its end would release text too recent to be recognised.
                break
        out.append(self._redacted(text, base, end, found, detections))
        self._context = text[max(0, end - CONTEXT_CHARS) : end]
        self._pending = text[end:]
        if swallow is not None:
            self._swallow, pending = swallow, self._pending
            self._pending = ""
            self._take(pending)

    def _redacts(self, kind: str) -> bool:
        """Whether the policy redacts ``kind``: every secret, and the chosen personal data."""
        return kind in SECRET_KINDS or kind in self._pii

    def _redacted(
        self,
        text: str,
        start: int,
        end: int,
        found: Iterable[Stretch],
        detections: list[Detection],
    ) -> str:
        if not found:
            return text[start:end]
        parts: list[str] = []
        counts: Counter[str] = Counter()
        done = start
        for stretch in found:
            if stretch.end > end:
                continue
            finding = stretch.finding
            if finding is None or not self._redacts(finding.kind):
                continue
            parts.append(text[done : finding.start])
            parts.append(label(finding.kind))
            counts[finding.kind] += 1
            done = finding.end
        parts.append(text[done:end])
        for kind, count in counts.items():
            detections.append(Detection(rule_for(kind), 1.0, f"{count} {kind} redacted"))
        return "".join(parts)
