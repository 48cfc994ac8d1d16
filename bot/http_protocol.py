"""Uvicorn's h11 protocol with a deadline for a request's headers (slowloris).

Uvicorn 0.x has no header read timeout (its issue #157 lists `--timeout-request-start` as not
done); `timeout_keep_alive` only covers idle time between requests and restarts on every
byte. This subclass arms a timer when a connection opens and when the first byte of each
further request arrives, and disarms it once h11 has the whole request head; a client that
has not sent its headers by then is disconnected. Bodies are bounded elsewhere (forms by
size, Slack by its signature's five-minute window).
"""

from __future__ import annotations

import asyncio
import logging

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

logger = logging.getLogger(__name__)

MAX_HEADER_BYTES = 16 * 1024  # h11's default, stated: no dashboard or Slack request needs more


class HeaderTimeoutH11Protocol(H11Protocol):
    """Closes connections whose request head is not complete within `header_timeout` seconds."""

    header_timeout: float = 10.0

    _header_deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_header_deadline()

    def data_received(self, data: bytes) -> None:
        if self._header_deadline is None and self.conn.their_state is h11.IDLE:
            self._arm_header_deadline()  # the first bytes of a further request on a kept-alive connection
        super().data_received(data)
        if self.conn.their_state is not h11.IDLE:
            self._disarm_header_deadline()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_header_deadline()
        super().connection_lost(exc)

    def _arm_header_deadline(self) -> None:
        self._disarm_header_deadline()
        self._header_deadline = self.loop.call_later(self.header_timeout, self._header_deadline_passed)

    def _disarm_header_deadline(self) -> None:
        if self._header_deadline is not None:
            self._header_deadline.cancel()
            self._header_deadline = None

    def _header_deadline_passed(self) -> None:
        self._header_deadline = None
        if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
            logger.info("closed a connection that sent no complete request head in %ss", self.header_timeout)
            self.transport.close()


def header_timeout_protocol(seconds: float) -> type[HeaderTimeoutH11Protocol]:
    """The protocol class for `uvicorn.Config(http=...)` with this deadline."""
    return type("BotH11Protocol", (HeaderTimeoutH11Protocol,), {"header_timeout": seconds})
