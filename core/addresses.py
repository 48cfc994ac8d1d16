"""Lists of network addresses in settings (`FORWARDED_ALLOW_IPS`, `TRUSTED_PROXY_IPS`) and matching against them.

An entry is an address (`10.0.0.5`, `::1`), a network (`10.0.0.0/8`) or `*` for any. An empty
list trusts nobody, which is the default: a header that names a client or a user counts only
when it comes from a proxy someone configured.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

ANY = "*"


def parse_address_list(value: object) -> object:
    """`10.0.0.5, 10.1.0.0/16` into a list; anything else is left to pydantic."""
    if isinstance(value, str):
        return [item.strip() for item in value.split(",") if item.strip()]
    return value


def check_address_list(entries: list[str]) -> list[str]:
    for entry in entries:
        if entry == ANY:
            continue
        try:
            ipaddress.ip_network(entry)
        except ValueError as error:
            raise ValueError(f"{entry!r} is not an IP address, a network like 10.0.0.0/8, or *") from error
    return entries


class AddressSet:
    """Whether a peer's address is one of the configured addresses or networks."""

    def __init__(self, entries: Iterable[str]) -> None:
        listed = list(entries)
        self._any = ANY in listed
        self._networks = [ipaddress.ip_network(entry) for entry in listed if entry != ANY]

    @property
    def empty(self) -> bool:
        return not self._any and not self._networks

    def __contains__(self, host: object) -> bool:
        if self._any:
            return True
        if not isinstance(host, str):
            return False
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            return False
        return any(address in network for network in self._networks)
