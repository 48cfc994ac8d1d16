"""The trusted SSO header: believed only from the proxy that sets it, read afresh on every request.

A request names its user through `DASHBOARD_TRUSTED_HEADER` only when the connection comes from
an address in `TRUSTED_PROXY_IPS` or carries `DASHBOARD_TRUSTED_HEADER_SECRET` in
`X-Agent-Ticket-Proxy-Secret`. From anyone else the header is ignored (and logged). Two copies
of the header are refused outright: proxies that append rather than replace would let the
client's copy through. Nothing about the header is kept in the session.
"""

from __future__ import annotations

import hmac
import logging

from starlette.requests import Request

from bot.dashboard.problems import BadInput
from bot.proxies import peer_address
from core.addresses import AddressSet
from core.settings import Settings

logger = logging.getLogger(__name__)

PROXY_SECRET_HEADER = "x-agent-ticket-proxy-secret"


class TrustedHeader:
    def __init__(self, header: str, proxies: AddressSet, secret: str | None) -> None:
        self._header = header.lower()
        self._proxies = proxies
        self._secret = secret

    @classmethod
    def from_settings(cls, settings: Settings) -> TrustedHeader | None:
        if not settings.dashboard_trusted_header:
            return None
        secret = settings.dashboard_trusted_header_secret
        return cls(
            settings.dashboard_trusted_header,
            AddressSet(settings.trusted_proxy_ips),
            secret.get_secret_value() if secret is not None else None,
        )

    @property
    def header(self) -> str:
        return self._header

    def _from_proxy(self, request: Request) -> bool:
        if peer_address(request) in self._proxies:
            return True
        if self._secret is None:
            return False
        sent = request.headers.getlist(PROXY_SECRET_HEADER)
        return len(sent) == 1 and hmac.compare_digest(sent[0].encode(), self._secret.encode())

    def named(self, request: Request) -> str | None:
        """The username the proxy vouches for on this request, or None when it does not."""
        values = request.headers.getlist(self._header)
        if not values:
            return None
        if not self._from_proxy(request):
            logger.warning(
                "ignored %s from %s, which is not a trusted proxy and sent no valid proxy secret",
                self._header,
                peer_address(request),
            )
            return None
        if len(values) > 1:
            logger.warning("refused a request with %d copies of %s", len(values), self._header)
            raise BadInput(f"The request carries {self._header} more than once; the proxy must replace it, not add.")
        return values[0].strip() or None
