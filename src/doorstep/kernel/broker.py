"""The message broker port: publish CloudEvents, consume them per service, keep what keeps failing."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from doorstep.kernel.messages import CloudEvent

EventHandler = Callable[[CloudEvent], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A message a consumer gave up on after its delivery limit, kept for inspection and replay."""

    id: str
    consumer: str
    event: CloudEvent
    reason: str
    attempts: int
    dead_lettered_at: datetime


class Broker(Protocol):
    """Topic routing by event type. Patterns use AMQP topic syntax: `*` one word, `#` zero or more."""

    async def start(self) -> None:
        """Connect, declare what the subscriptions need and start consuming."""

    async def close(self) -> None: ...

    async def publish(self, events: Sequence[CloudEvent]) -> None:
        """Return only once the broker has taken responsibility for every event."""

    def subscribe(self, consumer: str, patterns: Sequence[str], handler: EventHandler) -> None:
        """Register before `start`. Each consumer gets every matching event once (competing instances)."""

    async def ping(self) -> bool: ...

    async def dead_letters(self, consumer: str | None = None) -> list[DeadLetter]: ...

    async def replay_dead_letter(self, dead_letter_id: str) -> DeadLetter:
        """Hand the message back to its consumer's queue; raises `DeadLetterNotFound`."""


class DeadLetterNotFound(LookupError):
    def __init__(self, dead_letter_id: str) -> None:
        super().__init__(f"no dead letter with id {dead_letter_id!r}")
        self.dead_letter_id = dead_letter_id


def topic_matches(pattern: str, routing_key: str) -> bool:
    """AMQP topic matching: `*` is exactly one word, `#` is zero or more words."""
    return _match(pattern.split("."), routing_key.split("."))


def _match(pattern: list[str], words: list[str]) -> bool:
    if not pattern:
        return not words
    head, rest = pattern[0], pattern[1:]
    if head == "#":
        return any(_match(rest, words[i:]) for i in range(len(words) + 1))
    if not words:
        return False
    return (head == "*" or head == words[0]) and _match(rest, words[1:])


def retry_delay(backoff: float, attempt: int, *, ceiling: float = 5.0) -> float:
    """Seconds to wait after failed attempt number `attempt` (1-based): backoff, 2x, 4x, ... up to `ceiling`."""
    return min(backoff * 2.0 ** (attempt - 1), ceiling)
