"""The generic `json_mapping` connection: a tenant maps any JSON payload to Doorstep's order with JSONPath
expressions (RFC 9535) stored in the connection's `settings.mapping`.

A mapping names Doorstep fields and where each comes from::

    {"external_id": "$.id", "dropoff.address": "$.shipping.street",
     "items": {"path": "$.lines[*]", "fields": {"name": "$.title", "quantity": "$.qty",
                                               "unit_price": {"path": "$.price", "decimal": true}}},
     "version": "$.updated_at", "cancelled": {"path": "$.state", "equals": "cancelled"}}

A rule is a JSONPath, or an object with `path` and optionally `decimal` (an amount in major units, e.g.
"12.50", turned into minor units), `equals` (true when the value equals it) and `default`.
Bodies may be AES-256-GCM encrypted (`{"iv": b64, "ciphertext": b64}`, the tag appended to the
ciphertext, `settings.encryption_key` base64) and are signed with HMAC-SHA256 of the raw body in
`settings.signature_header` (hex or base64, `settings.signature_encoding`).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import jsonpath
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from doorstep.integrations.adapters.platforms.drafts import microseconds, validated_draft
from doorstep.integrations.adapters.platforms.fields import amount, coordinate, quantity, text
from doorstep.integrations.ports import MappedOrder, OrderChange, SignatureInvalid, UnmappablePayload

# Not `X-Doorstep-*`: the edge strips those from every request (they carry the caller's identity inside).
DEFAULT_SIGNATURE_HEADER = "x-signature"
_ENCODINGS = ("hex", "base64")

# Doorstep's fields a mapping may fill, and what kind of value each takes.
_TEXT = frozenset(
    {
        "external_id",
        "merchant_id",
        "currency",
        "notes",
        "customer.name",
        "customer.phone",
        "customer.email",
        "dropoff.name",
        "dropoff.address",
        "dropoff.phone",
        "pickup.name",
        "pickup.address",
        "pickup.phone",
        "payment.method",
        "payment.status",
    }
)
_AMOUNTS = frozenset({"tip", "delivery_fee"})
_COORDINATES = frozenset(
    {"dropoff.location.lat", "dropoff.location.lon", "pickup.location.lat", "pickup.location.lon"}
)
_SPECIAL = frozenset({"items", "version", "cancelled"})
TARGETS = _TEXT | _AMOUNTS | _COORDINATES | _SPECIAL
ITEM_TARGETS = frozenset({"name", "sku", "quantity", "unit_price"})
_REQUIRED = ("external_id", "dropoff.address", "items", "currency")
_RULE_KEYS = frozenset({"path", "decimal", "equals", "default"})


@dataclass(frozen=True, slots=True)
class Rule:
    target: str  # where errors point: `mapping.<target>`
    path: jsonpath.JSONPath | jsonpath.CompoundJSONPath
    expression: str
    decimal: bool = False
    equals: Any = None
    has_equals: bool = False
    default: Any = None

    def values(self, data: Any) -> list[Any]:
        return list(self.path.findall(data))

    def value(self, data: Any) -> Any:
        found = self.values(data)
        if self.has_equals:
            return bool(found) and found[0] == self.equals
        return found[0] if found else self.default


@dataclass(frozen=True, slots=True)
class CompiledMapping:
    rules: dict[str, Rule]
    items: Rule
    item_rules: dict[str, Rule]


def _rule(target: str, spec: Any) -> Rule:
    where = f"settings.mapping.{target}"
    if isinstance(spec, str):
        spec = {"path": spec}
    if not isinstance(spec, Mapping):
        raise UnmappablePayload("a rule is a JSONPath or an object with `path`", field=where)
    unknown = sorted(set(spec) - _RULE_KEYS)
    if unknown:
        raise UnmappablePayload(f"unknown rule keys {unknown}; allowed: {sorted(_RULE_KEYS)}", field=where)
    expression = spec.get("path")
    if not isinstance(expression, str) or not expression.strip().startswith("$"):
        # RFC 9535: a query starts at the root `$` (the library would also take a bare name).
        raise UnmappablePayload("`path` must be a JSONPath starting with $, such as $.id", field=where)
    if not isinstance(spec.get("decimal", False), bool):
        raise UnmappablePayload("`decimal` must be true or false", field=f"{where}.decimal")
    try:
        path = jsonpath.compile(expression)
    except jsonpath.JSONPathError as error:
        reason = str(error).splitlines()[0]
        raise UnmappablePayload(f"{expression!r} is not a valid JSONPath: {reason}", field=where) from None
    return Rule(
        target=target,
        path=path,
        expression=expression,
        decimal=bool(spec.get("decimal", False)),
        equals=spec.get("equals"),
        has_equals="equals" in spec,
        default=spec.get("default"),
    )


def compile_mapping(mapping: Any) -> CompiledMapping:
    """Check a stored mapping; raise `UnmappablePayload` naming `settings.mapping.<field>` when it is wrong."""
    if not isinstance(mapping, Mapping):
        raise UnmappablePayload("a JSON object from Doorstep fields to JSONPaths", field="settings.mapping")
    unknown = sorted(set(mapping) - TARGETS)
    if unknown:
        raise UnmappablePayload(
            f"unknown Doorstep field; known: {', '.join(sorted(TARGETS))}",
            field=f"settings.mapping.{unknown[0]}",
        )
    for target in _REQUIRED:
        if target not in mapping:
            raise UnmappablePayload("required", field=f"settings.mapping.{target}")
    items = mapping["items"]
    if not isinstance(items, Mapping) or not isinstance(items.get("fields"), Mapping):
        raise UnmappablePayload(
            "an object with `path` (the lines) and `fields` (each line's JSONPaths)",
            field="settings.mapping.items",
        )
    fields = items["fields"]
    unknown = sorted(set(fields) - ITEM_TARGETS)
    if unknown:
        raise UnmappablePayload(
            f"unknown item field; known: {', '.join(sorted(ITEM_TARGETS))}",
            field=f"settings.mapping.items.fields.{unknown[0]}",
        )
    for target in ("name", "quantity", "unit_price"):
        if target not in fields:
            raise UnmappablePayload("required", field=f"settings.mapping.items.fields.{target}")
    rules = {target: _rule(target, spec) for target, spec in mapping.items() if target != "items"}
    return CompiledMapping(
        rules=rules,
        items=_rule("items", {"path": items.get("path")}),
        item_rules={target: _rule(f"items.fields.{target}", spec) for target, spec in fields.items()},
    )


def _shown(rule: Rule) -> str:
    """How an error names the payload field: the Doorstep field and the JSONPath it reads."""
    return f"mapping.{rule.target} ({rule.expression})"


def _amount_of(rule: Rule, value: Any, currency: str) -> int:
    if value is None:
        return 0
    if rule.decimal:
        return amount(value, currency, _shown(rule))
    if isinstance(value, str) and value.strip().isascii() and value.strip().isdigit():
        value = int(value.strip())
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise UnmappablePayload(
            f"{value!r} is not an amount in minor units (set `decimal` for major units)", field=_shown(rule)
        )
    return value


def _nest(flat: Mapping[str, Any]) -> dict[str, Any]:
    nested: dict[str, Any] = {}
    for key, value in flat.items():
        node = nested
        *parents, last = key.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[last] = value
    return nested


def map_with(compiled: CompiledMapping, payload: Any, settings: Mapping[str, Any]) -> MappedOrder:
    rules = compiled.rules
    values = {target: rule.value(payload) for target, rule in rules.items()}
    flat: dict[str, Any] = {}
    for target in _TEXT & set(rules):
        flat[target] = text(values[target], _shown(rules[target]))
    currency = (flat.get("currency") or "").upper()
    flat["currency"] = currency
    for target in _AMOUNTS & set(rules):
        flat[target] = _amount_of(rules[target], values[target], currency)
    for target in _COORDINATES & set(rules):
        if values[target] is not None:
            flat[target] = coordinate(values[target], _shown(rules[target]))
    items = []
    for i, line in enumerate(compiled.items.values(payload)):
        item: dict[str, Any] = {}
        for target, rule in compiled.item_rules.items():
            where = f"mapping.items[{i}].{target} ({rule.expression})"
            value = rule.value(line)
            if target == "quantity":
                item[target] = quantity(value, where)
            elif target == "unit_price":
                try:
                    item[target] = _amount_of(rule, value, currency)
                except UnmappablePayload as error:
                    raise UnmappablePayload(error.reason, field=where) from None
            else:
                item[target] = text(value, where)
        items.append(item)
    external_id = flat.pop("external_id", None)
    if external_id is None:
        raise UnmappablePayload("the payload has no value there", field=_shown(rules["external_id"]))
    raw = _nest({k: v for k, v in flat.items() if v is not None})
    raw["items"] = items
    if "pickup" not in raw:
        pickup = settings.get("pickup")
        if not isinstance(pickup, Mapping):
            raise UnmappablePayload("no pickup in the mapping nor in the settings", field="settings.pickup")
        raw["pickup"] = dict(pickup)
    dropoff = raw.setdefault("dropoff", {})
    customer = raw.setdefault("customer", {})
    dropoff.setdefault("name", customer.get("name") or "—")
    customer.setdefault("name", dropoff["name"])
    customer.setdefault("phone", dropoff.get("phone"))
    raw.setdefault("merchant_id", settings.get("merchant_id"))
    draft = validated_draft(
        raw, {target: _shown(rule) for target, rule in rules.items()} | {"items": "mapping.items"}
    )
    version = None
    if "version" in rules and values["version"] is not None:
        found = values["version"]
        if isinstance(found, int) and not isinstance(found, bool):
            version = found
        else:
            version = microseconds(found, _shown(rules["version"]))
    cancelled = "cancelled" in rules and values["cancelled"] is True
    change = (
        OrderChange.CANCELLED if cancelled else OrderChange.PLACED if version is None else OrderChange.UPDATED
    )
    return MappedOrder(external_id=external_id, draft=draft, change=change, version=version)


def _key(settings: Mapping[str, Any]) -> bytes | None:
    value = settings.get("encryption_key")
    if value is None:
        return None
    try:
        key = base64.b64decode(str(value), validate=True)
    except (binascii.Error, ValueError):
        raise UnmappablePayload("not base64", field="settings.encryption_key") from None
    if len(key) != 32:
        raise UnmappablePayload("an AES-256 key is 32 bytes", field="settings.encryption_key")
    return key


def encrypt_payload(payload: Any, key: bytes, iv: bytes) -> bytes:
    """A body as a sender encrypts it: AES-256-GCM, the tag appended to the ciphertext."""
    sealed = AESGCM(key).encrypt(iv, json.dumps(payload).encode(), None)
    return json.dumps(
        {"iv": base64.b64encode(iv).decode(), "ciphertext": base64.b64encode(sealed).decode()}
    ).encode()


class JsonMappingAdapter:
    """Any JSON sender, mapped by the tenant's stored mapping."""

    name: str = "json_mapping"

    def verify(
        self, *, headers: Mapping[str, str], body: bytes, secret: str, settings: Mapping[str, Any] = {}
    ) -> None:
        header_name = str(settings.get("signature_header") or DEFAULT_SIGNATURE_HEADER).lower()
        header = (headers.get(header_name) or "").strip()
        if not header:
            raise SignatureInvalid(f"missing {header_name} header")
        digest = hmac.new(secret.encode(), body, hashlib.sha256).digest()
        if settings.get("signature_encoding", "hex") == "base64":
            expected = base64.b64encode(digest).decode()
        else:
            expected, header = digest.hex(), header.lower()
        if not hmac.compare_digest(expected, header):
            raise SignatureInvalid(f"{header_name} does not match the body")

    def delivery_id(self, *, headers: Mapping[str, str], body: bytes) -> str | None:
        # A sender's idempotency header, when it has one; the orders service is idempotent by external id.
        return headers.get("idempotency-key") or headers.get("webhook-id") or None

    def decode(self, body: bytes, *, settings: Mapping[str, Any]) -> Any:
        try:
            outer = json.loads(body)
        except (UnicodeDecodeError, ValueError) as error:
            raise UnmappablePayload(f"the body is not JSON: {error}") from None
        except RecursionError:
            raise UnmappablePayload("the body nests too deeply to be an order") from None
        key = _key(settings)
        if key is None:
            return outer
        if not isinstance(outer, Mapping) or not isinstance(outer.get("iv"), str):
            raise UnmappablePayload('an encrypted body is {"iv": ..., "ciphertext": ...}', field="iv")
        try:
            iv = base64.b64decode(outer["iv"], validate=True)
            sealed = base64.b64decode(str(outer.get("ciphertext", "")), validate=True)
        except (binascii.Error, ValueError):
            raise UnmappablePayload("not base64", field="ciphertext") from None
        if not 8 <= len(iv) <= 128:
            raise UnmappablePayload("an AES-GCM nonce has 8 to 128 bytes (12 is usual)", field="iv")
        try:
            plain = AESGCM(key).decrypt(iv, sealed, None)
        except InvalidTag:
            raise UnmappablePayload(
                "the ciphertext does not decrypt with the connection's key", field="ciphertext"
            ) from None
        try:
            return json.loads(plain)
        except (UnicodeDecodeError, ValueError, RecursionError):
            raise UnmappablePayload("the decrypted body is not JSON", field="ciphertext") from None

    def check_settings(self, settings: Mapping[str, Any]) -> None:
        compile_mapping(settings.get("mapping"))
        _key(settings)
        if settings.get("signature_encoding", "hex") not in _ENCODINGS:
            raise UnmappablePayload("hex or base64", field="settings.signature_encoding")
        header = settings.get("signature_header", DEFAULT_SIGNATURE_HEADER)
        if not isinstance(header, str) or not header.strip() or not header.isascii():
            raise UnmappablePayload("an HTTP header name", field="settings.signature_header")
        if header.lower().startswith("x-doorstep-"):
            raise UnmappablePayload(
                "X-Doorstep-* headers are removed at the edge; choose another",
                field="settings.signature_header",
            )

    def map_order(self, payload: Any, *, settings: Mapping[str, Any]) -> MappedOrder:
        return map_with(compile_mapping(settings.get("mapping")), payload, settings)
