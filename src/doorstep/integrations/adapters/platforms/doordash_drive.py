"""Partners that post deliveries to Doorstep the way they post them to DoorDash Drive
(`POST /drive/v2/deliveries`), authenticated with a DoorDash-style JWT.

A Drive signing secret is base64url text; the HMAC key is what it decodes to, as DoorDash signs with
`base64.urlsafe_b64decode(signing_secret)`. The connection's secret is such a text.
"""

from __future__ import annotations

import base64
import binascii
import re
import secrets
from collections.abc import Mapping
from typing import Any

import jwt

from doorstep.contracts.orders import PaymentMethod, PaymentStatus
from doorstep.integrations.adapters.platforms.drafts import validated_draft
from doorstep.integrations.adapters.platforms.fields import coordinate, json_list, json_object, quantity, text
from doorstep.integrations.ports import MappedOrder, SignatureInvalid, UnmappablePayload


def _cents(value: Any, field: str) -> int:
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise UnmappablePayload(f"{value!r} is not an amount in cents", field=field)
    return value


_BASE64URL = re.compile(r"[A-Za-z0-9_-]+={0,2}")
# HS256 wants a key at least as long as its hash (RFC 7518, 3.2); DoorDash's secrets decode to 32 bytes.
MIN_KEY_BYTES = 32


def signing_key(secret: str) -> bytes:
    """The HMAC key of a Drive signing secret; `=` padding is optional. ValueError says what is wrong."""
    if not _BASE64URL.fullmatch(secret):
        raise ValueError("a DoorDash signing secret is base64url text (A-Z, a-z, 0-9, - and _)")
    unpadded = secret.rstrip("=")
    try:
        key = base64.urlsafe_b64decode(unpadded + "=" * (-len(unpadded) % 4))
    except (binascii.Error, ValueError):
        raise ValueError("a DoorDash signing secret is base64url text of whole bytes") from None
    if len(key) < MIN_KEY_BYTES:
        raise ValueError(f"a DoorDash signing secret decodes to at least {MIN_KEY_BYTES} bytes")
    return key


def new_signing_secret() -> str:
    """A secret for a new connection, shaped like the ones DoorDash hands out."""
    return secrets.token_urlsafe(MIN_KEY_BYTES)


def sign_drive_jwt(*, secret: str, developer_id: str, key_id: str, now: int) -> str:
    """The bearer token a DoorDash Drive client sends (HS256, `aud: doordash`, `kid` = key id)."""
    return jwt.encode(
        {"aud": "doordash", "iss": developer_id, "kid": key_id, "iat": now, "exp": now + 300},
        signing_key(secret),
        algorithm="HS256",
        headers={"dd-ver": "DD-JWT-V1"},
    )


class DoorDashDriveAdapter:
    name: str = "doordash_drive"

    def verify(
        self, *, headers: Mapping[str, str], body: bytes, secret: str, settings: Mapping[str, Any] = {}
    ) -> None:
        """`Authorization: Bearer <JWT>` signed HS256 with the connection's decoded secret, for `aud: doordash`."""
        scheme, _, token = (headers.get("authorization") or "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise SignatureInvalid("missing Authorization: Bearer <JWT> header")
        try:
            key = signing_key(secret)
        except ValueError as error:
            # Only a connection saved before secrets were checked: open it again with a Drive secret.
            raise SignatureInvalid(f"the connection's secret cannot sign Drive tokens: {error}") from None
        try:
            claims = jwt.decode(
                token.strip(),
                key,
                algorithms=["HS256"],
                audience="doordash",
                options={"require": ["exp", "kid"]},
            )
        except jwt.PyJWTError as error:
            raise SignatureInvalid(f"the bearer token does not verify: {error}") from None
        key_id = settings.get("key_id")
        if key_id is not None and claims.get("kid") != key_id:
            raise SignatureInvalid("the bearer token's kid is not this connection's key id")
        developer_id = settings.get("developer_id")
        if developer_id is not None and claims.get("iss") != developer_id:
            raise SignatureInvalid("the bearer token's iss is not this connection's developer id")

    def delivery_id(self, *, headers: Mapping[str, str], body: bytes) -> str | None:
        # Drive has no delivery id header; the orders service is idempotent by external_delivery_id.
        return None

    def map_order(self, payload: Any, *, settings: Mapping[str, Any]) -> MappedOrder:
        if not isinstance(payload, Mapping):
            raise UnmappablePayload("payload is not a JSON object")
        external_id = text(payload.get("external_delivery_id"), "external_delivery_id")
        if external_id is None:
            raise UnmappablePayload("required", field="external_delivery_id")
        currency = (text(payload.get("currency"), "currency") or str(settings.get("currency", "USD"))).upper()
        window = {side: text(payload.get(f"{side}_time"), f"{side}_time") for side in ("pickup", "dropoff")}
        location = None
        point = json_object(payload.get("dropoff_location"), "dropoff_location")
        if point is not None:
            location = {
                "lat": coordinate(point.get("lat"), "dropoff_location.lat"),
                "lon": coordinate(point.get("lng"), "dropoff_location.lng"),
            }
        pickup_location = None
        pickup_point = json_object(payload.get("pickup_location"), "pickup_location")
        if pickup_point is not None:
            pickup_location = {
                "lat": coordinate(pickup_point.get("lat"), "pickup_location.lat"),
                "lon": coordinate(pickup_point.get("lng"), "pickup_location.lng"),
            }
        order_value = _cents(payload.get("order_value"), "order_value")
        items = [
            {
                "name": text(line.get("name"), f"items[{i}].name"),
                "sku": text(line.get("external_id"), f"items[{i}].external_id"),
                "quantity": quantity(line.get("quantity", 1), f"items[{i}].quantity"),
                "unit_price": _cents(line.get("price"), f"items[{i}].price"),
            }
            for i, raw in enumerate(json_list(payload.get("items"), "items"))
            if (line := json_object(raw, f"items[{i}]") or {}) is not None
        ] or [{"name": f"Delivery {external_id}", "quantity": 1, "unit_price": order_value}]
        given = text(payload.get("dropoff_contact_given_name"), "dropoff_contact_given_name")
        family = text(payload.get("dropoff_contact_family_name"), "dropoff_contact_family_name")
        contact = " ".join(part for part in (given, family) if part) or None
        recipient = contact or text(payload.get("dropoff_business_name"), "dropoff_business_name") or "—"
        notes = [
            f"{label}: {note}"
            for label, key in (("pickup", "pickup_instructions"), ("dropoff", "dropoff_instructions"))
            if (note := text(payload.get(key), key))
        ]
        if window["pickup"]:
            notes.append(f"pickup at {window['pickup']}")
        if window["dropoff"]:
            notes.append(f"drop off at {window['dropoff']}")
        raw_draft = {
            "merchant_id": settings.get("merchant_id"),
            "pickup": {
                "name": text(payload.get("pickup_business_name"), "pickup_business_name") or "—",
                "address": text(payload.get("pickup_address"), "pickup_address"),
                "phone": text(payload.get("pickup_phone_number"), "pickup_phone_number"),
                "location": pickup_location,
            },
            "dropoff": {
                "name": recipient,
                "address": text(payload.get("dropoff_address"), "dropoff_address"),
                "phone": text(payload.get("dropoff_phone_number"), "dropoff_phone_number"),
                "location": location,
            },
            "customer": {
                "name": recipient,
                "phone": text(payload.get("dropoff_phone_number"), "dropoff_phone_number"),
            },
            "items": items,
            "currency": currency,
            "tip": _cents(payload.get("tip"), "tip"),
            "notes": "; ".join(notes) or None,
            "payment": {"method": PaymentMethod.INVOICE, "status": PaymentStatus.PENDING},
        }
        draft = validated_draft(
            raw_draft,
            {
                "pickup": "pickup_address",
                "pickup.name": "pickup_business_name",
                "pickup.address": "pickup_address",
                "pickup.phone": "pickup_phone_number",
                "pickup.location": "pickup_location",
                "dropoff": "dropoff_address",
                "dropoff.name": "dropoff_contact_given_name",
                "dropoff.address": "dropoff_address",
                "dropoff.phone": "dropoff_phone_number",
                "dropoff.location": "dropoff_location",
                "dropoff.location.lon": "dropoff_location.lng",
                "pickup.location.lon": "pickup_location.lng",
                "customer": "dropoff_phone_number",
                "customer.name": "dropoff_contact_given_name",
                "items": "items",
                "currency": "currency",
                "tip": "tip",
            },
        )
        return MappedOrder(external_id=external_id, draft=draft)
