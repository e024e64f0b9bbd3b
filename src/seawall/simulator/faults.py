"""The faults the simulator can inject, and the schedule that arms them.

A fault is armed for the next ``times`` model requests (every request until
cleared when ``times`` is None), optionally only for one model. Model requests
are chat completions, embeddings and messages; ``/v1/models`` and the control
API never fail, so health probes cannot use up a drill's faults. Each request
takes at most one fault: the earliest armed one that matches its model.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from seawall.errors import InvalidRequest, RateLimited, SeawallError, ServiceUnavailable


class FaultKind(StrEnum):
    """What goes wrong."""

    RATE_LIMIT = "rate_limit"
    SERVER_ERROR = "server_error"
    UNAVAILABLE = "unavailable"
    HANG = "hang"
    RESET_BEFORE_FIRST_BYTE = "reset_before_first_byte"
    RESET_MID_STREAM = "reset_mid_stream"
    MALFORMED_JSON = "malformed_json"
    SLOW = "slow"


# The faults answered with an error status instead of an answer.
_ERROR_KINDS = frozenset({FaultKind.RATE_LIMIT, FaultKind.SERVER_ERROR, FaultKind.UNAVAILABLE})
_DEFAULT_SLOW_SECONDS = 1.0
# What a rate-limited upstream claims its per-minute request limit is.
_ADVERTISED_RPM = 60


@dataclass(frozen=True, slots=True)
class Fault:
    """One fault to inject; ``seconds`` is the hang length or the extra latency."""

    kind: FaultKind
    times: int | None = None
    model: str | None = None
    retry_after: float = 1.0
    # Hang: None hangs until the client gives up. Slow: None means one second.
    seconds: float | None = None

    def __post_init__(self) -> None:
        if self.times is not None and self.times < 1:
            raise ValueError("times must be >= 1 (or None for every request)")
        if not math.isfinite(self.retry_after) or self.retry_after < 0:
            raise ValueError("retry_after must be a finite number >= 0")
        if self.seconds is not None and (not math.isfinite(self.seconds) or self.seconds < 0):
            raise ValueError("seconds must be a finite number >= 0")

    @classmethod
    def from_json(cls, data: Any) -> Fault:
        """Parse the control API's body, e.g. ``{"fault": "rate_limit", "times": 2}``."""
        if not isinstance(data, dict):
            raise InvalidRequest("the body must be a JSON object")
        unknown = set(data) - {"fault", "times", "model", "retry_after", "seconds"}
        if unknown:
            raise InvalidRequest(f"unknown fields: {', '.join(sorted(unknown))}")
        try:
            kind = FaultKind(str(data.get("fault")))
        except ValueError:
            kinds = ", ".join(kind.value for kind in FaultKind)
            raise InvalidRequest(
                f"unknown fault {data.get('fault')!r}; 'fault' must be one of: {kinds}",
                param="fault",
            ) from None
        times = _optional_number(data, "times", integer=True)
        retry_after = _optional_number(data, "retry_after")
        try:
            return cls(
                kind=kind,
                times=None if times is None else int(times),
                model=_optional_string(data, "model"),
                retry_after=1.0 if retry_after is None else retry_after,
                seconds=_optional_number(data, "seconds"),
            )
        except ValueError as exc:
            raise InvalidRequest(str(exc)) from None

    def as_json(self) -> dict[str, Any]:
        """The control API's view of this fault."""
        return {
            "fault": self.kind.value,
            "times": self.times,
            "model": self.model,
            "retry_after": self.retry_after,
            "seconds": self.seconds,
        }

    @property
    def slow_seconds(self) -> float:
        """The extra latency a ``slow`` fault adds."""
        return _DEFAULT_SLOW_SECONDS if self.seconds is None else self.seconds

    def error(self) -> SeawallError | None:
        """The error this fault answers with, or None when it is not an error status."""
        if self.kind not in _ERROR_KINDS:
            return None
        if self.kind is FaultKind.RATE_LIMIT:
            return RateLimited(
                "Rate limit reached for requests (simulated).", retry_after=self.retry_after
            )
        if self.kind is FaultKind.UNAVAILABLE:
            return ServiceUnavailable("The upstream is overloaded (simulated).")
        return SeawallError("The server had an error processing your request (simulated).")

    def error_headers(self) -> dict[str, str]:
        """Headers beyond Retry-After that come with this fault's error (x-ratelimit-*)."""
        if self.kind is not FaultKind.RATE_LIMIT:
            return {}
        return {
            "x-ratelimit-limit-requests": str(_ADVERTISED_RPM),
            "x-ratelimit-remaining-requests": "0",
            "x-ratelimit-reset-requests": f"{self.retry_after:g}s",
        }


class _Armed:
    """A fault and how many more requests it applies to."""

    __slots__ = ("fault", "remaining")

    def __init__(self, fault: Fault) -> None:
        self.fault = fault
        self.remaining = fault.times


class FaultSchedule:
    """The faults armed in one simulator process, consumed request by request."""

    def __init__(self, faults: tuple[Fault, ...] = ()) -> None:
        self._armed = [_Armed(fault) for fault in faults]

    def arm(self, fault: Fault) -> None:
        """Apply ``fault`` to upcoming requests, after those already armed."""
        self._armed.append(_Armed(fault))

    def clear(self) -> None:
        """Disarm every fault."""
        self._armed.clear()

    def take(self, model: str | None) -> Fault | None:
        """The fault for a request to ``model``, counting it against its ``times``."""
        if not self._armed:
            return None
        for index, armed in enumerate(self._armed):
            fault = armed.fault
            if fault.model is not None and fault.model != model:
                continue
            if armed.remaining is not None:
                armed.remaining -= 1
                if armed.remaining == 0:
                    del self._armed[index]
            return fault
        return None

    def pending(self) -> list[dict[str, Any]]:
        """The armed faults with what is left of each."""
        return [{**armed.fault.as_json(), "remaining": armed.remaining} for armed in self._armed]


def _optional_number(data: dict[str, Any], key: str, *, integer: bool = False) -> float | None:
    value = data.get(key)
    if value is None:
        return None
    # bool is an int subclass; true/false is never a count or a duration.
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidRequest(f"'{key}' must be a number", param=key)
    if integer and not float(value).is_integer():
        raise InvalidRequest(f"'{key}' must be an integer", param=key)
    return float(value)


def _optional_string(data: dict[str, Any], key: str) -> str | None:
    value = data.get(key)
    if value is None or isinstance(value, str):
        return value
    raise InvalidRequest(f"'{key}' must be a string", param=key)
