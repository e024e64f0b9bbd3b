"""The guard's Prometheus metrics: detections per rule and action, and reverts."""

from __future__ import annotations

from prometheus_client import Counter

# Rule ids come from the code (a bounded set), actions from configuration.
DETECTIONS = Counter(
    "seawall_guard_detections",
    "Guard detections, by rule, by the action taken on the request and by phase (input or output).",
    ["seawall_guard_rule", "seawall_guard_action", "seawall_guard_phase"],
)
REVERT_SWITCHES = Counter(
    "seawall_guard_revert_switches",
    "Routes switched to their safe prompt version and profile (state on) and back (off); "
    "on minus off is how many (route, tenant) switches are on.",
    ["seawall_route", "seawall_guard_state"],
)
USER_BLOCKS = Counter(
    "seawall_guard_user_blocks",
    "Requests refused because their end user is blocked after too many strikes.",
)
