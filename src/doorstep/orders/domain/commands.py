from doorstep.contracts.orders import OrderDraft, OrderStatus
from doorstep.kernel.messages import Command


class PlaceOrder(Command):
    """Place an order unless one with the same (tenant, source, external id) exists."""

    tenant_id: str
    source: str
    draft: OrderDraft
    actor: str
    idempotency_key: str | None = None
    request_hash: str | None = None


class ChangeOrderStatus(Command):
    tenant_id: str
    order_id: str
    status: OrderStatus
    reason: str | None
    actor: str


class AmendOrder(Command):
    tenant_id: str
    order_id: str
    changes: dict[str, object]
    actor: str


class ImportOrderBatch(Command):
    """One batch of a CSV import, stored in one transaction."""

    tenant_id: str
    actor: str
    drafts: list[OrderDraft]


class GeocodeOrder(Command):
    """Ask the geocoder again for the stops of an order that waits in `needs_attention`."""

    tenant_id: str
    order_id: str
    actor: str


class FollowDelivery(Command):
    """Dispatch reports a step of the order's delivery that moves the order to `status`."""

    tenant_id: str
    order_id: str
    status: OrderStatus
    reason: str | None
    actor: str
