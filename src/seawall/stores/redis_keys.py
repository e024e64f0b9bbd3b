"""Every Redis key prefix Seawall uses, in one place.

All keys start with ``PREFIX``, so an operator can find (or clear) everything Seawall
wrote with ``SCAN MATCH seawall:*`` and Seawall can share a Redis with other apps.
Each Redis-backed store adds its own constant here, e.g. ``CACHE = PREFIX + "cache:"``,
and builds its keys from it; no other module spells a key prefix.
"""

from __future__ import annotations

PREFIX = "seawall:"

# Circuit breaker state and outcome windows, per deployment.
BREAKER = PREFIX + "breaker:"
# Provider rate budgets (request and token schedules, adaptive rate, parking), per deployment.
RATE = PREFIX + "rate:"
# Budget spend and reservations, per scope, subject and period window.
BUDGET = PREFIX + "budget:"
# Client rate limits (requests and tokens per minute), per key, user and client IP.
LIMIT = PREFIX + "limit:"
# Failed authentication attempts, per client IP.
AUTH_FAILURES = PREFIX + "authfail:"
# Cached answers, per scope and request key.
CACHE = PREFIX + "cache:"
# Hits per cached answer, one sorted set per public model (for cache warming).
CACHE_HITS = PREFIX + "cache-hits:"
# The semantic cache's learned messages, one stream every instance reads.
CACHE_SEMANTIC = PREFIX + "cache-semantic"
# Guard strikes and blocks, per tenant and end user.
GUARD_STRIKES = PREFIX + "guard-strikes:"
# Guard revert switches and detection counts, per route and tenant.
GUARD_REVERT = PREFIX + "guard-revert:"
