"""Status-webhook endpoints and messages: pure rules for matching, retrying, breaking and disabling."""

from __future__ import annotations

import base64
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum

# The event types a tenant can subscribe to, and the orders events they come from.
EVENT_TYPES = {
    "doorstep.orders.order.created.v1": "order.created",
    "doorstep.orders.order.updated.v1": "order.updated",
    "doorstep.orders.order.status_changed.v1": "order.status_changed",
}
WEBHOOK_TYPES = frozenset(EVENT_TYPES.values())
TEST_TYPE = "webhook.test"

# Seconds to wait after the n-th failed attempt (immediately, then 5 s, 5 min, 30 min, 2 h, 5 h, 10 h,
# 10 h): eight attempts in all, about 28 hours, after which the message fails.
RETRY_DELAYS = (5, 300, 1800, 7200, 18000, 36000, 36000)
MAX_ATTEMPTS = len(RETRY_DELAYS) + 1
JITTER = 0.1  # each wait is stretched or shrunk by up to a tenth, so retries of many messages spread out
MAX_RETRY_AFTER = timedelta(hours=24)
DISABLE_AFTER = timedelta(days=5)
ROTATION_OVERLAP = timedelta(hours=24)
BREAKER_THRESHOLD = 5  # consecutive failures that open the circuit
BREAKER_COOL_DOWN = (timedelta(seconds=30), timedelta(minutes=10))  # first and longest open period


class MessageState(StrEnum):
    PENDING = "pending"
    DELIVERED = "delivered"
    FAILED = "failed"


def new_secret() -> str:
    return "whsec_" + base64.b64encode(os.urandom(24)).decode()


def pattern_matches(pattern: str, event_type: str) -> bool:
    """`order.*` matches every `order.<x>`; `*` matches everything; anything else matches itself."""
    if pattern == "*":
        return True
    if pattern.endswith(".*"):
        return event_type.startswith(pattern[:-1])
    return pattern == event_type


def invalid_pattern(pattern: str) -> str | None:
    """Why `pattern` can never match a known event type, or None when it is fine."""
    if not any(pattern_matches(pattern, known) for known in WEBHOOK_TYPES):
        return f"{pattern!r} matches no event type; known: {', '.join(sorted(WEBHOOK_TYPES))}"
    return None


def retry_delay(attempts: int, *, random: Callable[[], float]) -> timedelta | None:
    """The wait before the next attempt after `attempts` failed ones, with jitter; None when none is left."""
    if attempts >= MAX_ATTEMPTS:
        return None
    base = RETRY_DELAYS[attempts - 1]
    return timedelta(seconds=base * (1 - JITTER + 2 * JITTER * random()))


@dataclass(frozen=True, slots=True)
class Outcome:
    """What one attempt came to."""

    status: int | None  # HTTP status, None when no response came (timeout, refused, blocked)
    latency_ms: int
    snippet: str = ""
    error: str | None = None
    retry_after: timedelta | None = None

    @property
    def succeeded(self) -> bool:
        return self.status is not None and 200 <= self.status < 300

    @property
    def gone(self) -> bool:
        return self.status == 410


@dataclass
class Endpoint:
    id: str
    tenant_id: str
    url: str
    event_types: list[str]
    description: str | None
    secret: str
    created_at: datetime
    updated_at: datetime
    previous_secret: str | None = None
    previous_secret_expires_at: datetime | None = None
    enabled: bool = True
    disabled_reason: str | None = None
    failing_since: datetime | None = None
    consecutive_failures: int = 0
    circuit_open_until: datetime | None = None

    def wants(self, webhook_type: str) -> bool:
        return webhook_type == TEST_TYPE or any(pattern_matches(p, webhook_type) for p in self.event_types)

    def signing_secrets(self, now: datetime) -> list[str]:
        """The current secret, and the previous one during the 24 hours after a rotation."""
        if self.previous_secret and self.previous_secret_expires_at and now < self.previous_secret_expires_at:
            return [self.secret, self.previous_secret]
        return [self.secret]

    def rotate_secret(self, now: datetime) -> str:
        self.previous_secret, self.previous_secret_expires_at = self.secret, now + ROTATION_OVERLAP
        self.secret = new_secret()
        self.updated_at = now
        return self.secret

    def circuit_open(self, now: datetime) -> bool:
        return self.circuit_open_until is not None and now < self.circuit_open_until

    def succeeded(self, now: datetime) -> None:
        self.failing_since = None
        self.consecutive_failures = 0
        self.circuit_open_until = None

    def failed(self, now: datetime) -> None:
        """Count a failure; open the circuit past the threshold, for longer each time it opens again.

        A failure while the circuit is open is of an attempt already under way when it opened (a
        dispatcher has up to 16 in flight per endpoint): it says nothing new about the receiver, so it
        neither counts nor lengthens the open period, which would otherwise start at 10 minutes
        instead of 30 s for a busy endpoint.
        """
        self.failing_since = self.failing_since or now
        if self.circuit_open(now):
            return
        self.consecutive_failures += 1
        beyond = self.consecutive_failures - BREAKER_THRESHOLD
        if beyond >= 0:
            first, longest = BREAKER_COOL_DOWN
            self.circuit_open_until = now + min(first * 2 ** min(beyond, 10), longest)

    def failing_too_long(self, now: datetime) -> bool:
        return self.failing_since is not None and now - self.failing_since >= DISABLE_AFTER

    def disable(self, reason: str, now: datetime) -> None:
        self.enabled = False
        self.disabled_reason = reason
        self.updated_at = now

    def enable(self, now: datetime) -> None:
        self.enabled = True
        self.disabled_reason = None
        self.failing_since = None
        self.consecutive_failures = 0
        self.circuit_open_until = None
        self.updated_at = now


@dataclass
class Message:
    """One event for one endpoint; its id is the `webhook-id`, the same on every attempt."""

    id: str
    endpoint_id: str
    tenant_id: str
    event_id: str
    event_type: str
    subject: str | None
    body: str
    created_at: datetime
    next_attempt_at: datetime
    state: MessageState = MessageState.PENDING
    attempts: int = 0
    last_status: int | None = None
    last_error: str | None = None
    delivered_at: datetime | None = None
    attempt_log: list[Attempt] = field(default_factory=list)

    def record(self, outcome: Outcome, now: datetime, *, random: Callable[[], float]) -> None:
        """Count an attempt: delivered, retried after the schedule's wait (or `Retry-After`), or failed."""
        self.attempts += 1
        self.last_status = outcome.status
        self.last_error = outcome.error
        if outcome.succeeded:
            self.state, self.delivered_at = MessageState.DELIVERED, now
            return
        delay = None if outcome.gone else retry_delay(self.attempts, random=random)
        if delay is None:
            self.state = MessageState.FAILED
            return
        if outcome.retry_after is not None:
            delay = max(delay, min(outcome.retry_after, MAX_RETRY_AFTER))
        self.next_attempt_at = now + delay

    def replay(self, now: datetime) -> None:
        """Send again from the start of the schedule, whatever came before."""
        self.state = MessageState.PENDING
        self.attempts = 0
        self.next_attempt_at = now
        self.delivered_at = None


@dataclass(frozen=True, slots=True)
class Attempt:
    id: str
    message_id: str
    attempted_at: datetime
    status: int | None
    latency_ms: int
    snippet: str
    error: str | None


def webhook_types_of(patterns: Sequence[str]) -> list[str]:
    return sorted(t for t in WEBHOOK_TYPES if any(pattern_matches(p, t) for p in patterns))
