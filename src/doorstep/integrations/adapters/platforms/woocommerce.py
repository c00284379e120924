"""WooCommerce's `order.created` / `order.updated` webhooks (the REST API v3 order as the body)."""

from __future__ import annotations

import base64
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qs, quote

from doorstep.contracts.orders import PaymentMethod, PaymentStatus
from doorstep.integrations.adapters.platforms.drafts import (
    microseconds,
    pickup_from_settings,
    validated_draft,
    verify_base64_hmac,
)
from doorstep.integrations.adapters.platforms.fields import amount, json_list, json_object, quantity, text
from doorstep.integrations.ports import (
    FetchRequest,
    MappedOrder,
    OrderChange,
    PlatformClient,
    UnmappablePayload,
)

SIGNATURE_HEADER = "x-wc-webhook-signature"
DELIVERY_ID_HEADER = "x-wc-webhook-delivery-id"
TOPIC_HEADER = "x-wc-webhook-topic"

_CANCELLED = frozenset({"cancelled", "refunded", "failed"})
_PAID = frozenset({"processing", "completed"})
_METHODS = {"cod": PaymentMethod.CASH, "bacs": PaymentMethod.INVOICE, "cheque": PaymentMethod.OTHER}
# Doorstep's order status -> WooCommerce's order status (REST API v3); other statuses are not told.
REPORTED_STATUSES = {
    "accepted": "processing",
    "preparing": "processing",
    "delivered": "completed",
    "cancelled": "cancelled",
    "rejected": "cancelled",
    "failed_delivery": "failed",
}
REPORTING_SETTINGS = ("api_base_url", "consumer_key", "consumer_secret")


class WooCommerceAdapter:
    """Signed with the webhook's secret: `X-WC-Webhook-Signature` is the base64 HMAC-SHA256 of the body."""

    name: str = "woocommerce"

    def is_ping(self, *, headers: Mapping[str, str], body: bytes) -> bool:
        """WooCommerce checks a new webhook with an unsigned `webhook_id=<id>` form post."""
        if headers.get(SIGNATURE_HEADER) or not body.startswith(b"webhook_id="):
            return False
        values = parse_qs(body.decode("ascii", errors="replace"))
        return list(values) == ["webhook_id"] and values["webhook_id"][0].isdigit()

    def verify(
        self, *, headers: Mapping[str, str], body: bytes, secret: str, settings: Mapping[str, Any] = {}
    ) -> None:
        verify_base64_hmac("X-WC-Webhook-Signature", headers.get(SIGNATURE_HEADER), body, secret)

    def delivery_id(self, *, headers: Mapping[str, str], body: bytes) -> str | None:
        return headers.get(DELIVERY_ID_HEADER) or None

    def map_order(self, payload: Any, *, settings: Mapping[str, Any]) -> MappedOrder:
        if not isinstance(payload, Mapping):
            raise UnmappablePayload("payload is not a JSON object")
        order_id = payload.get("id")
        if isinstance(order_id, bool) or not isinstance(order_id, int | str) or not str(order_id).strip():
            raise UnmappablePayload("missing or not an order id", field="id")
        currency = text(payload.get("currency"), "currency") or ""
        shipping = json_object(payload.get("shipping"), "shipping") or {}
        billing = json_object(payload.get("billing"), "billing") or {}
        name = " ".join(
            part
            for part in (
                text(shipping.get("first_name"), "shipping.first_name"),
                text(shipping.get("last_name"), "shipping.last_name"),
            )
            if part
        ) or text(shipping.get("company"), "shipping.company")
        street = ", ".join(
            part
            for key in ("address_1", "address_2", "city", "postcode", "state", "country")
            if (part := text(shipping.get(key), f"shipping.{key}"))
        )
        if not street:
            raise UnmappablePayload("order has no shipping address", field="shipping.address_1")
        customer_name = " ".join(
            part
            for part in (
                text(billing.get("first_name"), "billing.first_name"),
                text(billing.get("last_name"), "billing.last_name"),
            )
            if part
        )
        phone = text(shipping.get("phone"), "shipping.phone") or text(billing.get("phone"), "billing.phone")
        items = []
        for i, raw in enumerate(json_list(payload.get("line_items"), "line_items")):
            line = json_object(raw, f"line_items[{i}]") or {}
            count = quantity(line.get("quantity"), f"line_items[{i}].quantity")
            items.append(
                {
                    "name": text(line.get("name"), f"line_items[{i}].name"),
                    "sku": text(line.get("sku"), f"line_items[{i}].sku"),
                    "quantity": count,
                    "unit_price": amount(line.get("price"), currency, f"line_items[{i}].price"),
                }
            )
        # Several shipping lines (split shipments, a local delivery plus a fee) add up to one fee.
        fee = sum(
            amount(
                (json_object(line, f"shipping_lines[{i}]") or {}).get("total"),
                currency,
                f"shipping_lines[{i}].total",
            )
            for i, line in enumerate(json_list(payload.get("shipping_lines"), "shipping_lines"))
        )
        status = text(payload.get("status"), "status") or "pending"
        method = text(payload.get("payment_method"), "payment_method") or ""
        raw_draft = {
            "merchant_id": settings.get("merchant_id"),
            "pickup": pickup_from_settings(settings),
            "dropoff": {"name": name or customer_name or "—", "address": street, "phone": phone},
            "customer": {
                "name": customer_name or name or "—",
                "email": text(billing.get("email"), "billing.email"),
                "phone": text(billing.get("phone"), "billing.phone") or phone,
            },
            "items": items,
            "currency": currency.upper(),
            "delivery_fee": fee,
            "notes": text(payload.get("customer_note"), "customer_note"),
            "payment": {
                "method": _METHODS.get(method, PaymentMethod.ONLINE if method else PaymentMethod.OTHER),
                # A cash-on-delivery order is "processing" as soon as it is placed: the courier collects.
                "status": PaymentStatus.PAID
                if payload.get("date_paid_gmt") or (status in _PAID and method != "cod")
                else PaymentStatus.PENDING,
            },
        }
        draft = validated_draft(
            raw_draft,
            {
                "dropoff": "shipping",
                "dropoff.name": "shipping.first_name",
                "dropoff.address": "shipping.address_1",
                "dropoff.phone": "shipping.phone",
                "customer.name": "billing.first_name",
                "customer.email": "billing.email",
                "customer.phone": "billing.phone",
                "customer": "billing",
                "items": "line_items",
                "currency": "currency",
                "notes": "customer_note",
            },
        )
        created, modified = payload.get("date_created_gmt"), payload.get("date_modified_gmt")
        change = (
            OrderChange.CANCELLED
            if status in _CANCELLED
            else OrderChange.PLACED
            if modified is None or modified == created
            else OrderChange.UPDATED
        )
        version = microseconds(modified or created, "date_modified_gmt")
        return MappedOrder(external_id=str(order_id).strip(), draft=draft, change=change, version=version)

    # --- status back to the shop (StatusReporting) ---------------------------------------------------
    def reports(self, status: str) -> bool:
        return status in REPORTED_STATUSES

    def missing_credentials(self, settings: Mapping[str, Any]) -> str | None:
        return next((f"settings.{key}" for key in REPORTING_SETTINGS if not settings.get(key)), None)

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
        """`PUT /wp-json/wc/v3/orders/{id}` with the shop's REST API key (basic auth over HTTPS)."""
        credentials = f"{settings['consumer_key']}:{settings['consumer_secret']}".encode()
        base = str(settings["api_base_url"]).rstrip("/")
        await client.fetch(
            FetchRequest(
                method="PUT",
                url=f"{base}/wp-json/wc/v3/orders/{quote(external_id, safe='')}",
                headers={"Authorization": "Basic " + base64.b64encode(credentials).decode("ascii")},
                json={"status": REPORTED_STATUSES[status]},
            )
        )
