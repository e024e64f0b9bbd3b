"""The simulator's routes, and running it in-process."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from aiohttp import web

from seawall.simulator.anthropic_wire import AnthropicWire
from seawall.simulator.context import SimulatorContext
from seawall.simulator.control import ControlApi, Fallback
from seawall.simulator.faults import FaultSchedule
from seawall.simulator.openai_wire import OpenAIWire
from seawall.simulator.profile import SimulatorProfile
from seawall.simulator.stats import SimulatorStats
from seawall.tokens import TokenCounter

SIMULATOR_CONTEXT = web.AppKey("seawall_simulator_context", SimulatorContext)
# Simulated prompts can be whole documents.
_MAX_BODY_BYTES = 64 * 1024 * 1024


def build_simulator_app(
    profile: SimulatorProfile | None = None, *, counter: TokenCounter | None = None
) -> web.Application:
    """An aiohttp application that answers as OpenAI and Anthropic would."""
    context = SimulatorContext.build(profile or SimulatorProfile(), counter)
    openai = OpenAIWire(context)
    anthropic = AnthropicWire(context)
    control = ControlApi(context)
    app = web.Application(client_max_size=_MAX_BODY_BYTES)
    app[SIMULATOR_CONTEXT] = context
    router = app.router
    router.add_post("/v1/chat/completions", openai.chat_completions)
    router.add_post("/v1/embeddings", openai.embeddings)
    router.add_get("/v1/models", openai.list_models)
    router.add_get("/v1/models/{model}", openai.retrieve_model)
    router.add_post("/v1/messages", anthropic.messages)
    router.add_post("/_simulator/faults", control.arm_faults)
    router.add_get("/_simulator/faults", control.list_faults)
    router.add_delete("/_simulator/faults", control.clear_faults)
    router.add_post("/_simulator/answers", control.script_answer)
    router.add_delete("/_simulator/answers", control.clear_answers)
    router.add_get("/_simulator/stats", control.stats)
    router.add_delete("/_simulator/stats", control.reset_stats)
    known = frozenset(
        resource.canonical for resource in router.resources() if "{" not in resource.canonical
    )
    router.add_route("*", "/{tail:.*}", Fallback(known).handle)
    return app


@dataclass(frozen=True, slots=True)
class RunningSimulator:
    """A simulator serving on a real port; ``url`` has no trailing slash or /v1."""

    url: str
    host: str
    port: int
    context: SimulatorContext

    @property
    def openai_base_url(self) -> str:
        """The base URL an OpenAI SDK takes (Anthropic's SDK takes ``url`` itself)."""
        return self.url + "/v1"

    @property
    def faults(self) -> FaultSchedule:
        """The fault schedule, for arming faults without the control API."""
        return self.context.faults

    @property
    def stats(self) -> SimulatorStats:
        """What the simulator has served."""
        return self.context.stats


@asynccontextmanager
async def running_simulator(
    profile: SimulatorProfile | None = None,
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    shutdown_timeout: float = 1.0,
) -> AsyncIterator[RunningSimulator]:
    """Serve a simulator on ``host:port`` (0 picks a free port) for the duration of the block."""
    app = build_simulator_app(profile)
    # handler_cancellation lets a hung or paced handler stop as soon as its client leaves.
    runner = web.AppRunner(
        app, access_log=None, handler_cancellation=True, shutdown_timeout=shutdown_timeout
    )
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port)
        await site.start()
        bound_host, bound_port = runner.addresses[0][:2]
        url_host = f"[{bound_host}]" if ":" in bound_host else bound_host
        yield RunningSimulator(
            url=f"http://{url_host}:{bound_port}",
            host=bound_host,
            port=bound_port,
            context=app[SIMULATOR_CONTEXT],
        )
    finally:
        await runner.cleanup()
