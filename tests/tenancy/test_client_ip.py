"""Client IPs: X-Forwarded-For is believed only from trusted proxies, read from the right."""

from __future__ import annotations

from seawall.tenancy.client_ip import ClientAddress


def test_without_trusted_proxies_the_peer_is_the_client() -> None:
    assert ClientAddress(()).resolve("203.0.113.9", "198.51.100.1") == "203.0.113.9"


def test_an_untrusted_peer_cannot_claim_another_address() -> None:
    address = ClientAddress(("10.0.0.0/8",))
    assert address.resolve("203.0.113.9", "198.51.100.1") == "203.0.113.9"


def test_behind_trusted_proxies_the_rightmost_untrusted_hop_is_the_client() -> None:
    address = ClientAddress(("10.0.0.0/8", "192.168.1.1"))
    # The client wrote a fake first hop; the proxies appended what they saw.
    forwarded = "1.2.3.4, 198.51.100.7, 192.168.1.1"
    assert address.resolve("10.1.2.3", forwarded) == "198.51.100.7"


def test_a_garbled_header_from_a_trusted_proxy_falls_back_to_the_peer() -> None:
    address = ClientAddress(("10.0.0.0/8",))
    assert address.resolve("10.1.2.3", "not-an-ip") == "10.1.2.3"
    assert address.resolve("10.1.2.3", None) == "10.1.2.3"


def test_ipv6_proxies_and_clients() -> None:
    address = ClientAddress(("::1",))
    assert address.resolve("::1", "2001:db8::5") == "2001:db8::5"
