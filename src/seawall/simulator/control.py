"""The control API under /_simulator: arm and clear faults, read and reset counts.

It takes no API key: the simulator is a test fixture bound to loopback by default.
"""

from __future__ import annotations

from typing import Any

import orjson
from aiohttp import web

from seawall.errors import InvalidRequest, MethodNotAllowed, NotFound, SeawallError
from seawall.simulator import anthropic_wire, openai_wire
from seawall.simulator.context import SimulatorContext
from seawall.simulator.faults import Fault


def _json(body: Any) -> web.Response:
    return web.Response(body=orjson.dumps(body), content_type="application/json")


class ControlApi:
    """Handlers that change or report the simulator's state."""

    def __init__(self, context: SimulatorContext) -> None:
        self._context = context

    async def arm_faults(self, request: web.Request) -> web.Response:
        """POST /_simulator/faults: arm one fault object or an array of them."""
        try:
            body = orjson.loads(await request.read())
            faults = [
                Fault.from_json(item) for item in (body if isinstance(body, list) else [body])
            ]
        except orjson.JSONDecodeError:
            return openai_wire.error_response(InvalidRequest("The body is not valid JSON."))
        except SeawallError as error:
            return openai_wire.error_response(error)
        for fault in faults:
            self._context.faults.arm(fault)
        return _json({"armed": self._context.faults.pending()})

    async def list_faults(self, request: web.Request) -> web.Response:
        """GET /_simulator/faults: the armed faults and what is left of each."""
        return _json({"armed": self._context.faults.pending()})

    async def clear_faults(self, request: web.Request) -> web.Response:
        """DELETE /_simulator/faults: disarm every fault."""
        self._context.faults.clear()
        return _json({"armed": []})

    async def script_answer(self, request: web.Request) -> web.Response:
        """POST /_simulator/answers: {"contains": "...", "text": "..."} answers ``text`` to
        every prompt containing ``contains``, e.g. to make a model refuse."""
        try:
            body = orjson.loads(await request.read())
        except orjson.JSONDecodeError:
            return openai_wire.error_response(InvalidRequest("The body is not valid JSON."))
        if not isinstance(body, dict) or not all(
            isinstance(body.get(name), str) and body[name] for name in ("contains", "text")
        ):
            return openai_wire.error_response(
                InvalidRequest("An answer script needs non-empty strings 'contains' and 'text'.")
            )
        self._context.writer.script(body["contains"], body["text"])
        return _json({"scripts": self._context.writer.scripts})

    async def clear_answers(self, request: web.Request) -> web.Response:
        """DELETE /_simulator/answers: answer every prompt the usual way again."""
        self._context.writer.clear_scripts()
        return _json({"scripts": []})

    async def stats(self, request: web.Request) -> web.Response:
        """GET /_simulator/stats: requests, faults, answers by status, capacity refusals."""
        return _json(self._context.stats.as_json())

    async def reset_stats(self, request: web.Request) -> web.Response:
        """DELETE /_simulator/stats: start counting from zero."""
        self._context.stats.reset()
        return _json(self._context.stats.as_json())


class Fallback:
    """Answers unknown paths (404) and wrong methods (405) in the route's wire format."""

    def __init__(self, known_paths: frozenset[str]) -> None:
        self._known = known_paths

    async def handle(self, request: web.Request) -> web.Response:
        """Any request no route took."""
        error: SeawallError
        if request.path in self._known:
            error = MethodNotAllowed(f"Method {request.method} is not allowed on {request.path}.")
        else:
            error = NotFound(f"Unknown path: {request.path}")
        if request.path.startswith("/v1/messages"):
            return anthropic_wire.error_response(error)
        return openai_wire.error_response(error)
