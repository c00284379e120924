"""DoorDash Drive (v2): quotes, deliveries, cancellation, and its status webhooks.

Calls are signed with a DoorDash JWT (HS256 over the base64url-decoded signing secret, header
`dd-ver: DD-JWT-V1`, five minutes). Amounts are in cents, so in the order's minor units. Webhooks carry
the `Authorization` value the tenant configured in the DoorDash portal: the account's webhook secret.
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

import jwt

from doorstep.contracts.orders import GeoPoint
from doorstep.integrations.adapters.platforms.doordash_drive import signing_key
from doorstep.integrations.couriers.ports import (
    CourierDelivery,
    CourierInfo,
    CourierQuote,
    CourierRequest,
    CourierStatus,
    CourierStop,
    CourierUnavailable,
    CourierUpdate,
    WebhookNotAuthentic,
    WebhookUnreadable,
)
from doorstep.integrations.couriers.provider_http import ProviderHttp
from doorstep.kernel.clock import utcnow

NETWORK = "DoorDash Drive"
DEFAULT_BASE_URL = "https://openapi.doordash.com"
TOKEN_SECONDS = 300

# Webhook event names -> Doorstep's status; names not listed are kept but change nothing.
EVENT_STATUS: dict[str, CourierStatus] = {
    "DELIVERY_CREATED": CourierStatus.REQUESTED,
    "DASHER_CONFIRMED": CourierStatus.ASSIGNED,
    "DASHER_ENROUTE_TO_PICKUP": CourierStatus.ASSIGNED,
    "DASHER_CONFIRMED_PICKUP_ARRIVAL": CourierStatus.ASSIGNED,
    "DASHER_PICKED_UP": CourierStatus.PICKED_UP,
    "DASHER_ENROUTE_TO_DROPOFF": CourierStatus.PICKED_UP,
    "DASHER_CONFIRMED_DROPOFF_ARRIVAL": CourierStatus.PICKED_UP,
    "DASHER_DROPPED_OFF": CourierStatus.DELIVERED,
    "DELIVERY_CANCELLED": CourierStatus.CANCELLED,
    "DASHER_ENROUTE_TO_RETURN": CourierStatus.FAILED,
    "DASHER_CONFIRMED_RETURN_ARRIVAL": CourierStatus.FAILED,
    "DELIVERY_RETURNED": CourierStatus.RETURNED,
    "DASHER_DROPPED_OFF_RETURN": CourierStatus.RETURNED,
}
# `delivery_status` of the delivery object -> Doorstep's status.
DELIVERY_STATUS: dict[str, CourierStatus] = {
    "quote": CourierStatus.REQUESTED,
    "created": CourierStatus.REQUESTED,
    "confirmed": CourierStatus.ASSIGNED,
    "enroute_to_pickup": CourierStatus.ASSIGNED,
    "arrived_at_pickup": CourierStatus.ASSIGNED,
    "picked_up": CourierStatus.PICKED_UP,
    "enroute_to_dropoff": CourierStatus.PICKED_UP,
    "arrived_at_dropoff": CourierStatus.PICKED_UP,
    "delivered": CourierStatus.DELIVERED,
    "cancelled": CourierStatus.CANCELLED,
    "enroute_to_return": CourierStatus.FAILED,
    "arrived_at_return": CourierStatus.FAILED,
    "returned": CourierStatus.RETURNED,
}


def status_of_event(event_name: str) -> CourierStatus | None:
    return EVENT_STATUS.get(event_name)


def status_of_delivery(delivery_status: str) -> CourierStatus:
    return DELIVERY_STATUS.get(delivery_status, CourierStatus.REQUESTED)


def drive_jwt(*, developer_id: str, key_id: str, signing_secret: str, now: datetime) -> str:
    """The bearer token DoorDash asks for on every call."""
    issued = int(now.timestamp())
    return jwt.encode(
        {"aud": "doordash", "iss": developer_id, "kid": key_id, "exp": issued + TOKEN_SECONDS, "iat": issued},
        signing_key(signing_secret),
        algorithm="HS256",
        headers={"dd-ver": "DD-JWT-V1", "kid": key_id},
    )


class DoorDashDrive:
    """The courier port over DoorDash Drive for one courier account."""

    def __init__(
        self,
        *,
        http: ProviderHttp,
        developer_id: str,
        key_id: str,
        signing_secret: str,
        webhook_secret: str,
        base_url: str = DEFAULT_BASE_URL,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self._http = http
        self._developer_id = developer_id
        self._key_id = key_id
        self._signing_secret = signing_secret
        self._webhook_secret = webhook_secret
        self._base = base_url.rstrip("/")
        self._clock = clock

    async def quote(self, request: CourierRequest) -> CourierQuote:
        body = await self._call("POST", "/drive/v2/quotes", json=delivery_body(request))
        return CourierQuote(
            provider_quote_id=_text(body, "external_delivery_id") or request.external_id,
            fee=_amount(body, "fee"),
            currency=str(body.get("currency") or request.currency).upper(),
            pickup_eta=_time(body.get("pickup_time_estimated")),
            dropoff_eta=_time(body.get("dropoff_time_estimated")),
            expires_at=_time(body.get("expires_at")),
        )

    async def create(self, request: CourierRequest, quote_id: str | None = None) -> CourierDelivery:
        if quote_id is not None:
            # A quote is accepted by the external delivery id it was asked for.
            body = await self._call("POST", f"/drive/v2/quotes/{quote_id}/accept", json={"tip": request.tip})
        else:
            body = await self._call("POST", "/drive/v2/deliveries", json=delivery_body(request))
        return delivery_of(body)

    async def cancel(self, delivery_id: str) -> CourierDelivery:
        return delivery_of(await self._call("PUT", f"/drive/v2/deliveries/{delivery_id}/cancel"))

    async def status(self, delivery_id: str) -> CourierDelivery:
        return delivery_of(await self._call("GET", f"/drive/v2/deliveries/{delivery_id}"))

    def parse_webhook(self, headers: Mapping[str, str], body: bytes) -> CourierUpdate:
        given = {k.lower(): v for k, v in headers.items()}.get("authorization", "")
        if not self._webhook_secret or not hmac.compare_digest(given.encode(), self._webhook_secret.encode()):
            raise WebhookNotAuthentic("the Authorization header is not the account's webhook secret")
        return update_of(_json_object(body))

    async def _call(self, method: str, path: str, *, json: Any = None) -> dict[str, Any]:
        token = drive_jwt(
            developer_id=self._developer_id,
            key_id=self._key_id,
            signing_secret=self._signing_secret,
            now=self._clock(),
        )
        return await self._http.call(
            method,
            self._base + path,
            network=NETWORK,
            headers={"Authorization": f"Bearer {token}"},
            json=json,
        )


def delivery_body(request: CourierRequest) -> dict[str, Any]:
    """The quote and delivery request body of DoorDash Drive v2."""
    body: dict[str, Any] = {
        "external_delivery_id": request.external_id,
        **_stop("pickup", request.pickup),
        **_stop("dropoff", request.dropoff),
        "pickup_business_name": request.pickup.name,
        "dropoff_contact_given_name": request.dropoff.name,
        "order_value": request.order_value,
        "currency": request.currency,
        "tip": request.tip,
        "items": [
            {"name": item.name, "quantity": item.quantity, "price": item.unit_price} for item in request.items
        ],
    }
    return {key: value for key, value in body.items() if value is not None}


def _stop(prefix: str, stop: CourierStop) -> dict[str, Any]:
    fields: dict[str, Any] = {
        f"{prefix}_address": stop.address,
        f"{prefix}_phone_number": stop.phone,
        f"{prefix}_instructions": stop.instructions,
    }
    if stop.location is not None:
        fields[f"{prefix}_location"] = {"lat": stop.location.lat, "lng": stop.location.lon}
    if stop.window_start is not None and stop.window_end is not None:
        fields[f"{prefix}_window"] = {
            "start_time": stop.window_start.isoformat(),
            "end_time": stop.window_end.isoformat(),
        }
    return fields


def delivery_of(body: dict[str, Any]) -> CourierDelivery:
    delivery_id = _text(body, "external_delivery_id")
    if delivery_id is None:
        raise CourierUnavailable(f"{NETWORK} answered without an external_delivery_id")
    return CourierDelivery(
        provider_delivery_id=delivery_id,
        status=status_of_delivery(str(body.get("delivery_status", ""))),
        tracking_url=_text(body, "tracking_url"),
        fee=_amount(body, "fee") if body.get("fee") is not None else None,
        currency=_text(body, "currency"),
        courier=_courier(body),
        proof_of_delivery=_proof(body),
    )


def update_of(payload: dict[str, Any]) -> CourierUpdate:
    event_name = _text(payload, "event_name")
    delivery_id = _text(payload, "external_delivery_id")
    occurred_at = _time(payload.get("created_at"))
    if event_name is None or delivery_id is None or occurred_at is None:
        raise WebhookUnreadable("a DoorDash webhook needs event_name, external_delivery_id and created_at")
    return CourierUpdate(
        event_key=f"{delivery_id}:{event_name}:{payload.get('created_at')}",
        provider_delivery_id=delivery_id,
        provider_status=event_name,
        status=status_of_event(event_name),
        occurred_at=occurred_at,
        tracking_url=_text(payload, "tracking_url"),
        courier=_courier(payload),
        proof_of_delivery=_proof(payload),
        reason=_text(payload, "cancellation_reason_message") or _text(payload, "cancellation_reason"),
    )


def _courier(body: dict[str, Any]) -> CourierInfo | None:
    name = _text(body, "dasher_name")
    phone = _text(body, "dasher_dropoff_phone_number") or _text(body, "dasher_pickup_phone_number")
    location = _point(body.get("dasher_location")) or _point(
        {"lat": body.get("dasher_location_lat"), "lng": body.get("dasher_location_lng")}
    )
    if name is None and phone is None and location is None:
        return None
    return CourierInfo(name=name, phone=phone, location=location)


def _proof(body: dict[str, Any]) -> tuple[str, ...]:
    keys = ("dropoff_verification_image_url", "dropoff_signature_image_url")
    return tuple(url for key in keys if (url := _text(body, key)) is not None)


def _point(value: Any) -> GeoPoint | None:
    """`{"lat": .., "lng": ..}` as both networks send it; None when it is missing or not a place on Earth."""
    if not isinstance(value, dict):
        return None
    try:
        return GeoPoint(lat=float(value["lat"]), lon=float(value["lng"]))
    except (KeyError, TypeError, ValueError):
        return None


def _text(body: dict[str, Any], key: str) -> str | None:
    value = body.get(key)
    return str(value) if isinstance(value, str | int) and value != "" else None


def _amount(body: dict[str, Any], key: str) -> int:
    value = body.get(key)
    if isinstance(value, bool) or not isinstance(value, int):
        raise CourierUnavailable(f"{NETWORK} answered without a whole-cent `{key}`")
    return value


def _time(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else None


def _json_object(body: bytes) -> dict[str, Any]:
    try:
        payload = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise WebhookUnreadable("the webhook body is not JSON") from None
    if not isinstance(payload, dict):
        raise WebhookUnreadable("the webhook body is not a JSON object")
    return payload
