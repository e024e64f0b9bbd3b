"""SDK clients aimed at a simulator, and a simulator on a thread for synchronous clients."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import anthropic
import openai

from seawall.simulator import RunningSimulator, SimulatorProfile, running_simulator


@contextmanager
def simulator_thread(profile: SimulatorProfile | None = None) -> Iterator[RunningSimulator]:
    """Serve a simulator from a background thread for the duration of the block."""
    started = threading.Event()
    handles: list[tuple[RunningSimulator, asyncio.AbstractEventLoop, asyncio.Event]] = []

    async def serve() -> None:
        async with running_simulator(profile) as sim:
            stop = asyncio.Event()
            handles.append((sim, asyncio.get_running_loop(), stop))
            started.set()
            await stop.wait()

    thread = threading.Thread(target=asyncio.run, args=(serve(),), daemon=True)
    thread.start()
    assert started.wait(timeout=10), "the simulator thread did not start"
    sim, loop, stop = handles[0]
    try:
        yield sim
    finally:
        loop.call_soon_threadsafe(stop.set)
        thread.join(timeout=10)


def async_openai(
    sim: RunningSimulator, *, api_key: str = "sk-test", timeout: float = 10.0
) -> openai.AsyncOpenAI:
    """An OpenAI SDK client aimed straight at the simulator, without retries."""
    return openai.AsyncOpenAI(
        base_url=sim.url + "/v1", api_key=api_key, max_retries=0, timeout=timeout
    )


def sync_openai(
    sim: RunningSimulator, *, api_key: str = "sk-test", timeout: float = 10.0
) -> openai.OpenAI:
    """The synchronous OpenAI SDK client, aimed at the simulator, without retries."""
    return openai.OpenAI(base_url=sim.url + "/v1", api_key=api_key, max_retries=0, timeout=timeout)


def async_anthropic(
    sim: RunningSimulator, *, api_key: str = "sk-ant-test", timeout: float = 10.0
) -> anthropic.AsyncAnthropic:
    """An Anthropic SDK client aimed at the simulator, without retries."""
    return anthropic.AsyncAnthropic(
        base_url=sim.url, api_key=api_key, max_retries=0, timeout=timeout
    )
