"""An OTLP/HTTP trace receiver on loopback for benchmarks: accepts, counts, discards.

python bench/otlp_sink.py --port N     # POST /v1/traces, GET /stats
"""

from __future__ import annotations

import argparse

from aiohttp import web


def build_app() -> web.Application:
    """POST /v1/traces answers 200 (an empty ExportTraceServiceResponse); GET /stats counts."""
    counts = {"exports": 0, "bytes": 0}

    async def traces(request: web.Request) -> web.Response:
        counts["exports"] += 1
        counts["bytes"] += len(await request.read())
        return web.Response(body=b"", content_type="application/x-protobuf")

    async def stats(request: web.Request) -> web.Response:
        return web.json_response(counts)

    app = web.Application(client_max_size=64 * 1024 * 1024)
    app.router.add_post("/v1/traces", traces)
    app.router.add_get("/stats", stats)
    return app


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--port", type=int, required=True)
    web.run_app(build_app(), host="127.0.0.1", port=parser.parse_args().port, print=None)
