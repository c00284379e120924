"""Rate cards, quotes and deliveries: rows in, domain objects out."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Row, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from doorstep.contracts.orders import Customer, Item, Stop
from doorstep.integrations.deliveries.domain.model import Delivery, Quote
from doorstep.integrations.deliveries.domain.rate_card import FeeLine, RateCard, Size
from doorstep.integrations.deliveries.tables import api_deliveries, delivery_quotes, delivery_rate_cards
from doorstep.kernel.pagination import newest_first, page_of


@dataclass(frozen=True, slots=True)
class DeliveryListing:
    """Which deliveries a list shows: the tenant's, narrowed by any filter given (`created_to` exclusive)."""

    tenant_id: str
    statuses: tuple[str, ...] = ()
    external_delivery_id: str | None = None
    created_from: datetime | None = None
    created_to: datetime | None = None
    created_by: str | None = None


class DeliveryApiRepository:
    def __init__(self, connection: AsyncConnection) -> None:
        self.connection = connection

    async def rate_card(self, tenant_id: str) -> RateCard | None:
        card = await self.connection.scalar(
            select(delivery_rate_cards.c.card).where(delivery_rate_cards.c.tenant_id == tenant_id)
        )
        return None if card is None else RateCard.model_validate(card)

    async def put_rate_card(self, *, tenant_id: str, card: RateCard, actor: str, now: datetime) -> None:
        values = {"card": card.model_dump(mode="json"), "updated_at": now, "updated_by": actor}
        updated = await self.connection.execute(
            update(delivery_rate_cards).where(delivery_rate_cards.c.tenant_id == tenant_id).values(values)
        )
        if updated.rowcount == 0:
            await self.connection.execute(insert(delivery_rate_cards).values(tenant_id=tenant_id, **values))

    async def add_quote(self, quote: Quote) -> None:
        await self.connection.execute(insert(delivery_quotes).values(_quote_row(quote)))

    async def quote(self, *, tenant_id: str, quote_id: str, created_by: str | None = None) -> Quote | None:
        query = select(delivery_quotes).where(
            delivery_quotes.c.tenant_id == tenant_id, delivery_quotes.c.id == quote_id
        )
        if created_by is not None:
            query = query.where(delivery_quotes.c.created_by == created_by)
        row = (await self.connection.execute(query)).first()
        return None if row is None else quote_from_row(row)

    async def add_delivery(self, delivery: Delivery) -> None:
        await self.connection.execute(insert(api_deliveries).values(_delivery_row(delivery)))

    async def save_delivery(self, delivery: Delivery) -> None:
        await self.connection.execute(
            update(api_deliveries).where(api_deliveries.c.id == delivery.id).values(_delivery_row(delivery))
        )

    async def delivery(
        self, *, tenant_id: str, delivery_id: str, created_by: str | None = None, lock: bool = False
    ) -> Delivery | None:
        query = select(api_deliveries).where(
            api_deliveries.c.tenant_id == tenant_id, api_deliveries.c.id == delivery_id
        )
        if created_by is not None:
            query = query.where(api_deliveries.c.created_by == created_by)
        if lock:
            query = query.with_for_update()
        row = (await self.connection.execute(query)).first()
        return None if row is None else delivery_from_row(row)

    async def delivery_by_external_id(
        self, *, tenant_id: str, external_delivery_id: str, lock: bool = False
    ) -> Delivery | None:
        query = select(api_deliveries).where(
            api_deliveries.c.tenant_id == tenant_id,
            api_deliveries.c.external_delivery_id == external_delivery_id,
        )
        if lock:
            query = query.with_for_update()
        row = (await self.connection.execute(query)).first()
        return None if row is None else delivery_from_row(row)

    async def quotes(self, *, tenant_id: str, quote_ids: Collection[str]) -> dict[str, Quote]:
        if not quote_ids:
            return {}
        query = select(delivery_quotes).where(
            delivery_quotes.c.tenant_id == tenant_id, delivery_quotes.c.id.in_(list(quote_ids))
        )
        return {row.id: quote_from_row(row) for row in (await self.connection.execute(query)).all()}

    async def list_deliveries(
        self, listing: DeliveryListing, *, limit: int, cursor: str | None
    ) -> tuple[list[tuple[Delivery, Quote]], str | None]:
        """A page of the tenant's deliveries, newest first, each with its quote, and the next page's cursor."""
        query = select(api_deliveries).where(api_deliveries.c.tenant_id == listing.tenant_id)
        if listing.statuses:
            query = query.where(api_deliveries.c.status.in_(listing.statuses))
        if listing.external_delivery_id is not None:
            query = query.where(api_deliveries.c.external_delivery_id == listing.external_delivery_id)
        if listing.created_from is not None:
            query = query.where(api_deliveries.c.created_at >= listing.created_from)
        if listing.created_to is not None:
            query = query.where(api_deliveries.c.created_at < listing.created_to)
        if listing.created_by is not None:
            query = query.where(api_deliveries.c.created_by == listing.created_by)
        query = newest_first(query, api_deliveries.c.id, limit=limit, cursor=cursor)
        rows, next_cursor = page_of((await self.connection.execute(query)).all(), limit)
        deliveries = [delivery_from_row(row) for row in rows]
        quotes = await self.quotes(
            tenant_id=listing.tenant_id, quote_ids={delivery.quote_id for delivery in deliveries}
        )
        return [(d, quotes[d.quote_id]) for d in deliveries if d.quote_id in quotes], next_cursor

    async def delivery_of_quote(self, *, tenant_id: str, quote_id: str) -> Delivery | None:
        query = select(api_deliveries).where(
            api_deliveries.c.tenant_id == tenant_id, api_deliveries.c.quote_id == quote_id
        )
        row = (await self.connection.execute(query)).first()
        return None if row is None else delivery_from_row(row)


def _aware(value: datetime) -> datetime:
    """SQLite hands back naive datetimes; every stored time is UTC."""
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _maybe_aware(value: datetime | None) -> datetime | None:
    return None if value is None else _aware(value)


def _quote_row(quote: Quote) -> dict[str, Any]:
    return {
        "id": quote.id,
        "tenant_id": quote.tenant_id,
        "external_delivery_id": quote.external_delivery_id,
        "created_by": quote.created_by,
        "request": {
            "pickup": quote.pickup.model_dump(mode="json"),
            "dropoff": quote.dropoff.model_dump(mode="json"),
            "size": quote.size.value,
            "customer": quote.customer.model_dump(mode="json"),
            "items": [item.model_dump(mode="json") for item in quote.items],
            "notes": quote.notes,
        },
        "pickup_time": quote.pickup_time,
        "dropoff_deadline": quote.dropoff_deadline,
        "distance_m": quote.distance_m,
        "duration_s": quote.duration_s,
        "currency": quote.currency,
        "fee": quote.fee,
        "fee_lines": [
            {"kind": line.kind, "label": line.label, "amount": line.amount} for line in quote.lines
        ],
        "created_at": quote.created_at,
        "expires_at": quote.expires_at,
    }


def quote_from_row(row: Row[Any]) -> Quote:
    request: Mapping[str, Any] = row.request
    return Quote(
        id=row.id,
        tenant_id=row.tenant_id,
        external_delivery_id=row.external_delivery_id,
        created_by=row.created_by,
        pickup=Stop.model_validate(request["pickup"]),
        dropoff=Stop.model_validate(request["dropoff"]),
        size=Size(request["size"]),
        customer=Customer.model_validate(request["customer"]),
        items=[Item.model_validate(item) for item in request["items"]],
        notes=request.get("notes"),
        pickup_time=_aware(row.pickup_time),
        dropoff_deadline=_maybe_aware(row.dropoff_deadline),
        distance_m=row.distance_m,
        duration_s=row.duration_s,
        currency=row.currency,
        lines=[FeeLine(line["kind"], line["label"], int(line["amount"])) for line in row.fee_lines],
        created_at=_aware(row.created_at),
        expires_at=_aware(row.expires_at),
    )


def _delivery_row(delivery: Delivery) -> dict[str, Any]:
    return {
        "id": delivery.id,
        "tenant_id": delivery.tenant_id,
        "quote_id": delivery.quote_id,
        "external_delivery_id": delivery.external_delivery_id,
        "created_by": delivery.created_by,
        "order_id": delivery.order_id,
        "status": delivery.status,
        "status_at": delivery.status_at,
        "cancel_requested_at": delivery.cancel_requested_at,
        "created_at": delivery.created_at,
        "updated_at": delivery.updated_at,
    }


def delivery_from_row(row: Row[Any]) -> Delivery:
    return Delivery(
        id=row.id,
        tenant_id=row.tenant_id,
        quote_id=row.quote_id,
        external_delivery_id=row.external_delivery_id,
        created_by=row.created_by,
        order_id=row.order_id,
        status=row.status,
        status_at=_maybe_aware(row.status_at),
        cancel_requested_at=_maybe_aware(row.cancel_requested_at),
        created_at=_aware(row.created_at),
        updated_at=_aware(row.updated_at),
    )
