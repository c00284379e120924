from doorstep.kernel.errors import DoorstepError, InvalidInput, NotFound, Unauthenticated


class ConnectionNotFound(NotFound):
    slug = "connection-not-found"
    title = "Connection not found"


class DeliveryNotFound(NotFound):
    slug = "inbound-delivery-not-found"
    title = "Inbound delivery not found"


class WebhookSignatureInvalid(Unauthenticated):
    slug = "webhook-signature-invalid"
    title = "The webhook signature does not verify"


class InvalidConnectionSettings(InvalidInput):
    slug = "invalid-connection-settings"
    title = "The connection settings are not valid"


class UnsupportedPlatform(InvalidInput):
    slug = "unsupported-platform"
    title = "Doorstep has no adapter for that platform"


class PayloadTooLarge(DoorstepError):
    slug = "payload-too-large"
    title = "The webhook body is too large"
    status = 413


class PayloadNotMappable(InvalidInput):
    slug = "payload-not-mappable"
    title = "The sample payload does not map to an order"
