"""The audit trail every service publishes: one event per change, recorded by the identity service."""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar

from doorstep.kernel.messages import Event
from doorstep.kernel.settings import SERVICES


class AuditRecorded(Event):
    """A change someone made: who (actor), what (action, object, before and after), when, from where.

    Written to the changing service's outbox in the transaction of the change (`uow.audit(...)`), so
    there is an entry exactly when the change committed. `before`/`after` hold what the change touched,
    never secrets.
    """

    event_type = "doorstep.audit.recorded.v1"
    producers: ClassVar[tuple[str, ...]] = SERVICES

    service: str
    actor: str  # "user:<id>", "api_key:<id>", "connection:<id>" or "system"
    action: str  # dotted: "order.created", "order.status_changed", "api_key.revoked"
    object_type: str
    object_id: str
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    ip: str | None
    user_agent: str | None
    request_id: str | None
    occurred_at: datetime

    def subject(self) -> str:
        return self.object_id
