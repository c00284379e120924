"""GuardedTransport: outgoing calls to tenant-set URLs never reach private addresses, and go to the
address that was vetted, not to whatever the name resolves to a moment later."""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from doorstep.integrations.adapters.guarded_http import AddressRefused, GuardedTransport
from doorstep.integrations.outbound.ssrf import Resolver, parse_networks


def resolver_to(address: str) -> Resolver:
    async def resolve(host: str, port: int) -> list[str]:
        return [address]

    return resolve


@pytest.fixture
async def local_server() -> AsyncIterator[tuple[int, list[str]]]:
    hosts: list[str] = []

    async def handle(request: web.Request) -> web.Response:
        hosts.append(request.headers["Host"])
        return web.json_response({"ok": True})

    app = web.Application()
    app.router.add_get("/{tail:.*}", handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield port, hosts
    finally:
        await runner.cleanup()


@pytest.mark.parametrize(
    ("url", "resolves_to", "reason"),
    [
        ("http://127.0.0.1:9/x", "127.0.0.1", "127.0.0.1 is a loopback address"),
        ("http://10.1.2.3/x", "10.1.2.3", "10.1.2.3 is a private address"),
        ("http://169.254.169.254/latest/meta-data", "169.254.169.254", "169.254.169.254 is a link-local"),
        ("http://shop.example/x", "127.0.0.1", "shop.example resolves to 127.0.0.1, which is a loopback"),
    ],
)
async def test_private_addresses_are_refused_before_any_connection(
    url: str, resolves_to: str, reason: str
) -> None:
    # Given a guarded client
    transport = GuardedTransport(resolver=resolver_to(resolves_to))
    async with httpx.AsyncClient(transport=transport) as client:
        # When it is asked to call a private address, literally or through a name
        with pytest.raises(AddressRefused) as refused:
            await client.get(url)
    # Then it refuses, saying why
    assert reason in str(refused.value)


async def test_an_allowed_network_is_called_at_the_vetted_address_with_the_name_kept(
    local_server: tuple[int, list[str]],
) -> None:
    # Given a partner name that resolves to this machine, whose network is allowed
    port, hosts = local_server
    transport = GuardedTransport(resolver=resolver_to("127.0.0.1"), allowed=parse_networks(["127.0.0.0/8"]))
    async with httpx.AsyncClient(transport=transport) as client:
        # When it is called by name
        response = await client.get(f"http://partner.example:{port}/orders/1")
    # Then the vetted address answered, and the request still named the partner's host
    assert response.json() == {"ok": True}
    assert hosts == [f"partner.example:{port}"]


def _certificate(
    subject: str, key: ec.EllipticCurvePrivateKey, issuer: x509.Name, issuer_key: ec.EllipticCurvePrivateKey
) -> x509.CertificateBuilder:
    now = datetime.now(UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(hours=1))
    )


def tls_files(directory: Path, names: list[str]) -> tuple[Path, Path, str]:
    """A throwaway CA and a server certificate for `names` signed by it: (cert file, key file, CA PEM)."""
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Doorstep test CA")])
    ca = (
        _certificate("Doorstep test CA", ca_key, ca_name, ca_key)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    leaf = (
        _certificate(names[0], key, ca_name, ca_key)
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    cert_file, key_file = directory / "server.pem", directory / "server.key"
    cert_file.write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return cert_file, key_file, ca.public_bytes(serialization.Encoding.PEM).decode()


@dataclass
class TlsServer:
    port: int
    handshakes: list[str]  # the SNI name of each TLS connection, in order
    requests: list[tuple[str, int]]  # (Host without port, the client's port: one per connection)
    ca: str


@pytest.fixture
async def tls_server(tmp_path: Path) -> AsyncIterator[TlsServer]:
    cert_file, key_file, ca = tls_files(tmp_path, ["alpha.example", "beta.example"])
    server = TlsServer(port=0, handshakes=[], requests=[], ca=ca)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert_file, key_file)

    def sni(_: Any, name: str | None, __: ssl.SSLContext) -> None:
        server.handshakes.append(name or "")

    context.sni_callback = sni

    async def handle(request: web.Request) -> web.Response:
        peer = request.transport.get_extra_info("peername") if request.transport else None
        server.requests.append((request.host.rsplit(":", 1)[0], peer[1] if peer else 0))
        return web.json_response({"host": request.host})

    app = web.Application()
    app.router.add_get("/{tail:.*}", handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=context)
    await site.start()
    server.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield server
    finally:
        await runner.cleanup()


def pool_with_ca(ca: str) -> Callable[[], httpx.AsyncBaseTransport]:
    context = ssl.create_default_context(cadata=ca)

    def make() -> httpx.AsyncBaseTransport:
        return httpx.AsyncHTTPTransport(verify=context)

    return make


async def test_two_names_on_one_address_each_get_their_own_tls_connection(tls_server: TlsServer) -> None:
    # Given two partner names served over TLS from the same address (this machine's), both allowed
    transport = GuardedTransport(
        resolver=resolver_to("127.0.0.1"),
        allowed=parse_networks(["127.0.0.0/8"]),
        inner=pool_with_ca(tls_server.ca),
    )
    async with httpx.AsyncClient(transport=transport) as client:
        # When the first name is called twice, then the second once, then the first again
        hosts = [
            (await client.get(f"https://{name}:{tls_server.port}/orders")).json()["host"].split(":")[0]
            for name in ("alpha.example", "alpha.example", "beta.example", "alpha.example")
        ]
        pools = transport.pool_names()

    # Then each name had one TLS handshake with its own SNI, and its requests went over its connection only
    assert hosts == ["alpha.example", "alpha.example", "beta.example", "alpha.example"]
    assert tls_server.handshakes == ["alpha.example", "beta.example"]
    alpha_ports = {port for host, port in tls_server.requests if host == "alpha.example"}
    beta_ports = {port for host, port in tls_server.requests if host == "beta.example"}
    assert (len(alpha_ports), len(beta_ports)) == (1, 1)
    assert alpha_ports != beta_ports
    assert pools == ["beta.example", "alpha.example"]


class CountedPool(httpx.AsyncHTTPTransport):
    """A real transport that records when it is closed."""

    def __init__(self, closed: list[CountedPool]) -> None:
        super().__init__()
        self._closed = closed

    async def aclose(self) -> None:
        self._closed.append(self)
        await super().aclose()


async def test_pools_are_bounded_closing_the_least_recently_used_idle_one(
    local_server: tuple[int, list[str]],
) -> None:
    # Given a guarded transport that keeps two pools at most
    port, _ = local_server
    made: list[CountedPool] = []
    closed: list[CountedPool] = []

    def make() -> httpx.AsyncBaseTransport:
        made.append(CountedPool(closed))
        return made[-1]

    transport = GuardedTransport(
        resolver=resolver_to("127.0.0.1"), allowed=parse_networks(["127.0.0.0/8"]), inner=make, max_pools=2
    )
    async with httpx.AsyncClient(transport=transport) as client:
        # When three names are called, the first again before the third
        for name in ("one.example", "two.example", "one.example", "three.example"):
            assert (await client.get(f"http://{name}:{port}/x")).status_code == 200
        # Then the least recently used (two) was closed, and the other two are kept
        assert transport.pool_names() == ["one.example", "three.example"]
        assert closed == [made[1]]
    # And closing the client closes every pool left
    assert closed == [made[1], made[0], made[2]]


async def test_a_pool_whose_response_is_still_open_is_not_closed(local_server: tuple[int, list[str]]) -> None:
    # Given a guarded transport that keeps one pool at most, and a response being streamed from a first name
    port, _ = local_server
    made: list[CountedPool] = []
    closed: list[CountedPool] = []

    def make() -> httpx.AsyncBaseTransport:
        made.append(CountedPool(closed))
        return made[-1]

    transport = GuardedTransport(
        resolver=resolver_to("127.0.0.1"), allowed=parse_networks(["127.0.0.0/8"]), inner=make, max_pools=1
    )
    async with httpx.AsyncClient(transport=transport) as client:
        async with client.stream("GET", f"http://first.example:{port}/x") as streaming:
            # When a second name is called meanwhile
            assert (await client.get(f"http://second.example:{port}/x")).status_code == 200
            # Then the idle second pool is the one closed: the first still carries a body
            assert closed == [made[1]]
            assert transport.pool_names() == ["first.example"]
            assert await streaming.aread() == b'{"ok": true}'
        assert closed == [made[1]]
    assert closed == [made[1], made[0]]
