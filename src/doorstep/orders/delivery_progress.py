"""The order follows its delivery: dispatch's job steps move it, each once, by the domain's rules."""

from __future__ import annotations

import logging

from doorstep.contracts.orders import OrderStatus
from doorstep.kernel.clock import utcnow
from doorstep.orders.adapters.unit_of_work import OrdersUnitOfWork
from doorstep.orders.domain.commands import FollowDelivery
from doorstep.orders.domain.model import TRANSITIONS

log = logging.getLogger(__name__)
S = OrderStatus

# The merchant may not have marked the order ready before the driver took it: picked up says it was.
_VIA = {S.PICKED_UP: (S.READY_FOR_PICKUP,)}


async def follow_delivery(cmd: FollowDelivery, *, uow: OrdersUnitOfWork) -> OrderStatus | None:
    """Move the order as its delivery did; a move it cannot make (cancelled meanwhile) is logged and skipped.

    Returns the order's status afterwards, or None when there is no such order.
    """
    async with uow:
        if await uow.already_handled():
            return None
        order = await uow.orders.get(tenant_id=cmd.tenant_id, order_id=cmd.order_id)
        if order is None:
            log.warning("delivery step %s for unknown order %s skipped", cmd.status, cmd.order_id)
            await uow.commit()
            return None
        path = _path(order.status, cmd.status)
        if path is None:
            log.warning(
                "order %s is %s and cannot become %s: delivery step skipped",
                order.id,
                order.status.value,
                cmd.status.value,
            )
            await uow.commit()
            return order.status
        history_length = len(order.history)
        now = utcnow()
        for status in path:
            order.move_to(status, actor=cmd.actor, reason=cmd.reason, now=now)
        if path:
            await uow.orders.save(order, new_history=order.history[history_length:])
        await uow.commit()
    return order.status


def _path(current: OrderStatus, target: OrderStatus) -> tuple[OrderStatus, ...] | None:
    """The statuses to pass through to reach `target`; () when there already, None when not reachable."""
    if current is target:
        return ()
    if target in TRANSITIONS[current]:
        return (target,)
    for via in _VIA.get(target, ()):
        if via in TRANSITIONS[current] and target in TRANSITIONS[via]:
            return (via, target)
    return None
