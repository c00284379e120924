"""What any service asks the notifications service to send.

Until that service exists, the all-in-one shape consumes these and writes them to the log.
"""

from __future__ import annotations

from typing import ClassVar, Literal

from doorstep.kernel.messages import Event


class NotificationRequested(Event):
    event_type = "doorstep.notifications.requested.v1"
    # Every service that messages people, in time.
    producers: ClassVar[tuple[str, ...]] = ("identity",)
    channel: Literal["email", "sms"]
    to: str
    template: str  # e.g. "identity.one_time_code", "identity.invitation"
    params: dict[str, str]
    # Params that are secrets (a one-time code): the log sender of the all-in-one demo prints them, since
    # it is the delivery; nothing else does.
    sensitive: list[str] = []

    def subject(self) -> str:
        return self.to
