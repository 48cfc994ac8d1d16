"""Temporal TLS, mTLS and API-key settings: validation, the options built, and real connections.

The mTLS case runs through a TLS-terminating proxy in front of the local dev server that
demands a client certificate from a test CA, so the certificates really are presented.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import ssl
import subprocess
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.service import TLSConfig
from temporalio.testing import WorkflowEnvironment

from core.settings import ConfigError, Settings, load_settings
from service.temporal_tls import connect_options, tls_config

TLS_VARIABLES = (
    "TEMPORAL_TLS",
    "TEMPORAL_TLS_CERT_PATH",
    "TEMPORAL_TLS_KEY_PATH",
    "TEMPORAL_TLS_CA_PATH",
    "TEMPORAL_API_KEY",
)


@dataclass
class Pki:
    ca: Path
    client_cert: Path
    client_key: Path
    server_cert: Path
    server_key: Path


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def _issue(directory: Path, name: str, usage: str) -> None:
    """A P-256 leaf signed by the test CA, valid for 127.0.0.1 (rustls checks the SAN, not the CN)."""
    (directory / f"{name}.ext").write_text(
        f"subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n"
        f"keyUsage=critical,digitalSignature\nextendedKeyUsage={usage}\n"
    )
    _openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-subj", f"/CN={name}",
             "-keyout", f"{name}.key", "-out", f"{name}.csr", cwd=directory)  # fmt: skip
    _openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
             "-days", "2", "-extfile", f"{name}.ext", "-out", f"{name}.pem", cwd=directory)  # fmt: skip


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    if shutil.which("openssl") is None:
        pytest.skip("the openssl command (Debian package openssl) is needed to make test certificates")
    directory = tmp_path_factory.mktemp("pki")
    _openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
             "-subj", "/CN=agent-ticket test CA", "-days", "2", "-keyout", "ca.key", "-out", "ca.pem",
             "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign",
             cwd=directory)  # fmt: skip
    _issue(directory, "server", "serverAuth")
    _issue(directory, "client", "clientAuth")
    return Pki(
        ca=directory / "ca.pem",
        client_cert=directory / "client.pem",
        client_key=directory / "client.key",
        server_cert=directory / "server.pem",
        server_key=directory / "server.key",
    )


@pytest.fixture(autouse=True)
def _no_tls_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """A developer's shell may export Temporal Cloud settings; these tests say what they want."""
    for name in TLS_VARIABLES:
        monkeypatch.delenv(name, raising=False)


def _settings(**overrides: object) -> Settings:
    return load_settings(_env_file=None, **overrides)


# --- validation -------------------------------------------------------------------------


def test_defaults_connect_in_plain_text() -> None:
    options = connect_options(_settings(temporal_namespace="tickets"))
    assert options == {"namespace": "tickets", "tls": False, "api_key": None}


def test_variables_are_read_from_the_environment(pki: Pki, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEMPORAL_TLS_CERT_PATH", str(pki.client_cert))
    monkeypatch.setenv("TEMPORAL_TLS_KEY_PATH", str(pki.client_key))
    monkeypatch.setenv("TEMPORAL_TLS_CA_PATH", str(pki.ca))
    monkeypatch.setenv("TEMPORAL_API_KEY", "key-123")

    settings = _settings()

    assert settings.temporal_tls_cert_path == pki.client_cert
    assert settings.temporal_tls_key_path == pki.client_key
    assert settings.temporal_tls_ca_path == pki.ca
    assert settings.temporal_api_key is not None
    assert settings.temporal_api_key.get_secret_value() == "key-123"
    assert "key-123" not in repr(settings)


@pytest.mark.parametrize("given", ["cert", "key"])
def test_client_certificate_and_key_come_together(pki: Pki, given: str) -> None:
    path = pki.client_cert if given == "cert" else pki.client_key
    with pytest.raises(ConfigError, match="TEMPORAL_TLS_CERT_PATH and TEMPORAL_TLS_KEY_PATH must be set together"):
        _settings(**{f"temporal_tls_{given}_path": path})


@pytest.mark.parametrize("field", ["temporal_tls_cert_path", "temporal_tls_key_path", "temporal_tls_ca_path"])
def test_missing_file_is_named(pki: Pki, tmp_path: Path, field: str) -> None:
    paths = {"temporal_tls_cert_path": pki.client_cert, "temporal_tls_key_path": pki.client_key}
    paths[field] = tmp_path / "nope.pem"
    with pytest.raises(ConfigError, match=f"{field.upper()}: .*no such file: .*nope.pem"):
        _settings(**paths)


def test_a_directory_is_not_a_certificate(pki: Pki) -> None:
    with pytest.raises(ConfigError, match="TEMPORAL_TLS_CA_PATH"):
        _settings(temporal_tls_ca_path=pki.ca.parent)


def test_blank_values_mean_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    """`TEMPORAL_API_KEY=` in .env, or an empty key in a Kubernetes Secret, must not switch TLS on."""
    for name in TLS_VARIABLES[1:]:
        monkeypatch.setenv(name, "")
    settings = _settings()
    assert connect_options(settings) == {"namespace": "default", "tls": False, "api_key": None}


# --- what the client is given -----------------------------------------------------------


def test_tls_alone_uses_the_system_trust_store() -> None:
    assert tls_config(_settings(temporal_tls=True)) is True


def test_api_key_implies_tls() -> None:
    """Temporal Cloud refuses API keys over plain text; forgetting TEMPORAL_TLS must not break it."""
    options = connect_options(_settings(temporal_api_key="cloud-key", temporal_namespace="acme.a1b2c"))
    assert options == {"namespace": "acme.a1b2c", "tls": True, "api_key": "cloud-key"}


def test_mtls_files_are_read_into_the_tls_config(pki: Pki) -> None:
    config = tls_config(
        _settings(
            temporal_tls_cert_path=pki.client_cert, temporal_tls_key_path=pki.client_key, temporal_tls_ca_path=pki.ca
        )
    )
    assert isinstance(config, TLSConfig)
    assert config.client_cert == pki.client_cert.read_bytes()
    assert config.client_private_key == pki.client_key.read_bytes()
    assert config.server_root_ca_cert == pki.ca.read_bytes()


def test_private_ca_without_client_certificate(pki: Pki) -> None:
    config = tls_config(_settings(temporal_tls_ca_path=pki.ca))
    assert isinstance(config, TLSConfig)
    assert config.server_root_ca_cert == pki.ca.read_bytes()
    assert config.client_cert is None
    assert config.client_private_key is None


# --- real connections -------------------------------------------------------------------


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, ssl.SSLError):
        pass
    finally:
        writer.close()


@dataclass
class Proxy:
    address: str
    forwarded: int = 0


@pytest.fixture
async def mtls_proxy(pki: Pki, local_env: WorkflowEnvironment) -> AsyncIterator[Proxy]:
    """`127.0.0.1:<port>` speaking TLS that requires a client certificate from the test CA.

    It counts the connections that got past the handshake and were forwarded to the server.
    """
    upstream_host, upstream_port = local_env.client.service_client.config.target_host.rsplit(":", 1)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(pki.server_cert, pki.server_key)
    context.load_verify_locations(pki.ca)
    context.verify_mode = ssl.CERT_REQUIRED
    context.set_alpn_protocols(["h2"])

    async def forward(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        proxy.forwarded += 1
        up_reader, up_writer = await asyncio.open_connection(upstream_host, int(upstream_port))
        await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))

    server = await asyncio.start_server(forward, "127.0.0.1", 0, ssl=context)
    proxy = Proxy(address=f"127.0.0.1:{server.sockets[0].getsockname()[1]}")
    try:
        yield proxy
    finally:
        server.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(server.wait_closed(), 5)


async def _connect(address: str, settings: Settings) -> Client:
    return await asyncio.wait_for(
        Client.connect(address, data_converter=pydantic_data_converter, **connect_options(settings)), 30
    )


async def test_plain_connection_to_the_local_server(local_env: WorkflowEnvironment) -> None:
    client = await _connect(local_env.client.service_client.config.target_host, _settings())
    assert client.namespace == "default"
    assert await client.service_client.check_health()


async def test_mtls_connection_presents_the_client_certificate(pki: Pki, mtls_proxy: Proxy) -> None:
    settings = _settings(
        temporal_tls_cert_path=pki.client_cert, temporal_tls_key_path=pki.client_key, temporal_tls_ca_path=pki.ca
    )
    client = await _connect(mtls_proxy.address, settings)
    assert await client.service_client.check_health()
    assert mtls_proxy.forwarded >= 1


async def test_without_a_client_certificate_the_server_refuses(pki: Pki, mtls_proxy: Proxy) -> None:
    with pytest.raises(RuntimeError, match="Failed client connect"):
        await _connect(mtls_proxy.address, _settings(temporal_tls_ca_path=pki.ca))
    assert mtls_proxy.forwarded == 0


async def test_an_unknown_server_certificate_is_refused(mtls_proxy: Proxy) -> None:
    """With the system trust store only, the test CA's server certificate must not be accepted."""
    with pytest.raises(RuntimeError, match="UnknownIssuer"):
        await _connect(mtls_proxy.address, _settings(temporal_tls=True))
    assert mtls_proxy.forwarded == 0
