"""A fake upstream that speaks OpenAI's and Anthropic's wire formats, with injectable faults.

Tests, chaos drills and benchmarks point real SDKs (or Seawall) at it::

    async with running_simulator(SimulatorProfile(latency_ms=20)) as sim:
        client = openai.AsyncOpenAI(base_url=sim.url + "/v1", api_key="x")
        sim.faults.arm(Fault(FaultKind.RATE_LIMIT, times=2))

Out of process, ``seawall simulate`` serves the same app, and
``POST /_simulator/faults`` arms faults over HTTP.
"""

from __future__ import annotations

from seawall.simulator.app import (
    SIMULATOR_CONTEXT,
    RunningSimulator,
    build_simulator_app,
    running_simulator,
)
from seawall.simulator.context import SimulatorContext
from seawall.simulator.faults import Fault, FaultKind, FaultSchedule
from seawall.simulator.profile import SimulatorProfile
from seawall.simulator.stats import SimulatorStats

__all__ = [
    "SIMULATOR_CONTEXT",
    "Fault",
    "FaultKind",
    "FaultSchedule",
    "RunningSimulator",
    "SimulatorContext",
    "SimulatorProfile",
    "SimulatorStats",
    "build_simulator_app",
    "running_simulator",
]
