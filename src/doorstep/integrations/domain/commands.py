from typing import Any

from doorstep.kernel.messages import CloudEvent, Command


class OpenConnection(Command):
    tenant_id: str
    platform: str
    settings: dict[str, Any] = {}
    secret: str | None = None
    actor: str = "system"  # who asked, for the audit trail; "system" for the CLI and the demo


class ReceiveWebhook(Command):
    platform: str
    token: str
    headers: dict[str, str]
    body: bytes


class ReplayDelivery(Command):
    """Map a stored delivery again (after a mapper fix or a settings change)."""

    tenant_id: str
    delivery_id: str
    actor: str = "system"


class LinkOrder(Command):
    """Remember which Doorstep order a platform's order became."""

    tenant_id: str
    order_id: str
    source: str
    external_id: str | None


class LinkOrders(Command):
    """Handle delivered `OrderCreated` events in one transaction: keep the links of the platform orders
    among them (`links`, by event id) and mark every one of them handled."""

    messages: tuple[CloudEvent, ...]
    links: dict[str, LinkOrder]


class ChangeMapping(Command):
    """Store a `json_mapping` connection's mapping (checked first)."""

    tenant_id: str
    connection_id: str
    mapping: dict[str, Any]
    actor: str = "system"


class TryMapping(Command):
    """Map a sample payload with a connection's mapping, or with a draft `mapping` not stored yet."""

    tenant_id: str
    connection_id: str
    payload: Any
    mapping: dict[str, Any] | None = None
