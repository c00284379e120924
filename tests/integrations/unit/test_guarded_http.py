"""GuardedTransport: outgoing calls to tenant-set URLs never reach private addresses, and go to the
address that was vetted, not to whatever the name resolves to a moment later."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from aiohttp import web

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
