"""Who a request comes from: the peer, or behind our own proxies the client they name (pure).

``CC_TRUSTED_PROXIES`` lists the load balancers in front of the desk (nginx in
``deploy/nginx.conf`` appends the peer to ``X-Forwarded-For``). A request whose peer is one of
them is taken to come from the right-most ``X-Forwarded-For`` entry that is not a trusted proxy
(entries further left were written by the client and prove nothing). A peer outside the list
is the client, whatever its headers say, so a visitor cannot pick their own address to escape
a flood limit.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

__all__ = ["Networks", "client_address"]

_Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True, slots=True)
class Networks:
    """A list of networks from a comma-separated setting (``10.0.0.0/8, 127.0.0.1, ::1``)."""

    networks: tuple[_Network, ...] = ()

    @classmethod
    def parse(cls, raw: str) -> Networks:
        """Parse CIDRs and single addresses; a bad entry is a ``ValueError`` naming it."""
        found: list[_Network] = []
        for entry in (e.strip() for e in raw.split(",")):
            if not entry:
                continue
            try:
                found.append(ipaddress.ip_network(entry.strip("[]"), strict=False))
            except ValueError:
                raise ValueError(
                    f"{entry!r} is not an address or a network (127.0.0.1, 10.0.0.0/8, fd00::/8)"
                ) from None
        return cls(tuple(found))

    def __bool__(self) -> bool:
        return bool(self.networks)

    def __contains__(self, address: object) -> bool:
        if not isinstance(address, str) or not self.networks:
            return False
        try:
            ip = ipaddress.ip_address(address.strip("[]"))
        except ValueError:
            return False
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        return any(ip.version == n.version and ip in n for n in self.networks)


def client_address(peer: str | None, forwarded_for: str | None, trusted: Networks) -> str:
    """The client's address: ``peer``, unless it is a trusted proxy that names another.

    ``forwarded_for`` is the raw ``X-Forwarded-For`` header (several headers joined by
    commas). Walking it from the right, trusted proxies are skipped; the first other entry is
    the client. A malformed entry stops the walk at the last address known good.
    """
    address = peer or "?"
    if not forwarded_for or address not in trusted:
        return address
    for entry in reversed(forwarded_for.split(",")):
        candidate = entry.strip()
        try:
            ipaddress.ip_address(candidate.strip("[]"))
        except ValueError:
            return address
        address = candidate
        if candidate not in trusted:
            return candidate
    return address
