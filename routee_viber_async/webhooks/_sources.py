"""Which source addresses may POST callbacks: an allowlist of hosts and networks.

Routee's documentation names the host ``callbacksallow.routee.net`` as the source of its
callbacks. :class:`SourceAllowlist` takes hosts (resolved with the event loop's ``getaddrinfo``
and re-resolved lazily, on a request, once ``refresh_every`` seconds have passed) and IP
addresses or networks (``"203.0.113.0/24"``). Behind a reverse proxy, list it in
``trusted_proxies``: only when the peer is one of them is ``X-Forwarded-For`` read, and the
client is its right-most address that is not a trusted proxy.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import Final, TypeAlias

__all__ = ["DEFAULT_REFRESH_EVERY", "ROUTEE_CALLBACK_HOST", "Resolver", "SourceAllowlist"]

logger = logging.getLogger("routee_viber_async.webhooks")

#: The host Routee's documentation names as the source of its callbacks.
ROUTEE_CALLBACK_HOST: Final = "callbacksallow.routee.net"

#: Hostnames are resolved again when their addresses are older than this (10 minutes).
DEFAULT_REFRESH_EVERY: Final = 600.0

#: ``await resolver(host)``: the host's IP addresses as strings.
Resolver: TypeAlias = Callable[[str], Awaitable[Iterable[str]]]

_RETRY_AFTER_FAILURE: Final = 30.0

_Address: TypeAlias = ipaddress.IPv4Address | ipaddress.IPv6Address
_Network: TypeAlias = ipaddress.IPv4Network | ipaddress.IPv6Network


async def resolve_with_loop(host: str) -> list[str]:
    """The host's addresses, from the running loop's ``getaddrinfo`` (the default resolver)."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, None, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


class SourceAllowlist:
    """Decides whether a request's source address may POST callbacks (see the module doc).

    ``resolver``: ``await resolver(host)`` gives a host's addresses (default: the loop's
    ``getaddrinfo``); ``clock``: the time source of ``refresh_every`` (``time.monotonic``).
    """

    def __init__(
        self,
        allow_from: Iterable[str],
        *,
        trusted_proxies: Iterable[str] = (),
        resolver: Resolver | None = None,
        refresh_every: float = DEFAULT_REFRESH_EVERY,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        entries = [allow_from] if isinstance(allow_from, str) else list(allow_from)
        if not entries:
            raise ValueError("allow_from must name at least one host or network")
        if refresh_every <= 0:
            raise ValueError("refresh_every must be positive")
        self._networks: list[_Network] = []
        self._hosts: list[str] = []
        for entry in entries:
            network = _network(entry)
            if network is not None:
                self._networks.append(network)
            elif isinstance(entry, str) and entry.strip():
                self._hosts.append(entry.strip())
            else:
                raise ValueError("allow_from entries are hostnames, IP addresses or networks")
        proxies = [trusted_proxies] if isinstance(trusted_proxies, str) else trusted_proxies
        self._proxies: list[_Network] = []
        for entry in proxies:
            network = _network(entry)
            if network is None:
                raise ValueError("trusted_proxies entries are IP addresses or networks")
            self._proxies.append(network)
        self._resolver = resolver or resolve_with_loop
        self._refresh_every = refresh_every
        self._clock = clock
        self._resolved: set[_Address] = set()
        self._next_refresh: float | None = None
        self._lock = asyncio.Lock()

    async def allows(self, peer: str | None, forwarded_for: str | None = None) -> bool:
        """True when the client behind ``peer`` (and ``X-Forwarded-For``) is allowed."""
        client = self.client_address(peer, forwarded_for)
        if client is None:
            return False
        if any(client in network for network in self._networks):
            return True
        if not self._hosts:
            return False
        await self._refresh_if_stale()
        return client in self._resolved

    def client_address(self, peer: str | None, forwarded_for: str | None) -> _Address | None:
        """The client's address: the peer's, or behind a trusted proxy the forwarded one."""
        address = _address(peer)
        if address is None or not forwarded_for or not self._is_proxy(address):
            return address
        hops = [hop.strip() for hop in forwarded_for.split(",")]
        for hop in reversed(hops):
            hop_address = _address(hop)
            if hop_address is None:
                return None  # a garbled hop: nothing to the left of it can be trusted
            if not self._is_proxy(hop_address):
                return hop_address
        return _address(hops[0])  # every hop is a trusted proxy: the left-most is the client

    def _is_proxy(self, address: _Address) -> bool:
        return any(address in network for network in self._proxies)

    async def _refresh_if_stale(self) -> None:
        if not self._is_stale():
            return
        async with self._lock:
            if self._is_stale():  # another request may have refreshed while this one waited
                await self._refresh()

    def _is_stale(self) -> bool:
        due = self._next_refresh
        return due is None or self._clock() >= due

    async def _refresh(self) -> None:
        resolved: set[_Address] = set()
        failed = False
        for host in self._hosts:
            try:
                found = await self._resolver(host)
            except (OSError, ValueError):
                failed = True
                logger.warning("could not resolve the callback source host %s", host)
                continue
            resolved.update(a for a in map(_address, found) if a is not None)
        if failed:
            resolved |= self._resolved  # keep the last good addresses through a DNS outage
        self._resolved = resolved
        # After a failure, try again soon rather than refuse Routee for the whole period.
        delay = min(_RETRY_AFTER_FAILURE, self._refresh_every) if failed else self._refresh_every
        self._next_refresh = self._clock() + delay


def _network(entry: object) -> _Network | None:
    if not isinstance(entry, str):
        return None
    try:
        return ipaddress.ip_network(entry.strip(), strict=False)
    except ValueError:
        return None


def _address(value: str | None) -> _Address | None:
    if not value:
        return None
    try:
        address = ipaddress.ip_address(value.strip().strip("[]"))
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address
