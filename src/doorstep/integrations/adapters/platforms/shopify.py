"""Shopify's `orders/create` and `orders/updated` webhooks (REST Admin API order payload)."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

from pydantic import ValidationError

from doorstep.contracts.orders import OrderDraft, PaymentMethod, PaymentStatus
from doorstep.integrations.adapters.platforms.doorstep_json import field_path
from doorstep.integrations.adapters.platforms.drafts import microseconds
from doorstep.integrations.adapters.platforms.fields import (
    amount,
    coordinate,
    first_text,
    full_name,
    json_list,
    json_object,
    quantity,
    text,
)
from doorstep.integrations.ports import (
    FetchFailed,
    FetchRequest,
    MappedOrder,
    OrderChange,
    PlatformClient,
    SignatureInvalid,
    UnmappablePayload,
)

HMAC_HEADER = "x-shopify-hmac-sha256"
WEBHOOK_ID_HEADER = "x-shopify-webhook-id"

# Gateways that take a card at checkout; "bogus" is Shopify's test gateway, which simulates a card.
_CARD_GATEWAYS = frozenset({"shopify_payments", "stripe", "braintree", "authorize_net", "adyen", "bogus"})
_CARD_WORDS = frozenset({"card", "credit", "debit"})
_CASH_WORDS = frozenset({"cash", "cod"})
# A gift card is stored value the shop already holds, not a card payment.
_NOT_CARD_GATEWAYS = frozenset({"gift_card"})

_STATUSES = {
    "paid": PaymentStatus.PAID,
    "authorized": PaymentStatus.AUTHORIZED,
    "pending": PaymentStatus.PENDING,
    "partially_paid": PaymentStatus.PENDING,
    "refunded": PaymentStatus.REFUNDED,
    "partially_refunded": PaymentStatus.REFUNDED,
    "voided": PaymentStatus.VOIDED,
}

ADMIN_API_VERSION = "2024-10"
# Doorstep's order status -> what Shopify is asked to do: fulfil the order, or cancel it (with a reason
# Shopify knows: `declined` when the merchant rejected it).
REPORTED_STATUSES = {"delivered": "fulfil", "cancelled": "other", "rejected": "declined"}
# Fulfillment orders that can still be fulfilled; closed, cancelled or incomplete ones cannot.
_FULFILLABLE = frozenset({"open", "in_progress"})

_CURRENCY = re.compile(r"^[A-Za-z]{3}$")

Loc = tuple[str | int, ...]


def sign_shopify_payload(body: bytes, secret: str) -> str:
    """The `X-Shopify-Hmac-Sha256` header value Shopify would send for `body`."""
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode("ascii")


def _words(gateway: str) -> set[str]:
    # Whole words, so that e.g. "CoDi" or "barcode" is not mistaken for cash on delivery.
    return set(re.split(r"[^a-z0-9]+", gateway.lower()))


def payment_method(gateways: list[str]) -> PaymentMethod:
    """Cash when any gateway collects cash (the courier must), else card for card gateways, else online."""
    if any(_words(g) & _CASH_WORDS for g in gateways):
        return PaymentMethod.CASH
    for gateway in gateways:
        key = gateway.strip().lower()
        if key in _NOT_CARD_GATEWAYS:
            continue
        if key in _CARD_GATEWAYS or _words(gateway) & _CARD_WORDS:
            return PaymentMethod.CARD
    return PaymentMethod.ONLINE


def payment_status(financial_status: str | None) -> PaymentStatus:
    """Shopify's `financial_status` in Doorstep's terms; anything unknown is still pending."""
    return _STATUSES.get((financial_status or "").strip().lower(), PaymentStatus.PENDING)


class _OrderMapping:
    """One payload's mapping; remembers where each draft field came from to name Shopify's field on errors."""

    def __init__(self, payload: Mapping[str, Any], settings: Mapping[str, Any]) -> None:
        self.payload = payload
        self.settings = settings
        self.sources: dict[Loc, str] = {
            ("external_id",): "id",
            ("merchant_id",): "settings.merchant_id",
            ("pickup",): "settings.pickup",
            ("dropoff",): "shipping_address",
            ("customer",): "customer",
            ("items",): "line_items",
            ("currency",): "currency",
            ("tip",): "total_tip_received",
            ("delivery_fee",): "shipping_lines",
            ("notes",): "note",
            ("payment",): "financial_status",
        }

    def build(self) -> MappedOrder:
        external_id = self._external_id()
        currency = self._currency()
        pickup = json_object(self.settings.get("pickup"), "settings.pickup")
        if pickup is None:
            raise UnmappablePayload("the connection has no pickup stop configured", field="settings.pickup")
        dropoff = self._dropoff()
        raw = {
            "external_id": external_id,
            "merchant_id": self.settings.get("merchant_id"),
            "pickup": dict(pickup),
            "dropoff": dropoff,
            "customer": self._customer(dropoff["name"]),
            "items": self._items(currency),
            "currency": currency,
            "tip": self._tip(currency),
            "delivery_fee": self._delivery_fee(currency),
            "notes": text(self.payload.get("note"), "note"),
            "payment": self._payment(),
        }
        try:
            draft = OrderDraft.model_validate(raw)
        except ValidationError as exc:
            first = exc.errors()[0]
            raise UnmappablePayload(first["msg"], field=self._source(first["loc"])) from None
        return MappedOrder(
            external_id=external_id, draft=draft, change=self._change(), version=self._version()
        )

    def _change(self) -> OrderChange:
        """`orders/cancelled` and `orders/updated` carry the whole order: its fields say which it is."""
        if self.payload.get("cancelled_at"):
            return OrderChange.CANCELLED
        updated = self.payload.get("updated_at")
        if updated is not None and updated != self.payload.get("created_at"):
            return OrderChange.UPDATED
        return OrderChange.PLACED

    def _version(self) -> int | None:
        updated = self.payload.get("updated_at")
        return None if updated is None else microseconds(updated, "updated_at")

    def _source(self, loc: Loc) -> str:
        """The Shopify field behind a draft field: the longest recorded prefix, plus the rest of the path."""
        for end in range(len(loc), 0, -1):
            base = self.sources.get(loc[:end])
            if base is not None:
                return field_path(loc[end:], base=base)
        return field_path(loc)

    def _external_id(self) -> str:
        value = self.payload.get("id")
        # Shopify's id is an integer; a float would already have lost digits (ids exceed 2**53).
        if isinstance(value, bool) or not isinstance(value, int | str) or not str(value).strip():
            raise UnmappablePayload("missing or not an order id", field="id")
        return str(value).strip()

    def _currency(self) -> str:
        value = self.payload.get("currency")
        if not isinstance(value, str) or not _CURRENCY.match(value.strip()):
            raise UnmappablePayload(f"{value!r} is not an ISO 4217 currency code", field="currency")
        return value.strip().upper()

    def _dropoff(self) -> dict[str, Any]:
        address = json_object(self.payload.get("shipping_address"), "shipping_address")
        if address is None:
            raise UnmappablePayload("order has no shipping address", field="shipping_address")
        customer = json_object(self.payload.get("customer"), "customer") or {}
        name = text(address.get("name"), "shipping_address.name") or full_name(address, "shipping_address")
        if name is None:
            raise UnmappablePayload("shipping address has no recipient name", field="shipping_address.name")
        parts = (
            text(address.get(key), f"shipping_address.{key}")
            for key in ("address1", "address2", "city", "zip", "province", "country")
        )
        street = ", ".join(part for part in parts if part)
        if not street:
            raise UnmappablePayload(
                "shipping address has no street address", field="shipping_address.address1"
            )
        phone, phone_source = first_text(
            (address.get("phone"), "shipping_address.phone"),
            (customer.get("phone"), "customer.phone"),
            (self.payload.get("phone"), "phone"),
        )
        # Without coordinates the stop goes on by address alone: the orders service geocodes it.
        location = (
            None
            if address.get("latitude") is None and address.get("longitude") is None
            else {
                "lat": coordinate(address.get("latitude"), "shipping_address.latitude"),
                "lon": coordinate(address.get("longitude"), "shipping_address.longitude"),
            }
        )
        self.sources |= {
            ("dropoff", "name"): "shipping_address.name",
            ("dropoff", "address"): "shipping_address.address1",
            ("dropoff", "phone"): phone_source or "shipping_address.phone",
            ("dropoff", "location", "lat"): "shipping_address.latitude",
            ("dropoff", "location", "lon"): "shipping_address.longitude",
        }
        return {"name": name, "address": street, "phone": phone, "location": location}

    def _customer(self, recipient: str) -> dict[str, Any]:
        customer = json_object(self.payload.get("customer"), "customer") or {}
        address = json_object(self.payload.get("shipping_address"), "shipping_address") or {}
        name = full_name(customer, "customer")
        email, email_source = first_text(
            (self.payload.get("email"), "email"), (customer.get("email"), "customer.email")
        )
        phone, phone_source = first_text(
            (customer.get("phone"), "customer.phone"),
            (self.payload.get("phone"), "phone"),
            (address.get("phone"), "shipping_address.phone"),
        )
        self.sources |= {
            ("customer", "name"): "customer.first_name" if name else "shipping_address.name",
            ("customer", "email"): email_source or "email",
            ("customer", "phone"): phone_source or "customer.phone",
        }
        return {"name": name or recipient, "email": email, "phone": phone}

    def _items(self, currency: str) -> list[dict[str, Any]]:
        lines = json_list(self.payload.get("line_items"), "line_items")
        if not lines:
            raise UnmappablePayload("order has no line items", field="line_items")
        items = []
        for i, raw in enumerate(lines):
            base = f"line_items[{i}]"
            line = json_object(raw, base)
            if line is None:
                raise UnmappablePayload("not a JSON object", field=base)
            name, name_source = first_text(
                (line.get("title"), f"{base}.title"), (line.get("name"), f"{base}.name")
            )
            if name is None:
                raise UnmappablePayload("line item has no title", field=f"{base}.title")
            items.append(
                {
                    "name": name,
                    "sku": text(line.get("sku"), f"{base}.sku"),
                    "quantity": quantity(line.get("quantity"), f"{base}.quantity"),
                    "unit_price": amount(line.get("price"), currency, f"{base}.price"),
                }
            )
            self.sources |= {
                ("items", i): base,
                ("items", i, "name"): name_source or f"{base}.title",
                ("items", i, "sku"): f"{base}.sku",
                ("items", i, "quantity"): f"{base}.quantity",
                ("items", i, "unit_price"): f"{base}.price",
            }
        return items

    def _delivery_fee(self, currency: str) -> int:
        total = 0
        for i, raw in enumerate(json_list(self.payload.get("shipping_lines"), "shipping_lines")):
            line = json_object(raw, f"shipping_lines[{i}]") or {}
            total += amount(line.get("price"), currency, f"shipping_lines[{i}].price")
        return total

    def _tip(self, currency: str) -> int:
        value = self.payload.get("total_tip_received")
        return 0 if value is None else amount(value, currency, "total_tip_received")

    def _payment(self) -> dict[str, str]:
        gateways = json_list(self.payload.get("payment_gateway_names"), "payment_gateway_names")
        status = self.payload.get("financial_status")
        return {
            "method": payment_method([g for g in gateways if isinstance(g, str)]),
            "status": payment_status(status if isinstance(status, str) else None),
        }


class ShopifyAdapter:
    """Shopify order webhooks, signed with the app's client secret."""

    name: str = "shopify"

    def verify(
        self, *, headers: Mapping[str, str], body: bytes, secret: str, settings: Mapping[str, Any] = {}
    ) -> None:
        """Raise `SignatureInvalid` unless `X-Shopify-Hmac-Sha256` is the body's HMAC under `secret`."""
        header = headers.get(HMAC_HEADER)
        if header is None or not header.strip():
            raise SignatureInvalid("missing X-Shopify-Hmac-Sha256 header")
        try:
            received = base64.b64decode(header.strip(), validate=True)
        except (binascii.Error, ValueError):
            raise SignatureInvalid("malformed X-Shopify-Hmac-Sha256 header: not base64") from None
        if len(received) != hashlib.sha256().digest_size:
            raise SignatureInvalid("malformed X-Shopify-Hmac-Sha256 header: not a SHA-256 digest")
        expected = hmac.new(secret.encode(), body, hashlib.sha256).digest()
        if not hmac.compare_digest(expected, received):
            raise SignatureInvalid("X-Shopify-Hmac-Sha256 does not match the body")

    def delivery_id(self, *, headers: Mapping[str, str], body: bytes) -> str | None:
        """`X-Shopify-Webhook-Id`, which Shopify repeats on every retry of a delivery."""
        return headers.get(WEBHOOK_ID_HEADER) or None

    def map_order(self, payload: Any, *, settings: Mapping[str, Any]) -> MappedOrder:
        """Map a Shopify order (`orders/create`, `orders/updated`, `orders/cancelled`); the pickup stop and merchant come from the connection's settings."""
        if not isinstance(payload, Mapping):
            raise UnmappablePayload("payload is not a JSON object")
        return _OrderMapping(payload, settings).build()

    # --- status back to the shop (StatusReporting) ---------------------------------------------------
    def reports(self, status: str) -> bool:
        return status in REPORTED_STATUSES

    def missing_credentials(self, settings: Mapping[str, Any]) -> str | None:
        if not settings.get("access_token"):
            return "settings.access_token"
        if not settings.get("shop_domain") and not settings.get("api_base_url"):
            return "settings.shop_domain"
        return None

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
        """Delivered: fulfil the order's open fulfillment orders; cancelled or rejected: cancel the order."""
        base = str(settings.get("api_base_url") or f"https://{settings['shop_domain']}").rstrip("/")
        admin = f"{base}/admin/api/{ADMIN_API_VERSION}"
        headers = {"X-Shopify-Access-Token": str(settings["access_token"])}
        order = quote(external_id, safe="")
        if REPORTED_STATUSES[status] != "fulfil":
            await client.fetch(
                FetchRequest(
                    method="POST",
                    url=f"{admin}/orders/{order}/cancel.json",
                    headers=headers,
                    json={"reason": REPORTED_STATUSES[status]},
                )
            )
            return
        answer = await client.fetch(
            FetchRequest(method="GET", url=f"{admin}/orders/{order}/fulfillment_orders.json", headers=headers)
        )
        listed = answer.get("fulfillment_orders") if isinstance(answer, Mapping) else None
        if not isinstance(listed, list):
            raise FetchFailed("Shopify answered without fulfillment_orders")
        open_ids = [
            found["id"]
            for found in listed
            if isinstance(found, Mapping) and found.get("status") in _FULFILLABLE and "id" in found
        ]
        if not open_ids:
            return  # fulfilled already (by the merchant, or by an earlier attempt whose answer was lost)
        await client.fetch(
            FetchRequest(
                method="POST",
                url=f"{admin}/fulfillments.json",
                headers=headers,
                json={
                    "fulfillment": {
                        "line_items_by_fulfillment_order": [
                            {"fulfillment_order_id": fulfillment_order_id}
                            for fulfillment_order_id in open_ids
                        ],
                        "notify_customer": False,
                    }
                },
            )
        )
