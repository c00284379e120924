"""Status webhooks, the pure parts: signatures, the retry schedule, patterns, the breaker, SSRF rules."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from doorstep.integrations.outbound.domain import (
    MAX_ATTEMPTS,
    Endpoint,
    Message,
    MessageState,
    Outcome,
    new_secret,
    pattern_matches,
    retry_delay,
)
from doorstep.integrations.outbound.sender import retry_after
from doorstep.integrations.outbound.signing import signed_headers
from doorstep.integrations.outbound.ssrf import UrlRefused, parse_networks, vet

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
BODY = json.dumps({"type": "order.created", "timestamp": "2026-11-28T12:00:00Z", "data": {"x": 1}}).encode()


def endpoint(**overrides: object) -> Endpoint:
    values: dict[str, object] = {
        "id": "ep-1",
        "tenant_id": "t-1",
        "url": "https://example.com/hook",
        "event_types": ["order.*"],
        "description": None,
        "secret": new_secret(),
        "created_at": NOW,
        "updated_at": NOW,
    }
    values.update(overrides)
    return Endpoint(**values)  # type: ignore[arg-type]


def message() -> Message:
    return Message(
        id="msg-1",
        endpoint_id="ep-1",
        tenant_id="t-1",
        event_id="ev-1",
        event_type="order.created",
        subject="order-1",
        body=BODY.decode(),
        created_at=NOW,
        next_attempt_at=NOW,
    )


# --- signing ---------------------------------------------------------------------------------------------


def test_a_delivery_verifies_with_the_standardwebhooks_library() -> None:
    # Given an endpoint's secret
    secret = new_secret()

    # When a delivery is signed with it
    headers = signed_headers([secret], message_id="msg-1", at=datetime.now(UTC), body=BODY)

    # Then the reference library verifies it and hands back the payload
    assert Webhook(secret).verify(BODY, headers) == json.loads(BODY)
    assert headers["webhook-id"] == "msg-1"
    assert headers["webhook-signature"].startswith("v1,")


def test_during_a_rotation_both_the_old_and_the_new_secret_verify() -> None:
    # Given an endpoint whose secret was rotated an hour ago
    ep = endpoint()
    old = ep.secret
    new = ep.rotate_secret(NOW - timedelta(hours=1))
    now = datetime.now(UTC)
    secrets = ep.signing_secrets(NOW)

    # When a delivery is signed with both
    headers = signed_headers(secrets, message_id="msg-2", at=now, body=BODY)

    # Then two signatures travel, and receivers holding either secret verify it, one with neither does not
    assert secrets == [new, old]
    assert len(headers["webhook-signature"].split(" ")) == 2
    assert Webhook(old).verify(BODY, headers) == json.loads(BODY)
    assert Webhook(new).verify(BODY, headers) == json.loads(BODY)
    with pytest.raises(WebhookVerificationError):
        Webhook(new_secret()).verify(BODY, headers)
    # And a day after the rotation only the new secret signs
    assert ep.signing_secrets(NOW + timedelta(hours=23, minutes=1)) == [new]


def test_a_tampered_body_does_not_verify() -> None:
    secret = new_secret()
    headers = signed_headers([secret], message_id="msg-3", at=datetime.now(UTC), body=BODY)
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(BODY.replace(b"1", b"2"), headers)


# --- schedule --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("attempts", "base"),
    [(1, 5), (2, 300), (3, 1800), (4, 7200), (5, 18000), (6, 36000), (7, 36000)],
)
def test_the_retry_schedule_waits_its_step_within_ten_percent_jitter(attempts: int, base: int) -> None:
    # When the n-th attempt failed, with the lowest, middle and highest jitter
    low, mid, high = (retry_delay(attempts, random=lambda r=r: r) for r in (0.0, 0.5, 0.999999))

    # Then the waits bracket the step by a tenth either way
    assert low == timedelta(seconds=base * 0.9)
    assert mid == timedelta(seconds=base)
    assert high is not None
    assert timedelta(seconds=base * 1.0999) < high < timedelta(seconds=base * 1.1)


def test_after_eight_attempts_a_message_fails() -> None:
    # Given a message that fails every time
    msg = message()
    now = NOW
    waits = []
    for _ in range(MAX_ATTEMPTS):
        msg.record(Outcome(status=500, latency_ms=3), now, random=lambda: 0.5)
        if msg.state is MessageState.PENDING:
            waits.append(msg.next_attempt_at - now)
            now = msg.next_attempt_at

    # Then it waited 5 s, 5 min, 30 min, 2 h, 5 h, 10 h and 10 h, and then failed
    assert [w.total_seconds() for w in waits] == [5, 300, 1800, 7200, 18000, 36000, 36000]
    assert (msg.state, msg.attempts) == (MessageState.FAILED, 8)


def test_retry_after_is_honoured_when_longer_than_the_schedule() -> None:
    msg = message()
    msg.record(Outcome(status=429, latency_ms=1, retry_after=timedelta(seconds=120)), NOW, random=lambda: 0.5)
    assert msg.next_attempt_at == NOW + timedelta(seconds=120)
    assert retry_after("30", NOW) == timedelta(seconds=30)
    assert retry_after("Sat, 28 Nov 2026 12:01:00 GMT", NOW) == timedelta(minutes=1)
    assert retry_after("soon", NOW) is None


def test_a_410_fails_the_message_at_once_and_a_2xx_delivers_it() -> None:
    gone, ok = message(), message()
    gone.record(Outcome(status=410, latency_ms=1), NOW, random=lambda: 0.5)
    ok.record(Outcome(status=204, latency_ms=1), NOW, random=lambda: 0.5)
    assert (gone.state, ok.state, ok.delivered_at) == (MessageState.FAILED, MessageState.DELIVERED, NOW)


# --- patterns and the breaker ----------------------------------------------------------------------------


def test_patterns() -> None:
    assert pattern_matches("order.*", "order.status_changed")
    assert pattern_matches("order.created", "order.created")
    assert not pattern_matches("order.created", "order.updated")
    assert not pattern_matches("order.*", "orders.created")
    assert endpoint(event_types=["order.created"]).wants("webhook.test")


def test_the_breaker_opens_after_five_failures_for_longer_each_time_and_a_success_closes_it() -> None:
    ep = endpoint()
    for _ in range(4):
        ep.failed(NOW)
    assert not ep.circuit_open(NOW)
    ep.failed(NOW)
    assert ep.circuit_open_until == NOW + timedelta(seconds=30)
    # an attempt that was under way when it opened fails too: that neither counts nor lengthens it
    ep.failed(NOW + timedelta(seconds=1))
    assert (ep.consecutive_failures, ep.circuit_open_until) == (5, NOW + timedelta(seconds=30))
    # half-open: the first attempt after the open period fails, and it opens for twice as long
    later = NOW + timedelta(seconds=30)
    ep.failed(later)
    assert (ep.consecutive_failures, ep.circuit_open_until) == (6, later + timedelta(seconds=60))
    ep.succeeded(NOW)
    assert (ep.circuit_open(NOW), ep.consecutive_failures, ep.failing_since) == (False, 0, None)


def test_failing_for_five_days_is_too_long() -> None:
    ep = endpoint()
    ep.failed(NOW)
    assert not ep.failing_too_long(NOW + timedelta(days=4, hours=23))
    assert ep.failing_too_long(NOW + timedelta(days=5))


# --- SSRF --------------------------------------------------------------------------------------------------


def resolver(table: dict[str, list[str]]):  # type: ignore[no-untyped-def]
    async def resolve(host: str, port: int) -> list[str]:
        if host not in table:
            raise OSError("Name or service not known")
        return table[host]

    return resolve


RESOLVES = resolver(
    {
        "localhost": ["127.0.0.1", "::1"],
        "127.0.0.1.nip.io": ["127.0.0.1"],
        "internal.example": ["10.1.2.3"],
        "mixed.example": ["93.184.215.14", "192.168.1.5"],
        "public.example": ["93.184.215.14"],
    }
)


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://127.0.0.1/hook", "127.0.0.1 is a loopback address"),
        ("http://10.0.0.8/hook", "10.0.0.8 is a private address"),
        ("http://169.254.169.254/latest/meta-data", "169.254.169.254 is a link-local address"),
        ("http://[fd00:ec2::254]/", "fd00:ec2::254 is a reserved address"),
        ("http://[::ffff:127.0.0.1]/", "::ffff:127.0.0.1 is a loopback address"),
        ("http://100.64.1.1/", "100.64.1.1 is a reserved address"),
        ("http://0.0.0.0/", "0.0.0.0 is a unspecified address"),
        ("http://224.0.0.1/", "224.0.0.1 is a multicast address"),
        ("http://localhost:8080/", "localhost resolves to 127.0.0.1, which is a loopback address"),
        ("https://127.0.0.1.nip.io/", "127.0.0.1.nip.io resolves to 127.0.0.1, which is a loopback address"),
        ("https://internal.example/", "internal.example resolves to 10.1.2.3, which is a private address"),
        ("https://mixed.example/", "mixed.example resolves to 192.168.1.5, which is a private address"),
    ],
)
async def test_urls_that_reach_private_addresses_are_refused(url: str, reason: str) -> None:
    with pytest.raises(UrlRefused) as refused:
        await vet(url, resolver=RESOLVES)
    assert str(refused.value) == f"{reason}; webhooks go to public addresses only"


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("ftp://public.example/", "only http and https URLs can receive webhooks"),
        ("https://user:pw@public.example/", "the URL must not contain credentials"),
        ("https:///nohost", "the URL has no host"),
    ],
)
async def test_urls_of_the_wrong_shape_are_refused(url: str, reason: str) -> None:
    with pytest.raises(UrlRefused) as refused:
        await vet(url, resolver=RESOLVES)
    assert str(refused.value) == reason


async def test_a_public_host_is_vetted_to_the_address_to_connect_to() -> None:
    target = await vet("https://public.example:8443/hook", resolver=RESOLVES)
    assert target is not None
    assert (target.host, target.port, target.address) == ("public.example", 8443, "93.184.215.14")


async def test_the_allow_list_lets_a_private_network_through() -> None:
    allowed = parse_networks(["10.1.0.0/16"])
    target = await vet("https://internal.example/", resolver=RESOLVES, allowed=allowed)
    assert target is not None
    assert target.address == "10.1.2.3"
    with pytest.raises(UrlRefused):
        await vet("http://10.2.0.1/", resolver=RESOLVES, allowed=allowed)


async def test_an_unresolvable_host_is_accepted_at_registration_but_not_at_send_time() -> None:
    assert await vet("https://nowhere.invalid/", resolver=RESOLVES, unresolved_ok=True) is None
    with pytest.raises(UrlRefused) as refused:
        await vet("https://nowhere.invalid/", resolver=RESOLVES)
    assert str(refused.value) == "the host nowhere.invalid does not resolve: Name or service not known"
