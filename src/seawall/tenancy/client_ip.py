"""The client's IP address: the TCP peer, or what a trusted proxy says it forwarded.

``X-Forwarded-For`` is believed only when the peer is a configured proxy, and then
read from the right: the first address that is not itself a trusted proxy is the
client. Anything a client writes into the header further left is ignored, so a
client cannot pick the IP its limits are counted against.
"""

from __future__ import annotations

import ipaddress
from functools import lru_cache

_Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class ClientAddress:
    """Resolves client IPs behind the configured trusted proxies."""

    def __init__(self, trusted_proxies: tuple[str, ...]) -> None:
        self._networks: tuple[_Network, ...] = tuple(
            ipaddress.ip_network(name, strict=False) for name in trusted_proxies
        )
        # Peers repeat (a few proxies, many requests): remember each verdict.
        self._is_trusted = lru_cache(maxsize=4096)(self._trusted)

    def resolve(self, peer: str | None, forwarded_for: str | None) -> str | None:
        """The client's address for a request from ``peer`` with this header."""
        if not self._networks or not forwarded_for or peer is None:
            return peer
        if not self._is_trusted(peer):
            return peer
        hops = [hop.strip() for hop in forwarded_for.split(",")]
        for hop in reversed(hops):
            if not hop:
                continue
            if not _is_address(hop):
                return peer  # a garbled header from a trusted proxy: fall back to the peer
            if not self._is_trusted(hop):
                return hop
        return peer

    def _trusted(self, address: str) -> bool:
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(ip in network for network in self._networks)


def _is_address(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True
