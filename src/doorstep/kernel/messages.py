"""Commands, events and the CloudEvents envelope they travel in."""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field

from doorstep.kernel.clock import utcnow
from doorstep.kernel.ids import new_id


class Message(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Command(Message):
    """A request to change state, handled by exactly one handler."""


class Event(Message):
    """A fact that already happened. Subclasses name their wire type in `event_type`."""

    event_type: ClassVar[str] = ""
    # The services that publish it; empty means the one its type names (`doorstep.<service>.…`).
    producers: ClassVar[tuple[str, ...]] = ()
    registry: ClassVar[dict[str, type[Event]]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.event_type:
            if cls.event_type in Event.registry:
                raise TypeError(f"event type {cls.event_type} registered twice")
            Event.registry[cls.event_type] = cls

    def subject(self) -> str | None:
        """The entity the event is about (CloudEvents `subject`), when there is one."""
        return None


class CloudEvent(BaseModel):
    """CloudEvents 1.0 structured envelope with Doorstep's extension attributes."""

    model_config = ConfigDict(frozen=True)

    specversion: Literal["1.0"] = "1.0"
    id: str = Field(default_factory=new_id)
    source: str
    type: str
    time: datetime = Field(default_factory=utcnow)
    subject: str | None = None
    tenantid: str
    correlationid: str | None = None
    causationid: str | None = None
    datacontenttype: Literal["application/json"] = "application/json"
    data: dict[str, Any]

    @classmethod
    def wrap(
        cls,
        event: Event,
        *,
        source: str,
        tenant_id: str,
        correlation_id: str | None = None,
        causation_id: str | None = None,
    ) -> CloudEvent:
        return cls(
            source=source,
            type=event.event_type,
            subject=event.subject(),
            tenantid=tenant_id,
            correlationid=correlation_id,
            causationid=causation_id,
            data=event.model_dump(mode="json"),
        )

    def payload(self) -> Event:
        """The typed event inside, looked up by `type` in the contracts registry."""
        try:
            event_class = Event.registry[self.type]
        except KeyError:
            raise UnknownEventType(self.type) from None
        return event_class.model_validate(self.data)


class UnknownEventType(LookupError):
    def __init__(self, event_type: str) -> None:
        super().__init__(f"no contract registered for event type {event_type!r}")
        self.event_type = event_type
