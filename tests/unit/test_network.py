"""Source-IP allow-lists: entries are canonical CIDR blocks, and a set list fails closed."""

from __future__ import annotations

import pytest

from spectra.auth.network import InvalidCidr, ip_allowed, normalise_cidrs


@pytest.mark.parametrize(
    ("entry", "canonical"),
    [
        ("10.0.0.0/8", "10.0.0.0/8"),
        ("192.168.1.0/24", "192.168.1.0/24"),
        ("203.0.113.7", "203.0.113.7/32"),
        ("203.0.113.7/32", "203.0.113.7/32"),
        ("0.0.0.0/0", "0.0.0.0/0"),
        (" 10.0.0.0/8 ", "10.0.0.0/8"),
        ("2001:db8::/32", "2001:db8::/32"),
        ("2001:DB8::/32", "2001:db8::/32"),
        ("2001:db8:0:0:0:0:0:1", "2001:db8::1/128"),
        ("2001:db8::1/128", "2001:db8::1/128"),
        ("::/0", "::/0"),
    ],
)
def test_entry_is_normalised_to_canonical_cidr(entry: str, canonical: str) -> None:
    assert normalise_cidrs([entry]) == [canonical]


@pytest.mark.parametrize(
    "entry",
    [
        "10.0.0.1/8",
        "192.168.1.1/24",
        "2001:db8::1/32",
        "10.0.0.0/33",
        "2001:db8::/129",
        "256.0.0.1",
        "10.0.0",
        "10",
        "example.com",
        "",
        "10.0.0.0/",
        "10.0.0.0/8/8",
        "10.0.0.0-10.0.0.255",
        "*",
        "2001:db8:::1",
    ],
)
def test_invalid_entry_is_refused(entry: str) -> None:
    with pytest.raises(InvalidCidr):
        normalise_cidrs([entry])


def test_host_bits_set_are_refused_not_widened() -> None:
    with pytest.raises(InvalidCidr, match=r"10\.0\.0\.1/8"):
        normalise_cidrs(["10.0.0.0/8", "10.0.0.1/8"])


def test_duplicates_are_removed_keeping_first_order() -> None:
    entries = ["10.0.0.0/8", "203.0.113.7", "10.0.0.0/8", "203.0.113.7/32", "2001:db8::/32", "2001:DB8::/32"]
    assert normalise_cidrs(entries) == ["10.0.0.0/8", "203.0.113.7/32", "2001:db8::/32"]


def test_empty_list_normalises_to_empty() -> None:
    assert normalise_cidrs([]) == []


ALLOW_LIST = ["10.0.0.0/8", "203.0.113.7/32", "2001:db8::/32"]


@pytest.mark.parametrize(
    ("source_ip", "allowed"),
    [
        ("10.1.2.3", True),
        ("10.255.255.255", True),
        ("11.0.0.1", False),
        ("203.0.113.7", True),
        ("203.0.113.8", False),
        ("2001:db8::1", True),
        ("2001:db8:ffff::1", True),
        ("2001:db9::1", False),
        ("::ffff:10.1.2.3", True),
        ("::ffff:11.0.0.1", False),
        ("::1", False),
        ("", False),
        (None, False),
        ("not-an-ip", False),
        ("10.1.2.3.4", False),
        ("10.1.2.3/32", False),
    ],
)
def test_source_ip_is_checked_against_a_set_allow_list(source_ip: str | None, allowed: bool) -> None:
    assert ip_allowed(source_ip, ALLOW_LIST) is allowed


@pytest.mark.parametrize("source_ip", ["10.1.2.3", "2001:db8::1", "", None, "garbage"])
def test_empty_allow_list_allows_any_source(source_ip: str | None) -> None:
    assert ip_allowed(source_ip, [])


def test_ipv4_block_does_not_match_ipv6_address_with_the_same_bits() -> None:
    # ::a01:203 has the bit pattern of 10.1.2.3 but is a different (IPv6) address.
    assert not ip_allowed("::a01:203", ["10.0.0.0/8"])
