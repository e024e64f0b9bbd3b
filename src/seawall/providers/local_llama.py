"""The bundled local chat model (a GGUF file run by llama-cpp-python).

Answers OpenAI chat requests with no network. ``llama_cpp`` is imported only
inside functions, so importing Seawall never needs it. A llama.cpp context is
not thread-safe, so each deployment keeps a pool of up to ``max_concurrency``
model instances, each serving one request at a time in a dedicated thread.
Tokens travel from that thread to the event loop through
``loop.call_soon_threadsafe``; a cancel flag checked between tokens stops
generation as soon as the client goes away.
"""

from __future__ import annotations

import asyncio
import codecs
import contextlib
import random
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from seawall.config.schema import Deployment
from seawall.errors import (
    InvalidRequest,
    SeawallError,
    UpstreamError,
    UpstreamUnavailable,
)
from seawall.providers.base import ChatResult, ChatStream, EmbeddingResult, JSONObject, Usage
from seawall.providers.local_chat_request import ChatRequest, parse_chat_request
from seawall.providers.model_files import SMOLLM2_GGUF, find_model_file, require_model_file


class LlamaBackend:
    """Serves ``local-llama`` deployments from a GGUF model in this process."""

    def __init__(
        self,
        *,
        clock: Callable[[], float] = time.time,
        rng: random.Random | None = None,
    ) -> None:
        self._clock = clock
        self._rng = rng or random.Random()
        self._pools: dict[str, _ModelPool] = {}

    async def chat(self, deployment: Deployment, body: JSONObject) -> ChatResult:
        """Answer a chat request with the local model, all ``n`` choices in turn."""
        _require_runtime(deployment)
        request = parse_chat_request(deployment, body, self._rng)
        collected = _Collected(request.sampling.n)
        job = _Job(request, emit=collected.add)
        await self._pool(deployment).run(job, on_done=lambda _error: None, wait=True)
        usage = Usage(prompt_tokens=job.prompt_tokens, completion_tokens=job.completion_tokens)
        choices = [
            {
                "index": index,
                "message": {"role": "assistant", "content": "".join(parts), "refusal": None},
                "logprobs": None,
                "finish_reason": collected.finish[index],
            }
            for index, parts in enumerate(collected.texts)
        ]
        result = {
            "id": _completion_id(),
            "object": "chat.completion",
            "created": int(self._clock()),
            "model": request.model,
            "choices": choices,
            "usage": usage.as_openai(),
        }
        return ChatResult(body=result, usage=usage)

    async def open_stream(self, deployment: Deployment, body: JSONObject) -> ChatStream:
        """Start generating; returns once the prompt fits and the model is ready."""
        _require_runtime(deployment)
        request = parse_chat_request(deployment, body, self._rng)
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[_Event] = asyncio.Queue()

        def emit(event: _Event) -> None:
            loop.call_soon_threadsafe(queue.put_nowait, event)

        job = _Job(request, emit=emit)
        pool = self._pool(deployment)
        done = await pool.run(job, on_done=lambda error: queue.put_nowait(_Done(error)))
        try:
            first = await queue.get()
        except asyncio.CancelledError:
            job.cancel.set()
            raise
        if isinstance(first, _Done):
            raise _map_error(first.error or UpstreamError("the local model stopped unexpectedly"))
        assert isinstance(first, _Ready)
        return LlamaChatStream(job, queue=queue, finished=done, created=int(self._clock()))

    async def embed(self, deployment: Deployment, body: JSONObject) -> EmbeddingResult:
        """Refuse: a chat model does not serve embeddings."""
        raise InvalidRequest(
            f"deployment {deployment.name} (local chat model) is not an embedding model; "
            "use a local-embedding deployment for /v1/embeddings",
            param="model",
        )

    def usable(self, deployment: Deployment) -> bool:
        """Whether llama-cpp-python is installed and the model file exists."""
        return _runtime_installed() and find_model_file(deployment, SMOLLM2_GGUF) is not None

    async def aclose(self) -> None:
        """Stop generation, the worker threads, and free the models."""
        pools = list(self._pools.values())
        self._pools.clear()
        for pool in pools:
            await pool.aclose()

    def _pool(self, deployment: Deployment) -> _ModelPool:
        pool = self._pools.get(deployment.name)
        if pool is None:
            pool = _ModelPool(deployment)
            self._pools[deployment.name] = pool
        return pool


class LlamaChatStream:
    """A local generation in progress, as OpenAI ``chat.completion.chunk`` objects."""

    def __init__(
        self,
        job: _Job,
        *,
        queue: asyncio.Queue[_Event],
        finished: asyncio.Future[None],
        created: int,
    ) -> None:
        self.usage = Usage(prompt_tokens=job.prompt_tokens)
        self._job = job
        self._request = job.request
        self._queue = queue
        self._finished = finished
        self._id = _completion_id()
        self._created = created

    async def __aiter__(self) -> AsyncIterator[JSONObject]:
        started: set[int] = set()
        try:
            while True:
                event = await self._queue.get()
                if isinstance(event, _Done):
                    self.usage.completion_tokens = self._job.completion_tokens
                    if event.error is not None:
                        raise _map_error(event.error)
                    break
                if isinstance(event, _Ready):
                    continue
                if event.index not in started:
                    started.add(event.index)
                    yield self._chunk(event.index, {"role": "assistant", "content": ""}, None)
                if isinstance(event, _Delta):
                    yield self._chunk(event.index, {"content": event.text}, None)
                else:
                    yield self._chunk(event.index, {}, event.reason)
            if self._request.include_usage:
                yield self._envelope([], usage=self.usage.as_openai())
        finally:
            # A consumer that stops iterating early must not leave the model generating.
            self._job.cancel.set()

    async def aclose(self) -> None:
        """Stop generating and wait until the model is free for the next request."""
        self._job.cancel.set()
        with contextlib.suppress(Exception):
            await asyncio.shield(self._finished)
        self.usage.completion_tokens = self._job.completion_tokens

    def _chunk(self, index: int, delta: JSONObject, finish_reason: str | None) -> JSONObject:
        choice = {"index": index, "delta": delta, "logprobs": None, "finish_reason": finish_reason}
        return self._envelope([choice])

    def _envelope(self, choices: list[JSONObject], **extra: Any) -> JSONObject:
        chunk: JSONObject = {
            "id": self._id,
            "object": "chat.completion.chunk",
            "created": self._created,
            "model": self._request.model,
            "choices": choices,
        }
        if self._request.include_usage:
            chunk["usage"] = None
        chunk.update(extra)
        return chunk


@dataclass(frozen=True, slots=True)
class _Ready:
    """The prompt fits and generation is starting."""


@dataclass(frozen=True, slots=True)
class _Delta:
    index: int
    text: str


@dataclass(frozen=True, slots=True)
class _Finish:
    index: int
    reason: str


@dataclass(frozen=True, slots=True)
class _Done:
    error: BaseException | None


_Event = _Ready | _Delta | _Finish | _Done


@dataclass(slots=True)
class _Job:
    """One request's work for a model thread, and how it reports back."""

    request: ChatRequest
    emit: Callable[[_Ready | _Delta | _Finish], None]
    cancel: threading.Event = field(default_factory=threading.Event)
    # Written by the model thread only; read once its future is done.
    prompt_tokens: int = 0
    completion_tokens: int = 0


class _Collected:
    """Events of a non-streaming job, gathered in the model thread."""

    def __init__(self, n: int) -> None:
        self.texts: list[list[str]] = [[] for _ in range(n)]
        self.finish: list[str | None] = [None] * n

    def add(self, event: _Ready | _Delta | _Finish) -> None:
        if isinstance(event, _Delta):
            self.texts[event.index].append(event.text)
        elif isinstance(event, _Finish):
            self.finish[event.index] = event.reason


class _ModelPool:
    """One deployment's model instances, worker threads and concurrency bound."""

    def __init__(self, deployment: Deployment) -> None:
        self._deployment = deployment
        self._size = max(1, deployment.max_concurrency)
        self._semaphore = asyncio.Semaphore(self._size)
        self._executor = ThreadPoolExecutor(
            max_workers=self._size, thread_name_prefix=f"seawall-llama-{deployment.name}"
        )
        self._load_lock = asyncio.Lock()
        self._idle: list[_LoadedModel] = []
        self._all: list[_LoadedModel] = []
        self._context_size: int | None = None
        self._running: set[threading.Event] = set()

    async def run(
        self, job: _Job, *, on_done: Callable[[BaseException | None], None], wait: bool = False
    ) -> asyncio.Future[None]:
        """Start ``job`` on a free model; with ``wait``, also wait for it to finish."""
        await self._semaphore.acquire()
        try:
            model = await self._take_model()
        except BaseException:
            self._semaphore.release()
            raise
        loop = asyncio.get_running_loop()
        future = loop.run_in_executor(self._executor, model.run, job)
        self._running.add(job.cancel)

        def finished(done: asyncio.Future[None]) -> None:
            self._running.discard(job.cancel)
            self._idle.append(model)
            self._semaphore.release()
            if done.cancelled():
                on_done(UpstreamUnavailable("the local model was shut down"))
            else:
                on_done(done.exception())

        future.add_done_callback(finished)
        if wait:
            try:
                # Shielded: the thread keeps the model until it stops, whatever the caller does.
                await asyncio.shield(future)
            except asyncio.CancelledError:
                job.cancel.set()
                raise
            except Exception as exc:
                raise _map_error(exc) from exc
        return future

    async def aclose(self) -> None:
        for cancel in list(self._running):
            cancel.set()
        await asyncio.to_thread(self._executor.shutdown, True, cancel_futures=True)
        for model in self._all:
            model.close()
        self._all.clear()
        self._idle.clear()

    async def _take_model(self) -> _LoadedModel:
        if self._idle:
            return self._idle.pop()
        async with self._load_lock:
            if self._idle:
                return self._idle.pop()
            path = require_model_file(self._deployment, SMOLLM2_GGUF)
            loop = asyncio.get_running_loop()
            load = loop.run_in_executor(
                self._executor, _LoadedModel.load, path, self._deployment, self._context_size
            )
            try:
                model = await asyncio.shield(load)
            except asyncio.CancelledError:
                # The load finishes anyway; keep the model for the next request.
                load.add_done_callback(self._adopt)
                raise
            except Exception as exc:
                raise UpstreamUnavailable(
                    f"deployment {self._deployment.name}: could not load {path}: {exc}"
                ) from exc
            self._context_size = model.context_size
            self._all.append(model)
            return model

    def _adopt(self, load: asyncio.Future[_LoadedModel]) -> None:
        if not load.cancelled() and load.exception() is None:
            model = load.result()
            self._context_size = model.context_size
            self._all.append(model)
            self._idle.append(model)


class _LoadedModel:
    """One llama.cpp model and context; used by one thread at a time."""

    def __init__(self, llama: Any, formatter: Any) -> None:
        import llama_cpp

        self._llama = llama
        self._formatter = formatter
        self._vocab = llama_cpp.llama_model_get_vocab(llama.model)
        self.context_size: int = llama.n_ctx()

    @classmethod
    def load(cls, path: Path, deployment: Deployment, context_size: int | None) -> _LoadedModel:
        """Load the GGUF with the deployment's threads and context (capped at the model's)."""
        import llama_cpp
        from llama_cpp import llama_chat_format

        def open_model(n_ctx: int) -> Any:
            return llama_cpp.Llama(
                model_path=str(path),
                n_ctx=n_ctx,
                n_threads=max(1, deployment.threads),
                n_threads_batch=max(1, deployment.threads),
                n_gpu_layers=deployment.gpu_layers,
                verbose=False,
            )

        llama = open_model(context_size or deployment.context_window)
        trained = _trained_context(llama.metadata)
        if context_size is None and 0 < trained < llama.n_ctx():
            llama.close()
            llama = open_model(trained)
        template = llama.metadata.get("tokenizer.chat_template")
        formatter: Any = llama_chat_format.format_chatml
        if template:
            formatter = llama_chat_format.Jinja2ChatFormatter(
                template=template,
                eos_token=_token_text(llama, llama.token_eos()),
                bos_token=_token_text(llama, llama.token_bos()),
            )
        return cls(llama, formatter)

    def run(self, job: _Job) -> None:
        """Format and tokenize the prompt, then generate every choice in turn."""
        request = job.request
        formatted = self._formatter(messages=request.messages)
        prompt: list[int] = self._llama.tokenize(
            formatted.prompt.encode("utf-8"), add_bos=not formatted.added_special, special=True
        )
        if len(prompt) >= self.context_size:
            raise InvalidRequest(
                f"the prompt is {len(prompt)} tokens; this model's context window is "
                f"{self.context_size} tokens",
                param="messages",
                code="context_length_exceeded",
            )
        template_stops = formatted.stop if isinstance(formatted.stop, list) else [formatted.stop]
        stops = [*request.sampling.stop, *(stop for stop in template_stops if stop)]
        grammar = self._grammar(request.sampling.grammar)
        job.prompt_tokens = len(prompt)
        job.emit(_Ready())
        for index in range(request.sampling.n):
            if job.cancel.is_set():
                return
            reason = self._generate(prompt, job, index, stops, grammar)
            job.emit(_Finish(index, reason))

    def close(self) -> None:
        """Free the model and its context."""
        self._llama.close()

    def _generate(
        self, prompt: list[int], job: _Job, index: int, stops: list[str], grammar: Any
    ) -> str:
        """One choice: emits text as soon as it is safe to show; returns the finish reason."""
        import llama_cpp

        sampling = job.request.sampling
        budget = min(sampling.max_tokens, self.context_size - len(prompt))
        self._llama.set_seed((sampling.seed + index) % 2**32)
        # A token may end inside a multi-byte character: the decoder holds it until complete.
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        longest_stop = max((len(stop) for stop in stops), default=0)
        generated = 0
        shown = 0
        text = ""
        reason = "length"
        cut: int | None = None
        tokens = self._llama.generate(
            prompt,
            temp=sampling.temperature,
            top_p=sampling.top_p,
            presence_penalty=sampling.presence_penalty,
            frequency_penalty=sampling.frequency_penalty,
            repeat_penalty=1.0,
            grammar=grammar,
        )
        try:
            for token in tokens:
                if job.cancel.is_set() or llama_cpp.llama_vocab_is_eog(self._vocab, token):
                    reason = "stop"
                    break
                generated += 1
                job.completion_tokens += 1
                searched = max(0, len(text) - longest_stop + 1)
                text += decoder.decode(self._llama.detokenize([token]))
                cut = _first_stop(text, stops, searched)
                if cut is not None:
                    break
                safe = len(text) - _held_back(text, stops)
                if safe > shown:
                    job.emit(_Delta(index, text[shown:safe]))
                    shown = safe
                if generated >= budget:
                    break
        finally:
            tokens.close()
        if cut is None:
            text += decoder.decode(b"", final=True)
        else:
            text, reason = text[:cut], "stop"
        if len(text) > shown and not job.cancel.is_set():
            job.emit(_Delta(index, text[shown:]))
        return reason

    def _grammar(self, gbnf: str | None) -> Any:
        if gbnf is None:
            return None
        from llama_cpp.llama_grammar import LlamaGrammar

        return LlamaGrammar.from_string(gbnf, verbose=False)


def _first_stop(text: str, stops: list[str], start: int) -> int | None:
    """Where the earliest stop sequence starts in ``text[start:]``, if any does."""
    found = [position for stop in stops if (position := text.find(stop, start)) >= 0]
    return min(found) if found else None


def _held_back(text: str, stops: list[str]) -> int:
    """How many trailing characters might be the start of a stop sequence."""
    longest = 0
    for stop in stops:
        for size in range(min(len(stop) - 1, len(text)), longest, -1):
            if text.endswith(stop[:size]):
                longest = size
                break
    return longest


def _trained_context(metadata: dict[str, str]) -> int:
    architecture = metadata.get("general.architecture", "")
    try:
        return int(metadata.get(f"{architecture}.context_length", "0"))
    except ValueError:
        return 0


def _token_text(llama: Any, token: int) -> str:
    if token < 0:
        return ""
    raw: bytes = llama.detokenize([token], special=True)
    return raw.decode("utf-8", errors="ignore")


def _runtime_installed() -> bool:
    try:
        import llama_cpp  # noqa: F401
    except ImportError:
        return False
    return True


def _require_runtime(deployment: Deployment) -> None:
    if not _runtime_installed():
        raise UpstreamUnavailable(
            f"deployment {deployment.name} needs llama-cpp-python: "
            "install it with pip install 'seawall[local]'"
        )


def _completion_id() -> str:
    return f"chatcmpl-{uuid.uuid4().hex}"


def _map_error(error: BaseException) -> SeawallError:
    """The one place a local generation failure becomes a Seawall error."""
    if isinstance(error, SeawallError):
        return error
    return UpstreamError(f"the local model failed: {error}")
