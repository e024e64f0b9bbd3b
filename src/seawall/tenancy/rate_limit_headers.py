"""Client rate-limit decisions as OpenAI states them: x-ratelimit-* headers and the 429.

OpenAI sends, on every answer, the limit, the remaining capacity and the time until
the limit "resets to its initial state", for requests and for tokens. The reset is a
duration written like Go's ``time.Duration``: ``"1s"``, ``"6m0s"``, ``"120ms"``,
``"1m30.5s"``. Seawall rounds it up to whole milliseconds, so a client that waits
exactly that long finds the capacity back. A refusal is a 429 ``rate_limit_exceeded``
with the same headers plus Retry-After and retry-after-ms (``errors.SeawallError``
writes those), which both official SDKs honour.
"""

from __future__ import annotations

import math

from seawall.errors import RateLimited
from seawall.tenancy.client_limits import Decision, describe_subject


def format_duration(seconds: float) -> str:
    """``seconds`` rounded up to the millisecond, written like Go's ``time.Duration``."""
    # Rounded first, so float noise (0.1 * 1000 = 100.00000000000001) does not add a ms.
    millis = math.ceil(round(max(0.0, seconds) * 1000, 6))
    if millis == 0:
        return "0s"
    if millis < 1000:
        return f"{millis}ms"
    hours, rest = divmod(millis, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    whole, fraction = divmod(rest, 1000)
    text = f"{whole}.{fraction:03d}".rstrip("0").rstrip(".") + "s"
    if hours:
        return f"{hours}h{minutes}m{text}"
    if minutes:
        return f"{minutes}m{text}"
    return text


def rate_limit_headers(decision: Decision) -> dict[str, str]:
    """The x-ratelimit-* headers for a decision (only for the dimensions that are limited)."""
    headers: dict[str, str] = {}
    for name, window in (("requests", decision.requests), ("tokens", decision.tokens)):
        if window is None:
            continue
        headers[f"x-ratelimit-limit-{name}"] = str(window.limit)
        headers[f"x-ratelimit-remaining-{name}"] = str(window.remaining)
        headers[f"x-ratelimit-reset-{name}"] = format_duration(window.reset_seconds)
    return headers


def rate_limited_error(decision: Decision) -> RateLimited:
    """The 429 for a refused decision, worded like OpenAI's, with every header."""
    refusal = decision.refusal
    wait = format_duration(decision.retry_after)
    if refusal is None:
        message = f"Rate limit reached. Please try again in {wait}."
    else:
        if refusal.period_seconds == 60.0:
            short = "RPM" if refusal.dimension == "requests" else "TPM"
            what = f"{refusal.dimension} per min ({short})"
        else:
            what = f"{refusal.dimension} per {format_duration(refusal.period_seconds)}"
        message = (
            f"Rate limit reached for {what} on "
            f"{describe_subject(refusal.subject)}: Limit {refusal.limit}, Used {refusal.used}, "
            f"Requested {refusal.requested}. Please try again in {wait}."
        )
    return RateLimited(
        message, retry_after=decision.retry_after, headers=rate_limit_headers(decision)
    )
