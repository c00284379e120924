"""Aggregates record the events they cause; the unit of work writes them to the outbox."""

from __future__ import annotations

from dataclasses import dataclass, field

from doorstep.kernel.messages import Event


@dataclass(kw_only=True)
class Aggregate:
    tenant_id: str
    events: list[Event] = field(default_factory=list, repr=False, compare=False)

    def record(self, event: Event) -> None:
        self.events.append(event)
