"""Courier accounts, quotes, deliveries and webhook events: rows in, plain records out."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Row, select
from sqlalchemy.ext.asyncio import AsyncConnection

from doorstep.integrations.couriers.domain import Provider
from doorstep.integrations.couriers.ports import CourierInfo, CourierRequest, CourierStatus
from doorstep.integrations.couriers.tables import courier_accounts, courier_deliveries, courier_quotes


@dataclass
class CourierAccount:
    id: str
    tenant_id: str
    provider: Provider
    name: str
    token: str
    credentials: dict[str, str]
    settings: dict[str, str]
    created_at: datetime


@dataclass
class StoredQuote:
    id: str
    tenant_id: str
    account_id: str
    order_id: str
    provider_quote_id: str
    request: CourierRequest
    fee: int
    currency: str
    pickup_eta: datetime | None
    dropoff_eta: datetime | None
    expires_at: datetime | None
    created_at: datetime


@dataclass
class StoredDelivery:
    id: str
    tenant_id: str
    account_id: str
    provider: Provider
    order_id: str
    quote_id: str | None
    provider_delivery_id: str
    status: CourierStatus
    provider_status: str | None
    tracking_url: str | None
    fee: int | None
    currency: str | None
    courier: CourierInfo | None
    proof_of_delivery: list[str]
    status_at: datetime | None
    created_at: datetime
    updated_at: datetime
    courier_location_at: datetime | None = None

    def row(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "tenant_id": self.tenant_id,
            "account_id": self.account_id,
            "provider": self.provider.value,
            "order_id": self.order_id,
            "quote_id": self.quote_id,
            "provider_delivery_id": self.provider_delivery_id,
            "status": self.status.value,
            "provider_status": self.provider_status,
            "tracking_url": self.tracking_url,
            "fee": self.fee,
            "currency": self.currency,
            "courier": self.courier.model_dump(mode="json") if self.courier else None,
            "proof_of_delivery": list(self.proof_of_delivery),
            "status_at": self.status_at,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            "courier_location_at": self.courier_location_at,
        }


def aware(value: datetime | None) -> datetime | None:
    """SQLite hands back naive datetimes; every stored time is UTC."""
    if value is None:
        return None
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def account_of(row: Row[Any]) -> CourierAccount:
    return CourierAccount(
        id=row.id,
        tenant_id=row.tenant_id,
        provider=Provider(row.provider),
        name=row.name,
        token=row.token,
        credentials=dict(row.credentials),
        settings=dict(row.settings),
        created_at=aware(row.created_at) or row.created_at,
    )


def quote_of(row: Row[Any]) -> StoredQuote:
    return StoredQuote(
        id=row.id,
        tenant_id=row.tenant_id,
        account_id=row.account_id,
        order_id=row.order_id,
        provider_quote_id=row.provider_quote_id,
        request=CourierRequest.model_validate(row.request),
        fee=row.fee,
        currency=row.currency,
        pickup_eta=aware(row.pickup_eta),
        dropoff_eta=aware(row.dropoff_eta),
        expires_at=aware(row.expires_at),
        created_at=aware(row.created_at) or row.created_at,
    )


def delivery_of(row: Row[Any]) -> StoredDelivery:
    return StoredDelivery(
        id=row.id,
        tenant_id=row.tenant_id,
        account_id=row.account_id,
        provider=Provider(row.provider),
        order_id=row.order_id,
        quote_id=row.quote_id,
        provider_delivery_id=row.provider_delivery_id,
        status=CourierStatus(row.status),
        provider_status=row.provider_status,
        tracking_url=row.tracking_url,
        fee=row.fee,
        currency=row.currency,
        courier=CourierInfo.model_validate(row.courier) if row.courier else None,
        proof_of_delivery=list(row.proof_of_delivery or []),
        status_at=aware(row.status_at),
        created_at=aware(row.created_at) or row.created_at,
        updated_at=aware(row.updated_at) or row.updated_at,
        courier_location_at=aware(row.courier_location_at),
    )


async def get_account(
    connection: AsyncConnection, *, tenant_id: str, account_id: str
) -> CourierAccount | None:
    row = (
        await connection.execute(
            select(courier_accounts).where(
                courier_accounts.c.tenant_id == tenant_id, courier_accounts.c.id == account_id
            )
        )
    ).first()
    return account_of(row) if row else None


async def account_by_token(
    connection: AsyncConnection, *, provider: str, token: str
) -> CourierAccount | None:
    row = (
        await connection.execute(
            select(courier_accounts).where(
                courier_accounts.c.token == token, courier_accounts.c.provider == provider
            )
        )
    ).first()
    return account_of(row) if row else None


async def get_quote(connection: AsyncConnection, *, tenant_id: str, quote_id: str) -> StoredQuote | None:
    row = (
        await connection.execute(
            select(courier_quotes).where(
                courier_quotes.c.tenant_id == tenant_id, courier_quotes.c.id == quote_id
            )
        )
    ).first()
    return quote_of(row) if row else None


async def get_delivery(
    connection: AsyncConnection, *, tenant_id: str, delivery_id: str, lock: bool = False
) -> StoredDelivery | None:
    query = select(courier_deliveries).where(
        courier_deliveries.c.tenant_id == tenant_id, courier_deliveries.c.id == delivery_id
    )
    row = (await connection.execute(query.with_for_update() if lock else query)).first()
    return delivery_of(row) if row else None


async def delivery_for_order(
    connection: AsyncConnection, *, tenant_id: str, account_id: str, order_id: str
) -> StoredDelivery | None:
    row = (
        await connection.execute(
            select(courier_deliveries).where(
                courier_deliveries.c.tenant_id == tenant_id,
                courier_deliveries.c.account_id == account_id,
                courier_deliveries.c.order_id == order_id,
            )
        )
    ).first()
    return delivery_of(row) if row else None


async def delivery_by_provider_id(
    connection: AsyncConnection, *, account_id: str, provider_delivery_id: str
) -> StoredDelivery | None:
    row = (
        await connection.execute(
            select(courier_deliveries)
            .where(
                courier_deliveries.c.account_id == account_id,
                courier_deliveries.c.provider_delivery_id == provider_delivery_id,
            )
            .with_for_update()
        )
    ).first()
    return delivery_of(row) if row else None
