"""The smallest gateway: parse, forward, parse, answer; for comparing the stack's parts.

``forwarder_app`` is an ASGI app factory for any server (uvicorn, granian). It
does the JSON and HTTP work Seawall does per request and nothing else: parse
the client's body, set the upstream model, serialise, POST upstream, parse the
answer, serialise it back. The upstream client and the JSON library are picked
by environment variables, so one module serves every variant:

  FORWARDER_UPSTREAM  URL to POST to (required)
  FORWARDER_CLIENT    aiohttp | httpx          (default aiohttp)
  FORWARDER_JSON      orjson | json            (default orjson)
"""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import httpx
import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

Post = Callable[[bytes], Awaitable[tuple[int, bytes]]]
_POOL = 512
_HEADERS = {"Content-Type": "application/json", "Authorization": "Bearer forwarder"}


def _codec(kind: str) -> tuple[Callable[[bytes], Any], Callable[[Any], bytes]]:
    if kind == "orjson":
        return orjson.loads, orjson.dumps
    if kind == "json":
        return json.loads, lambda value: json.dumps(value, separators=(",", ":")).encode()
    raise ValueError(f"FORWARDER_JSON must be orjson or json, not {kind!r}")


@asynccontextmanager
async def _aiohttp_post(url: str) -> AsyncIterator[Post]:
    connector = aiohttp.TCPConnector(limit=_POOL, keepalive_timeout=30)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def post(payload: bytes) -> tuple[int, bytes]:
            async with session.post(url, data=payload, headers=_HEADERS) as response:
                return response.status, await response.read()

        yield post


@asynccontextmanager
async def _httpx_post(url: str) -> AsyncIterator[Post]:
    limits = httpx.Limits(max_connections=_POOL, max_keepalive_connections=_POOL)
    async with httpx.AsyncClient(limits=limits, timeout=30.0) as client:

        async def post(payload: bytes) -> tuple[int, bytes]:
            response = await client.post(url, content=payload, headers=_HEADERS)
            return response.status_code, response.content

        yield post


def forwarder_app() -> Starlette:
    """The forwarder configured from the environment."""
    url = os.environ["FORWARDER_UPSTREAM"]
    client = os.environ.get("FORWARDER_CLIENT", "aiohttp")
    loads, dumps = _codec(os.environ.get("FORWARDER_JSON", "orjson"))
    if client not in ("aiohttp", "httpx"):
        raise ValueError(f"FORWARDER_CLIENT must be aiohttp or httpx, not {client!r}")
    slot: list[Post] = []

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        opener = _aiohttp_post if client == "aiohttp" else _httpx_post
        async with opener(url) as post:
            slot.append(post)
            yield

    async def chat(request: Request) -> Response:
        body = loads(await request.body())
        body["model"] = "gpt-4o-mini"
        status, raw = await slot[0](dumps(body))
        return Response(dumps(loads(raw)), status, media_type="application/json")

    return Starlette(
        routes=[Route("/v1/chat/completions", chat, methods=["POST"])], lifespan=lifespan
    )
