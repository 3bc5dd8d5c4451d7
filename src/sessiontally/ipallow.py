"""IP allowlists: parse addresses and CIDR subnets (IPv4 and IPv6), and match. Pure."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from functools import lru_cache

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_entry(text: str) -> Network:
    """An address or a CIDR subnet; raises ValueError with a readable message."""
    try:
        return ipaddress.ip_network(text.strip(), strict=False)
    except ValueError:
        raise ValueError(f"{text!r} is not an IP address or CIDR subnet") from None


_IPV4_MAPPED = ipaddress.IPv6Network("::ffff:0:0/96")


def _unmapped(network: Network) -> Network:
    """An entry inside ::ffff:0:0/96 as the IPv4 subnet it means (clients are unmapped too)."""
    if isinstance(network, ipaddress.IPv6Network) and network.subnet_of(_IPV4_MAPPED):
        return ipaddress.IPv4Network((int(network.network_address) & 0xFFFFFFFF, network.prefixlen - 96))
    return network


@lru_cache(maxsize=1024)
def _networks(entries: tuple[str, ...]) -> tuple[Network, ...]:
    return tuple(_unmapped(parse_entry(e)) for e in entries)


def is_allowed(client: str | None, entries: Iterable[str]) -> bool:
    """True when ``entries`` is empty (no allowlist) or ``client`` falls in one of them."""
    entries = tuple(entries)
    if not entries:
        return True
    if not client:
        return False
    try:
        address = ipaddress.ip_address(client.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped  # ::ffff:10.1.2.3 is the IPv4 client 10.1.2.3
    return any(address in network for network in _networks(entries))
