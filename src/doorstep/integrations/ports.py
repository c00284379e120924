"""What the integrations service needs from the outside world."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol, runtime_checkable

from doorstep.contracts.orders import OrderDraft


class OrderChange(StrEnum):
    PLACED = "placed"
    UPDATED = "updated"
    CANCELLED = "cancelled"


@dataclass(frozen=True, slots=True)
class MappedOrder:
    external_id: str
    draft: OrderDraft
    change: OrderChange = OrderChange.PLACED
    # Orders one platform's changes to one order (Square's version, a modification time in
    # microseconds); None when the platform gives nothing to order them by.
    version: int | None = None


class SignatureInvalid(Exception):
    """The delivery was not signed with the connection's secret (or not signed at all)."""


class UnmappablePayload(Exception):
    """The payload is authentic but cannot become an order; `field` names what is wrong."""

    def __init__(self, reason: str, *, field: str | None = None) -> None:
        super().__init__(reason if field is None else f"{field}: {reason}")
        self.reason = reason
        self.field = field


class FetchFailed(Exception):
    """The platform's API did not give what a notification points at (down, refused, not found)."""


@dataclass(frozen=True, slots=True)
class FetchRequest:
    """One call to a platform's API; `url` is absolute (the connection's API base already applied)."""

    method: str
    url: str
    headers: Mapping[str, str] = field(default_factory=dict)
    form: Mapping[str, str] | None = None
    json: Any = None


class PlatformClient(Protocol):
    """Calls partner platforms' APIs; tests point the connection's `api_base_url` at a local server."""

    async def fetch(self, request: FetchRequest) -> Any:
        """The decoded JSON answer of a 2xx; raise `FetchFailed` with the reason otherwise."""


class PlatformAdapter(Protocol):
    """One partner platform's inbound webhooks: authenticity, redelivery identity and mapping."""

    name: str

    def verify(
        self, *, headers: Mapping[str, str], body: bytes, secret: str, settings: Mapping[str, Any]
    ) -> None:
        """Raise `SignatureInvalid` unless the body is signed with `secret`. Header names are lower-case."""

    def delivery_id(self, *, headers: Mapping[str, str], body: bytes) -> str | None:
        """The platform's id for this delivery, equal across its redeliveries, when it sends one."""

    def map_order(self, payload: Any, *, settings: Mapping[str, Any]) -> MappedOrder:
        """Map a decoded JSON payload; `settings` is the connection's configuration (e.g. its pickup stop).

        Raise `UnmappablePayload` naming the field when the payload cannot become an order.
        """


@runtime_checkable
class Pinged(Protocol):
    """A platform that checks a new webhook URL with an unsigned ping that carries nothing to store."""

    def is_ping(self, *, headers: Mapping[str, str], body: bytes) -> bool: ...


@runtime_checkable
class Fetching(Protocol):
    """A platform whose notifications only point at the order: the order is fetched before mapping."""

    async def fetch(
        self, payload: Any, *, settings: Mapping[str, Any], secret: str, client: PlatformClient
    ) -> Any:
        """The payload `map_order` takes (the notification with what was fetched); may raise
        `FetchFailed`, or `UnmappablePayload` when the notification itself is malformed. `secret` is
        the connection's secret (Uber Eats signs with the client secret it also authenticates with)."""


@runtime_checkable
class Decoding(Protocol):
    """A platform whose bodies are not plain JSON (e.g. encrypted): turns the body into the payload."""

    def decode(self, body: bytes, *, settings: Mapping[str, Any]) -> Any:
        """Raise `UnmappablePayload` when the body cannot be decoded."""


@runtime_checkable
class Configurable(Protocol):
    """A platform whose connections need settings: checked when the connection is opened."""

    def check_settings(self, settings: Mapping[str, Any]) -> None:
        """Raise `UnmappablePayload` naming the `settings.<key>` that is missing or wrong."""


@runtime_checkable
class StatusReporting(Protocol):
    """A platform that is told how the orders it sent move on (accepted, delivered, cancelled...)."""

    def reports(self, status: str) -> bool:
        """Whether the platform has anything for this Doorstep order status."""

    def missing_credentials(self, settings: Mapping[str, Any]) -> str | None:
        """The `settings.<key>` a connection lacks to call the platform's API; None when it has them all."""

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
        """Tell the platform; raise `FetchFailed` with the reason when it did not take it."""
