"""Seawall's one exception tree.

Every error a client can see is a ``SeawallError``. Each class knows its HTTP
status, its OpenAI ``error.type`` and ``error.code``, and its Anthropic error
type, so the HTTP layer renders it in whichever wire format the client speaks.
Upstream failures are mapped onto this tree in exactly one place per provider
(``providers/*.map_error``), never in handlers.

    SeawallError                      500 api_error
    ├── InvalidRequest                400 invalid_request_error
    │   ├── BodyTooLarge              413
    │   ├── UnsupportedParameter      400 (a deployment cannot honour a field)
    │   ├── ContextWindowExceeded     400 context_length_exceeded
    │   ├── PromptRejected            400 prompt_rejected (the guard blocked the input)
    │   └── PromptHeld                400 prompt_held_for_review (the guard held it)
    ├── AuthenticationFailed          401 authentication_error
    ├── PermissionDenied              403 permission_error
    │   └── UserBlocked               403 user_blocked (strikes; + Retry-After)
    ├── NotFound                      404 (unknown path)
    │   └── ModelNotFound             404 model_not_found
    ├── MethodNotAllowed              405
    ├── RateLimited                   429 rate_limit_exceeded (+ Retry-After)
    │   ├── CapacityExhausted         429 (no provider capacity within the deadline)
    │   └── BudgetExhausted           429 insufficient_quota (+ x-should-retry: false)
    ├── ServiceUnavailable            503 (Seawall itself cannot serve now)
    │   ├── Overloaded                503 (admission queue full or too slow; + Retry-After)
    │   └── ShutDownMidway            503 (the instance stopped before the answer ended)
    ├── DeadlineExceeded              504 (the request's deadline passed)
    ├── ClientDisconnected            499 (the client left; nobody reads this)
    └── UpstreamError                 502 (the provider failed)
        ├── UpstreamRejected          502 (401/403/404: never retried on that deployment)
        ├── UpstreamRateLimited       429 (the provider said 429)
        ├── UpstreamTimeout           504
        ├── UpstreamUnavailable       503
        └── UpstreamProtocolError     502 (malformed body, broken stream)
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

# Seconds a 429 or 503 asks the client to wait when nothing better is known.
_DEFAULT_RETRY_AFTER = 1.0


class SeawallError(Exception):
    """Base of every error a client can see."""

    status: ClassVar[int] = 500
    openai_type: ClassVar[str] = "api_error"
    anthropic_type: ClassVar[str] = "api_error"
    default_code: ClassVar[str | None] = None

    def __init__(
        self,
        message: str,
        *,
        param: str | None = None,
        code: str | None = None,
        retry_after: float | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        self.code = code if code is not None else self.default_code
        self.retry_after = retry_after
        # Headers this error adds beyond Retry-After (x-ratelimit-*, x-should-retry).
        self.extra_headers = headers

    def openai_body(self) -> dict[str, Any]:
        """The body OpenAI's API would send for this error."""
        return {
            "error": {
                "message": self.message,
                "type": self.openai_type,
                "param": self.param,
                "code": self.code,
            }
        }

    def anthropic_body(self) -> dict[str, Any]:
        """The body Anthropic's API would send for this error."""
        return {"type": "error", "error": {"type": self.anthropic_type, "message": self.message}}

    def headers(self) -> dict[str, str]:
        """Extra response headers this error carries (Retry-After and any others)."""
        extra = dict(self.extra_headers) if self.extra_headers else {}
        seconds = self.retry_after
        if seconds is None:
            # Every 429 and 503 tells the client when to come back, even without a hint.
            if self.status not in (429, 503):
                return extra
            seconds = _DEFAULT_RETRY_AFTER
        seconds = max(0.0, seconds)
        # Both round up: a client that waits exactly this long must not arrive early.
        extra["retry-after"] = str(max(1, math.ceil(seconds)))
        extra["retry-after-ms"] = str(math.ceil(seconds * 1000))
        return extra


class InvalidRequest(SeawallError):
    """The request is malformed or asks for something impossible."""

    status = 400
    openai_type = "invalid_request_error"
    anthropic_type = "invalid_request_error"


class BodyTooLarge(InvalidRequest):
    """The request body is over the configured limit."""

    status = 413
    anthropic_type = "request_too_large"
    default_code = "request_too_large"


class UnsupportedParameter(InvalidRequest):
    """A parameter the chosen deployment cannot honour."""

    default_code = "unsupported_parameter"


class ContextWindowExceeded(InvalidRequest):
    """The prompt does not fit the model's context window."""

    default_code = "context_length_exceeded"


class PromptRejected(InvalidRequest):
    """The guard found an injection or a forbidden input and blocked the request."""

    default_code = "prompt_rejected"

    def headers(self) -> dict[str, str]:
        """``x-should-retry: false``: the same prompt is rejected again."""
        return {**super().headers(), "x-should-retry": "false"}


class PromptHeld(PromptRejected):
    """The guard held the request for a human to review; it was not sent upstream."""

    default_code = "prompt_held_for_review"


class AuthenticationFailed(SeawallError):
    """Missing, malformed or wrong API key."""

    status = 401
    openai_type = "invalid_request_error"
    anthropic_type = "authentication_error"
    default_code = "invalid_api_key"


class PermissionDenied(SeawallError):
    """The key is valid but may not do this."""

    status = 403
    openai_type = "invalid_request_error"
    anthropic_type = "permission_error"
    default_code = "permission_denied"


class UserBlocked(PermissionDenied):
    """The end user collected too many strikes and is blocked for a while."""

    default_code = "user_blocked"


class NotFound(SeawallError):
    """No such path."""

    status = 404
    openai_type = "invalid_request_error"
    anthropic_type = "not_found_error"
    default_code = "not_found"


class ModelNotFound(NotFound):
    """The public model name is not configured."""

    default_code = "model_not_found"


class MethodNotAllowed(SeawallError):
    """The path exists but not for this HTTP method."""

    status = 405
    openai_type = "invalid_request_error"
    anthropic_type = "invalid_request_error"
    default_code = "method_not_allowed"


class RateLimited(SeawallError):
    """Seawall's own limits refuse the request for now."""

    status = 429
    openai_type = "rate_limit_error"
    anthropic_type = "rate_limit_error"
    default_code = "rate_limit_exceeded"


class ServiceUnavailable(SeawallError):
    """Seawall cannot serve right now (starting, draining, overloaded)."""

    status = 503
    openai_type = "api_error"
    anthropic_type = "overloaded_error"
    default_code = "service_unavailable"


class CapacityExhausted(RateLimited):
    """Every deployment that could answer is out of provider capacity for now."""

    default_code = "capacity_exhausted"


class BudgetExhausted(RateLimited):
    """A hard budget is spent: retrying will not help until it resets or is raised.

    Shaped like OpenAI's quota error; ``x-should-retry: false`` stops both official
    SDKs from retrying it.
    """

    openai_type = "insufficient_quota"
    default_code = "insufficient_quota"

    def headers(self) -> dict[str, str]:
        """Retry-After (when the budget resets) and ``x-should-retry: false``."""
        return {**super().headers(), "x-should-retry": "false"}


class Overloaded(ServiceUnavailable):
    """Seawall sheds this request: its queue is full or could not serve it in time."""

    default_code = "overloaded"


class ShutDownMidway(ServiceUnavailable):
    """The instance's shutdown grace period ended before this answer did (see ``http.drain``)."""

    default_code = "shut_down_midway"


class DeadlineExceeded(SeawallError):
    """The request's deadline (``x-seawall-deadline-ms``) passed before an answer."""

    status = 504
    openai_type = "api_error"
    anthropic_type = "api_error"
    default_code = "deadline_exceeded"


class ClientDisconnected(SeawallError):
    """The client went away before its answer was ready; its work was cancelled."""

    status = 499
    openai_type = "invalid_request_error"
    anthropic_type = "invalid_request_error"
    default_code = "client_closed_request"


class UpstreamError(SeawallError):
    """The upstream provider failed to answer usefully."""

    status = 502
    openai_type = "api_error"
    anthropic_type = "api_error"
    default_code = "upstream_error"

    # Whether trying again (here or elsewhere) may succeed; read by retry logic.
    retryable: ClassVar[bool] = True


class UpstreamRejected(UpstreamError):
    """The upstream refused Seawall itself (credentials, permissions, unknown model).

    Another deployment may answer; the same one will not, however often it is asked.
    """

    retryable = False


class UpstreamRateLimited(UpstreamError):
    """The upstream provider answered 429."""

    status = 429
    openai_type = "rate_limit_error"
    anthropic_type = "rate_limit_error"
    default_code = "upstream_rate_limited"


class UpstreamTimeout(UpstreamError):
    """A phase timeout expired while waiting for the upstream."""

    status = 504
    default_code = "upstream_timeout"


class UpstreamUnavailable(UpstreamError):
    """The upstream answered 503 or refused the connection."""

    status = 503
    anthropic_type = "overloaded_error"
    default_code = "upstream_unavailable"


class UpstreamProtocolError(UpstreamError):
    """The upstream sent something that is not its own wire format."""

    default_code = "upstream_protocol_error"
