"""Another tenant's objects do not exist for a caller: every route that takes an id answers 404 for them.

The routes come from the services' routers, so a new endpoint cannot escape: a path parameter without a
factory below, or an operation that takes a body without one below, fails the test by name.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.identity.integration.test_users import PROBLEM_JSON, create_user, signed_in
from tests.integrations.couriers.fake_couriers import doordash_account, fake_couriers
from tests.integrations.couriers.test_couriers_api import REQUEST as COURIER_REQUEST
from tests.integrations.deliveries.test_delivery_api import accepted, quoted, with_rate_card
from tests.integrations.integration.test_json_mapping_api import MAPPING, PICKUP, SAMPLE
from tests.integrations.integration.test_webhooks_api import fixture_bytes, open_connection, send_shopify
from tests.integrations.status_reports.platform_apis import WOO_KEY, WOO_SECRET, platform_apis
from tests.integrations.status_reports.test_status_reports_e2e import moved, woo_connection, woo_order
from tests.orders.integration.test_orders_api import order, place
from tests.platform import LOCAL_NETWORKS, RunningPlatform, Tenant, running_platform, settings_for

from doorstep.kernel.ids import new_id
from doorstep.kernel.permissions import DEFAULT_ROLES, Role
from doorstep.runtime.permission_table import endpoints

PARAMETER = re.compile(r"\{(\w+)\}")


@pytest.fixture
async def platform(tmp_path: Path) -> AsyncIterator[RunningPlatform]:
    """The all-in-one platform; the courier networks and shops of the factories are local servers."""
    # B's one API key calls every route twice in a burst: more than the default burst allows.
    settings = settings_for(tmp_path, webhooks_allowed_networks=LOCAL_NETWORKS, rate_limit_burst=1_000)
    async with running_platform(settings) as running:
        yield running


ADDRESS = {"line1": "Kastanienallee 12", "city": "Berlin", "country": "DE"}


@dataclass(frozen=True)
class Made:
    """An object made in tenant A: the path parameters that address it, and what A's admin sees of it."""

    params: dict[str, str]
    seen: Callable[[], Awaitable[object]]


@dataclass
class TenantA:
    platform: RunningPlatform
    tenant: Tenant
    admin: dict[str, str]
    serial: itertools.count[int] = field(default_factory=itertools.count)
    resources: contextlib.AsyncExitStack = field(default_factory=contextlib.AsyncExitStack)

    def unique(self, prefix: str) -> str:
        return f"{prefix}-{next(self.serial)}"

    async def sees(self, path: str) -> Any:
        response = await self.platform.client.get(path, headers=self.admin)
        assert response.status_code == 200, response.text
        return response.json()

    async def sees_listed(self, path: str, object_id: str) -> Any:
        [item] = [item for item in (await self.sees(path))["items"] if item["id"] == object_id]
        return item


async def an_order(a: TenantA) -> Made:
    placed = await place(a.platform, a.tenant, order(external_id=a.unique("A")))
    return Made({"order_id": placed["id"]}, lambda: a.sees(f"/v1/orders/{placed['id']}"))


async def a_user(a: TenantA) -> Made:
    user_id = await create_user(a.platform, a.tenant, f"{a.unique('dispatcher')}@a.test", ["dispatcher"])
    return Made({"user_id": user_id}, lambda: a.sees(f"/v1/identity/users/{user_id}"))


async def an_address(a: TenantA) -> Made:
    """One of A's admin's own addresses: addresses are only ever the caller's own."""
    response = await a.platform.client.post(
        "/v1/identity/me/addresses", json={**ADDRESS, "label": a.unique("Home")}, headers=a.admin
    )
    assert response.status_code == 201, response.text
    address_id: str = response.json()["id"]
    return Made({"address_id": address_id}, lambda: a.sees_listed("/v1/identity/me/addresses", address_id))


async def an_api_key(a: TenantA) -> Made:
    response = await a.platform.client.post(
        "/v1/identity/api-keys", json={"name": a.unique("key")}, headers=a.admin
    )
    assert response.status_code == 201, response.text
    key: dict[str, Any] = response.json()

    async def seen() -> object:
        # The revocation list lives beside the database: whether the key still works is part of it.
        works = await a.platform.client.get(
            "/v1/identity/me", headers={"Authorization": f"Bearer {key['api_key']}"}
        )
        return await a.sees_listed("/v1/identity/api-keys", key["id"]), works.status_code

    return Made({"api_key_id": key["id"]}, seen)


async def an_inbound_delivery(a: TenantA) -> Made:
    connection = await open_connection(a.platform, a.tenant)
    response = await send_shopify(
        a.platform, connection, fixture_bytes("shopify_orders_create.json"), webhook_id=a.unique("wh")
    )
    assert response.status_code == 202, response.text
    delivery_id: str = response.json()["delivery_id"]
    return Made({"delivery_id": delivery_id}, lambda: a.sees(f"/v1/integrations/inbound/{delivery_id}"))


async def a_webhook_endpoint(a: TenantA) -> Made:
    # `.invalid` never resolves: accepted at registration, and no delivery ever leaves the machine.
    response = await a.platform.client.post(
        "/v1/integrations/webhook-endpoints",
        json={"url": f"https://{a.unique('receiver')}.invalid/hooks", "event_types": ["order.*"]},
        headers=a.admin,
    )
    assert response.status_code == 201, response.text
    endpoint_id: str = response.json()["id"]

    async def seen() -> object:
        # What B could change; its health (failing_since) moves as the worker tries the dead receiver.
        found = await a.sees(f"/v1/integrations/webhook-endpoints/{endpoint_id}")
        return {key: found[key] for key in ("url", "event_types", "description", "enabled", "updated_at")}

    return Made({"endpoint_id": endpoint_id}, seen)


async def a_webhook_message(a: TenantA) -> Made:
    endpoint = await a_webhook_endpoint(a)
    endpoint_id = endpoint.params["endpoint_id"]
    response = await a.platform.client.post(
        f"/v1/integrations/webhook-endpoints/{endpoint_id}/test", headers=a.admin
    )
    assert response.status_code == 202, response.text
    message_id: str = response.json()["id"]

    async def seen() -> object:
        # A's orders made meanwhile add messages of their own, and the worker keeps trying this one.
        listed = await a.sees(f"/v1/integrations/webhook-endpoints/{endpoint_id}/messages")
        return [(m["id"], m["event_type"]) for m in listed["items"] if m["id"] == message_id]

    return Made({"endpoint_id": endpoint_id, "message_id": message_id}, seen)


async def a_ticket(a: TenantA) -> Made:
    placed = await place(a.platform, a.tenant, order(external_id=a.unique("T")))
    response = await a.platform.client.post(
        "/v1/tickets",
        json={"subject_type": "order", "subject_id": placed["id"], "title": a.unique("Ticket")},
        headers=a.admin,
    )
    assert response.status_code == 201, response.text
    ticket_id: str = response.json()["id"]
    return Made({"ticket_id": ticket_id}, lambda: a.sees(f"/v1/tickets/{ticket_id}"))


async def a_mapping_connection(a: TenantA) -> Made:
    connection = await open_connection(
        a.platform, a.tenant, "json_mapping", settings={"pickup": PICKUP, "mapping": MAPPING}
    )
    connection_id: str = connection["connection_id"]

    async def seen() -> object:
        listed = (await a.sees("/v1/integrations/connections"))["items"]
        return [item for item in listed if item["connection_id"] == connection_id]

    return Made({"connection_id": connection_id}, seen)


async def a_courier_account(a: TenantA) -> Made:
    # A local server speaking DoorDash Drive, kept until the platform's test ends with the event loop.
    fake = await a.resources.enter_async_context(fake_couriers())
    response = await a.platform.client.post(
        "/v1/integrations/courier-accounts", json=doordash_account(fake.base_url), headers=a.admin
    )
    assert response.status_code == 201, response.text
    account_id: str = response.json()["id"]

    async def seen() -> object:
        listed = (await a.sees("/v1/integrations/courier-accounts"))["items"]
        return [item for item in listed if item["id"] == account_id]

    return Made({"account_id": account_id}, seen)


async def a_courier_delivery(a: TenantA) -> Made:
    account = await a_courier_account(a)
    response = await a.platform.client.post(
        "/v1/integrations/courier-deliveries",
        json={
            "account_id": account.params["account_id"],
            "order_id": a.unique("O"),
            "request": COURIER_REQUEST,
        },
        headers=a.admin,
    )
    assert response.status_code == 201, response.text
    delivery_id: str = response.json()["id"]
    return Made(
        {"courier_delivery_id": delivery_id},
        lambda: a.sees(f"/v1/integrations/courier-deliveries/{delivery_id}"),
    )


async def a_status_report(a: TenantA) -> Made:
    # A local shop takes the report, so that A can retry it (a report still being sent cannot be).
    shop = await a.resources.enter_async_context(platform_apis())
    settings = {
        "pickup": PICKUP,
        "api_base_url": shop.base_url,
        "consumer_key": WOO_KEY,
        "consumer_secret": WOO_SECRET,
    }
    connection = await woo_connection(a.platform, a.tenant, settings)
    order_id = await woo_order(a.platform, connection, 900 + next(a.serial))
    await moved(a.platform, a.tenant, order_id, "accepted")
    listing = f"/v1/integrations/status-reports?order_id={order_id}"
    reporter = a.platform.app.state.status_reporter
    for _ in range(200):  # the running reporter may have taken it already: wait for it to be sent
        await reporter.run_once()
        [report] = (await a.sees(listing))["items"]
        if report["status"] == "sent":
            break
        await asyncio.sleep(0.02)
    assert report["status"] == "sent", report
    report_id: str = report["id"]

    async def seen() -> object:
        return [(r["id"], r["order_status"], r["external_id"]) for r in (await a.sees(listing))["items"]]

    return Made({"report_id": report_id}, seen)


async def a_delivery_quote(a: TenantA) -> Made:
    await with_rate_card(a.platform, a.admin)
    quote_id: str = (await quoted(a.platform, a.tenant, external_delivery_id=a.unique("P")))["id"]
    return Made({"quote_id": quote_id}, lambda: a.sees(f"/v1/deliveries/quotes/{quote_id}"))


async def an_api_delivery(a: TenantA) -> Made:
    await with_rate_card(a.platform, a.admin)
    quote = await quoted(a.platform, a.tenant, external_delivery_id=a.unique("P"))
    delivery_id: str = (await accepted(a.platform, a.tenant, quote["id"]))["id"]

    async def seen() -> object:
        # Its status follows the order, which the relay places meanwhile; what B could change is the rest.
        found = await a.sees(f"/v1/deliveries/{delivery_id}")
        return {key: found[key] for key in ("quote_id", "external_delivery_id", "cancellation_requested_at")}

    return Made({"api_delivery_id": delivery_id}, seen)


async def a_driver(a: TenantA) -> Made:
    response = await a.platform.client.post(
        "/v1/dispatch/drivers",
        json={"user_id": a.unique("user"), "name": "Ada", "vehicle_type": "bicycle", "capacity": 2},
        headers=a.admin,
    )
    assert response.status_code == 201, response.text
    driver_id: str = response.json()["id"]
    return Made({"driver_id": driver_id}, lambda: a.sees(f"/v1/dispatch/drivers/{driver_id}"))


async def a_fleet_object(a: TenantA, kind: str, body: dict[str, Any]) -> Made:
    response = await a.platform.client.post(f"/v1/dispatch/{kind}s", json=body, headers=a.admin)
    assert response.status_code == 201, response.text
    object_id: str = response.json()["id"]
    return Made({f"{kind}_id": object_id}, lambda: a.sees(f"/v1/dispatch/{kind}s/{object_id}"))


async def a_vehicle(a: TenantA) -> Made:
    return await a_fleet_object(
        a, "vehicle", {"name": a.unique("Van"), "vehicle_type": "van", "capacity": 30}
    )


async def a_team(a: TenantA) -> Made:
    return await a_fleet_object(a, "team", {"name": a.unique("Team")})


async def a_zone(a: TenantA) -> Made:
    square = [[13.37, 52.50], [13.43, 52.50], [13.43, 52.54], [13.37, 52.54], [13.37, 52.50]]
    return await a_fleet_object(
        a, "zone", {"name": a.unique("Zone"), "geometry": {"type": "Polygon", "coordinates": [square]}}
    )


async def a_shift(a: TenantA) -> Made:
    driver = await a_driver(a)
    body = {
        "driver_id": driver.params["driver_id"],
        "starts_at": "2026-05-04T10:00:00Z",
        "ends_at": "2026-05-04T18:00:00Z",
    }
    return await a_fleet_object(a, "shift", body)


# A's admin as a driver on duty, per tenant: jobs are carried by the caller for the driver's routes.
_ADMIN_DRIVERS: dict[str, str] = {}

# What A's admin (as driver or dispatcher) does to a fresh job before each job route is called.
JOB_STEPS: dict[str, list[tuple[str, dict[str, Any] | None]]] = {
    "/v1/dispatch/jobs/{job_id}/unassign": [("assign", {})],
    "/v1/dispatch/jobs/{job_id}/offer/accept": [("offer", {})],
    "/v1/dispatch/jobs/{job_id}/offer/decline": [("offer", {})],
    "/v1/dispatch/jobs/{job_id}/arrive": [("assign", {})],
    "/v1/dispatch/jobs/{job_id}/pick-up": [("assign", {}), ("arrive", {"stop": "pickup"})],
    "/v1/dispatch/jobs/{job_id}/deliver": [
        ("assign", {}),
        ("arrive", {"stop": "pickup"}),
        ("pick-up", None),
        ("arrive", {"stop": "dropoff"}),
    ],
    "/v1/dispatch/jobs/{job_id}/fail": [
        ("assign", {}),
        ("arrive", {"stop": "pickup"}),
        ("pick-up", None),
        ("arrive", {"stop": "dropoff"}),
    ],
    "/v1/dispatch/jobs/{job_id}/return/complete": [
        ("assign", {}),
        ("arrive", {"stop": "pickup"}),
        ("pick-up", None),
        ("arrive", {"stop": "dropoff"}),
        ("fail", {"reason": "refused"}),
    ],
}


async def admin_driver(a: TenantA) -> str:
    if a.tenant.tenant_id not in _ADMIN_DRIVERS:
        me = await a.sees("/v1/identity/me")
        response = await a.platform.client.post(
            "/v1/dispatch/drivers",
            json={"user_id": me["id"], "name": "Admin", "vehicle_type": "bicycle", "capacity": 9},
            headers=a.admin,
        )
        assert response.status_code == 201, response.text
        state = await a.platform.client.post(
            "/v1/dispatch/drivers/me/state", json={"state": "available"}, headers=a.admin
        )
        assert state.status_code == 200, state.text
        _ADMIN_DRIVERS[a.tenant.tenant_id] = response.json()["id"]
    return _ADMIN_DRIVERS[a.tenant.tenant_id]


async def a_job(a: TenantA, path: str = "") -> Made:
    """A dispatch job (an order of A's that the merchant accepted), taken as far as the route needs."""
    placed = await place(a.platform, a.tenant, order(external_id=a.unique("J")))
    accepted = await a.platform.client.post(
        f"/v1/orders/{placed['id']}/status", json={"status": "accepted"}, headers=a.tenant.headers
    )
    assert accepted.status_code == 200, accepted.text
    await a.platform.settle()
    [job] = (await a.sees(f"/v1/dispatch/jobs?order_id={placed['id']}"))["items"]
    job_id: str = job["id"]
    driver_id = await admin_driver(a)
    for step, body in JOB_STEPS.get(path, []):
        filled = {"assign": {"driver_id": driver_id}, "offer": {"driver_ids": [driver_id]}}.get(step, body)
        response = await a.platform.client.post(
            f"/v1/dispatch/jobs/{job_id}/{step}", json=filled, headers=a.admin
        )
        assert response.status_code == 200, response.text
    return Made({"job_id": job_id, "driver_id": driver_id}, lambda: a.sees(f"/v1/dispatch/jobs/{job_id}"))


# Path parameter -> how to make, in tenant A, the object it names. A new object type needs a line here.
OBJECTS: dict[str, Callable[[TenantA], Awaitable[Made]]] = {
    "api_key_id": an_api_key,
    "address_id": an_address,
    "user_id": a_user,
    "order_id": an_order,
    "delivery_id": an_inbound_delivery,
    "endpoint_id": a_webhook_endpoint,
    "message_id": a_webhook_message,
    "ticket_id": a_ticket,
    "connection_id": a_mapping_connection,
    "account_id": a_courier_account,
    "courier_delivery_id": a_courier_delivery,
    "report_id": a_status_report,
    "quote_id": a_delivery_quote,
    "api_delivery_id": an_api_delivery,
    "driver_id": a_driver,
    "vehicle_id": a_vehicle,
    "team_id": a_team,
    "zone_id": a_zone,
    "shift_id": a_shift,
    "job_id": a_job,
}

# Path parameters that name something every tenant has its own of, not one tenant's object: the same
# name reaches the caller's own (see the last test), so there is nothing of A's to 404.
NAMES = {"role": Role.DISPATCHER.value}

# Routes not addressed through the caller's tenant at all.
EXCLUDED = {
    # Public: the connection's secret token in the URL and the partner's signature are the credential, so
    # whoever holds A's token is A's partner; a bearer of tenant B changes nothing there.
    "/v1/integrations/webhooks/{platform}/{token}",
    # Likewise for a courier network's status webhooks: the account's token and the network's signature.
    "/v1/integrations/courier-webhooks/{provider}/{token}",
    # A proof-of-delivery file by its signed link: the signature over tenant, name and expiry is the
    # credential (tests/dispatch/integration/test_files_api.py refuses a link signed for another file).
    "/v1/dispatch/files/{tenant_id}/{name}",
}

# A valid body for every operation that takes one, so that a 422 for the body cannot hide a leak.
BODIES: dict[tuple[str, str], dict[str, Any]] = {
    ("PUT", "/v1/identity/roles/{role}"): {"permissions": ["orders.read", "orders.manage", "profile.self"]},
    ("PATCH", "/v1/identity/users/{user_id}"): {"name": "Taken Over"},
    ("PATCH", "/v1/identity/me/addresses/{address_id}"): {"label": "Taken over"},
    ("PATCH", "/v1/orders/{order_id}"): {"notes": "taken over"},
    ("POST", "/v1/orders/{order_id}/status"): {"status": "cancelled", "reason": "taken over"},
    ("PATCH", "/v1/integrations/webhook-endpoints/{endpoint_id}"): {"enabled": False},
    ("POST", "/v1/integrations/webhook-endpoints/{endpoint_id}/replay"): {"since": "2020-01-01T00:00:00Z"},
    ("PUT", "/v1/integrations/connections/{connection_id}/mapping"): {"mapping": MAPPING},
    ("POST", "/v1/integrations/connections/{connection_id}/mapping/test"): {"payload": SAMPLE},
    ("PATCH", "/v1/tickets/{ticket_id}"): {"status": "in_progress", "assignee": None},
    ("POST", "/v1/integrations/courier-accounts/{account_id}/quotes"): {
        "order_id": "order-q",
        "request": COURIER_REQUEST,
    },
    ("POST", "/v1/tickets/{ticket_id}/comments"): {"body": "taken over"},
    ("PATCH", "/v1/dispatch/drivers/{driver_id}"): {"name": "Taken Over"},
    ("POST", "/v1/dispatch/drivers/{driver_id}/state"): {"state": "available"},
    ("PATCH", "/v1/dispatch/vehicles/{vehicle_id}"): {"name": "Taken over"},
    ("PATCH", "/v1/dispatch/teams/{team_id}"): {"name": "Taken over"},
    ("PATCH", "/v1/dispatch/zones/{zone_id}"): {"name": "Taken over"},
    ("PATCH", "/v1/dispatch/shifts/{shift_id}"): {"ends_at": "2026-05-04T19:00:00Z"},
    ("POST", "/v1/dispatch/jobs/{job_id}/assign"): {"driver_id": "{driver_id}"},
    ("POST", "/v1/dispatch/jobs/{job_id}/unassign"): {"reason": "taken over"},
    ("POST", "/v1/dispatch/jobs/{job_id}/offer"): {"driver_ids": ["{driver_id}"]},
    ("PUT", "/v1/dispatch/jobs/{job_id}/requirements"): {"pin": "1234"},
    ("POST", "/v1/dispatch/jobs/{job_id}/arrive"): {"stop": "pickup"},
    ("POST", "/v1/dispatch/jobs/{job_id}/deliver"): {"pin": "1234"},
    ("POST", "/v1/dispatch/jobs/{job_id}/fail"): {"reason": "refused"},
}


def routes_with_path_parameters(platform: RunningPlatform) -> dict[str, list[str]]:
    """Every API route of every service with a path parameter, and its methods."""
    routes: dict[str, list[str]] = {}
    for endpoint in endpoints(platform.app):
        if PARAMETER.search(endpoint.path):
            routes.setdefault(endpoint.path, []).append(endpoint.method)
    return routes


def parameters(path: str) -> list[str]:
    return PARAMETER.findall(path)


def operation(platform: RunningPlatform, method: str, path: str) -> dict[str, Any]:
    """The operation in the OpenAPI document: whether it takes a body, and what it answers on success."""
    spec: dict[str, Any] = platform.app.openapi()["paths"].get(path, {}).get(method.lower(), {})
    return spec


def success_status(platform: RunningPlatform, method: str, path: str) -> int:
    [status] = [int(code) for code in operation(platform, method, path)["responses"] if code.startswith("2")]
    return status


async def make(a: TenantA, path: str) -> Made:
    """The object the route's innermost id names; its factory makes whatever the outer ids name too."""
    innermost = [name for name in parameters(path) if name in OBJECTS][-1]
    made = await (a_job(a, path) if innermost == "job_id" else OBJECTS[innermost](a))
    assert set(made.params) >= set(parameters(path)) - set(NAMES), f"{innermost} does not make all of {path}"
    return made


async def call(
    platform: RunningPlatform, method: str, path: str, params: dict[str, str], headers: dict[str, str]
) -> httpx.Response:
    url = PARAMETER.sub(lambda match: {**NAMES, **params}[match.group(1)], path)
    body = BODIES.get((method, path))
    if body is not None:
        # A body may name an object the factory made too (a job's driver): "{driver_id}".
        body = json.loads(PARAMETER.sub(lambda m: params.get(m.group(1), m.group(0)), json.dumps(body)))
    return await platform.client.request(method, url, json=body, headers=headers)


def problem_without(response: httpx.Response, params: dict[str, str]) -> Any:
    """The problem document with the ids in it named by their parameter, and without the request id."""
    text = response.text
    for name, value in params.items():
        text = text.replace(value, "{" + name + "}")
    problem = json.loads(text)
    problem.pop("request_id", None)
    return problem


async def test_every_route_with_a_path_parameter_is_covered(platform: RunningPlatform) -> None:
    # Given every API route with a path parameter
    routes = routes_with_path_parameters(platform)
    operations = [(method, path) for path, methods in routes.items() for method in methods]

    # Then there are such routes, and the exclusions are routes that exist
    assert len(routes) > 5
    assert sorted(EXCLUDED - set(routes)) == []
    # And each parameter has a factory (or is a per-tenant name), named by route when it has not
    assert [
        f"{path}: add a factory for {{{name}}} to OBJECTS"
        for path in routes
        if path not in EXCLUDED
        for name in parameters(path)
        if name not in OBJECTS and name not in NAMES
    ] == []
    # And the OpenAPI document describes each operation (bodies and success statuses are read from it)
    assert [f"{method} {path}" for method, path in operations if not operation(platform, method, path)] == []
    # And every operation that takes a body has one, and every body belongs to an operation
    assert [
        f"{method} {path}: add a valid body to BODIES"
        for method, path in operations
        if path not in EXCLUDED
        and "requestBody" in operation(platform, method, path)
        and (method, path) not in BODIES
    ] == []
    assert sorted(set(BODIES) - set(operations)) == []


def refusal(caller: str, path: str) -> tuple[int, str]:
    """What B gets for A's object: a 404 problem; an API key has no `/me`, so there it is a 403 for any id."""
    if caller == "api_key" and path.startswith("/v1/identity/me/"):
        return 403, PROBLEM_JSON
    return 404, PROBLEM_JSON


def object_routes(platform: RunningPlatform) -> dict[str, list[str]]:
    """The routes that take the id of one tenant's object, and their methods."""
    return {
        path: methods
        for path, methods in routes_with_path_parameters(platform).items()
        if path not in EXCLUDED and set(parameters(path)) & set(OBJECTS)
    }


@pytest.mark.parametrize("caller", ["tenant_admin", "api_key"])
async def test_another_tenants_object_is_a_404_on_every_route_and_method(
    platform: RunningPlatform, caller: str
) -> None:
    # Given tenant A with a signed-in tenant admin, and tenant B's tenant admin or its API key
    tenant_a, tenant_b = await platform.new_tenant("A"), await platform.new_tenant("B")
    _, admin_a = await signed_in(platform, tenant_a, "admin@a.test", [Role.TENANT_ADMIN.value])
    if caller == "api_key":
        caller_b = tenant_b.headers
    else:
        _, caller_b = await signed_in(platform, tenant_b, "admin@b.test", [Role.TENANT_ADMIN.value])
    a = TenantA(platform, tenant_a, admin_a)
    # And, for every route that takes an object's id, such an object in A, as A's admin sees it
    routes = object_routes(platform)
    operations = [(method, path) for path, methods in routes.items() for method in methods]
    made = {path: await make(a, path) for path in routes}
    before = {path: await made[path].seen() for path in routes}
    missing = {path: {name: new_id() for name in made[path].params} for path in routes}

    # When B calls every method of every such route with A's ids, and with ids that never existed
    foreign = {
        (m, path): await call(platform, m, path, made[path].params, caller_b) for m, path in operations
    }
    absent = {(m, path): await call(platform, m, path, missing[path], caller_b) for m, path in operations}

    # Then every answer is a 404 problem (to an API key, `/me/...` is a 403 whatever the id)
    assert len(operations) >= 12
    assert {op: (r.status_code, r.headers["content-type"]) for op, r in foreign.items()} == {
        (method, path): refusal(caller, path) for method, path in operations
    }
    # And it is word for word the answer for an id that never existed
    assert {(m, path): problem_without(r, made[path].params) for (m, path), r in foreign.items()} == {
        (m, path): problem_without(r, missing[path]) for (m, path), r in absent.items()
    }
    # And A's objects are as they were, and A's admin still reads them where a route reads them
    assert {path: await made[path].seen() for path in routes} == before
    reads = [(method, path) for method, path in operations if method == "GET"]
    assert reads
    assert {
        (method, path): (await call(platform, method, path, made[path].params, admin_a)).status_code
        for method, path in reads
    } == dict.fromkeys(reads, 200)


async def test_the_same_calls_succeed_for_the_objects_own_tenant(platform: RunningPlatform) -> None:
    # Given tenant A with a signed-in tenant admin
    tenant_a = await platform.new_tenant("A")
    _, admin_a = await signed_in(platform, tenant_a, "admin@a.test", [Role.TENANT_ADMIN.value])
    a = TenantA(platform, tenant_a, admin_a)
    operations = [(method, path) for path, methods in object_routes(platform).items() for method in methods]

    # When A's admin makes the calls B was refused, with the same bodies, each on a fresh object of A's
    answers = {
        (method, path): await call(platform, method, path, (await make(a, path)).params, admin_a)
        for method, path in operations
    }

    # Then each answers the operation's success: the factories make the right objects, the bodies are
    # valid, and so the 404s above are refusals, not routes that never find anything
    assert {op: response.status_code for op, response in answers.items()} == {
        (method, path): success_status(platform, method, path) for method, path in operations
    }


async def test_a_role_name_reaches_the_callers_own_matrix_never_another_tenants(
    platform: RunningPlatform,
) -> None:
    # Given tenant A has narrowed its dispatchers, and tenant B has not
    tenant_a, tenant_b = await platform.new_tenant("A"), await platform.new_tenant("B")
    _, admin_a = await signed_in(platform, tenant_a, "admin@a.test", [Role.TENANT_ADMIN.value])
    _, admin_b = await signed_in(platform, tenant_b, "admin@b.test", [Role.TENANT_ADMIN.value])
    role_path = f"/v1/identity/roles/{NAMES['role']}"
    narrowed = await platform.client.put(role_path, json={"permissions": ["orders.read"]}, headers=admin_a)
    assert narrowed.status_code == 200, narrowed.text
    routes = {
        path: methods
        for path, methods in routes_with_path_parameters(platform).items()
        if path not in EXCLUDED and set(parameters(path)) <= set(NAMES)
    }

    # When B's admin calls every method of every route addressed by names only, with the same names
    answers = {
        f"{method} {path}": await call(platform, method, path, {}, admin_b)
        for path, methods in routes.items()
        for method in methods
    }

    # Then B reads its own (default) role and changes its own
    assert {op: (r.status_code, r.json()["permissions"]) for op, r in answers.items()} == {
        "GET /v1/identity/roles/{role}": (200, sorted(DEFAULT_ROLES[Role.DISPATCHER])),
        "PUT /v1/identity/roles/{role}": (200, ["orders.manage", "orders.read", "profile.self"]),
    }
    # And A's role is still what A made it
    mine = await platform.client.get(role_path, headers=admin_a)
    assert (mine.status_code, mine.json()["permissions"]) == (200, ["orders.read"])
