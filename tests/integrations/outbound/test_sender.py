"""The sender against a real receiver on 127.0.0.1: DNS answers kept for a second at most, every attempt
vetted, and a kept-alive connection reused only while the vetted address stays the same."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from urllib.parse import urlsplit

import pytest
from tests.integrations.outbound.receiver import Receiver, running_receiver

from doorstep.integrations.outbound.sender import WebhookSender
from doorstep.integrations.outbound.ssrf import parse_networks

pytestmark = pytest.mark.integration

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


class Names:
    """A resolver whose answers the test sets, counting the lookups."""

    def __init__(self, **answers: list[str]) -> None:
        self.answers = {host.replace("_", "."): addresses for host, addresses in answers.items()}
        self.lookups = 0

    async def __call__(self, host: str, port: int) -> list[str]:
        self.lookups += 1
        return self.answers[host]


class Ticks:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    async with running_receiver() as running:
        yield running


async def send(sender: WebhookSender, url: str) -> tuple[int | None, str | None]:
    body = b'{"type":"webhook.test","timestamp":"2026-11-28T12:00:00Z","data":{}}'
    outcome = await sender.send(url=url, message_id="msg_1", body=body, secrets=["whsec_dGVzdA=="], now=NOW)
    return outcome.status, outcome.error


async def test_answers_are_kept_a_second_and_the_connection_is_reused_while_the_address_stays(
    receiver: Receiver,
) -> None:
    port = urlsplit(receiver.base_url).port
    names = Names(hooks_example=["127.0.0.1"])
    ticks = Ticks()
    sender = WebhookSender(
        timeout=2, resolver=names, allowed=parse_networks(["127.0.0.0/8"]), monotonic=ticks
    )
    url = f"http://hooks.example:{port}/hook"
    try:
        # When two deliveries go out within a second
        assert [await send(sender, url), await send(sender, url)] == [(204, None)] * 2
        # Then the name was looked up once, and the second came over the first's connection, with the
        # URL's host as its Host header
        assert names.lookups == 1
        assert len({r.peer for r in receiver.received}) == 1
        assert {r.headers["Host"] for r in receiver.received} == {f"hooks.example:{port}"}

        # When a second has passed, the name is looked up again; the address is the same, and so is
        # the connection
        ticks.now += 1.0
        assert await send(sender, url) == (204, None)
        assert names.lookups == 2
        assert len({r.peer for r in receiver.received}) == 1

        # When the name moves to another address, the next attempt connects there, not over the old
        # connection (nothing listens on 127.0.0.2 here)
        names.answers["hooks.example"] = ["127.0.0.2"]
        ticks.now += 1.0
        status, error = await send(sender, url)
        assert (status, len(receiver.received)) == (None, 3)
        assert error is not None
        assert error.startswith("ClientConnectorError")

        # And when it moves to a private address outside the allow-list, the attempt is refused
        names.answers["hooks.example"] = ["10.1.2.3"]
        ticks.now += 1.0
        assert await send(sender, url) == (
            None,
            "refused: hooks.example resolves to 10.1.2.3, which is a private address; "
            "webhooks go to public addresses only",
        )
        assert names.lookups == 4
    finally:
        await sender.close()


async def test_a_failed_lookup_is_not_kept(receiver: Receiver) -> None:
    port = urlsplit(receiver.base_url).port
    names = Names()
    sender = WebhookSender(
        timeout=2, resolver=names, allowed=parse_networks(["127.0.0.0/8"]), monotonic=Ticks()
    )
    url = f"http://late.example:{port}/hook"
    try:
        # Given a name that does not resolve yet
        names.answers["late.example"] = []
        assert await send(sender, url) == (
            None,
            "refused: the host late.example does not resolve: no address",
        )
        # When it resolves within the same second, the next attempt goes out
        names.answers["late.example"] = ["127.0.0.1"]
        assert await send(sender, url) == (204, None)
        assert names.lookups == 2
    finally:
        await sender.close()
