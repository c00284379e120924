"""The notification sender of the all-in-one shape until the notifications service exists: the log.

It consumes `notifications.requested` like that service will, and writes each message to the log,
one-time codes included: in the demo, the log is where you read the code you were sent.
"""

from __future__ import annotations

import structlog

from doorstep.contracts.notifications import NotificationRequested
from doorstep.kernel.messages import CloudEvent

log = structlog.get_logger("doorstep.notifications")
PATTERNS = (NotificationRequested.event_type,)


async def deliver_to_log(envelope: CloudEvent) -> None:
    message = envelope.payload()
    assert isinstance(message, NotificationRequested)
    log.warning(
        "notification_sent_to_log",
        channel=message.channel,
        to=message.to,
        template=message.template,
        tenant_id=envelope.tenantid,
        **message.params,
    )
