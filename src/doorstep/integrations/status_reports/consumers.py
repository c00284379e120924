"""Order status changes that go back to the platform the order came from."""

from __future__ import annotations

from collections.abc import Sequence

from doorstep.contracts.orders import OrderStatusChanged
from doorstep.infra.service import Subscription
from doorstep.integrations.status_reports.handlers import StoreStatusReports, reporting_adapter
from doorstep.kernel.bus import MessageBus
from doorstep.kernel.messages import CloudEvent
from doorstep.kernel.unit_of_work import handle_together

PATTERNS = (OrderStatusChanged.event_type,)


def subscription(bus: MessageBus) -> Subscription:
    async def on_status_changed(envelopes: Sequence[CloudEvent]) -> None:
        # Most orders come from no reporting platform: those cost this consumer no transaction.
        wanted = tuple(envelope for envelope in envelopes if _from_reporting_platform(envelope))
        if wanted:
            await bus.handle(StoreStatusReports(events=wanted))

    return Subscription(PATTERNS, handle_together(on_status_changed))


def _from_reporting_platform(envelope: CloudEvent) -> bool:
    source = envelope.data.get("source")
    return isinstance(source, str) and reporting_adapter(source) is not None
