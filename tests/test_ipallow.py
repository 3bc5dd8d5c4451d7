"""sessiontally.ipallow: API-key IP allowlists (CONTRACT.md sections 1 and 2)."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sessiontally.ipallow import is_allowed, parse_entry


@pytest.mark.parametrize(
    ("text", "network"),
    [
        ("10.1.2.3", "10.1.2.3/32"),
        ("10.0.0.0/8", "10.0.0.0/8"),
        ("10.1.2.3/8", "10.0.0.0/8"),  # host bits are tolerated
        (" 192.168.0.0/16 ", "192.168.0.0/16"),
        ("0.0.0.0/0", "0.0.0.0/0"),
        ("2001:db8::1", "2001:db8::1/128"),
        ("2001:db8::/32", "2001:db8::/32"),
        ("2001:DB8::/32", "2001:db8::/32"),
        ("::/0", "::/0"),
        ("::1", "::1/128"),
        ("::ffff:10.1.2.3", "::ffff:a01:203/128"),
    ],
)
def test_parse_entry(text, network):
    assert parse_entry(text) == ipaddress.ip_network(network)


@pytest.mark.parametrize(
    "text",
    ["", "garbage", "10.0.0", "10.0.0.256", "10.0.0.0/33", "2001:db8::/129", "10.0.0.0/-1",
     "10.0.0.0/8/8", "2001:db8:::1", "localhost", "10.0.0.1-10.0.0.9", "１０.0.0.1"],
)
def test_parse_entry_rejects(text):
    with pytest.raises(ValueError, match="not an IP address or CIDR subnet"):
        parse_entry(text)


def test_empty_allowlist_allows_everything():
    for client in ("10.1.2.3", "2001:db8::1", None, "", "garbage"):
        assert is_allowed(client, [])
        assert is_allowed(client, ())


@pytest.mark.parametrize(
    ("client", "entries", "allowed"),
    [
        ("10.1.2.3", ["10.1.2.3"], True),
        ("10.1.2.4", ["10.1.2.3"], False),
        ("10.1.2.3", ["10.0.0.0/8"], True),
        ("11.1.2.3", ["10.0.0.0/8"], False),
        ("10.255.255.255", ["10.0.0.0/8"], True),
        ("192.168.1.1", ["10.0.0.0/8", "192.168.0.0/16"], True),
        ("8.8.8.8", ["0.0.0.0/0"], True),
        ("2001:db8::1", ["2001:db8::/32"], True),
        ("2001:db9::1", ["2001:db8::/32"], False),
        ("2001:db8:0:0:0:0:0:1", ["2001:db8::1"], True),
        ("::1", ["::1"], True),
        ("::1", ["127.0.0.1"], False),
        ("127.0.0.1", ["::1"], False),
        ("fe80::1%eth0", ["fe80::/10"], True),  # zone id is ignored
        # IPv4-mapped IPv6 clients (dual-stack sockets) are their IPv4 address
        ("::ffff:10.1.2.3", ["10.0.0.0/8"], True),
        ("::ffff:10.1.2.3", ["10.1.2.3"], True),
        ("::ffff:11.1.2.3", ["10.0.0.0/8"], False),
        # ... and entries written in the mapped form mean that IPv4 address or subnet
        ("::ffff:10.1.2.3", ["::ffff:10.1.2.3"], True),
        ("10.1.2.3", ["::ffff:10.1.2.3"], True),
        ("10.1.2.3", ["::ffff:10.0.0.0/104"], True),
        ("11.1.2.3", ["::ffff:10.0.0.0/104"], False),
        # an IPv6-only allowlist does not let IPv4 clients in
        ("10.1.2.3", ["::/0"], False),
        ("::ffff:10.1.2.3", ["::/0"], False),
        ("2001:db8::1", ["0.0.0.0/0"], False),
    ],
)
def test_is_allowed(client, entries, allowed):
    assert is_allowed(client, entries) is allowed
    assert is_allowed(client, tuple(entries)) is allowed


@pytest.mark.parametrize("client", [None, "", "garbage", "10.0.0", "10.1.2.3:443", " 10.1.2.3", "unix:/sock",
                                    "[::1]", "::ffff:999.1.1.1", "%eth0"])
def test_garbage_client_is_refused_by_a_non_empty_allowlist(client):
    assert is_allowed(client, ["0.0.0.0/0", "::/0"]) is False


def test_entries_may_be_any_iterable():
    assert is_allowed("10.1.2.3", iter(["10.0.0.0/8"]))
    assert is_allowed("10.1.2.3", (e for e in ["10.0.0.0/8"]))


@settings(max_examples=300, deadline=None)
@given(st.ip_addresses(v=4), st.integers(0, 32))
def test_ipv4_subnet_membership(address, prefix):
    network = ipaddress.ip_network(f"{address}/{prefix}", strict=False)
    assert is_allowed(str(address), [str(network)])
    assert is_allowed(f"::ffff:{address}", [str(network)])
    outside = network.broadcast_address + 1 if int(network.broadcast_address) < 2**32 - 1 else None
    if outside is not None:
        assert not is_allowed(str(outside), [str(network)])


@settings(max_examples=300, deadline=None)
@given(st.ip_addresses(v=6), st.integers(0, 128))
def test_ipv6_subnet_membership(address, prefix):
    network = ipaddress.ip_network(f"{address}/{prefix}", strict=False)
    if address.ipv4_mapped is None or prefix >= 96:
        assert is_allowed(str(address), [str(network)])
    else:  # an IPv4 client (spelled mapped) is not let in by a wider IPv6 subnet like ::/0
        assert not is_allowed(str(address), [str(network)])
