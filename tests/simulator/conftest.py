"""Simulators for the tests: in the test's event loop, or on a thread for sync clients."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest

from seawall.simulator import RunningSimulator, running_simulator
from tests.simulator.clients import simulator_thread
from tests.simulator.openapi_spec import OpenAISpec


@pytest.fixture
async def simulator() -> AsyncIterator[RunningSimulator]:
    """A default simulator serving from the test's event loop."""
    async with running_simulator() as sim:
        yield sim


@pytest.fixture
def threaded_simulator() -> Iterator[RunningSimulator]:
    """A default simulator with its own loop on a thread, for synchronous clients."""
    with simulator_thread() as sim:
        yield sim


@pytest.fixture(scope="session")
def openai_spec() -> OpenAISpec:
    """OpenAI's published specification, parsed once per test session."""
    return OpenAISpec()
