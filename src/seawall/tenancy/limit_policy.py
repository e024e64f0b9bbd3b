"""Which client limits apply to a request: its key's, its end user's and its IP's."""

from __future__ import annotations

from seawall.config.tenancy import TenancySettings
from seawall.pipeline.context import RequestContext
from seawall.tenancy.client_limits import (
    ClientLimits,
    Entry,
    ip_subject,
    key_subject,
    user_subject,
)


class LimitPolicy:
    """``limits_for`` of the client rate-limit stage, from the key and configuration."""

    def __init__(self, tenancy: TenancySettings) -> None:
        self._user = tenancy.user_limits
        self._ip = tenancy.ip_limits
        # Keys share a handful of (rpm, tpm) pairs: build each ClientLimits once.
        self._per_key: dict[tuple[int | None, int | None], ClientLimits] = {}

    def __call__(self, ctx: RequestContext) -> list[Entry]:
        """The subjects limiting this request, each with its limits (none: no limit)."""
        entries: list[Entry] = []
        principal = ctx.principal
        if principal is not None and (principal.rpm is not None or principal.tpm is not None):
            pair = (principal.rpm, principal.tpm)
            limits = self._per_key.get(pair)
            if limits is None:
                limits = self._per_key[pair] = ClientLimits(rpm=pair[0], tpm=pair[1])
            entries.append((key_subject(principal.key_id), limits))
        user = ctx.identity.user
        if user and principal is not None and not self._user.unlimited:
            entries.append((user_subject(principal.tenant_id, user), self._user))
        address = ctx.identity.client_ip
        if address and not self._ip.unlimited:
            entries.append((ip_subject(address), self._ip))
        return entries
