"""Off-topic answers: flag (never block) an answer unrelated to the question asked.

A hijacked model (a prompt injection hidden in a document, say) often answers
something else entirely: a poem, an advert, another question's answer. The check
compares the bundled MiniLM sentence vectors of the question and the answer once
the answer has ended; a cosine similarity below the threshold raises rule
``output.off_topic``. It only flags: a wrong flag costs a line in the detection
log, a wrong block would cost the user an answer.

``OFF_TOPIC_THRESHOLD`` (0.25) was chosen on the labelled pairs of
``tests/guard/test_off_topic.py`` before its "fresh" set was written. On the
calibration set, on-topic answers scored 0.34 to 0.95 (none flagged); other
questions' answers and hijacked answers at most 0.23 (all 63 flagged). On the
fresh set: no on-topic answer flagged (lowest 0.35), 9 of 10 unrelated answers
flagged (the miss scored 0.26).

Answers of fewer than ``MIN_WORDS`` words ("Yes.", "42") carry too little meaning
for a sentence vector and are not judged. Refusals score low against most
questions and may be flagged; the refusal rate is tracked apart (monitoring).
The embedder reads at most 256 tokens: the question's and answer's first
``MAX_CHARS`` characters are enough for it.
"""

from __future__ import annotations

from seawall.cache.embedder import LocalEmbedder
from seawall.guard.detection import Detection

RULE = "output.off_topic"
OFF_TOPIC_THRESHOLD = 0.25
MIN_WORDS = 5
MAX_CHARS = 2000


class OffTopicCheck:
    """Judges finished answers against their questions, embedding off the event loop."""

    def __init__(self, embedder: LocalEmbedder, threshold: float = OFF_TOPIC_THRESHOLD) -> None:
        if not 0 < threshold < 1:
            raise ValueError("the off-topic threshold must be between 0 and 1")
        self._embedder = embedder
        self._threshold = threshold

    async def similarity(self, question: str, answer: str) -> float:
        """The cosine similarity of the question's and the answer's sentence vectors."""
        asked = await self._embedder.embed(question[:MAX_CHARS])
        answered = await self._embedder.embed(answer[:MAX_CHARS])
        return float(asked @ answered)

    async def check(self, question: str, answer: str) -> Detection | None:
        """The detection if ``answer`` is unrelated to ``question``; None if not or not judged.

        The score is 0.5 at the threshold and rises to 1 as the similarity falls to 0.
        """
        if len(answer.split()) < MIN_WORDS or not question.strip():
            return None
        similarity = await self.similarity(question, answer)
        if similarity >= self._threshold:
            return None
        shortfall = min(1.0, (self._threshold - similarity) / self._threshold)
        return Detection(
            RULE,
            round(0.5 + 0.5 * shortfall, 3),
            f"the answer's similarity to the question is {similarity:.2f} "
            f"(below {self._threshold:.2f})",
        )
