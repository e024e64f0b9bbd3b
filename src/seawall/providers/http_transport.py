"""HTTP to upstream providers: pooled connections, per-phase timeouts, errors mapped once.

A non-streaming call is one ``exchange`` on a keep-alive connection of
``http_exchange`` (the hot path); a stream is ``post`` on an aiohttp session and read
with ``sse_events``. Phases: ``connect`` (TCP and TLS), ``first_byte`` (request sent until response
headers), ``between_chunks`` (silence while reading the body or a stream) and
``total``. Transport failures (refused, reset, timeouts) become Seawall errors
here and nowhere else; HTTP error statuses are mapped by the provider's own
translator, passed in as ``StatusMapper``.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import contextmanager

import aiohttp
from multidict import CIMultiDict, CIMultiDictProxy
from yarl import URL

from seawall.config.schema import Deployment, Timeouts
from seawall.errors import (
    SeawallError,
    UpstreamError,
    UpstreamProtocolError,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from seawall.providers.http_exchange import ExchangeFailed, ExchangePool, ExchangeTimedOut, Target

StatusMapper = Callable[[Deployment, int, "CIMultiDictProxy[str]", bytes], SeawallError]


@contextmanager
def transport_errors(deployment: Deployment, phase: str) -> Iterator[None]:
    """Map aiohttp and timeout failures to Seawall's upstream errors."""
    try:
        yield
    except SeawallError:
        raise
    except TimeoutError:
        raise UpstreamTimeout(
            f"Deployment '{deployment.name}' timed out waiting for the {phase} "
            f"(limit {_limit(deployment.timeouts, phase):g}s)."
        ) from None
    except aiohttp.ClientConnectorError as exc:
        raise UpstreamUnavailable(
            f"Could not connect to deployment '{deployment.name}': {exc.os_error or exc}."
        ) from None
    except (aiohttp.ServerDisconnectedError, aiohttp.ClientOSError) as exc:
        raise UpstreamError(
            f"Deployment '{deployment.name}' closed the connection during the {phase}: "
            f"{exc.__class__.__name__}."
        ) from None
    except aiohttp.ClientPayloadError:
        raise UpstreamError(
            f"Deployment '{deployment.name}' broke off the response during the {phase}."
        ) from None
    except aiohttp.ClientError as exc:
        raise UpstreamError(
            f"Deployment '{deployment.name}' failed during the {phase}: {exc}."
        ) from None


def _limit(timeouts: Timeouts, phase: str) -> float:
    if phase == "connection":
        return timeouts.connect
    if phase == "response headers":
        return timeouts.first_byte
    if phase in ("stream", "response body"):
        return timeouts.between_chunks
    return timeouts.total


class HttpTransport:
    """Pooled connections shared by every HTTP deployment of a provider kind.

    ``connections`` caps the aiohttp session's (streams); exchanges open a connection
    per concurrent call and keep up to ``http_exchange.MAX_IDLE_PER_ORIGIN`` idle.
    """

    def __init__(self, connections: int = 512) -> None:
        self._connections = connections
        self._session: aiohttp.ClientSession | None = None
        self._timeouts: dict[str, aiohttp.ClientTimeout] = {}
        # Parsed once: a deployment posts to the same few URLs all its life.
        self._urls: dict[str, URL] = {}
        self._targets: dict[str, Target] = {}
        self._exchanges = ExchangePool()

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None:
            # Created lazily so it binds to the running loop of the serving process.
            connector = aiohttp.TCPConnector(
                limit=self._connections, keepalive_timeout=30, ttl_dns_cache=300
            )
            self._session = aiohttp.ClientSession(
                connector=connector,
                skip_auto_headers=("User-Agent",),
                auto_decompress=True,
                # Cookies an upstream sets must not ride along on other clients' requests.
                cookie_jar=aiohttp.DummyCookieJar(),
            )
        return self._session

    def _timeout(self, deployment: Deployment) -> aiohttp.ClientTimeout:
        timeout = self._timeouts.get(deployment.name)
        if timeout is None:
            phases = deployment.timeouts
            timeout = aiohttp.ClientTimeout(
                total=phases.total,
                sock_connect=phases.connect,
                sock_read=phases.between_chunks,
            )
            self._timeouts[deployment.name] = timeout
        return timeout

    def _url(self, url: str) -> URL:
        parsed = self._urls.get(url)
        if parsed is None:
            parsed = self._urls[url] = URL(url)
        return parsed

    async def post(
        self,
        deployment: Deployment,
        url: str,
        headers: dict[str, str],
        payload: bytes,
        map_status: StatusMapper,
    ) -> aiohttp.ClientResponse:
        """Send a request; return the response once its headers arrived with status < 400."""
        with transport_errors(deployment, "response headers"):
            async with asyncio.timeout(deployment.timeouts.first_byte):
                response = await self._client().post(
                    self._url(url), data=payload, headers=headers, timeout=self._timeout(deployment)
                )
        if response.status >= 400:
            with transport_errors(deployment, "error body"):
                raw = await response.read()
            response.release()
            raise map_status(deployment, response.status, response.headers, raw)
        return response

    async def exchange(
        self,
        deployment: Deployment,
        url: str,
        headers: dict[str, str],
        payload: bytes,
        map_status: StatusMapper,
    ) -> bytes:
        """POST and read the whole answer (``http_exchange``); its body when the status < 400."""
        target = self._targets.get(url)
        if target is None:
            target = self._targets[url] = Target.parse(url)
        phases = deployment.timeouts
        try:
            answer = await self._exchanges.post(
                target,
                headers,
                payload,
                connect_timeout=phases.connect,
                head_timeout=phases.first_byte,
                body_timeout=phases.between_chunks,
            )
        except ExchangeTimedOut as exc:
            raise UpstreamTimeout(
                f"Deployment '{deployment.name}' timed out waiting for the {exc.phase} "
                f"(limit {_limit(phases, exc.phase):g}s)."
            ) from None
        except ExchangeFailed as exc:
            if exc.phase == "connection":
                raise UpstreamUnavailable(
                    f"Could not connect to deployment '{deployment.name}': {exc.reason}."
                ) from None
            raise UpstreamError(
                f"Deployment '{deployment.name}' failed during the {exc.phase}: {exc.reason}."
            ) from None
        if answer.status >= 400:
            upstream_headers = CIMultiDictProxy(CIMultiDict(answer.headers))
            raise map_status(deployment, answer.status, upstream_headers, answer.body)
        return answer.body

    async def aclose(self) -> None:
        """Close every pooled connection."""
        self._exchanges.close()
        if self._session is not None:
            await self._session.close()
            self._session = None


async def sse_events(
    deployment: Deployment, response: aiohttp.ClientResponse
) -> AsyncIterator[tuple[str, bytes]]:
    """(event, data) pairs of a server-sent-events body; multi-line data joined by newlines."""
    event = ""
    data: list[bytes] = []
    with transport_errors(deployment, "stream"):
        async for raw_line in response.content:
            line = raw_line.rstrip(b"\r\n")
            if not line:
                if data:
                    yield event, b"\n".join(data)
                event, data = "", []
                continue
            if line.startswith(b"data:"):
                data.append(line[5:].lstrip(b" "))
            elif line.startswith(b"event:"):
                event = line[6:].strip().decode("utf-8", "replace")
            # id:, retry: and comments (":") carry nothing Seawall needs.
        if data:
            yield event, b"\n".join(data)


def protocol_error(deployment: Deployment, what: str) -> UpstreamProtocolError:
    """The error for an upstream answer that is not its own wire format."""
    return UpstreamProtocolError(f"Deployment '{deployment.name}' sent {what}.")
