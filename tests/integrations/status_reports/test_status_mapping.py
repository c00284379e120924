"""Which Doorstep statuses each platform hears of, what it needs to hear them, and the retry schedule."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from doorstep.contracts.orders import OrderStatus
from doorstep.integrations.adapters.platforms import PLATFORMS, shopify, square, ubereats, woocommerce
from doorstep.integrations.ports import StatusReporting
from doorstep.integrations.status_reports.domain import ReportState, StatusReport

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def test_the_four_platforms_report_and_the_others_do_not() -> None:
    reporting = sorted(name for name, adapter in PLATFORMS.items() if isinstance(adapter, StatusReporting))
    assert reporting == ["shopify", "square", "ubereats", "woocommerce"]


def test_woocommerce_statuses() -> None:
    assert woocommerce.REPORTED_STATUSES == {
        "accepted": "processing",
        "preparing": "processing",
        "delivered": "completed",
        "cancelled": "cancelled",
        "rejected": "cancelled",
        "failed_delivery": "failed",
    }


def test_shopify_statuses() -> None:
    assert shopify.REPORTED_STATUSES == {"delivered": "fulfil", "cancelled": "other", "rejected": "declined"}


def test_square_statuses() -> None:
    assert {status.value: square.REPORTED_STATUSES.get(status.value) for status in OrderStatus} == {
        "needs_attention": None,
        "placed": "PROPOSED",
        "accepted": "RESERVED",
        "preparing": "RESERVED",
        "ready_for_pickup": "PREPARED",
        "picked_up": "PREPARED",
        "delivered": "COMPLETED",
        "rejected": "CANCELED",
        "cancelled": "CANCELED",
        "failed_delivery": "FAILED",
        "returned": None,
    }


def test_uber_eats_statuses() -> None:
    assert ubereats.REPORTED_STATUSES == {
        "accepted": "accept_pos_order",
        "rejected": "deny_pos_order",
        "cancelled": "cancel",
        "ready_for_pickup": "ready",
    }


@pytest.mark.parametrize("name", ["woocommerce", "shopify", "square", "ubereats"])
def test_reports_follows_the_mapping(name: str) -> None:
    adapter = PLATFORMS[name]
    assert isinstance(adapter, StatusReporting)
    mapping = {"woocommerce": woocommerce, "shopify": shopify, "square": square, "ubereats": ubereats}[name]
    assert [s.value for s in OrderStatus if adapter.reports(s.value)] == [
        s.value for s in OrderStatus if s.value in mapping.REPORTED_STATUSES
    ]


@pytest.mark.parametrize(
    ("name", "settings", "missing"),
    [
        (
            "woocommerce",
            {"api_base_url": "https://shop.test", "consumer_key": "ck"},
            "settings.consumer_secret",
        ),
        ("woocommerce", {"consumer_key": "ck", "consumer_secret": "cs"}, "settings.api_base_url"),
        (
            "woocommerce",
            {"api_base_url": "https://shop.test", "consumer_key": "ck", "consumer_secret": "cs"},
            None,
        ),
        ("shopify", {"shop_domain": "acme.myshopify.com"}, "settings.access_token"),
        ("shopify", {"access_token": "shpat"}, "settings.shop_domain"),
        ("shopify", {"access_token": "shpat", "shop_domain": "acme.myshopify.com"}, None),
        ("square", {}, "settings.access_token"),
        ("square", {"access_token": "EAAA"}, None),
        ("ubereats", {}, "settings.client_id"),
        ("ubereats", {"client_id": "c"}, None),
    ],
)
def test_missing_credentials(name: str, settings: dict[str, str], missing: str | None) -> None:
    adapter = PLATFORMS[name]
    assert isinstance(adapter, StatusReporting)
    assert adapter.missing_credentials(settings) == missing


def report() -> StatusReport:
    return StatusReport(
        id="r",
        tenant_id="t",
        connection_id="c",
        platform="woocommerce",
        order_id="o",
        external_id="727",
        event_id="e",
        status="accepted",
        reason=None,
        created_at=NOW,
        next_attempt_at=NOW,
    )


def test_failures_wait_30s_2min_10min_45min_then_fail() -> None:
    # Given a new report, when it fails five times
    subject, now, waits = report(), NOW, []
    for _ in range(5):
        subject.failed("answered 503", now)
        if subject.state is ReportState.PENDING:
            waits.append(subject.next_attempt_at - now)
            now = subject.next_attempt_at
    # Then it waited by the schedule, about an hour in all, and failed
    assert waits == [
        timedelta(seconds=30),
        timedelta(minutes=2),
        timedelta(minutes=10),
        timedelta(minutes=45),
    ]
    assert (subject.state, subject.attempts, subject.last_error) == (ReportState.FAILED, 5, "answered 503")


def test_retry_starts_the_schedule_again() -> None:
    subject = report()
    for _ in range(5):
        subject.failed("down", NOW)
    subject.retry(NOW + timedelta(hours=2))
    assert (subject.state, subject.attempts, subject.next_attempt_at) == (
        ReportState.PENDING,
        0,
        NOW + timedelta(hours=2),
    )
