"""How a client reaches a Temporal cluster that wants TLS, mTLS or an API key (Temporal Cloud).

Kept apart from `service.temporal.connect` so the choice can be tested without a server, and so
bot, worker and CLI connect the same way whatever the deployment.
"""

from __future__ import annotations

from typing import TypedDict

from temporalio.service import TLSConfig

from core.settings import Settings


class ConnectOptions(TypedDict):
    """Keyword arguments for `temporalio.client.Client.connect` besides the address."""

    namespace: str
    tls: TLSConfig | bool
    api_key: str | None


def tls_wanted(settings: Settings) -> bool:
    """TLS is on when asked for, and whenever certificates or an API key are given: none works without it."""
    return bool(
        settings.temporal_tls
        or settings.temporal_tls_cert_path
        or settings.temporal_tls_ca_path
        or settings.temporal_api_key
    )


def tls_config(settings: Settings) -> TLSConfig | bool:
    """False for a plain connection, True for TLS with the system's CAs, or a `TLSConfig` with files.

    The files are read here, at connect time, so a rotated certificate is picked up by a restart.
    """
    if not tls_wanted(settings):
        return False
    ca_path = settings.temporal_tls_ca_path
    cert_path = settings.temporal_tls_cert_path
    key_path = settings.temporal_tls_key_path
    if ca_path is None and cert_path is None:
        return True
    return TLSConfig(
        server_root_ca_cert=ca_path.read_bytes() if ca_path is not None else None,
        client_cert=cert_path.read_bytes() if cert_path is not None else None,
        client_private_key=key_path.read_bytes() if key_path is not None else None,
    )


def connect_options(settings: Settings) -> ConnectOptions:
    """Namespace, TLS and API key for `Client.connect(settings.temporal_address, **options, ...)`."""
    api_key = settings.temporal_api_key.get_secret_value() if settings.temporal_api_key is not None else None
    return ConnectOptions(namespace=settings.temporal_namespace, tls=tls_config(settings), api_key=api_key or None)
