"""Execution: the fallback loop, in one function (``Executor.__call__``).

For each request the planner lists candidate deployments: the model's own, then
its fallback models'. The loop walks them in passes. On the first pass each
candidate gets one attempt; later passes are retries of the same deployments,
after an exponential backoff with full jitter that honours the upstream's
Retry-After. Before any attempt:

- its circuit breaker must let it through (open circuits are skipped at once);
- a retry must fit the deployment's retry budget and the request's deadline;
- the deployment's provider budget (RPM, TPM, the rate learned from 429s) must
  have room within the deadline and ``max_queue_wait_seconds``: the request then
  waits for its booked slot, or moves on without having sent anything.

Errors are classified once, in ``_verdict``: upstream failures (429, 408, 5xx,
timeouts, refused or reset connections, malformed answers) move on to the next
candidate; a prompt too long for a context window moves to deployments with a
larger one and the model's ``context_fallback``; anything else (the client's own
mistake) is answered at once. A stream is handed to the client only once its first
chunk arrived, so a stream that fails before its first byte falls back like any
other attempt, and nothing is retried after it. The request's deadline bounds
waiting, retries and every upstream call; a client that leaves cancels all of it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from seawall.config.schema import Deployment, ProviderKind, ResilienceSettings
from seawall.errors import (
    CapacityExhausted,
    ContextWindowExceeded,
    DeadlineExceeded,
    SeawallError,
    ServiceUnavailable,
    UpstreamError,
    UpstreamRateLimited,
    UpstreamTimeout,
)
from seawall.pipeline.attempt_stream import AttemptStream
from seawall.pipeline.background import Background
from seawall.pipeline.candidates import Candidate, CandidatePlanner
from seawall.pipeline.context import RequestContext
from seawall.pipeline.pipeline import Reply
from seawall.pipeline.rejections import RejectionLog
from seawall.pipeline.token_estimate import context_prompt_tokens, output_allowance
from seawall.providers.base import Backend, ChatResult, ChatStream, EmbeddingResult, JSONObject
from seawall.resilience.balancer import Balancer
from seawall.resilience.circuit_breaker import BreakerStore, Permit
from seawall.resilience.clock import Clock
from seawall.resilience.rate_budget import RateBudget
from seawall.resilience.retry_budget import RetryBudget
from seawall.tokens import TokenCounter

Verdict = Literal["next", "context", "fail"]


def _verdict(error: SeawallError) -> Verdict:
    """What a failed attempt means for the request: the one place errors are classified."""
    if isinstance(error, ContextWindowExceeded):
        return "context"
    if isinstance(error, UpstreamError):
        return "next"
    return "fail"


@dataclass(slots=True)
class Resilience:
    """The shared state the executor consults, built once per process."""

    settings: ResilienceSettings
    clock: Clock
    breakers: BreakerStore
    rates: RateBudget
    retry_budget: RetryBudget
    balancer: Balancer
    counter: TokenCounter
    rejections: RejectionLog
    # Success reports and settlements, off the response path.
    background: Background = field(default_factory=Background)
    # Whether success reports go to ``background``: yes when they are Redis round trips
    # the answer need not wait for; in memory they cost less done at once than a task.
    report_after_answer: bool = True


@dataclass(slots=True)
class _Failure:
    count: int
    at: float
    retry_after: float | None
    # False when asking this deployment again cannot help (it refused Seawall itself).
    retryable: bool


@dataclass(slots=True)
class _Request:
    """What one request's attempts have learned so far."""

    ctx: RequestContext
    deadline: float
    # The client set the deadline (the default one rarely ends before the timeouts do).
    bounded: bool
    attempts: int = 0
    failures: dict[str, _Failure] = field(default_factory=dict)
    last_error: SeawallError | None = None
    # The shortest wait that would have let a refused candidate through.
    open_wait: float | None = None
    capacity_wait: float | None = None
    # Context windows found too small for this prompt (0: none so far).
    too_long_for: int = 0
    # Seconds spent waiting for provider capacity, over all attempts.
    queued: float = 0.0


def _shorter(current: float | None, wait: float) -> float:
    return wait if current is None else min(current, wait)


class Executor:
    """The terminal handler: tries candidates until one answers or none is left."""

    def __init__(
        self,
        backends: Mapping[ProviderKind, Backend],
        planner: CandidatePlanner,
        resilience: Resilience,
    ) -> None:
        self._backends = dict(backends)
        self._planner = planner
        self._r = resilience

    async def __call__(self, ctx: RequestContext) -> Reply:
        """Answer ``ctx`` from the best candidate that can, within its deadline."""
        model = ctx.public_model
        assert model is not None, "route stage runs before execute"
        r = self._r
        settings = r.settings
        clock = r.clock
        deadline = ctx.deadline
        if deadline is None:
            deadline = clock.now() + settings.default_deadline_seconds
        request = _Request(ctx, deadline, bounded=ctx.deadline is not None)
        candidates = self._planner.plan(model)
        if not candidates:
            raise ServiceUnavailable(
                f"No deployment of model '{model.name}' is usable right now (missing API key, "
                "model file or runtime); check `seawall config check`."
            )
        context_added = False
        while request.attempts < settings.max_attempts:
            attempts_before = request.attempts
            index = 0
            while index < len(candidates) and request.attempts < settings.max_attempts:
                candidate = candidates[index]
                index += 1
                try:
                    reply = await self._try(request, candidate)
                except _PromptTooLong:
                    reply = None
                    if not context_added:
                        context_added = True
                        known = {c.deployment.name for c in candidates}
                        candidates.extend(
                            c
                            for c in self._planner.context_fallback(candidate.model)
                            if c.deployment.name not in known
                        )
                if reply is not None:
                    return reply
            if request.attempts == attempts_before:
                break  # a whole pass without an attempt: nothing left to try
        error = self._final_error(request, model.name)
        r.rejections.note(error)
        raise error

    async def _try(self, request: _Request, candidate: Candidate) -> Reply | None:
        """One candidate: checks, waits, then an attempt; None when it did not answer."""
        r = self._r
        clock = r.clock
        deployment = candidate.deployment
        name = deployment.name
        if deployment.context_window <= request.too_long_for:
            return None
        if not self._fits(request, deployment):
            request.too_long_for = max(request.too_long_for, deployment.context_window)
            raise _PromptTooLong
        previous = request.failures.get(name)
        if previous is not None and not previous.retryable:
            return None
        if previous is not None:
            delay = r.settings.backoff.delay(previous.count, clock.random(), previous.retry_after)
            wait = max(0.0, previous.at + delay - clock.now())
            if clock.now() + wait >= request.deadline or not r.retry_budget.try_spend(name):
                return None
            await clock.sleep(wait)
        permit = await r.breakers.allow(name, r.settings.breaker)
        if not permit.allowed:
            request.open_wait = _shorter(request.open_wait, permit.retry_in)
            return None
        tokens = self._reserved_tokens(request, deployment)
        # The queue wait is one budget for the whole request, and a slot is only worth
        # booking if the answer can still arrive (at this deployment's usual latency)
        # before the deadline.
        usual = r.balancer.latency(name) or 0.0
        max_wait = min(
            r.settings.max_queue_wait_seconds - request.queued,
            request.deadline - clock.now() - usual,
        )
        reservation = await r.rates.reserve(name, deployment.limits, tokens, max(0.0, max_wait))
        if not reservation.granted:
            request.capacity_wait = _shorter(request.capacity_wait, reservation.wait)
            return None
        request.queued += reservation.wait
        await clock.sleep(reservation.wait)
        if previous is None:
            r.retry_budget.record_request(name)
        return await self._attempt(request, candidate, permit, tokens)

    async def _attempt(
        self, request: _Request, candidate: Candidate, permit: Permit, tokens: int
    ) -> Reply | None:
        r = self._r
        clock = r.clock
        ctx = request.ctx
        deployment = candidate.deployment
        name = deployment.name
        request.attempts += 1
        ctx.deployment = deployment
        started = clock.now()
        began = time.perf_counter()  # for the attempt's span in traces
        r.balancer.started(name)
        left = request.deadline - started
        try:
            if request.bounded or r.settings.default_deadline_seconds < deployment.timeouts.total:
                async with asyncio.timeout(left):
                    reply = await self._call(request, deployment, tokens)
            else:
                # The deployment's own total timeout ends the attempt first: a timer per
                # request would only cost time (and heap space, until it expired).
                reply = await self._call(request, deployment, tokens)
        except TimeoutError:
            r.balancer.finished(name, None)
            ctx.attempted(deployment, began, 504, "DeadlineExceeded")
            deadline_error = DeadlineExceeded(
                "The request's deadline passed before any deployment answered."
            )
            r.rejections.note(deadline_error)
            raise deadline_error from None
        except SeawallError as error:
            r.balancer.finished(name, None)
            ctx.attempted(deployment, began, error.status, type(error).__name__)
            await self._report_failure(deployment, permit, error)
            verdict = _verdict(error)
            if verdict == "fail":
                raise
            failure = request.failures.get(name)
            count = failure.count + 1 if failure else 1
            retryable = not isinstance(error, UpstreamError) or error.retryable
            request.failures[name] = _Failure(count, clock.now(), error.retry_after, retryable)
            request.last_error = error
            if verdict == "context":
                request.too_long_for = max(request.too_long_for, deployment.context_window)
                raise _PromptTooLong from None
            return None
        except BaseException:
            # Cancelled: the client left (or the server is stopping) mid-attempt.
            r.balancer.finished(name, None)
            ctx.attempted(deployment, began, 499, "ClientClosedRequest")
            raise
        r.balancer.finished(name, clock.now() - started)
        ctx.attempted(deployment, began, 200)
        used = reply.usage.total_tokens if isinstance(reply, ChatResult | EmbeddingResult) else None
        if permit.probe or not r.report_after_answer:
            # A probe's success closes the breaker: later requests should find it closed.
            await self._report_success(deployment, permit, tokens, used)
        else:
            r.background.run(self._report_success(deployment, permit, tokens, used))
        self._label(ctx, candidate)
        return reply

    async def _call(self, request: _Request, deployment: Deployment, tokens: int) -> Reply:
        ctx = request.ctx
        backend = self._backends[deployment.provider]
        # A shallow copy: the client's body stays as sent for recording and caching.
        body: JSONObject = {**ctx.body, "model": deployment.model}
        if ctx.operation == "embeddings":
            return await backend.embed(deployment, body)
        if ctx.stream:
            return await self._open_stream(backend, deployment, body, tokens, request.deadline)
        return await backend.chat(deployment, body)

    async def _open_stream(
        self,
        backend: Backend,
        deployment: Deployment,
        body: JSONObject,
        tokens: int,
        deadline: float,
    ) -> ChatStream:
        """Open the stream and wait for its first chunk, so failures so far can fall back."""
        stream = await backend.open_stream(deployment, body)
        chunks = aiter(stream)
        try:
            async with asyncio.timeout(deployment.timeouts.first_byte):
                first: JSONObject | None = await anext(chunks)
        except StopAsyncIteration:
            first = None
        except TimeoutError:
            await stream.aclose()
            raise UpstreamTimeout(
                f"Deployment '{deployment.name}' sent no first token within "
                f"{deployment.timeouts.first_byte:g}s."
            ) from None
        except BaseException:
            await stream.aclose()
            raise

        async def on_end(error: BaseException | None) -> None:
            if isinstance(error, UpstreamError):
                await self._r.breakers.record(
                    deployment.name, self._r.settings.breaker, success=False
                )
            await self._settle(deployment, tokens, stream.usage.total_tokens)

        return AttemptStream(stream, chunks, first, on_end, self._r.clock, deadline)

    async def _report_failure(
        self, deployment: Deployment, permit: Permit, error: SeawallError
    ) -> None:
        """Tell the breaker and the provider budget what a failed attempt means."""
        r = self._r
        if isinstance(error, UpstreamRateLimited):
            # A 429 says nothing about health: it feeds the rate estimate instead.
            await r.rates.observe(
                deployment.name,
                deployment.limits,
                rate_limited=True,
                retry_after=error.retry_after,
                quota_exhausted=error.code == "insufficient_quota",
            )
            if permit.probe:
                await r.breakers.record(
                    deployment.name, r.settings.breaker, success=True, probe=True
                )
            return
        healthy = not isinstance(error, UpstreamError)
        await r.breakers.record(
            deployment.name, r.settings.breaker, success=healthy, probe=permit.probe
        )

    async def _report_success(
        self, deployment: Deployment, permit: Permit, reserved: int, used: int | None
    ) -> None:
        """Tell the breaker and the provider budget an attempt succeeded."""
        r = self._r
        breaker = r.settings.breaker
        await r.breakers.record(deployment.name, breaker, success=True, probe=permit.probe)
        if deployment.limits.adaptive:
            await r.rates.observe(deployment.name, deployment.limits, rate_limited=False)
        if used is not None:
            await self._settle(deployment, reserved, used)

    async def _settle(self, deployment: Deployment, reserved: int, used: int) -> None:
        if deployment.limits.tpm is not None:
            await self._r.rates.settle(deployment.name, deployment.limits, reserved, used)

    def _label(self, ctx: RequestContext, candidate: Candidate) -> None:
        headers = ctx.response_headers
        headers["x-seawall-model"] = candidate.model.name
        headers["x-seawall-deployment"] = candidate.deployment.name
        if len(ctx.attempts) > 1 or ctx.public_model is not candidate.model:
            headers["x-seawall-fallback"] = ",".join(
                attempt.rpartition(":")[0] for attempt in ctx.attempts
            )

    def _fits(self, request: _Request, deployment: Deployment) -> bool:
        """Whether the prompt fits the deployment's context window (counted only if in doubt)."""
        # A token is at least a byte of the request body, so short bodies always fit.
        if len(request.ctx.raw_body) < deployment.context_window:
            return True
        return self._prompt_tokens(request) < deployment.context_window

    def _prompt_tokens(self, request: _Request) -> int:
        return context_prompt_tokens(self._r.counter, request.ctx)

    def _reserved_tokens(self, request: _Request, deployment: Deployment) -> int:
        if deployment.limits.tpm is None:
            return 0
        ctx = request.ctx
        return self._prompt_tokens(request) + output_allowance(
            ctx.body, deployment.max_output_tokens, deployment.operation
        )

    def _final_error(self, request: _Request, model: str) -> SeawallError:
        """The error that best tells the client why nothing answered, and when to retry."""
        error = request.last_error
        if error is not None:
            if error.status in (429, 503) and error.retry_after is None:
                waits = [w for w in (request.capacity_wait, request.open_wait) if w is not None]
                error.retry_after = min(waits) if waits else None
            return error
        if request.capacity_wait is not None:
            return CapacityExhausted(
                f"Every deployment of model '{model}' is at its provider rate limit for longer "
                "than this request can wait; retry after the time in Retry-After.",
                retry_after=request.capacity_wait,
            )
        if request.open_wait is not None:
            return ServiceUnavailable(
                f"Every deployment of model '{model}' is failing and cooling down (circuit "
                "open); retry after the time in Retry-After.",
                code="circuit_open",
                retry_after=request.open_wait,
            )
        if request.too_long_for:
            tokens = request.ctx.prompt_tokens
            return ContextWindowExceeded(
                f"The prompt ({tokens} tokens) does not fit the context window of any "
                f"deployment of model '{model}' (largest tried: {request.too_long_for} tokens); "
                "shorten it or configure a context_fallback model.",
                param="messages",
            )
        return ServiceUnavailable(
            f"No deployment of model '{model}' could be tried within the request's deadline "
            "and retry budget; retry after the time in Retry-After."
        )


class _PromptTooLong(Exception):
    """Internal: the prompt does not fit the candidate just tried or checked."""
