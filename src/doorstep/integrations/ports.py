"""What the integrations service needs from the outside world."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from doorstep.contracts.orders import OrderDraft


@dataclass(frozen=True, slots=True)
class MappedOrder:
    external_id: str
    draft: OrderDraft


class SignatureInvalid(Exception):
    """The delivery was not signed with the connection's secret (or not signed at all)."""


class UnmappablePayload(Exception):
    """The payload is authentic but cannot become an order; `field` names what is wrong."""

    def __init__(self, reason: str, *, field: str | None = None) -> None:
        super().__init__(reason if field is None else f"{field}: {reason}")
        self.reason = reason
        self.field = field


class PlatformAdapter(Protocol):
    """One partner platform's inbound webhooks: authenticity, redelivery identity and mapping."""

    name: str

    def verify(self, *, headers: Mapping[str, str], body: bytes, secret: str) -> None:
        """Raise `SignatureInvalid` unless the body is signed with `secret`. Header names are lower-case."""

    def delivery_id(self, *, headers: Mapping[str, str], body: bytes) -> str | None:
        """The platform's id for this delivery, equal across its redeliveries, when it sends one."""

    def map_order(self, payload: Any, *, settings: Mapping[str, Any]) -> MappedOrder:
        """Map a decoded JSON payload; `settings` is the connection's configuration (e.g. its pickup stop).

        Raise `UnmappablePayload` naming the field when the payload cannot become an order.
        """
