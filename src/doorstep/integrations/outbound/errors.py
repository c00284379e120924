"""Errors of the status-webhook API, each a problem with a stable type."""

from doorstep.kernel.errors import InvalidInput, NotFound


class WebhookEndpointNotFound(NotFound):
    slug = "webhook-endpoint-not-found"
    title = "Webhook endpoint not found"


class WebhookMessageNotFound(NotFound):
    slug = "webhook-message-not-found"
    title = "Webhook message not found"


class WebhookUrlRefused(InvalidInput):
    slug = "webhook-url-refused"
    title = "That URL cannot receive webhooks"


class InvalidEventTypes(InvalidInput):
    slug = "invalid-webhook-event-types"
    title = "The event types are not valid"
