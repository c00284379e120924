"""Errors of the courier API, each a problem with a stable type."""

from doorstep.kernel.errors import Conflict, DoorstepError, InvalidInput, NotFound


class CourierAccountNotFound(NotFound):
    slug = "courier-account-not-found"
    title = "Courier account not found"


class CourierQuoteNotFound(NotFound):
    slug = "courier-quote-not-found"
    title = "Courier quote not found"


class CourierDeliveryNotFound(NotFound):
    slug = "courier-delivery-not-found"
    title = "Courier delivery not found"


class CourierDeliveryNotCancellable(Conflict):
    slug = "courier-delivery-not-cancellable"
    title = "The courier delivery can no longer be cancelled"


class CourierRequestRejected(InvalidInput):
    """The network said the request cannot be served (an address out of its area, a quote expired...)."""

    slug = "courier-request-rejected"
    title = "The courier network refused the request"


class CourierNetworkFailed(DoorstepError):
    """The network did not answer, or answered with an error of its own; trying later may succeed."""

    slug = "courier-network-failed"
    title = "The courier network failed"
    status = 502


class CourierWebhookNotAuthentic(DoorstepError):
    slug = "courier-webhook-not-authentic"
    title = "The webhook's signature is missing or wrong"
    status = 401


class CourierWebhookUnreadable(InvalidInput):
    slug = "courier-webhook-unreadable"
    title = "The webhook is not what the courier network documents"
