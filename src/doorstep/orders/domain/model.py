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
from doorstep.orders.domain.errors import IllegalStatusTransition, OrderFieldLocked, OrderTotalTooLarge

S = OrderStatus

TRANSITIONS: dict[OrderStatus, frozenset[OrderStatus]] = {
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

_BEFORE_PICKUP = frozenset({S.PLACED, S.ACCEPTED, S.PREPARING, S.READY_FOR_PICKUP})
_BEFORE_PREPARATION = frozenset({S.PLACED, S.ACCEPTED})
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
            status=S.PLACED,
            created_at=now,
            updated_at=now,
            history=[StatusChange(None, S.PLACED, actor, None, now)],
        )
        order.record(OrderCreated(order=order.snapshot()))
        return order

    @property
    def totals(self) -> Totals:
        return Totals.of(self.items, delivery_fee=self.delivery_fee, tip=self.tip)

    @property
    def allowed_statuses(self) -> frozenset[OrderStatus]:
        return TRANSITIONS[self.status]

    def move_to(self, target: OrderStatus, *, actor: str, reason: str | None, now: datetime) -> None:
        if target not in TRANSITIONS[self.status]:
            raise IllegalStatusTransition(self.status, target, TRANSITIONS[self.status])
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

    def amend(self, changes: dict[str, Any], *, now: datetime) -> list[str]:
        """Apply the changed fields that this status still allows; refuse the whole change otherwise."""
        changed = [name for name, value in changes.items() if getattr(self, name) != value]
        for name in changed:
            if name not in EDITABLE_WHILE or self.status not in EDITABLE_WHILE[name]:
                raise OrderFieldLocked(name, self.status)
        if not changed:
            return []
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
        return changed

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
