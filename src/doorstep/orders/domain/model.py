"""The order aggregate: its lifecycle, its totals, and what may still change."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from doorstep.contracts.orders import (
    MAX_ORDER_TOTAL,
    Customer,
    Item,
    OrderCreated,
    OrderDraft,
    OrderSnapshot,
    OrderStatus,
    OrderStatusChanged,
    OrderUpdated,
    Payment,
    Stop,
    Totals,
)
from doorstep.kernel.aggregate import Aggregate
from doorstep.orders.domain.errors import (
    IllegalStatusTransition,
    OrderFieldLocked,
    OrderNotLocated,
    OrderTotalTooLarge,
    StopWithoutLocation,
)

S = OrderStatus

TRANSITIONS: dict[OrderStatus, frozenset[OrderStatus]] = {
    # Waits for coordinates of a stop; becomes placed once both stops have them (see `Order.amend`).
    S.NEEDS_ATTENTION: frozenset({S.PLACED, S.REJECTED, S.CANCELLED}),
    S.PLACED: frozenset({S.ACCEPTED, S.REJECTED, S.CANCELLED}),
    S.ACCEPTED: frozenset({S.PREPARING, S.READY_FOR_PICKUP, S.CANCELLED}),
    S.PREPARING: frozenset({S.READY_FOR_PICKUP, S.CANCELLED}),
    S.READY_FOR_PICKUP: frozenset({S.PICKED_UP, S.CANCELLED}),
    S.PICKED_UP: frozenset({S.DELIVERED, S.FAILED_DELIVERY}),
    S.FAILED_DELIVERY: frozenset({S.RETURNED}),
    S.DELIVERED: frozenset(),
    S.REJECTED: frozenset(),
    S.CANCELLED: frozenset(),
    S.RETURNED: frozenset(),
}

_BEFORE_PICKUP = frozenset({S.NEEDS_ATTENTION, S.PLACED, S.ACCEPTED, S.PREPARING, S.READY_FOR_PICKUP})
_BEFORE_PREPARATION = frozenset({S.NEEDS_ATTENTION, S.PLACED, S.ACCEPTED})
_OPEN = frozenset(status for status, moves in TRANSITIONS.items() if moves)

# Which statuses still allow each editable field to change.
EDITABLE_WHILE: dict[str, frozenset[OrderStatus]] = {
    "merchant_id": _BEFORE_PREPARATION,
    "pickup": _BEFORE_PICKUP,
    "items": _BEFORE_PREPARATION,
    "delivery_fee": _BEFORE_PREPARATION,
    "dropoff": _BEFORE_PICKUP,
    "customer": _BEFORE_PICKUP,
    "tip": _OPEN,
    "notes": _OPEN,
    "payment": _OPEN,
}


STOPS = ("pickup", "dropoff")
LOCATED_REASON = "both stops have coordinates"


def unlocated_reason(stops: list[str]) -> str:
    return f"no coordinates for the {' and '.join(stops)} address; set them with PATCH or retry geocoding"


@dataclass(frozen=True, slots=True)
class StatusChange:
    from_status: OrderStatus | None
    to_status: OrderStatus
    actor: str
    reason: str | None
    at: datetime


@dataclass(kw_only=True)
class Order(Aggregate):
    id: str
    source: str
    external_id: str | None
    merchant_id: str | None
    pickup: Stop
    dropoff: Stop
    customer: Customer
    items: list[Item]
    currency: str
    tip: int
    delivery_fee: int
    notes: str | None
    payment: Payment
    status: OrderStatus
    created_at: datetime
    updated_at: datetime
    version: int = 1
    history: list[StatusChange] = field(default_factory=list)

    @classmethod
    def place(
        cls, *, id: str, tenant_id: str, source: str, draft: OrderDraft, actor: str, now: datetime
    ) -> Order:
        """A new order: `placed`, or `needs_attention` while a stop has no coordinates."""
        unlocated = [stop for stop in STOPS if getattr(draft, stop).location is None]
        status = S.NEEDS_ATTENTION if unlocated else S.PLACED
        order = cls(
            id=id,
            tenant_id=tenant_id,
            source=source,
            external_id=draft.external_id,
            merchant_id=draft.merchant_id,
            pickup=draft.pickup,
            dropoff=draft.dropoff,
            customer=draft.customer,
            items=list(draft.items),
            currency=draft.currency,
            tip=draft.tip,
            delivery_fee=draft.delivery_fee,
            notes=draft.notes,
            payment=draft.payment,
            status=status,
            created_at=now,
            updated_at=now,
            history=[
                StatusChange(None, status, actor, unlocated_reason(unlocated) if unlocated else None, now)
            ],
        )
        order.record(OrderCreated(order=order.snapshot()))
        return order

    @property
    def totals(self) -> Totals:
        return Totals.of(self.items, delivery_fee=self.delivery_fee, tip=self.tip)

    @property
    def allowed_statuses(self) -> frozenset[OrderStatus]:
        return TRANSITIONS[self.status]

    @property
    def unlocated_stops(self) -> list[str]:
        return [stop for stop in STOPS if getattr(self, stop).location is None]

    def move_to(self, target: OrderStatus, *, actor: str, reason: str | None, now: datetime) -> None:
        if target not in TRANSITIONS[self.status]:
            raise IllegalStatusTransition(self.status, target, TRANSITIONS[self.status])
        if target is S.PLACED and self.unlocated_stops:
            raise OrderNotLocated(self.unlocated_stops)
        change = StatusChange(self.status, target, actor, reason, now)
        self.status = target
        self.updated_at = now
        self.history.append(change)
        self.record(
            OrderStatusChanged(
                order_id=self.id,
                external_id=self.external_id,
                source=self.source,
                from_status=change.from_status or target,
                to_status=target,
                reason=reason,
                actor=actor,
                changed_at=now,
            )
        )

    def amend(self, changes: dict[str, Any], *, now: datetime, actor: str = "system") -> list[str]:
        """Apply the changed fields that this status still allows; refuse the whole change otherwise.

        A stop sent without coordinates keeps the ones it has while its address stays the same. An order
        in `needs_attention` whose stops all have coordinates afterwards becomes `placed`.
        """
        changes = {name: self._keep_location(name, value) for name, value in changes.items()}
        changed = [name for name, value in changes.items() if getattr(self, name) != value]
        for name in changed:
            if name not in EDITABLE_WHILE or self.status not in EDITABLE_WHILE[name]:
                raise OrderFieldLocked(name, self.status)
        if not changed:
            return []
        for name in changed:
            if name in STOPS and changes[name].location is None and self.status is not S.NEEDS_ATTENTION:
                raise StopWithoutLocation(name, self.status)
        before = {name: getattr(self, name) for name in changed}
        for name in changed:
            setattr(self, name, changes[name])
        if self.totals.total > MAX_ORDER_TOTAL:
            for name, value in before.items():
                setattr(self, name, value)
            raise OrderTotalTooLarge(
                f"with this change the total would exceed {MAX_ORDER_TOTAL} minor units", field=changed[0]
            )
        self.updated_at = now
        self.record(OrderUpdated(changed_fields=changed, order=self.snapshot()))
        if self.status is S.NEEDS_ATTENTION and not self.unlocated_stops:
            self.move_to(S.PLACED, actor=actor, reason=LOCATED_REASON, now=now)
        return changed

    def _keep_location(self, name: str, value: Any) -> Any:
        current = getattr(self, name, None)
        if (
            name in STOPS
            and isinstance(value, Stop)
            and isinstance(current, Stop)
            and value.location is None
            and current.location is not None
            and value.address == current.address
        ):
            return value.model_copy(update={"location": current.location})
        return value

    def snapshot(self) -> OrderSnapshot:
        return OrderSnapshot(
            id=self.id,
            source=self.source,
            status=self.status,
            external_id=self.external_id,
            merchant_id=self.merchant_id,
            pickup=self.pickup,
            dropoff=self.dropoff,
            customer=self.customer,
            items=self.items,
            currency=self.currency,
            tip=self.tip,
            delivery_fee=self.delivery_fee,
            notes=self.notes,
            payment=self.payment,
            totals=self.totals,
            created_at=self.created_at,
            updated_at=self.updated_at,
        )

    def apply_platform_change(
        self, draft: OrderDraft, *, cancel: bool, actor: str, reason: str, now: datetime
    ) -> PlatformChangeOutcome:
        """Take what a platform says the order now is: its editable fields where this status still
        allows them (a locked field is skipped, not refused), then its cancellation where allowed."""
        wanted = {name: getattr(draft, name) for name in PLATFORM_FIELDS}
        wanted["items"] = list(draft.items)
        for stop in STOPS:
            # A platform that sends no coordinates for the address already here keeps the ones we have.
            current, sent = getattr(self, stop), wanted[stop]
            if sent.location is None and current.location is not None and sent.address == current.address:
                wanted[stop] = sent.model_copy(update={"location": current.location})
        differing = [name for name, value in wanted.items() if getattr(self, name) != value]
        allowed = [
            name
            for name in differing
            if self.status in EDITABLE_WHILE[name]
            # A new address nobody could locate would take the coordinates away from a located order.
            and not (name in STOPS and wanted[name].location is None and self.status is not S.NEEDS_ATTENTION)
        ]
        skipped = [name for name in differing if name not in allowed]
        changed: list[str] = []
        if allowed:
            try:
                changed = self.amend({name: wanted[name] for name in allowed}, now=now)
            except OrderTotalTooLarge:
                skipped, changed = differing, []
        cancelled = False
        cancel_refused: str | None = None
        if cancel and self.status is not S.CANCELLED:
            if S.CANCELLED in self.allowed_statuses:
                self.move_to(S.CANCELLED, actor=actor, reason=reason, now=now)
                cancelled = True
            else:
                cancel_refused = f"an order that is {self.status.value} can no longer be cancelled"
        return PlatformChangeOutcome(
            changed=changed, skipped=skipped, cancelled=cancelled, cancel_refused=cancel_refused
        )


# What a platform's later snapshot of an order may change (its currency and ids never change).
PLATFORM_FIELDS = (
    "merchant_id",
    "pickup",
    "dropoff",
    "customer",
    "items",
    "delivery_fee",
    "tip",
    "notes",
    "payment",
)


@dataclass(frozen=True, slots=True)
class PlatformChangeOutcome:
    changed: list[str]
    skipped: list[str]
    cancelled: bool
    cancel_refused: str | None
