"""The integrations consumer of `order.created`: every event of a delivery is marked handled in one
transaction, only the orders that came from a platform get a link, and a redelivery adds nothing."""

from __future__ import annotations

from typing import Any

from sqlalchemy import event, select
from sqlalchemy.ext.asyncio import AsyncEngine
from tests.platform import RunningPlatform, Tenant

from doorstep.contracts.orders import Customer, GeoPoint, Item, OrderDraft, Stop
from doorstep.integrations.adapters.tables import inbox, order_links
from doorstep.kernel.clock import utcnow
from doorstep.kernel.ids import new_id
from doorstep.kernel.messages import CloudEvent
from doorstep.orders.domain.model import Order

DRAFT = OrderDraft(
    pickup=Stop(name="Curry Corner", address="Oranienstraße 12", location=GeoPoint(lat=52.5, lon=13.41)),
    dropoff=Stop(name="Lena", address="Skalitzer Straße 3", location=GeoPoint(lat=52.49, lon=13.43)),
    customer=Customer(name="Lena Müller"),
    items=[Item(name="Currywurst", quantity=2, unit_price=450)],
    currency="EUR",
)


def order_created(tenant: Tenant, source: str, external_id: str) -> tuple[str, CloudEvent]:
    """A new order's id and its `OrderCreated` event as the orders service publishes it."""
    order = Order.place(
        id=new_id(),
        tenant_id=tenant.tenant_id,
        source=source,
        draft=DRAFT.model_copy(update={"external_id": external_id}),
        actor="test",
        now=utcnow(),
    )
    [created] = order.events
    return order.id, CloudEvent.wrap(created, source="/doorstep/orders", tenant_id=tenant.tenant_id)


class Commits:
    """Counts the transactions an engine commits while the block runs."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine.sync_engine
        self.count = 0

    def _committed(self, _connection: Any) -> None:
        self.count += 1

    def __enter__(self) -> Commits:
        event.listen(self.engine, "commit", self._committed)
        return self

    def __exit__(self, *_exc: object) -> None:
        event.remove(self.engine, "commit", self._committed)


async def stored(platform: RunningPlatform) -> tuple[list[str], list[tuple[str, str, str | None]]]:
    """The ids of the `order.created` events in the inbox, and the links (order id, source, external id)."""
    async with platform.services["integrations"].database.reader() as session:
        marks = (await session.execute(select(inbox.c.message_id))).scalars().all()
        links = (
            await session.execute(
                select(order_links.c.order_id, order_links.c.source, order_links.c.external_id)
            )
        ).all()
    return sorted(marks), sorted((row.order_id, row.source, row.external_id) for row in links)


async def test_a_delivery_of_order_creations_is_one_transaction_linking_only_platform_orders(
    platform: RunningPlatform,
) -> None:
    # Given a tenant, everything before settled, and three new orders: two placed over the API, one
    # from Shopify
    tenant = await platform.new_tenant()
    await platform.settle()
    marks_before, links_before = await stored(platform)
    _, api_1 = order_created(tenant, "api", "A-1")
    shopify_order_id, shopify = order_created(tenant, "shopify", "S-1")
    _, api_2 = order_created(tenant, "api", "A-2")

    # When the broker delivers their creations at once
    with Commits(platform.services["integrations"].database.writer_engine) as commits:
        await platform.app.state.broker.publish([api_1, shopify, api_2])

    # Then integrations handled the three in one transaction: each marked once, the Shopify one linked
    assert commits.count == 1
    marks, links = await stored(platform)
    assert marks == sorted([*marks_before, api_1.id, shopify.id, api_2.id])
    assert links == sorted([*links_before, (shopify_order_id, "shopify", "S-1")])

    # And delivering them again, together with a new API order, marks the new one only
    _, api_3 = order_created(tenant, "api", "A-3")
    with Commits(platform.services["integrations"].database.writer_engine) as commits:
        await platform.app.state.broker.publish([shopify, api_3, api_1, api_2])
    assert commits.count == 1
    marks_again, links_again = await stored(platform)
    assert marks_again == sorted([*marks, api_3.id])
    assert links_again == links
    assert await platform.app.state.broker.dead_letters() == []
