"""Jobs over the API on the all-in-one platform: orders become jobs, drivers carry them, orders follow."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import httpx
from tests.dispatch.integration.test_fleet_api import (
    BOTH_DATABASES,
    a_driver,
    dispatch_events,
    dispatcher,
    platform,
)
from tests.orders.integration.test_orders_api import assert_problem, move, order, place
from tests.platform import RunningPlatform, Tenant

from doorstep.dispatch.domain.job_commands import ExpireOffers, TrackOrder
from doorstep.kernel.clock import utcnow

__all__ = ["platform"]


async def on_duty(platform: RunningPlatform, me: dict[str, str]) -> None:
    response = await platform.client.post(
        "/v1/dispatch/drivers/me/state", json={"state": "available"}, headers=me
    )
    assert response.status_code == 200, response.text


async def accepted_order(platform: RunningPlatform, tenant: Tenant, external_id: str = "A-1") -> Any:
    placed = await place(platform, tenant, order(external_id))
    assert (await move(platform, tenant, placed["id"], "accepted")).status_code == 200
    await platform.settle()
    return placed


async def job_of(platform: RunningPlatform, headers: dict[str, str], order_id: str) -> Any:
    listed = await platform.client.get("/v1/dispatch/jobs", params={"order_id": order_id}, headers=headers)
    assert listed.status_code == 200, listed.text
    [job] = listed.json()["items"]
    return job


async def ok(response: httpx.Response) -> Any:
    assert response.status_code == 200, response.text
    return response.json()


async def order_status(platform: RunningPlatform, tenant: Tenant, order_id: str) -> tuple[str, list[str]]:
    await platform.settle()
    read = await ok(await platform.client.get(f"/v1/orders/{order_id}", headers=tenant.headers))
    return read["status"], [change["actor"] for change in read["status_history"]]


async def driver_state(platform: RunningPlatform, headers: dict[str, str], driver_id: str) -> str:
    read = await ok(await platform.client.get(f"/v1/dispatch/drivers/{driver_id}", headers=headers))
    state: str = read["state"]
    return state


@BOTH_DATABASES
async def test_an_accepted_order_is_assigned_picked_up_and_delivered(platform: RunningPlatform) -> None:
    # Given a driver on duty and an order the merchant accepted
    tenant = await platform.new_tenant()
    headers = await dispatcher(platform, tenant)
    driver, me = await a_driver(platform, tenant, headers)
    await on_duty(platform, me)
    placed = await accepted_order(platform, tenant)

    # Then it became one unassigned job with the order's stops
    job = await job_of(platform, headers, placed["id"])
    assert (job["status"], job["driver_id"]) == ("unassigned", None)
    assert (job["pickup"]["lat"], job["pickup"]["lon"], job["dropoff"]["address"]) == (
        52.5,
        13.41,
        "Skalitzer Straße 3, Berlin",
    )
    path = f"/v1/dispatch/jobs/{job['id']}"

    # When a dispatcher assigns it, pinned
    assigned = await ok(
        await platform.client.post(f"{path}/assign", json={"driver_id": driver["id"]}, headers=headers)
    )
    # Then the job has the driver, who is on a job, and the driver sees it among theirs
    assert (assigned["status"], assigned["driver_id"], assigned["pinned"]) == ("assigned", driver["id"], True)
    assert await driver_state(platform, headers, driver["id"]) == "on_job"
    mine = await ok(await platform.client.get("/v1/dispatch/drivers/me/jobs", headers=me))
    assert [j["id"] for j in mine["items"]] == [job["id"]]

    # When the driver arrives at the pickup and picks the goods up
    await ok(await platform.client.post(f"{path}/arrive", json={"stop": "pickup"}, headers=me))
    picked = await ok(await platform.client.post(f"{path}/pick-up", headers=me))
    assert (picked["status"], picked["pickup"]["status"]) == ("picked_up", "done")
    # Then the accepted order went through ready_for_pickup to picked_up, moved by the driver
    status, actors = await order_status(platform, tenant, placed["id"])
    assert status == "picked_up"
    assert actors[-2:] == [f"dispatch:driver:{driver['id']}"] * 2

    # When they arrive at the drop-off and deliver
    await ok(await platform.client.post(f"{path}/arrive", json={"stop": "dropoff"}, headers=me))
    delivered = await ok(await platform.client.post(f"{path}/deliver", json={}, headers=me))

    # Then the job is delivered, the order too, and the driver is available again
    assert (delivered["status"], delivered["dropoff"]["status"]) == ("delivered", "done")
    assert [h["to_status"] for h in delivered["history"]] == [
        "unassigned",
        "assigned",
        "arrived_at_pickup",
        "picked_up",
        "arrived_at_dropoff",
        "delivered",
    ]
    assert (await order_status(platform, tenant, placed["id"]))[0] == "delivered"
    assert await driver_state(platform, headers, driver["id"]) == "available"
    published = await dispatch_events(platform, "doorstep.dispatch.job.delivered.v1")
    assert [(e["job_id"], e["order_status"], e["pin_checked"]) for e in published] == [
        (job["id"], "delivered", False)
    ]


async def test_a_failed_delivery_returns_and_the_order_is_returned(platform: RunningPlatform) -> None:
    # Given a job picked up and at the drop-off
    tenant = await platform.new_tenant()
    headers = await dispatcher(platform, tenant)
    driver, me = await a_driver(platform, tenant, headers)
    await on_duty(platform, me)
    placed = await accepted_order(platform, tenant)
    path = f"/v1/dispatch/jobs/{(await job_of(platform, headers, placed['id']))['id']}"
    await ok(await platform.client.post(f"{path}/assign", json={"driver_id": driver["id"]}, headers=headers))
    await ok(await platform.client.post(f"{path}/arrive", json={"stop": "pickup"}, headers=me))
    await ok(await platform.client.post(f"{path}/pick-up", headers=me))
    await ok(await platform.client.post(f"{path}/arrive", json={"stop": "dropoff"}, headers=me))

    # When the customer is absent
    failed = await ok(
        await platform.client.post(f"{path}/fail", json={"reason": "customer_absent"}, headers=me)
    )

    # Then the job is on its way back and the order failed delivery
    assert (failed["status"], failed["failure"], failed["return_task"]["status"]) == (
        "returning",
        "customer_absent",
        "pending",
    )
    assert (await order_status(platform, tenant, placed["id"]))[0] == "failed_delivery"
    assert await driver_state(platform, headers, driver["id"]) == "on_job"

    # When the goods are back at the pickup
    returned = await ok(await platform.client.post(f"{path}/return/complete", headers=me))

    # Then the job and the order are returned, and the driver is free
    assert (returned["status"], returned["return_task"]["status"]) == ("returned", "done")
    assert (await order_status(platform, tenant, placed["id"]))[0] == "returned"
    assert await driver_state(platform, headers, driver["id"]) == "available"


async def test_a_wrong_pin_is_refused_naming_the_field(platform: RunningPlatform) -> None:
    # Given a job that asks for a PIN, at the drop-off
    tenant = await platform.new_tenant()
    headers = await dispatcher(platform, tenant)
    driver, me = await a_driver(platform, tenant, headers)
    await on_duty(platform, me)
    placed = await accepted_order(platform, tenant)
    path = f"/v1/dispatch/jobs/{(await job_of(platform, headers, placed['id']))['id']}"
    required = await ok(
        await platform.client.put(f"{path}/requirements", json={"pin": "4711"}, headers=headers)
    )
    assert required["requirements"]["pin"] is True
    await ok(await platform.client.post(f"{path}/assign", json={"driver_id": driver["id"]}, headers=headers))
    for step, body in (("arrive", {"stop": "pickup"}), ("pick-up", None), ("arrive", {"stop": "dropoff"})):
        await ok(await platform.client.post(f"{path}/{step}", json=body, headers=me))

    # When the driver enters a wrong PIN
    wrong = await platform.client.post(f"{path}/deliver", json={"pin": "1234"}, headers=me)

    # Then it is a 422 naming the PIN, and the job still waits at the drop-off
    problem = assert_problem(wrong, 422, "wrong-delivery-pin")
    assert [error["field"] for error in problem["errors"]] == ["proof.pin"]
    assert (await ok(await platform.client.get(path, headers=headers)))["status"] == "arrived_at_dropoff"
    # And with the right one it is delivered, the PIN checked but never published
    delivered = await ok(await platform.client.post(f"{path}/deliver", json={"pin": "4711"}, headers=me))
    assert (delivered["status"], delivered["proof"]["pin_ok"]) == ("delivered", True)
    [event] = await dispatch_events(platform, "doorstep.dispatch.job.delivered.v1")
    assert event["pin_checked"] is True
    assert "4711" not in str(event)


async def test_a_driver_does_not_see_or_move_another_drivers_job(platform: RunningPlatform) -> None:
    # Given a job assigned to Ada and another driver, Bea
    tenant = await platform.new_tenant()
    headers = await dispatcher(platform, tenant)
    ada, ada_me = await a_driver(platform, tenant, headers)
    _, bea_me = await a_driver(platform, tenant, headers, email="bea@a.test")
    await on_duty(platform, ada_me)
    placed = await accepted_order(platform, tenant)
    path = f"/v1/dispatch/jobs/{(await job_of(platform, headers, placed['id']))['id']}"
    await ok(await platform.client.post(f"{path}/assign", json={"driver_id": ada["id"]}, headers=headers))

    # When Bea tries to arrive at its pickup
    response = await platform.client.post(f"{path}/arrive", json={"stop": "pickup"}, headers=bea_me)

    # Then there is no such job for her, and her list is empty
    assert_problem(response, 404, "dispatch-job-not-found")
    assert (await ok(await platform.client.get("/v1/dispatch/drivers/me/jobs", headers=bea_me)))[
        "items"
    ] == []


async def test_a_cancelled_order_cancels_its_job_and_frees_the_driver(platform: RunningPlatform) -> None:
    # Given an assigned job
    tenant = await platform.new_tenant()
    headers = await dispatcher(platform, tenant)
    driver, me = await a_driver(platform, tenant, headers)
    await on_duty(platform, me)
    placed = await accepted_order(platform, tenant)
    path = f"/v1/dispatch/jobs/{(await job_of(platform, headers, placed['id']))['id']}"
    await ok(await platform.client.post(f"{path}/assign", json={"driver_id": driver["id"]}, headers=headers))

    # When the order is cancelled
    assert (
        await move(platform, tenant, placed["id"], "cancelled", "customer changed mind")
    ).status_code == 200
    await platform.settle()

    # Then the job is cancelled, the driver available, and the order stays cancelled
    job = await ok(await platform.client.get(path, headers=headers))
    assert (job["status"], job["driver_id"]) == ("cancelled", None)
    assert await driver_state(platform, headers, driver["id"]) == "available"
    assert (await order_status(platform, tenant, placed["id"]))[0] == "cancelled"


async def test_an_order_without_coordinates_becomes_a_job_only_once_located(
    platform: RunningPlatform,
) -> None:
    # Given an accepted order whose drop-off has no coordinates yet, as the orders events tell dispatch
    tenant = await platform.new_tenant()
    headers = await dispatcher(platform, tenant)
    bus = platform.services["dispatch"].bus
    body = order("B-1")
    unlocated = {k: v for k, v in body["dropoff"].items() if k != "location"}
    await bus.handle(
        TrackOrder(
            tenant_id=tenant.tenant_id,
            order_id="o-1",
            status="accepted",
            pickup=body["pickup"],
            dropoff=unlocated,
        )
    )
    assert (await ok(await platform.client.get("/v1/dispatch/jobs", headers=headers)))["items"] == []

    # When the order is updated with the located drop-off
    await bus.handle(
        TrackOrder(
            tenant_id=tenant.tenant_id,
            order_id="o-1",
            status="accepted",
            pickup=body["pickup"],
            dropoff=body["dropoff"],
        )
    )

    # Then it is a job at the located drop-off
    job = await job_of(platform, headers, "o-1")
    assert (job["status"], job["dropoff"]["lat"], job["dropoff"]["lon"]) == ("unassigned", 52.49, 13.43)


async def test_an_offer_declined_by_one_is_accepted_by_another(platform: RunningPlatform) -> None:
    # Given a job offered to Ada and Bea, both on duty
    tenant = await platform.new_tenant()
    headers = await dispatcher(platform, tenant)
    ada, ada_me = await a_driver(platform, tenant, headers)
    bea, bea_me = await a_driver(platform, tenant, headers, email="bea@a.test")
    await on_duty(platform, ada_me)
    await on_duty(platform, bea_me)
    placed = await accepted_order(platform, tenant)
    path = f"/v1/dispatch/jobs/{(await job_of(platform, headers, placed['id']))['id']}"
    offered = await ok(
        await platform.client.post(
            f"{path}/offer", json={"driver_ids": [ada["id"], bea["id"]], "expires_in_s": 60}, headers=headers
        )
    )
    assert [(o["driver_id"], o["status"]) for o in offered["offers"]] == [
        (ada["id"], "open"),
        (bea["id"], "open"),
    ]

    # When Bea declines and Ada accepts
    declined = await ok(await platform.client.post(f"{path}/offer/decline", headers=bea_me))
    assert declined["status"] == "offered"
    accepted = await ok(await platform.client.post(f"{path}/offer/accept", headers=ada_me))

    # Then Ada has the job, unpinned, and is on a job; Bea stays available
    assert (accepted["status"], accepted["driver_id"], accepted["pinned"]) == ("assigned", ada["id"], False)
    assert [o["status"] for o in accepted["offers"]] == ["accepted", "declined"]
    assert await driver_state(platform, headers, ada["id"]) == "on_job"
    assert await driver_state(platform, headers, bea["id"]) == "available"


async def test_an_offer_nobody_answers_times_out_and_the_job_waits_again(platform: RunningPlatform) -> None:
    # Given a job offered to Ada for 30 s
    tenant = await platform.new_tenant()
    headers = await dispatcher(platform, tenant)
    ada, ada_me = await a_driver(platform, tenant, headers)
    await on_duty(platform, ada_me)
    placed = await accepted_order(platform, tenant)
    path = f"/v1/dispatch/jobs/{(await job_of(platform, headers, placed['id']))['id']}"
    body = {"driver_ids": [ada["id"]], "expires_in_s": 30}
    await ok(await platform.client.post(f"{path}/offer", json=body, headers=headers))
    bus = platform.services["dispatch"].bus

    # When the clock stands 10 s later, nothing is due; at 31 s later the offer expires
    assert await bus.handle(ExpireOffers(now=utcnow() + timedelta(seconds=10))) == 0
    assert await bus.handle(ExpireOffers(now=utcnow() + timedelta(seconds=31))) == 1

    # Then the job waits again, Ada is not offered it again, and accepting now is refused
    job = await ok(await platform.client.get(path, headers=headers))
    assert (job["status"], [o["status"] for o in job["offers"]]) == ("unassigned", ["expired"])
    assert_problem(
        await platform.client.post(f"{path}/offer/accept", headers=ada_me), 409, "job-offer-not-open"
    )
    again = await platform.client.post(f"{path}/offer", json=body, headers=headers)
    assert_problem(again, 409, "driver-excluded-from-job")


async def test_the_running_service_times_out_an_unanswered_offer_by_itself(platform: RunningPlatform) -> None:
    # Given a job offered to Ada for the shortest time allowed, 5 s, and nobody answering
    tenant = await platform.new_tenant()
    headers = await dispatcher(platform, tenant)
    ada, ada_me = await a_driver(platform, tenant, headers)
    await on_duty(platform, ada_me)
    placed = await accepted_order(platform, tenant)
    path = f"/v1/dispatch/jobs/{(await job_of(platform, headers, placed['id']))['id']}"
    await ok(
        await platform.client.post(
            f"{path}/offer", json={"driver_ids": [ada["id"]], "expires_in_s": 5}, headers=headers
        )
    )

    # When the service's offer expiry has had time to sweep (every 2 s), waiting at most 30 s
    job: dict[str, Any] = {}
    for _ in range(60):
        job = await ok(await platform.client.get(path, headers=headers))
        if job["status"] == "unassigned":
            break
        await asyncio.sleep(0.5)

    # Then the offer expired on its own and the job waits for the next driver
    assert (job["status"], [o["status"] for o in job["offers"]]) == ("unassigned", ["expired"])
