"""Source-IP allow-lists for API keys (IPv4 and IPv6, CIDR blocks or single addresses)."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence

_IPV4_MAPPED = ipaddress.IPv6Network("::ffff:0:0/96")


class InvalidCidr(ValueError):
    """An allow-list entry that is neither an address nor a CIDR block."""


def normalise_cidrs(entries: Sequence[str]) -> list[str]:
    """Validate allow-list entries and return them in canonical CIDR form, without duplicates.

    A block with host bits set (``10.0.0.1/8``) is refused rather than silently widened or
    narrowed: an allow-list is security configuration and must mean what it says.
    """
    canonical: list[str] = []
    for entry in entries:
        try:
            network = ipaddress.ip_network(str(entry).strip(), strict=True)
        except ValueError as error:
            raise InvalidCidr(f"{entry!r} is not an IP address or CIDR block") from error
        if isinstance(network, ipaddress.IPv6Network) and network.subnet_of(_IPV4_MAPPED):
            # Sources are compared as IPv4 when IPv4-mapped, so store such entries as IPv4 too.
            mapped = network.network_address.ipv4_mapped
            network = ipaddress.ip_network(f"{mapped}/{network.prefixlen - 96}")
        text = str(network)
        if text not in canonical:
            canonical.append(text)
    return canonical


def ip_allowed(source_ip: str | None, allowed_cidrs: Iterable[str]) -> bool:
    """Whether ``source_ip`` falls in the allow-list; an empty list allows every address."""
    networks = [ipaddress.ip_network(cidr, strict=False) for cidr in allowed_cidrs]
    if not networks:
        return True
    if not source_ip:
        return False
    try:
        address = ipaddress.ip_address(source_ip)
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return any(address.version == network.version and address in network for network in networks)


def cidrs_within(inner: Iterable[str], outer: Iterable[str]) -> list[str]:
    """The entries of ``inner`` not inside any block of ``outer`` (an empty ``outer`` allows all).

    An empty ``inner`` means "any address", which only an unrestricted ``outer`` contains.
    """
    bounds = [ipaddress.ip_network(cidr, strict=False) for cidr in outer]
    if not bounds:
        return []
    wanted = list(inner)
    if not wanted:
        return ["any address"]
    outside = []
    for cidr in wanted:
        network = ipaddress.ip_network(cidr, strict=False)
        if not any(network.version == b.version and network.subnet_of(b) for b in bounds):  # type: ignore[arg-type]
            outside.append(cidr)
    return outside
