"""Errors of the delivery API, each a problem with a stable type."""

from doorstep.kernel.errors import Conflict, DoorstepError, InvalidInput, NotFound, ServiceUnavailable


class QuoteNotFound(NotFound):
    slug = "quote-not-found"
    title = "Delivery quote not found"


class DeliveryNotFound(NotFound):
    slug = "delivery-not-found"
    title = "Delivery not found"


class NoRateCard(Conflict):
    slug = "no-rate-card"
    title = "The tenant has no delivery rate card"


class InvalidDeliveryRequest(InvalidInput):
    slug = "invalid-delivery-request"
    title = "The delivery request is not valid"


class QuoteExpired(DoorstepError):
    slug = "quote-expired"
    title = "The quote has expired"
    status = 410


class DeliveryAlreadyExists(Conflict):
    slug = "delivery-already-exists"
    title = "A delivery with this external_delivery_id exists for another quote"


class DeliveryNotCancellable(Conflict):
    slug = "delivery-not-cancellable"
    title = "The delivery can no longer be cancelled"


class GeocoderUnavailable(ServiceUnavailable):
    """The geocoder could not answer now; the same request may be quoted a little later."""

    slug = "geocoder-unavailable"
    title = "The geocoder is not available"
    RETRY_AFTER_SECONDS = 30

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.headers["Retry-After"] = str(self.RETRY_AFTER_SECONDS)
