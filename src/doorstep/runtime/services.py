"""Which services exist and how to build them; the composition root may import every service."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from doorstep.dispatch import bootstrap as dispatch
from doorstep.dispatch import consumers as dispatch_consumers
from doorstep.identity import audit as identity_audit
from doorstep.identity import bootstrap as identity
from doorstep.identity import tenant_notices as identity_tenant_notices
from doorstep.identity import ticket_notices as identity_ticket_notices
from doorstep.infra.memory_broker import MemoryBroker
from doorstep.infra.migrations import upgrade
from doorstep.infra.rabbitmq import RabbitMQBroker
from doorstep.infra.service import Service
from doorstep.infra.shared import Shared, make_shared
from doorstep.integrations import bootstrap as integrations
from doorstep.integrations import consumers as integrations_consumers
from doorstep.kernel.broker import Broker
from doorstep.kernel.settings import SERVICES, Settings
from doorstep.orders import bootstrap as orders
from doorstep.orders import consumers as orders_consumers

BUILDERS: dict[str, Callable[[Settings, Shared], Service]] = {
    identity.NAME: identity.build,
    orders.NAME: orders.build,
    integrations.NAME: integrations.build,
    dispatch.NAME: dispatch.build,
}
assert tuple(BUILDERS) == SERVICES
# Every consumer's queue and bindings, declared by every process that touches the broker: an event
# published before its consumer ever started still finds its queue and waits there.
TOPOLOGY: dict[str, tuple[str, ...]] = {
    identity.NAME: (
        *identity_audit.PATTERNS,
        *identity_tenant_notices.PATTERNS,
        *identity_ticket_notices.PATTERNS,
    ),
    orders.NAME: orders_consumers.PATTERNS,
    integrations.NAME: integrations_consumers.PATTERNS,
    dispatch.NAME: dispatch_consumers.PATTERNS,
}


def build_services(
    settings: Settings, names: Sequence[str] = SERVICES, shared: Shared | None = None
) -> list[Service]:
    """The services, sharing one rate limiter and revocation list (`shared`, made from settings if not given)."""
    shared = shared or make_shared(settings)
    return [BUILDERS[name](settings, shared) for name in names]


def make_broker(settings: Settings) -> Broker:
    url = settings.broker_url
    if url.startswith("memory"):
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        return MemoryBroker(
            dead_letter_url=f"sqlite+aiosqlite:///{settings.data_dir / 'events.db'}",
            delivery_limit=settings.broker_delivery_limit,
        )
    if url.startswith(("amqp://", "amqps://")):
        return RabbitMQBroker(
            url,
            exchange=settings.broker_exchange,
            queue_prefix=settings.broker_queue_prefix,
            delivery_limit=settings.broker_delivery_limit,
            known_consumers=SERVICES,
            topology=TOPOLOGY,
        )
    raise ValueError(f"DOORSTEP_BROKER_URL must be memory:// or amqp://..., not {url!r}")


async def migrate(services: Sequence[Service]) -> None:
    for service in services:
        await upgrade(service.database, service.migrations)
