"""Uber Eats' `orders.notification` / `orders.cancel` webhooks: they point at the order
(`resource_href`), which is fetched from the Order API with a client-credentials token."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlsplit

from doorstep.contracts.orders import PaymentMethod, PaymentStatus
from doorstep.integrations.adapters.platforms.drafts import pickup_from_settings, validated_draft
from doorstep.integrations.adapters.platforms.fields import (
    coordinate,
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

SIGNATURE_HEADER = "x-uber-signature"
API_BASE_URL = "https://api.uber.com"
OAUTH_URL = "https://auth.uber.com/oauth/v2/token"
SCOPE = "eats.order"
# A token is renewed this long before Uber says it expires, so no request carries one that just lapsed.
TOKEN_MARGIN_SECONDS = 60.0
_EVENTS = {"orders.notification": OrderChange.PLACED, "orders.cancel": OrderChange.CANCELLED}
_ORDER_PATHS = ("/v1/eats/order/", "/v2/eats/order/")
# Doorstep's order status -> the Order API action that tells Uber (`POST /v1/eats/orders/{id}/<action>`).
# "Ready" exists only in the newer Order Fulfillment API (`POST /v1/delivery/order/{id}/ready`, an empty
# body, the same order id and `eats.order` scope): it tells Uber's courier the food can be collected.
REPORTED_STATUSES = {
    "accepted": "accept_pos_order",
    "rejected": "deny_pos_order",
    "cancelled": "cancel",
    "ready_for_pickup": "ready",
}


def sign_uber_payload(body: bytes, client_secret: str) -> str:
    """The `X-Uber-Signature` header Uber sends: the lower-case hex HMAC-SHA256 of the body."""
    return hmac.new(client_secret.encode(), body, hashlib.sha256).hexdigest()


@dataclass(frozen=True, slots=True)
class _Token:
    value: str
    expires_at: float


class UberEatsAdapter:
    """Signed with the app's client secret, which (with `settings.client_id`) also gets API tokens."""

    name: str = "ubereats"

    def __init__(self, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._tokens: dict[tuple[str, str, str], _Token] = {}

    def verify(
        self, *, headers: Mapping[str, str], body: bytes, secret: str, settings: Mapping[str, Any] = {}
    ) -> None:
        header = (headers.get(SIGNATURE_HEADER) or "").strip().lower()
        if not header:
            raise SignatureInvalid("missing X-Uber-Signature header")
        if not hmac.compare_digest(sign_uber_payload(body, secret), header):
            raise SignatureInvalid("X-Uber-Signature does not match the body")

    def delivery_id(self, *, headers: Mapping[str, str], body: bytes) -> str | None:
        """Uber's `event_id`, the same on every retry of an event."""
        try:
            event_id = json.loads(body).get("event_id")
        except (ValueError, AttributeError, RecursionError):
            return None
        return event_id if isinstance(event_id, str) and event_id else None

    def check_settings(self, settings: Mapping[str, Any]) -> None:
        for key in ("client_id", "pickup"):
            if key not in settings:
                raise UnmappablePayload(
                    f"an Uber Eats connection needs settings.{key}", field=f"settings.{key}"
                )

    async def fetch(
        self, payload: Any, *, settings: Mapping[str, Any], secret: str, client: PlatformClient
    ) -> Any:
        event = json_object(payload, "") if isinstance(payload, Mapping) else None
        if event is None:
            raise UnmappablePayload("payload is not a JSON object")
        event_type = text(event.get("event_type"), "event_type")
        if event_type not in _EVENTS:
            raise UnmappablePayload(
                f"{event_type!r} is not orders.notification or orders.cancel", field="event_type"
            )
        base = str(settings.get("api_base_url") or API_BASE_URL).rstrip("/")
        url = f"{base}{self._order_path(event)}"
        token = await self._token(settings, secret, client)
        try:
            answer = await client.fetch(
                FetchRequest(method="GET", url=url, headers={"Authorization": f"Bearer {token}"})
            )
        except FetchFailed:
            # Perhaps the token was revoked before its time: the replay of this delivery asks anew.
            self._tokens.pop(_token_key(settings, secret), None)
            raise
        return {"event": payload, "order": answer}

    def _order_path(self, event: Mapping[str, Any]) -> str:
        """The order's path on the Order API: `resource_href`'s, or built from `meta.resource_id`.

        Only the path is taken from the payload: the host is always the connection's API base, so a
        delivery cannot make Doorstep call (and hand its token to) another host."""
        href = text(event.get("resource_href"), "resource_href")
        if href is not None:
            path = urlsplit(href).path
            if path.startswith(_ORDER_PATHS) and len(path.split("/")) == 5 and path.split("/")[4]:
                return path
        meta = json_object(event.get("meta"), "meta") or {}
        order_id = text(meta.get("resource_id"), "meta.resource_id")
        if order_id is None or "/" in order_id:
            raise UnmappablePayload("the event names no order", field="meta.resource_id")
        return f"/v2/eats/order/{order_id}"

    async def _token(self, settings: Mapping[str, Any], secret: str, client: PlatformClient) -> str:
        """A client-credentials token for `eats.order`, cached until shortly before it expires."""
        token_url, client_id, _ = key = _token_key(settings, secret)
        cached = self._tokens.get(key)
        now = self._clock()
        if cached is not None and now < cached.expires_at:
            return cached.value
        answer = await client.fetch(
            FetchRequest(
                method="POST",
                url=token_url,
                form={
                    "client_id": client_id,
                    "client_secret": secret,
                    "grant_type": "client_credentials",
                    "scope": SCOPE,
                },
            )
        )
        value = answer.get("access_token") if isinstance(answer, Mapping) else None
        lifetime = answer.get("expires_in") if isinstance(answer, Mapping) else None
        if not isinstance(value, str) or not value:
            raise FetchFailed("the token endpoint answered without an access_token")
        if isinstance(lifetime, bool) or not isinstance(lifetime, int | float):
            lifetime = 0
        self._tokens[key] = _Token(value, now + max(0.0, float(lifetime) - TOKEN_MARGIN_SECONDS))
        return value

    # --- status back to Uber (StatusReporting) ------------------------------------------------------
    def reports(self, status: str) -> bool:
        return status in REPORTED_STATUSES

    def missing_credentials(self, settings: Mapping[str, Any]) -> str | None:
        return None if settings.get("client_id") else "settings.client_id"

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
        action = REPORTED_STATUSES[status]
        order = quote(external_id, safe="")
        path = f"/v1/eats/orders/{order}/{action}"
        body: dict[str, Any]
        if action == "accept_pos_order":
            body = {"reason": reason or "accepted"}
        elif action == "deny_pos_order":
            body = {"reason": {"explanation": reason or "rejected by the store", "code": "OTHER"}}
        elif action == "ready":
            path, body = f"/v1/delivery/order/{order}/ready", {}
        else:
            body = {"reason": "OTHER", "details": reason or "cancelled by the store"}
        base = str(settings.get("api_base_url") or API_BASE_URL).rstrip("/")
        token = await self._token(settings, secret, client)
        await client.fetch(
            FetchRequest(
                method="POST",
                url=f"{base}{path}",
                headers={"Authorization": f"Bearer {token}"},
                json=body,
            )
        )

    def map_order(self, payload: Any, *, settings: Mapping[str, Any]) -> MappedOrder:
        if not isinstance(payload, Mapping):
            raise UnmappablePayload("payload is not a JSON object")
        event = json_object(payload.get("event"), "event") or {}
        order = json_object(payload.get("order"), "order")
        if order is None:
            raise UnmappablePayload("the Order API returned no order", field="order")
        order_id = text(order.get("id"), "order.id")
        if order_id is None:
            raise UnmappablePayload("missing order id", field="order.id")
        eater = json_object(order.get("eater"), "order.eater") or {}
        delivery = json_object(eater.get("delivery"), "order.eater.delivery") or {}
        location = json_object(delivery.get("location"), "order.eater.delivery.location") or {}
        if not location:
            # Older orders carry the drop-off on the courier's delivery instead of the eater's.
            for i, raw in enumerate(json_list(order.get("deliveries"), "order.deliveries")):
                found = json_object(raw, f"order.deliveries[{i}]") or {}
                location = json_object(found.get("location"), f"order.deliveries[{i}].location") or {}
                if location:
                    break
        where = "order.eater.delivery.location"
        street = text(location.get("formatted_address"), f"{where}.formatted_address") or ", ".join(
            part
            for key in ("address_1", "address_2", "unit_number", "city", "postal_code", "country")
            if (part := text(location.get(key), f"{where}.{key}"))
        )
        point = None
        if location.get("latitude") is not None or location.get("longitude") is not None:
            point = {
                "lat": coordinate(location.get("latitude"), f"{where}.latitude"),
                "lon": coordinate(location.get("longitude"), f"{where}.longitude"),
            }
        name = " ".join(
            part
            for key in ("first_name", "last_name")
            if (part := text(eater.get(key), f"order.eater.{key}"))
        )
        phone = text(eater.get("phone"), "order.eater.phone")
        currency = ""
        items = []
        cart = json_object(order.get("cart"), "order.cart") or {}
        for i, raw in enumerate(json_list(cart.get("items"), "order.cart.items")):
            base = f"order.cart.items[{i}]"
            line = json_object(raw, base) or {}
            price = json_object(line.get("price"), f"{base}.price") or {}
            unit = json_object(price.get("unit_price"), f"{base}.price.unit_price") or {}
            currency = currency or (
                text(unit.get("currency_code"), f"{base}.price.unit_price.currency_code") or ""
            )
            amount = unit.get("amount")
            if isinstance(amount, bool) or not isinstance(amount, int) or amount < 0:
                raise UnmappablePayload(
                    f"{amount!r} is not an amount in minor units", field=f"{base}.price.unit_price.amount"
                )
            items.append(
                {
                    "name": text(line.get("title"), f"{base}.title"),
                    "sku": text(line.get("external_data"), f"{base}.external_data"),
                    "quantity": quantity(line.get("quantity"), f"{base}.quantity"),
                    "unit_price": amount,
                }
            )
        notes = [
            note
            for value, field in (
                (delivery.get("notes"), "order.eater.delivery.notes"),
                (cart.get("special_instructions"), "order.cart.special_instructions"),
            )
            if (note := text(value, field))
        ]
        store = json_object(order.get("store"), "order.store") or {}
        raw_draft = {
            "merchant_id": settings.get("merchant_id") or text(store.get("id"), "order.store.id"),
            "pickup": pickup_from_settings(settings),
            "dropoff": {"name": name or "—", "address": street, "phone": phone, "location": point},
            "customer": {"name": name or "—", "phone": phone},
            "items": items,
            "currency": currency,
            "notes": "; ".join(notes) or None,
            # Uber collects from the eater; the store is paid out by Uber.
            "payment": {"method": PaymentMethod.ONLINE, "status": PaymentStatus.PAID},
        }
        draft = validated_draft(
            raw_draft,
            {
                "dropoff": where,
                "dropoff.name": "order.eater.first_name",
                "dropoff.address": f"{where}.address_1",
                "dropoff.phone": "order.eater.phone",
                "dropoff.location.lat": f"{where}.latitude",
                "dropoff.location.lon": f"{where}.longitude",
                "customer": "order.eater",
                "customer.name": "order.eater.first_name",
                "customer.phone": "order.eater.phone",
                "items": "order.cart.items",
                "currency": "order.cart.items[0].price.unit_price.currency_code",
                "merchant_id": "order.store.id",
            },
        )
        state = (text(order.get("current_state"), "order.current_state") or "").upper()
        event_type = event.get("event_type")
        change = (
            OrderChange.CANCELLED
            if event_type == "orders.cancel" or state in ("CANCELED", "CANCELLED")
            else OrderChange.PLACED
        )
        # Events may arrive out of order: the event time (seconds, in µs) orders them; a cancellation in
        # the same second as the order still comes after it.
        event_time = event.get("event_time")
        version = (
            event_time * 1_000_000 + (1 if change == OrderChange.CANCELLED else 0)
            if isinstance(event_time, int) and not isinstance(event_time, bool) and event_time > 0
            else None
        )
        return MappedOrder(external_id=order_id, draft=draft, change=change, version=version)


def _token_key(settings: Mapping[str, Any], secret: str) -> tuple[str, str, str]:
    """Which cached token serves a connection: its token URL, client id and (a hash of) its secret."""
    token_url = str(settings.get("token_url") or OAUTH_URL)
    client_id = str(settings.get("client_id") or "")
    return token_url, client_id, hashlib.sha256(secret.encode()).hexdigest()
