"""Square's `order.created` / `order.updated` notifications: they carry ids, state and version only, so
the order itself is fetched from the Orders API (`GET /v2/orders/{id}`) before it is mapped."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

from doorstep.contracts.orders import PaymentMethod, PaymentStatus
from doorstep.integrations.adapters.platforms.drafts import (
    pickup_from_settings,
    validated_draft,
    verify_base64_hmac,
)
from doorstep.integrations.adapters.platforms.fields import json_list, json_object, quantity, text
from doorstep.integrations.ports import (
    FetchFailed,
    FetchRequest,
    MappedOrder,
    OrderChange,
    PlatformClient,
    UnmappablePayload,
)

SIGNATURE_HEADER = "x-square-hmacsha256-signature"
API_BASE_URL = "https://connect.squareup.com"
SQUARE_VERSION = "2025-01-23"
# Doorstep's order status -> the state of the order's fulfillment in Square.
REPORTED_STATUSES = {
    "placed": "PROPOSED",
    "accepted": "RESERVED",
    "preparing": "RESERVED",
    "ready_for_pickup": "PREPARED",
    "picked_up": "PREPARED",
    "delivered": "COMPLETED",
    "cancelled": "CANCELED",
    "rejected": "CANCELED",
    "failed_delivery": "FAILED",
}
# The fulfillment Doorstep carries out: a delivery (or shipment) before any other kind.
_DELIVERING = ("DELIVERY", "SHIPMENT")


def _money(value: Any, field: str) -> int:
    money = json_object(value, field) or {}
    amount = money.get("amount", 0)
    if isinstance(amount, bool) or not isinstance(amount, int) or amount < 0:
        raise UnmappablePayload(f"{amount!r} is not an amount in minor units", field=f"{field}.amount")
    return amount


class SquareAdapter:
    """Signed with the subscription's signature key over the notification URL followed by the body."""

    name: str = "square"

    def verify(
        self, *, headers: Mapping[str, str], body: bytes, secret: str, settings: Mapping[str, Any] = {}
    ) -> None:
        url = settings.get("notification_url")
        if not isinstance(url, str):
            raise UnmappablePayload(
                "the connection has no notification URL", field="settings.notification_url"
            )
        verify_base64_hmac(
            "x-square-hmacsha256-signature", headers.get(SIGNATURE_HEADER), url.encode() + body, secret
        )

    def delivery_id(self, *, headers: Mapping[str, str], body: bytes) -> str | None:
        try:
            event_id = json.loads(body).get("event_id")
        except (ValueError, AttributeError, RecursionError):
            return None
        return event_id if isinstance(event_id, str) and event_id else None

    def check_settings(self, settings: Mapping[str, Any]) -> None:
        for key in ("notification_url", "access_token", "pickup"):
            if key not in settings:
                raise UnmappablePayload(f"a Square connection needs settings.{key}", field=f"settings.{key}")

    async def fetch(
        self, payload: Any, *, settings: Mapping[str, Any], secret: str, client: PlatformClient
    ) -> Any:
        data = json_object(payload, "") if isinstance(payload, Mapping) else None
        event_type = text((data or {}).get("type"), "type")
        body = json_object((data or {}).get("data"), "data") or {}
        order_id = text(body.get("id"), "data.id")
        if order_id is None or event_type not in ("order.created", "order.updated"):
            raise UnmappablePayload(
                "not an order.created or order.updated notification with an order id", field="data.id"
            )
        base = str(settings.get("api_base_url") or API_BASE_URL).rstrip("/")
        answer = await client.fetch(
            FetchRequest(
                method="GET",
                url=f"{base}/v2/orders/{order_id}",
                headers={
                    "Authorization": f"Bearer {settings.get('access_token', '')}",
                    "Square-Version": SQUARE_VERSION,
                },
            )
        )
        return {
            "notification": payload,
            "order": answer.get("order") if isinstance(answer, Mapping) else None,
        }

    def map_order(self, payload: Any, *, settings: Mapping[str, Any]) -> MappedOrder:
        if not isinstance(payload, Mapping):
            raise UnmappablePayload("payload is not a JSON object")
        order = json_object(payload.get("order"), "order")
        if order is None:
            raise UnmappablePayload("the Orders API returned no order", field="order")
        order_id = text(order.get("id"), "order.id")
        if order_id is None:
            raise UnmappablePayload("missing order id", field="order.id")
        version = order.get("version")
        if isinstance(version, bool) or not isinstance(version, int):
            raise UnmappablePayload("missing or not an integer", field="order.version")
        fulfillments = json_list(order.get("fulfillments"), "order.fulfillments")
        recipient: Mapping[str, Any] = {}
        note = None
        for i, raw in enumerate(fulfillments):
            fulfillment = json_object(raw, f"order.fulfillments[{i}]") or {}
            details = json_object(
                fulfillment.get("delivery_details"), f"order.fulfillments[{i}].delivery_details"
            ) or json_object(fulfillment.get("shipment_details"), f"order.fulfillments[{i}].shipment_details")
            if details:
                recipient = json_object(details.get("recipient"), f"order.fulfillments[{i}].recipient") or {}
                note = text(details.get("note"), "note")
                break
        address = json_object(recipient.get("address"), "recipient.address") or {}
        street = ", ".join(
            part
            for key in (
                "address_line_1",
                "address_line_2",
                "locality",
                "postal_code",
                "administrative_district_level_1",
                "country",
            )
            if (part := text(address.get(key), f"recipient.address.{key}"))
        )
        name = text(recipient.get("display_name"), "recipient.display_name") or "—"
        phone = text(recipient.get("phone_number"), "recipient.phone_number")
        currency = ""
        items = []
        for i, raw in enumerate(json_list(order.get("line_items"), "order.line_items")):
            line = json_object(raw, f"order.line_items[{i}]") or {}
            price = json_object(line.get("base_price_money"), f"order.line_items[{i}].base_price_money") or {}
            currency = currency or str(price.get("currency") or "")
            items.append(
                {
                    "name": text(line.get("name"), f"order.line_items[{i}].name"),
                    "quantity": quantity(line.get("quantity"), f"order.line_items[{i}].quantity"),
                    "unit_price": _money(price, f"order.line_items[{i}].base_price_money"),
                }
            )
        fee = sum(
            _money(
                (json_object(c, f"order.service_charges[{i}]") or {}).get("amount_money"),
                f"order.service_charges[{i}].amount_money",
            )
            for i, c in enumerate(json_list(order.get("service_charges"), "order.service_charges"))
        )
        tenders = json_list(order.get("tenders"), "order.tenders")
        tender_type = (
            str((json_object(tenders[0], "order.tenders[0]") or {}).get("type", "")) if tenders else ""
        )
        state = text(order.get("state"), "order.state") or "OPEN"
        raw_draft = {
            "merchant_id": settings.get("merchant_id"),
            "pickup": pickup_from_settings(settings),
            "dropoff": {"name": name, "address": street, "phone": phone},
            "customer": {
                "name": name,
                "phone": phone,
                "email": text(recipient.get("email_address"), "recipient.email_address"),
            },
            "items": items,
            "currency": currency,
            "tip": _money(order.get("total_tip_money"), "order.total_tip_money"),
            "delivery_fee": fee,
            "notes": note,
            "payment": {
                "method": PaymentMethod.CASH
                if tender_type == "CASH"
                else PaymentMethod.CARD
                if tender_type == "CARD"
                else PaymentMethod.OTHER,
                "status": PaymentStatus.PAID if tenders else PaymentStatus.PENDING,
            },
        }
        draft = validated_draft(
            raw_draft,
            {
                "dropoff": "order.fulfillments[0].delivery_details.recipient",
                "customer": "order.fulfillments[0].delivery_details.recipient",
                "items": "order.line_items",
                "currency": "order.line_items[0].base_price_money.currency",
            },
        )
        notification = json_object(payload.get("notification"), "notification") or {}
        change = (
            OrderChange.CANCELLED
            if state == "CANCELED"
            else OrderChange.PLACED
            if notification.get("type") == "order.created"
            else OrderChange.UPDATED
        )
        return MappedOrder(external_id=order_id, draft=draft, change=change, version=version)

    # --- status back to the seller (StatusReporting) -------------------------------------------------
    def reports(self, status: str) -> bool:
        return status in REPORTED_STATUSES

    def missing_credentials(self, settings: Mapping[str, Any]) -> str | None:
        return None if settings.get("access_token") else "settings.access_token"

    async def report_status(
        self,
        client: PlatformClient,
        *,
        settings: Mapping[str, Any],
        secret: str,
        external_id: str,
        status: str,
        reason: str | None = None,
        idempotency_key: str,
    ) -> None:
        """Read the order for its version and fulfillment, then `PUT /v2/orders/{id}` the new state."""
        base = str(settings.get("api_base_url") or API_BASE_URL).rstrip("/")
        url = f"{base}/v2/orders/{quote(external_id, safe='')}"
        headers = {
            "Authorization": f"Bearer {settings.get('access_token', '')}",
            "Square-Version": SQUARE_VERSION,
        }
        answer = await client.fetch(FetchRequest(method="GET", url=url, headers=headers))
        order = answer.get("order") if isinstance(answer, Mapping) else None
        if not isinstance(order, Mapping) or not isinstance(order.get("version"), int):
            raise FetchFailed("Square answered without the order's version")
        fulfillments = [f for f in order.get("fulfillments") or [] if isinstance(f, Mapping) and f.get("uid")]
        if not fulfillments:
            raise FetchFailed("the Square order has no fulfillment whose state could change")
        fulfillment = next((f for f in fulfillments if f.get("type") in _DELIVERING), fulfillments[0])
        state = REPORTED_STATUSES[status]
        if fulfillment.get("state") == state:
            return  # told already (an earlier attempt whose answer was lost)
        await client.fetch(
            FetchRequest(
                method="PUT",
                url=url,
                headers=headers,
                json={
                    "order": {
                        "location_id": order.get("location_id"),
                        "version": order["version"],
                        "fulfillments": [{"uid": fulfillment["uid"], "state": state}],
                    },
                    "idempotency_key": idempotency_key,
                },
            )
        )
