"""Idempotency keys are kept for their retention, then forgotten by the service's housekeeping."""

from datetime import timedelta

from sqlalchemy import select, update
from tests.orders.integration.test_orders_api import order
from tests.platform import RunningPlatform

from doorstep.kernel.clock import utcnow
from doorstep.orders.adapters.tables import idempotency_keys


async def test_housekeeping_forgets_keys_past_their_retention_and_keeps_the_rest(
    platform: RunningPlatform,
) -> None:
    # Given two keyed requests, one of them older than the retention (24 hours by default)
    tenant = await platform.new_tenant()
    for key, external_id in (("old-key", "A-1"), ("new-key", "A-2")):
        response = await platform.client.post(
            "/v1/orders", json=order(external_id), headers={**tenant.headers, "Idempotency-Key": key}
        )
        assert response.status_code == 201
    database = platform.services["orders"].database
    async with database.writer_engine.begin() as connection:
        await connection.execute(
            update(idempotency_keys)
            .where(idempotency_keys.c.key == "old-key")
            .values(created_at=utcnow() - timedelta(hours=25))
        )

    # When the orders service's housekeeping runs
    for task in platform.services["orders"].maintenance:
        await task()

    # Then only the recent key is remembered
    async with database.reader_engine.connect() as connection:
        keys = (await connection.execute(select(idempotency_keys.c.key))).scalars().all()
    assert keys == ["new-key"]
