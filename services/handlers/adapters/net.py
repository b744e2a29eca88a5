"""Outbound connections only to public addresses (docs/contract.md §6).

The policy service refuses a ``base_url`` that resolves to a private, loopback
or link-local address when it is configured; the handlers check again when
they connect, because a name can resolve elsewhere later (DNS rebinding). The
resolver of the handlers' HTTP session drops every such address and refuses a
host left with none; an IP literal (which aiohttp does not resolve) is checked
by :func:`check_host`. ``INTEGRATIONS_ALLOW_PRIVATE`` turns both off (the dev
stack's simulators listen on loopback).
"""

import ipaddress
import socket
from typing import Any

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import ThreadedResolver
from yarl import URL

from schemas.providers import refused_addresses
from services.handlers.domain.errors import AddressRefused


class PublicOnlyResolver(AbstractResolver):
    def __init__(self) -> None:
        self._inner = ThreadedResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        results = await self._inner.resolve(host, port, family)
        refused = set(refused_addresses([r["host"] for r in results]))
        allowed = [r for r in results if r["host"] not in refused]
        if not allowed:
            raise AddressRefused(
                f"{host} resolves only to addresses the handlers may not reach"
                f" ({', '.join(sorted(refused))})"
            )
        return allowed

    async def close(self) -> None:
        await self._inner.close()


def check_host(url: str, *, allow_private: bool) -> None:
    """Refuse a URL whose host is a private, loopback or link-local IP literal."""
    if allow_private:
        return
    host = URL(url).host or ""
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return  # a name: the resolver checks it at every connection
    if refused_addresses([host.strip("[]")]):
        raise AddressRefused(f"{host} is an address the handlers may not reach")


def http_session(*, allow_private: bool, **kwargs: Any) -> aiohttp.ClientSession:
    """The one session of every vendor request (connection pooling across integrations)."""
    resolver = None if allow_private else PublicOnlyResolver()
    connector = aiohttp.TCPConnector(limit=200, limit_per_host=50, resolver=resolver)
    return aiohttp.ClientSession(connector=connector, **kwargs)
