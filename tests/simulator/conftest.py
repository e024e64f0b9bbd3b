"""Simulators for the tests: in the test's event loop, or on a thread for sync clients."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest

from seawall.simulator import RunningSimulator, running_simulator
from tests.openai_spec import OpenAISpec, openai_spec
from tests.simulator.clients import simulator_thread


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


@pytest.fixture(name="openai_spec", scope="session")
def openai_spec_fixture() -> OpenAISpec:
    """OpenAI's published specification, parsed once per test session."""
    return openai_spec()
