"""Per-request and per-message context that log lines, new events and audit entries inherit."""

from contextvars import ContextVar
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Origin:
    """Where an HTTP request came from: the client's address and what the client says it is."""

    ip: str | None
    user_agent: str | None


correlation_id: ContextVar[str | None] = ContextVar("correlation_id", default=None)
causation_id: ContextVar[str | None] = ContextVar("causation_id", default=None)
# Set for the length of an HTTP request; unset (None) while handling a message from the broker.
origin: ContextVar[Origin | None] = ContextVar("origin", default=None)
