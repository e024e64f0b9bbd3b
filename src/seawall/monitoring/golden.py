"""Golden answers: how close each model's answers stay to answers known to be good.

A golden set is a JSONL file, one object per line::

    {"model": "gpt-4o-mini", "prompt": "What is the capital of France?",
     "answer": "The capital of France is Paris.", "system": "optional system prompt"}

Two sources measure the similarity (cosine of the bundled MiniLM embeddings, 0 to 1):

* ``schedule``: every ``golden_interval_seconds`` each golden prompt is sent to its
  model through the gateway (routing, fallbacks and records as for any request;
  recorded with the feature tag ``golden-eval``, never answered from the cache);
* ``live``: a sample (``golden_live_sample``) of live requests whose only user message
  is a golden prompt of the same model has its answer compared too.

Both feed ``seawall_golden_similarity`` (histogram per model and source); each
scheduled run also sets ``seawall_golden_drift`` per model: 1 minus the run's mean
similarity. A model update or a prompt change that alters the answers shows as drift
before users complain. Embedding runs on one thread of its own, off the event loop;
live comparisons beyond a few waiting are dropped, never queued without bound.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import numpy as np
import orjson
from prometheus_client import Gauge, Histogram

from seawall.cache.embedder import LocalEmbedder, Vector
from seawall.monitoring.answer import Answer, answer_of
from seawall.pipeline.context import Identity, RequestContext, new_request_id
from seawall.pipeline.pipeline import Handler
from seawall.providers.base import ChatResult
from seawall.stores.records import RequestRecord

logger = logging.getLogger(__name__)

FEATURE = "golden-eval"
# Live comparisons waiting for the embedder; more are dropped.
_MAX_PENDING = 4

SIMILARITY = Histogram(
    "seawall_golden_similarity",
    "Cosine similarity of answers to the golden answer for the same prompt and model.",
    ["gen_ai_request_model", "seawall_golden_source"],
    buckets=(0.3, 0.4, 0.5, 0.6, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95, 0.98, 1.0),
)
DRIFT = Gauge(
    "seawall_golden_drift",
    "1 - the mean similarity to the golden answers in the last scheduled evaluation.",
    ["gen_ai_request_model"],
    multiprocess_mode="mostrecent",
)


class GoldenSetError(ValueError):
    """The golden set file is missing or malformed; the message names the line."""


@dataclass(frozen=True, slots=True)
class GoldenItem:
    """A prompt to a model, and an answer known to be good."""

    model: str
    prompt: str
    answer: str
    system: str | None = None

    def request(self) -> dict[str, Any]:
        """The chat request that asks this item's prompt."""
        messages = [{"role": "system", "content": self.system}] if self.system else []
        messages.append({"role": "user", "content": self.prompt})
        return {"model": self.model, "messages": messages, "temperature": 0}


def load_golden_set(path: Path, models: Sequence[str]) -> list[GoldenItem]:
    """The items of a golden set file; ``GoldenSetError`` names the first bad line."""
    try:
        lines = path.read_bytes().splitlines()
    except OSError as exc:
        raise GoldenSetError(f"cannot read the golden set {path}: {exc.strerror}") from None
    items = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        where = f"{path}:{number}"
        try:
            raw = orjson.loads(line)
        except orjson.JSONDecodeError:
            raise GoldenSetError(f"{where}: not a JSON object") from None
        if not isinstance(raw, dict) or not all(
            isinstance(raw.get(name), str) and raw[name].strip()
            for name in ("model", "prompt", "answer")
        ):
            raise GoldenSetError(f"{where}: needs non-empty strings model, prompt and answer")
        if raw["model"] not in models:
            raise GoldenSetError(f"{where}: model {raw['model']!r} is not configured")
        system = raw.get("system")
        items.append(
            GoldenItem(raw["model"], raw["prompt"], raw["answer"], system if system else None)
        )
    return items


class GoldenAnswers:
    """The golden set, with its answers' vectors, compared on the embedder's thread."""

    def __init__(self, items: Sequence[GoldenItem], embedder: LocalEmbedder) -> None:
        self.items = tuple(items)
        self._embedder = embedder
        self._vectors: dict[GoldenItem, Vector] = {}
        # Live prompts are matched by model and exact prompt (no system prompt).
        self._by_prompt = {(item.model, item.prompt.strip()): item for item in items}

    def match(self, ctx: RequestContext) -> GoldenItem | None:
        """The golden item whose prompt is this request's only message, if any."""
        if ctx.public_model is None:
            return None
        messages = ctx.body.get("messages")
        if not isinstance(messages, list) or len(messages) != 1:
            return None
        message = messages[0]
        if not isinstance(message, dict) or message.get("role") != "user":
            return None
        content = message.get("content")
        if not isinstance(content, str):
            return None
        return self._by_prompt.get((ctx.public_model.name, content.strip()))

    async def similarity(self, item: GoldenItem, text: str) -> float:
        """Cosine similarity of ``text`` to ``item``'s golden answer, 0 to 1."""
        golden = self._vectors.get(item)
        if golden is None:
            golden = self._vectors[item] = await self._embedder.embed(item.answer)
        vector = await self._embedder.embed(text)
        return max(0.0, min(1.0, float(np.dot(golden, vector))))


class GoldenLiveSampler:
    """An observer comparing a sample of live answers to golden prompts with their golden answer."""

    def __init__(
        self,
        golden: GoldenAnswers,
        sample: float,
        chance: Callable[[], float] = random.random,
    ) -> None:
        self._golden = golden
        self._sample = sample
        self._chance = chance
        self._pending: set[asyncio.Task[None]] = set()

    def finished(self, ctx: RequestContext, record: RequestRecord, answer: Answer | None) -> None:
        """Schedule a comparison for a sampled answer to a golden prompt."""
        if answer is None or not answer.text or record.status_code >= 400:
            return
        if ctx.identity.feature == FEATURE or ctx.cache in ("hit-exact", "hit-semantic"):
            return
        item = self._golden.match(ctx)
        if item is None or len(self._pending) >= _MAX_PENDING or self._chance() >= self._sample:
            return
        task = asyncio.get_running_loop().create_task(self._compare(item, answer.text))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _compare(self, item: GoldenItem, text: str) -> None:
        try:
            score = await self._golden.similarity(item, text)
        except Exception:
            logger.exception("comparing a live answer with its golden answer failed")
            return
        SIMILARITY.labels(item.model, "live").observe(score)

    async def aclose(self) -> None:
        """Wait for the comparisons under way."""
        if self._pending:
            await asyncio.gather(*self._pending, return_exceptions=True)


class GoldenEvaluator:
    """Sends every golden prompt through ``answer`` on a schedule and records the similarity.

    Only one process per data directory evaluates (an exclusive lock file), so several
    workers of one instance do not multiply the cost; each instance evaluates its own.
    """

    def __init__(
        self, golden: GoldenAnswers, answer: Handler, interval: float, lock_path: Path
    ) -> None:
        self._golden = golden
        self._answer = answer
        self._interval = interval
        self._lock_path = lock_path
        self._lock: IO[bytes] | None = None
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Evaluate now and then every interval, if this process holds the lock."""
        if not self._take_lock():
            return
        self._task = asyncio.get_running_loop().create_task(self._run(), name="golden-eval")

    async def evaluate(self) -> dict[str, float]:
        """One evaluation of every item; the mean similarity per model."""
        scores: dict[str, list[float]] = {}
        for item in self._golden.items:
            ctx = _eval_context(item)
            try:
                reply = await self._answer(ctx)
            except Exception as exc:
                # Failures are on the request's record and in the error metrics already.
                logger.warning("golden prompt of %s failed: %s", item.model, exc)
                continue
            answer = answer_of(reply.body) if isinstance(reply, ChatResult) else None
            if answer is None or not answer.text:
                continue
            score = await self._golden.similarity(item, answer.text)
            SIMILARITY.labels(item.model, "schedule").observe(score)
            scores.setdefault(item.model, []).append(score)
        means = {model: sum(values) / len(values) for model, values in scores.items()}
        for model, mean in means.items():
            DRIFT.labels(model).set(1.0 - mean)
        return means

    async def aclose(self) -> None:
        """Stop the schedule and release the lock."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._lock is not None:
            self._lock.close()
            self._lock = None

    async def _run(self) -> None:
        while True:
            try:
                await self.evaluate()
            except Exception:
                logger.exception("the golden set evaluation failed")
            await asyncio.sleep(self._interval)

    def _take_lock(self) -> bool:
        self._lock_path.parent.mkdir(parents=True, exist_ok=True)
        lock = self._lock_path.open("ab")
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            lock.close()
            return False
        self._lock = lock
        return True


def _eval_context(item: GoldenItem) -> RequestContext:
    """A request the gateway makes itself to evaluate ``item`` (no key, no cache)."""
    ctx = RequestContext(
        request_id=new_request_id(),
        protocol="openai",
        operation="chat",
        raw_body=b"",
        identity=Identity(feature=FEATURE),
        cache_control="no-store",
    )
    ctx.body = item.request()
    return ctx
