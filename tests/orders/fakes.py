"""An in-memory orders unit of work that keeps the real one's promises: staged writes, inbox, outbox."""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from types import TracebackType
from typing import Any, Self

from sqlalchemy.exc import IntegrityError

from doorstep.kernel import context
from doorstep.kernel.messages import CloudEvent, Event
from doorstep.kernel.unit_of_work import audit_entry
from doorstep.orders.domain.errors import OrderChangedConcurrently
from doorstep.orders.domain.model import Order, StatusChange

SOURCE = "/doorstep/orders"

OrderKey = tuple[str, str]
IdempotencyKey = tuple[str, str]


@dataclass(frozen=True, slots=True)
class StoredResponse:
    """A remembered first answer to an Idempotency-Key, shaped like the real table's row."""

    tenant_id: str
    key: str
    request_hash: str
    status_code: int
    response: str
    created_at: datetime


@dataclass
class FakeOrdersStore:
    """What the orders database holds after each commit; shared by every unit of work of one test."""

    orders: dict[OrderKey, Order] = field(default_factory=dict)
    idempotency: dict[IdempotencyKey, StoredResponse] = field(default_factory=dict)
    inbox: set[str] = field(default_factory=set)
    published: list[CloudEvent] = field(default_factory=list)
    # The real unit of work puts audit entries in the outbox beside the events; kept apart here so a
    # test can say which domain events were published and which entries were recorded.
    audited: list[CloudEvent] = field(default_factory=list)
    commits: int = 0

    def order(self, *, tenant_id: str, order_id: str) -> Order:
        """A copy of one stored order, so a test cannot change the store by accident."""
        return _detached(self.orders[(tenant_id, order_id)])

    def orders_of(self, tenant_id: str) -> list[Order]:
        return [_detached(order) for (tenant, _), order in self.orders.items() if tenant == tenant_id]


def _detached(order: Order) -> Order:
    # Stored rows carry no pending events; a loaded aggregate starts with none, as from the database.
    stored = copy.deepcopy(order)
    stored.events = []
    return stored


def _unique_violation(what: str) -> IntegrityError:
    return IntegrityError(f"INSERT {what}", {}, Exception(f"UNIQUE constraint failed: {what}"))


class FakeOrderRepository:
    """Reads see the store plus this transaction's own writes; writes stay staged until commit."""

    def __init__(self, store: FakeOrdersStore) -> None:
        self._store = store
        self.staged: dict[OrderKey, Order] = {}
        self.seen: list[Order] = []

    def _current(self, key: OrderKey) -> Order | None:
        return self.staged.get(key) or self._store.orders.get(key)

    def _visible(self) -> dict[OrderKey, Order]:
        return {**self._store.orders, **self.staged}

    async def add(self, order: Order) -> None:
        await self.add_many([order])

    async def add_many(self, new_orders: Sequence[Order]) -> None:
        visible = self._visible()
        taken = {
            (order.tenant_id, order.source, order.external_id)
            for order in visible.values()
            if order.external_id is not None
        }
        for order in new_orders:
            key = (order.tenant_id, order.id)
            if key in visible:
                raise _unique_violation("orders.tenant_id, orders.id")
            if order.external_id is not None:
                natural_key = (order.tenant_id, order.source, order.external_id)
                if natural_key in taken:
                    raise _unique_violation("orders.tenant_id, orders.source, orders.external_id")
                taken.add(natural_key)
            visible[key] = order
        for order in new_orders:
            self.staged[(order.tenant_id, order.id)] = _detached(order)
        self.seen.extend(new_orders)

    async def get(self, *, tenant_id: str, order_id: str) -> Order | None:
        current = self._current((tenant_id, order_id))
        if current is None:
            return None
        order = _detached(current)
        self.seen.append(order)
        return order

    async def find_by_external_id(self, *, tenant_id: str, source: str, external_id: str) -> Order | None:
        for order in self._visible().values():
            if (order.tenant_id, order.source, order.external_id) == (tenant_id, source, external_id):
                return _detached(order)
        return None

    async def existing_external_ids(
        self, *, tenant_id: str, source: str, external_ids: Iterable[str]
    ) -> set[str]:
        wanted = set(external_ids)
        return {
            order.external_id
            for order in self._visible().values()
            if order.tenant_id == tenant_id
            and order.source == source
            and order.external_id is not None
            and order.external_id in wanted
        }

    async def save(self, order: Order, *, new_history: Sequence[StatusChange] = ()) -> None:
        key = (order.tenant_id, order.id)
        current = self._current(key)
        if current is None or current.version != order.version:
            raise OrderChangedConcurrently(order.id)
        stored = _detached(order)
        # Like the real table, history grows only by the changes the caller hands in.
        stored.history = [*current.history, *new_history]
        stored.version = order.version + 1
        self.staged[key] = stored
        order.version += 1


class FakeIdempotencyStore:
    def __init__(self, store: FakeOrdersStore) -> None:
        self._store = store
        self.staged: dict[IdempotencyKey, StoredResponse] = {}

    async def find(self, *, tenant_id: str, key: str) -> StoredResponse | None:
        return self.staged.get((tenant_id, key)) or self._store.idempotency.get((tenant_id, key))

    async def remember(
        self, *, tenant_id: str, key: str, request_hash: str, status_code: int, response: str, at: datetime
    ) -> None:
        if await self.find(tenant_id=tenant_id, key=key) is not None:
            raise _unique_violation("idempotency_keys.tenant_id, idempotency_keys.key")
        self.staged[(tenant_id, key)] = StoredResponse(
            tenant_id=tenant_id,
            key=key,
            request_hash=request_hash,
            status_code=status_code,
            response=response,
            created_at=at,
        )


class FakeOrdersUnitOfWork:
    """Same surface as `OrdersUnitOfWork`; nothing reaches the store unless `commit()` is called."""

    orders: FakeOrderRepository
    idempotency: FakeIdempotencyStore

    def __init__(self, store: FakeOrdersStore, causing_message: CloudEvent | None = None) -> None:
        self.store = store
        self.causing_message = causing_message
        self.committed = False
        self._pending: list[CloudEvent] = []
        self._pending_audit: list[CloudEvent] = []
        self._open = False

    async def __aenter__(self) -> Self:
        # Entered afresh each time, as the handlers retry in the same unit of work after a conflict.
        self.orders = FakeOrderRepository(self.store)
        self.idempotency = FakeIdempotencyStore(self.store)
        self._pending = []
        self._pending_audit = []
        self._open = True
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._discard()
        self._open = False

    def _require_open(self) -> None:
        if not self._open:
            raise RuntimeError("the unit of work is not open: use `async with uow:`")

    def _discard(self) -> None:
        self._pending = []
        self._pending_audit = []
        self.orders.staged = {}
        self.idempotency.staged = {}

    def emit(self, event: Event, *, tenant_id: str) -> CloudEvent:
        envelope = self._wrap(event, tenant_id=tenant_id)
        self._pending.append(envelope)
        return envelope

    def audit(
        self,
        *,
        tenant_id: str,
        actor: str,
        action: str,
        object_type: str,
        object_id: str,
        before: Mapping[str, Any] | None,
        after: Mapping[str, Any] | None,
    ) -> None:
        self._require_open()
        causing = self.causing_message
        entry = audit_entry(
            service="orders",
            actor=actor,
            action=action,
            object_type=object_type,
            object_id=object_id,
            before=before,
            after=after,
            request_id=context.correlation_id.get() or (causing.correlationid if causing else None),
        )
        self._pending_audit.append(self._wrap(entry, tenant_id=tenant_id))

    def _wrap(self, event: Event, *, tenant_id: str) -> CloudEvent:
        causing = self.causing_message
        return CloudEvent.wrap(
            event,
            source=SOURCE,
            tenant_id=tenant_id,
            correlation_id=context.correlation_id.get() or (causing.correlationid if causing else None),
            causation_id=causing.id if causing else context.causation_id.get(),
        )

    async def already_handled(self) -> bool:
        self._require_open()
        return self.causing_message is not None and self.causing_message.id in self.store.inbox

    async def commit(self) -> list[CloudEvent]:
        self._require_open()
        for aggregate in self.orders.seen:
            while aggregate.events:
                self.emit(aggregate.events.pop(0), tenant_id=aggregate.tenant_id)
        if self.causing_message is not None:
            if self.causing_message.id in self.store.inbox:
                raise _unique_violation("inbox.message_id")
            self.store.inbox.add(self.causing_message.id)
        self.store.orders.update(self.orders.staged)
        self.store.idempotency.update(self.idempotency.staged)
        published = self._pending
        self.store.published.extend(published)
        self.store.audited.extend(self._pending_audit)
        self.store.commits += 1
        self.committed = True
        self._discard()
        return published

    async def rollback(self) -> None:
        self._require_open()
        self._discard()
