"""Status reports: one order status change to tell one platform, retried on a schedule, then failed."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

# Seconds to wait after the n-th failed attempt: five attempts over about an hour, then the report fails
# and waits for a person (`POST /v1/integrations/status-reports/{id}/retry`).
RETRY_DELAYS = (30, 120, 600, 2700)
MAX_ATTEMPTS = len(RETRY_DELAYS) + 1
ERROR_LIMIT = 1000  # characters of the platform's answer kept with a failed attempt


class ReportState(StrEnum):
    PENDING = "pending"
    SENT = "sent"
    FAILED = "failed"


@dataclass
class StatusReport:
    id: str
    tenant_id: str
    connection_id: str
    platform: str
    order_id: str
    external_id: str
    event_id: str
    status: str
    reason: str | None
    created_at: datetime
    next_attempt_at: datetime
    state: ReportState = ReportState.PENDING
    attempts: int = 0
    last_error: str | None = None
    sent_at: datetime | None = None

    def succeeded(self, now: datetime) -> None:
        self.attempts += 1
        self.state, self.sent_at, self.last_error = ReportState.SENT, now, None

    def failed(self, error: str, now: datetime) -> None:
        """Count a failed attempt: try again after the schedule's wait, or fail when none is left."""
        self.attempts += 1
        self.last_error = error[:ERROR_LIMIT]
        if self.attempts >= MAX_ATTEMPTS:
            self.state = ReportState.FAILED
            return
        self.next_attempt_at = now + timedelta(seconds=RETRY_DELAYS[self.attempts - 1])

    def retry(self, now: datetime) -> None:
        """Send again from the start of the schedule."""
        self.state = ReportState.PENDING
        self.attempts = 0
        self.next_attempt_at = now
        self.sent_at = None
