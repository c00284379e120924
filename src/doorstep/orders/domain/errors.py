from collections.abc import Iterable

from doorstep.contracts.orders import OrderStatus
from doorstep.kernel.errors import Conflict, DoorstepError, InvalidInput, NotFound


class OrderNotFound(NotFound):
    slug = "order-not-found"
    title = "Order not found"


class IllegalStatusTransition(Conflict):
    slug = "illegal-status-transition"
    title = "The order cannot move to that status"

    def __init__(self, current: OrderStatus, target: OrderStatus, allowed: Iterable[OrderStatus]) -> None:
        lifecycle = list(OrderStatus)
        allowed_values = [status.value for status in sorted(allowed, key=lifecycle.index)]
        moves = ", ".join(allowed_values) or "none: the order is final"
        super().__init__(
            f"an order that is {current.value} cannot become {target.value}; allowed: {moves}",
            current_status=current.value,
            requested_status=target.value,
            allowed_statuses=allowed_values,
        )


class OrderFieldLocked(Conflict):
    slug = "order-field-locked"
    title = "That field can no longer change"

    def __init__(self, field: str, status: OrderStatus) -> None:
        super().__init__(
            f"{field} cannot change once the order is {status.value}",
            field=field,
            current_status=status.value,
        )


class IdempotencyKeyReused(DoorstepError):
    slug = "idempotency-key-reused"
    title = "The idempotency key was used with another request"
    status = 422

    def __init__(self) -> None:
        super().__init__(
            "this Idempotency-Key was already used with a different request body",
            errors=[{"field": "Idempotency-Key", "in": "header", "message": "used with a different body"}],
        )


class OrderChangedConcurrently(Conflict):
    slug = "order-changed-concurrently"
    title = "The order changed while this request was being handled"

    def __init__(self, order_id: str) -> None:
        super().__init__(f"order {order_id} was changed by another request; read it again and retry")


class OrderTotalTooLarge(InvalidInput):
    slug = "order-total-too-large"
    title = "The order total is too large"


class StopWithoutLocation(InvalidInput):
    """An order past `needs_attention` keeps coordinates for both stops; a new address must bring its own."""

    slug = "stop-without-location"
    title = "The stop has no coordinates"

    def __init__(self, stop: str, status: OrderStatus) -> None:
        super().__init__(
            f"the new {stop} address could not be geocoded; give {stop}.location, as the order is "
            f"{status.value}",
            field=f"{stop}.location",
            location="body",
        )


class OrderNotLocated(Conflict):
    slug = "order-not-located"
    title = "The order's stops need coordinates first"

    def __init__(self, stops: Iterable[str]) -> None:
        missing = list(stops)
        super().__init__(
            f"set the coordinates of the {' and '.join(missing)} first (PATCH the order or retry geocoding)",
            missing_locations=[f"{stop}.location" for stop in missing],
        )
