"""Errors of the status-report API, each a problem with a stable type."""

from doorstep.kernel.errors import Conflict, NotFound


class StatusReportNotFound(NotFound):
    slug = "status-report-not-found"
    title = "Status report not found"


class StatusReportNotRetryable(Conflict):
    slug = "status-report-not-retryable"
    title = "The status report cannot be sent again"
