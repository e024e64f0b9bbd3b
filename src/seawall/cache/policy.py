"""Whether a request may be answered from the cache, and whether its answer is kept.

By default only deterministic requests are cached: ``temperature`` 0, or a ``seed``
(OpenAI's default temperature is 1, so a request that sets neither is not). A
request overrides that with ``Cache-Control`` (or the body field ``seawall_cache``,
same syntax, for clients that cannot set headers; it never reaches the upstream):

* ``no-store``: neither answered from the cache nor kept in it;
* ``no-cache``: answered upstream, and the fresh answer kept;
* ``max-age=N``: cached even when not deterministic, answered only by an entry at
  most N seconds old.

Anything else in the header is ignored, as HTTP caches do; a body field that is not
a string, or a ``max-age`` that is not a whole number, is the client's mistake and
gets a 400.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from seawall.errors import InvalidRequest

# The body field that carries a Cache-Control value.
BODY_FIELD = "seawall_cache"


@dataclass(frozen=True, slots=True)
class Directive:
    """What a request asked of the cache."""

    no_store: bool = False
    no_cache: bool = False
    max_age: int | None = None

    @property
    def lookup(self) -> bool:
        """Whether the cache may answer."""
        return not (self.no_store or self.no_cache)


NONE = Directive()


def parse_directive(value: str, *, strict: bool = False) -> Directive:
    """A ``Cache-Control`` value; ``strict`` (the body field) refuses a malformed max-age."""
    no_store = no_cache = False
    max_age: int | None = None
    for part in value.split(","):
        name, _, argument = part.strip().partition("=")
        name = name.strip().lower()
        if name == "no-store":
            no_store = True
        elif name == "no-cache":
            no_cache = True
        elif name == "max-age":
            argument = argument.strip().strip('"')
            if argument.isdigit():
                max_age = int(argument)
            elif strict:
                raise InvalidRequest(
                    f"{BODY_FIELD}: max-age must be a whole number of seconds, got {argument!r}.",
                    param=BODY_FIELD,
                )
    return Directive(no_store, no_cache, max_age)


def directive_of(header: str | None, body: dict[str, Any]) -> Directive:
    """The request's directive: the body field's, else the header's; the field is removed."""
    field = body.pop(BODY_FIELD, None)
    if field is not None:
        if not isinstance(field, str):
            raise InvalidRequest(
                f"{BODY_FIELD} must be a Cache-Control string such as 'no-store' or 'max-age=60'.",
                param=BODY_FIELD,
            )
        return parse_directive(field, strict=True)
    return NONE if header is None else parse_directive(header)


def deterministic(body: dict[str, Any]) -> bool:
    """Whether the request asks for a repeatable answer: temperature 0 or a seed."""
    return body.get("temperature") == 0 or body.get("seed") is not None
