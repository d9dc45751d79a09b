"""SSRF guard: which addresses a webhook may reach, checked at save time and at connect time.

Public addresses are always allowed. A private one (loopback, RFC 1918, unique-local, ...)
needs two keys: the operator lists it in ``CC_WEBHOOK_ALLOW_CIDRS`` and an admin sets
``allow_private`` on the subscription. Link-local and cloud metadata addresses are refused
whatever either says.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from contact_center.errors import ValidationError

__all__ = [
    "AllowList",
    "Resolver",
    "TargetGuard",
    "check_url",
    "is_public",
    "resolve_allowed",
    "system_resolver",
]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
Resolver = Callable[[str, int], Sequence[str]]
"""``(host, port) -> addresses`` (as strings); raises :class:`ValidationError` when none."""

_CGNAT = ipaddress.ip_network("100.64.0.0/10")
_METADATA = {ipaddress.ip_address("169.254.169.254"), ipaddress.ip_address("fd00:ec2::254")}
# What an allow-list entry may never overlap (link-local and metadata, also IPv4-mapped).
_NEVER = tuple(
    ipaddress.ip_network(n)
    for n in ("169.254.0.0/16", "fe80::/10", "fd00:ec2::254/128", "::ffff:169.254.0.0/112")
)
_HOST = re.compile(
    r"^(?=.{1,253}$)(?=.*[a-z])[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?"
    r"(?:\.[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?)*$"
)


def _embedded(ip: IPAddress) -> list[IPAddress]:
    """IPv4 addresses hidden inside IPv6 forms (mapped, 6to4, Teredo, NAT64)."""
    if not isinstance(ip, ipaddress.IPv6Address):
        return []
    out: list[IPAddress] = []
    if ip.ipv4_mapped is not None:
        out.append(ip.ipv4_mapped)
    if ip.sixtofour is not None:
        out.append(ip.sixtofour)
    if ip.teredo is not None:
        out.extend(ip.teredo)
    if ip in ipaddress.ip_network("64:ff9b::/96"):
        out.append(ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF))
    return out


def is_public(ip: IPAddress) -> bool:
    """True for a globally routable unicast address (and nothing it hides is private)."""
    for addr in [ip, *_embedded(ip)]:
        if (
            addr.is_private
            or addr.is_loopback
            or addr.is_link_local
            or addr.is_multicast
            or addr.is_reserved
            or addr.is_unspecified
            or (isinstance(addr, ipaddress.IPv4Address) and addr in _CGNAT)
            or not addr.is_global
        ):
            return False
    return True


def check_url(url: str) -> tuple[str, str, int]:
    """(scheme, host, port) of an acceptable webhook URL, else a validation error."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise ValidationError("webhook URL must be http or https", fields={"url": "scheme"})
    if not parts.hostname or parts.username or parts.password:
        raise ValidationError("webhook URL needs a host and no credentials", fields={"url": "host"})
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise ValidationError("bad port", fields={"url": "port"}) from None
    return parts.scheme, parts.hostname, port


def _forbidden(addr: IPAddress) -> bool:
    """Link-local or metadata, also when hidden in an IPv6 form."""
    return any(
        a in _METADATA or (a.is_link_local and not a.is_loopback) for a in [addr, *_embedded(addr)]
    )


@dataclass(frozen=True, slots=True)
class AllowList:
    """The operator's private targets (``CC_WEBHOOK_ALLOW_CIDRS``): networks and host names."""

    networks: tuple[IPNetwork, ...] = ()
    hosts: frozenset[str] = frozenset()

    @classmethod
    def parse(cls, raw: str) -> AllowList:
        """Comma-separated CIDRs, addresses or host names; a bad entry is a ``ValueError``."""
        networks: list[IPNetwork] = []
        hosts: set[str] = set()
        for entry in (e.strip() for e in raw.split(",")):
            if not entry:
                continue
            lowered = entry.lower().rstrip(".")
            if _HOST.match(lowered) and "/" not in lowered:
                hosts.add(lowered)
                continue
            try:
                net = ipaddress.ip_network(entry.strip("[]"), strict=True)
            except ValueError as err:
                raise ValueError(
                    f"{entry!r} is neither a CIDR (10.0.0.0/8, 127.0.0.1, fd12::/64) "
                    f"nor a host name ({err})"
                ) from None
            clash = next((n for n in _NEVER if n.version == net.version and net.overlaps(n)), None)
            if clash is not None:
                raise ValueError(
                    f"{entry!r} overlaps {clash}: link-local and cloud metadata addresses are "
                    "never allowed; list narrower networks"
                )
            networks.append(net)
        return cls(tuple(networks), frozenset(hosts))

    def __bool__(self) -> bool:
        return bool(self.networks or self.hosts)

    def permits(self, host: str, addr: IPAddress) -> bool:
        """Whether the operator allowed this host name, or a network holding this address."""
        if host.lower().rstrip(".") in self.hosts:
            return True
        candidates: list[IPAddress] = [addr]
        if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
            candidates.append(addr.ipv4_mapped)
        return any(a in n for a in candidates for n in self.networks if a.version == n.version)


def system_resolver(host: str, port: int) -> list[str]:
    """The operating system's resolver (``getaddrinfo``)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError):
        raise ValidationError("webhook host does not resolve", fields={"url": "dns"}) from None
    return [str(info[4][0]) for info in infos]


def resolve_allowed(
    host: str,
    port: int,
    *,
    allow_private: bool,
    allow: AllowList | None = None,
    resolve: Resolver = system_resolver,
) -> IPAddress:
    """Resolve ``host`` and return one address we may dial; refuse if any answer is forbidden.

    Every resolved address is checked (not just the first), so a DNS answer that mixes a public
    and a private address is refused. The caller connects to exactly the returned address
    (pinned), so a second lookup cannot rebind it. A private address must be both in the
    operator's allow list and opted into by the subscription (``allow_private``); link-local
    and cloud metadata addresses are never allowed.
    """
    allow = allow or AllowList()
    try:
        addrs = [ipaddress.ip_address(a) for a in resolve(host, port)]
    except ValueError:
        raise ValidationError("webhook host resolved to a malformed address",
                              fields={"url": "dns"}) from None  # fmt: skip
    if not addrs:
        raise ValidationError("webhook host does not resolve", fields={"url": "dns"})
    for addr in addrs:
        if _forbidden(addr):
            raise ValidationError("webhook target is a link-local/metadata address",
                                  fields={"url": "forbidden address"})  # fmt: skip
        if is_public(addr):
            continue
        if not allow_private:
            raise ValidationError(
                "webhook target is not a public address (an admin may allow private targets "
                "that the operator lists in CC_WEBHOOK_ALLOW_CIDRS)",
                fields={"url": "private address"},
            )
        if not allow.permits(host, addr):
            raise ValidationError(
                f"webhook target {addr} is private and not in the operator's allow list "
                "(CC_WEBHOOK_ALLOW_CIDRS)",
                fields={"url": "not allow-listed"},
            )
    return addrs[0]


@dataclass(frozen=True, slots=True)
class TargetGuard:
    """The allow list and the resolver, as one object the API and the jobs share."""

    allow: AllowList = field(default_factory=AllowList)
    resolve: Resolver = system_resolver

    @classmethod
    def from_config(cls, allow_cidrs: str, resolve: Resolver | None = None) -> TargetGuard:
        """From ``CC_WEBHOOK_ALLOW_CIDRS``; ``resolve`` replaces DNS (tests inject one)."""
        return cls(AllowList.parse(allow_cidrs), resolve or system_resolver)

    def check(self, host: str, port: int, *, allow_private: bool) -> IPAddress:
        """:func:`resolve_allowed` with this guard's allow list and resolver."""
        return resolve_allowed(
            host, port, allow_private=allow_private, allow=self.allow, resolve=self.resolve
        )
