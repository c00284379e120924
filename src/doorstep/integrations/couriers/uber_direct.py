"""Uber Direct: delivery quotes, deliveries, cancellation, and its `event.delivery_status` and
`event.courier_update` webhooks.

Calls carry an OAuth access token (client credentials, scope `eats.deliveries`), kept until shortly
before it expires. Webhooks are signed `X-Postmates-Signature: <hex HMAC-SHA256(signing key, body)>`.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Any

from doorstep.integrations.couriers.doordash_drive import _json_object, _point, _text, _time
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

NETWORK = "Uber Direct"
DEFAULT_BASE_URL = "https://api.uber.com"
DEFAULT_AUTH_URL = "https://auth.uber.com/oauth/v2/token"
SCOPE = "eats.deliveries"
# A token is renewed this long before Uber says it expires, so no call carries one that just did.
TOKEN_MARGIN = timedelta(minutes=5)

STATUS: dict[str, CourierStatus] = {
    "pending": CourierStatus.REQUESTED,
    "pickup": CourierStatus.ASSIGNED,
    "pickup_complete": CourierStatus.PICKED_UP,
    "dropoff": CourierStatus.PICKED_UP,
    "delivered": CourierStatus.DELIVERED,
    "canceled": CourierStatus.CANCELLED,
    "returned": CourierStatus.RETURNED,
}
SIGNATURE_HEADERS = ("x-postmates-signature", "x-uber-signature")
# A status change, and the courier's position every 20 seconds or so once one is assigned.
KINDS = ("event.delivery_status", "event.courier_update")


def status_of(uber_status: str) -> CourierStatus | None:
    return STATUS.get(uber_status)


def signature(signing_key: str, body: bytes) -> str:
    return hmac.new(signing_key.encode(), body, hashlib.sha256).hexdigest()


class UberDirect:
    """The courier port over Uber Direct for one courier account (one Uber customer)."""

    def __init__(
        self,
        *,
        http: ProviderHttp,
        customer_id: str,
        client_id: str,
        client_secret: str,
        webhook_signing_key: str,
        base_url: str = DEFAULT_BASE_URL,
        auth_url: str = DEFAULT_AUTH_URL,
        tokens: dict[str, tuple[str, datetime]] | None = None,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self._http = http
        self._customer_id = customer_id
        self._client_id = client_id
        self._client_secret = client_secret
        self._signing_key = webhook_signing_key
        self._base = f"{base_url.rstrip('/')}/v1/customers/{customer_id}"
        self._auth_url = auth_url
        # Shared by the adapters of one process, by client id: a token serves every call until it expires.
        self._tokens = tokens if tokens is not None else {}
        self._clock = clock

    async def quote(self, request: CourierRequest) -> CourierQuote:
        body = await self._call("POST", "/delivery_quotes", json=quote_body(request))
        quote_id = _text(body, "id")
        fee = body.get("fee")
        if quote_id is None or isinstance(fee, bool) or not isinstance(fee, int):
            raise CourierUnavailable(f"{NETWORK} answered a quote without an id or a whole-cent fee")
        created = _time(body.get("created"))
        pickup_minutes = body.get("pickup_duration")
        return CourierQuote(
            provider_quote_id=quote_id,
            fee=fee,
            currency=str(body.get("currency_type") or body.get("currency") or request.currency).upper(),
            pickup_eta=created + timedelta(minutes=pickup_minutes)
            if created is not None and isinstance(pickup_minutes, int)
            else None,
            dropoff_eta=_time(body.get("dropoff_eta")),
            expires_at=_time(body.get("expires")),
        )

    async def create(self, request: CourierRequest, quote_id: str | None = None) -> CourierDelivery:
        payload = delivery_body(request)
        if quote_id is not None:
            payload["quote_id"] = quote_id
        return delivery_of(await self._call("POST", "/deliveries", json=payload))

    async def cancel(self, delivery_id: str) -> CourierDelivery:
        return delivery_of(await self._call("POST", f"/deliveries/{delivery_id}/cancel"))

    async def status(self, delivery_id: str) -> CourierDelivery:
        return delivery_of(await self._call("GET", f"/deliveries/{delivery_id}"))

    def parse_webhook(self, headers: Mapping[str, str], body: bytes) -> CourierUpdate:
        lowered = {k.lower(): v for k, v in headers.items()}
        given = next((lowered[name] for name in SIGNATURE_HEADERS if name in lowered), "")
        expected = signature(self._signing_key, body)
        if not self._signing_key or not hmac.compare_digest(given.strip().lower(), expected):
            raise WebhookNotAuthentic("X-Postmates-Signature is missing or not the body's HMAC")
        return update_of(_json_object(body))

    async def _call(self, method: str, path: str, *, json: Any = None) -> dict[str, Any]:
        token = await self._token()
        return await self._http.call(
            method,
            self._base + path,
            network=NETWORK,
            headers={"Authorization": f"Bearer {token}"},
            json=json,
        )

    async def _token(self) -> str:
        now = self._clock()
        cached = self._tokens.get(self._client_id)
        if cached is not None and cached[1] > now:
            return cached[0]
        body = await self._http.call(
            "POST",
            self._auth_url,
            network=NETWORK,
            form={
                "client_id": self._client_id,
                "client_secret": self._client_secret,
                "grant_type": "client_credentials",
                "scope": SCOPE,
            },
        )
        token, lifetime = body.get("access_token"), body.get("expires_in")
        if not isinstance(token, str) or not isinstance(lifetime, int):
            raise CourierUnavailable(f"{NETWORK} answered the token request without access_token/expires_in")
        self._tokens[self._client_id] = (token, now + timedelta(seconds=lifetime) - TOKEN_MARGIN)
        return token


def _address(stop: CourierStop) -> str:
    # Uber takes the address as a JSON string of its parts; Doorstep keeps one line, and the coordinates.
    return json.dumps({"street_address": [stop.address]}, ensure_ascii=False)


def _stop(prefix: str, stop: CourierStop) -> dict[str, Any]:
    fields: dict[str, Any] = {f"{prefix}_address": _address(stop), f"{prefix}_phone_number": stop.phone}
    if stop.location is not None:
        fields[f"{prefix}_latitude"] = stop.location.lat
        fields[f"{prefix}_longitude"] = stop.location.lon
    if stop.window_start is not None and stop.window_end is not None:
        ready, deadline = (
            ("pickup_ready_dt", "pickup_deadline_dt")
            if prefix == "pickup"
            else (
                "dropoff_ready_dt",
                "dropoff_deadline_dt",
            )
        )
        fields[ready] = stop.window_start.isoformat()
        fields[deadline] = stop.window_end.isoformat()
    return fields


def quote_body(request: CourierRequest) -> dict[str, Any]:
    body = {
        **_stop("pickup", request.pickup),
        **_stop("dropoff", request.dropoff),
        "manifest_total_value": request.order_value,
        "external_id": request.external_id,
    }
    return {key: value for key, value in body.items() if value is not None}


def delivery_body(request: CourierRequest) -> dict[str, Any]:
    body: dict[str, Any] = {
        **quote_body(request),
        "pickup_name": request.pickup.name,
        "pickup_notes": request.pickup.instructions,
        "dropoff_name": request.dropoff.name,
        "dropoff_notes": request.dropoff.instructions,
        "manifest_items": [
            {"name": item.name, "quantity": item.quantity, "size": "small", "price": item.unit_price}
            for item in request.items
        ],
        "tip": request.tip,
    }
    return {key: value for key, value in body.items() if value is not None}


def delivery_of(body: dict[str, Any]) -> CourierDelivery:
    delivery_id = _text(body, "id")
    if delivery_id is None:
        raise CourierUnavailable(f"{NETWORK} answered without a delivery id")
    fee = body.get("fee")
    return CourierDelivery(
        provider_delivery_id=delivery_id,
        status=status_of(str(body.get("status", ""))) or CourierStatus.REQUESTED,
        tracking_url=_text(body, "tracking_url"),
        fee=fee if isinstance(fee, int) and not isinstance(fee, bool) else None,
        currency=(_text(body, "currency") or "").upper() or None,
        courier=_courier(body.get("courier")),
        proof_of_delivery=_proof(body),
    )


def update_of(payload: dict[str, Any]) -> CourierUpdate:
    data = payload.get("data") if isinstance(payload.get("data"), dict) else {}
    assert isinstance(data, dict)
    event_id = _text(payload, "id")
    delivery_id = _text(payload, "delivery_id") or _text(data, "id")
    uber_status = _text(payload, "status") or _text(data, "status")
    occurred_at = _time(payload.get("created")) or _time(data.get("updated"))
    kind = payload.get("kind")
    if kind not in KINDS:
        raise WebhookUnreadable(f"Uber Direct webhook kind {kind!r} is not one of {', '.join(KINDS)}")
    if event_id is None or delivery_id is None or uber_status is None or occurred_at is None:
        raise WebhookUnreadable(f"an Uber Direct {kind} webhook needs id, delivery_id, status and created")
    courier = _courier(data.get("courier"))
    # `courier_update` also carries the position at the top (`location`); the copy under `data.courier`
    # is the delivery's at that moment.
    position = _point(payload.get("location"))
    if position is not None:
        courier = (courier or CourierInfo()).model_copy(update={"location": position})
    return CourierUpdate(
        event_key=event_id,
        provider_delivery_id=delivery_id,
        provider_status=uber_status,
        status=status_of(uber_status),
        occurred_at=occurred_at,
        tracking_url=_text(data, "tracking_url"),
        courier=courier,
        proof_of_delivery=_proof(data),
        reason=_text(data, "undeliverable_reason"),
    )


def _courier(value: Any) -> CourierInfo | None:
    if not isinstance(value, dict):
        return None
    return CourierInfo(
        name=_text(value, "name"), phone=_text(value, "phone_number"), location=_point(value.get("location"))
    )


def _proof(body: dict[str, Any]) -> tuple[str, ...]:
    """Image URLs of the drop-off's verification (signature, picture) and of `proof_of_delivery`."""
    urls: list[str] = []
    dropoff = body.get("dropoff")
    verification = dropoff.get("verification") if isinstance(dropoff, dict) else None
    sources = [verification, body.get("proof_of_delivery")]
    for source in sources:
        if not isinstance(source, dict):
            continue
        for key in ("signature", "picture", "photo"):
            part = source.get(key)
            if isinstance(part, dict) and isinstance(part.get("image_url"), str):
                urls.append(part["image_url"])
        if isinstance(source.get("image_url"), str):
            urls.append(source["image_url"])
    return tuple(dict.fromkeys(urls))
