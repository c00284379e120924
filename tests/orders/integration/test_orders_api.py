"""The orders HTTP API exactly as a client sees it: status codes, problem details, values and events."""

from __future__ import annotations

import copy
import json
from datetime import datetime, timedelta, timezone
from typing import Any

import httpx
from sqlalchemy import select
from tests.platform import RunningPlatform, Tenant

from doorstep.orders.adapters.tables import outbox

PROBLEMS = "https://doorstep.dev/problems/"
PROBLEM_JSON = "application/problem+json"

ORDER: dict[str, Any] = {
    "external_id": "A-1",
    "merchant_id": "m-curry",
    "pickup": {
        "name": "Curry Corner",
        "address": "Oranienstraße 12, Berlin",
        "location": {"lat": 52.5, "lon": 13.41},
    },
    "dropoff": {
        "name": "Lena",
        "address": "Skalitzer Straße 3, Berlin",
        "location": {"lat": 52.49, "lon": 13.43},
    },
    "customer": {"name": "Lena Müller", "phone": "+49 151 1234567"},
    "items": [
        {"name": "Currywurst", "quantity": 2, "unit_price": 450},
        {"name": "Pommes", "sku": "P-1", "quantity": 1, "unit_price": 300},
    ],
    "currency": "EUR",
    "delivery_fee": 199,
    "tip": 100,
}


def order(external_id: str | None = "A-1", **overrides: Any) -> dict[str, Any]:
    body = copy.deepcopy(ORDER)
    body.update(copy.deepcopy(overrides))
    if external_id is None:
        body.pop("external_id")
    else:
        body["external_id"] = external_id
    return body


def assert_problem(response: httpx.Response, status: int, slug: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM_JSON
    problem: dict[str, Any] = response.json()
    assert problem["type"] == PROBLEMS + slug
    assert problem["status"] == status
    return problem


def error_fields(problem: dict[str, Any]) -> list[str | None]:
    return [error["field"] for error in problem["errors"]]


async def place(platform: RunningPlatform, tenant: Tenant, body: dict[str, Any]) -> dict[str, Any]:
    response = await platform.client.post("/v1/orders", json=body, headers=tenant.headers)
    assert response.status_code == 201, response.text
    placed: dict[str, Any] = response.json()
    return placed


async def move(
    platform: RunningPlatform, tenant: Tenant, order_id: str, status: str, reason: str | None = None
) -> httpx.Response:
    return await platform.client.post(
        f"/v1/orders/{order_id}/status", json={"status": status, "reason": reason}, headers=tenant.headers
    )


async def api_key_id(platform: RunningPlatform, tenant: Tenant) -> str:
    keys = await platform.client.get("/v1/identity/api-keys", headers=tenant.headers)
    assert keys.status_code == 200
    [key] = keys.json()["items"]
    key_id: str = key["id"]
    return key_id


async def listed(platform: RunningPlatform, tenant: Tenant, params: Any = None) -> list[str | None]:
    """External ids of one page of GET /v1/orders, in the order the API gave them."""
    response = await platform.client.get("/v1/orders", params=params, headers=tenant.headers)
    assert response.status_code == 200, response.text
    return [item["external_id"] for item in response.json()["items"]]


# --- POST /v1/orders ---------------------------------------------------------------------------------


async def test_placing_an_order_answers_201_with_totals_status_and_the_api_key_as_actor(
    platform: RunningPlatform,
) -> None:
    # Given a tenant and the id of its API key
    tenant = await platform.new_tenant()
    key_id = await api_key_id(platform, tenant)

    # When it places an order with two lines
    response = await platform.client.post("/v1/orders", json=order(), headers=tenant.headers)

    # Then the order is created, placed, with its totals computed and the key named in the history
    assert response.status_code == 201
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert body["status"] == "placed"
    assert body["source"] == "api"
    assert body["external_id"] == "A-1"
    assert body["merchant_id"] == "m-curry"
    assert body["totals"] == {"subtotal": 1200, "delivery_fee": 199, "tip": 100, "total": 1499}
    assert body["items"] == [
        {"name": "Currywurst", "sku": None, "quantity": 2, "unit_price": 450},
        {"name": "Pommes", "sku": "P-1", "quantity": 1, "unit_price": 300},
    ]
    assert body["payment"] == {"method": "other", "status": "pending"}
    assert body["allowed_statuses"] == ["accepted", "rejected", "cancelled"]
    assert body["status_history"] == [
        {
            "from_status": None,
            "status": "placed",
            "actor": f"api_key:{key_id}",
            "reason": None,
            "at": body["created_at"],
        }
    ]
    # And reading it back gives the same document, timestamps with their UTC offset included
    fetched = await platform.client.get(f"/v1/orders/{body['id']}", headers=tenant.headers)
    assert fetched.status_code == 200
    assert fetched.json() == body
    assert datetime.fromisoformat(body["created_at"]).utcoffset() == timedelta(0)


INVALID_ORDERS: list[tuple[dict[str, Any], str]] = [
    ({"dropoff": {**ORDER["dropoff"], "location": {"lat": 91, "lon": 13.43}}}, "dropoff.location.lat"),
    ({"pickup": {**ORDER["pickup"], "location": {"lat": 52.5, "lon": -181}}}, "pickup.location.lon"),
    ({"currency": "eur"}, "currency"),
    ({"items": []}, "items"),
    ({"items": [{"name": "Currywurst", "quantity": 0, "unit_price": 450}]}, "items.0.quantity"),
    ({"tip": -1}, "tip"),
    ({"customer": {"name": "Lena", "email": "not-an-email"}}, "customer.email"),
    ({"customer": None}, "customer"),
    ({"status": "delivered"}, "status"),
]


async def test_an_invalid_order_is_refused_with_a_problem_naming_the_field(platform: RunningPlatform) -> None:
    # Given a tenant
    tenant = await platform.new_tenant()
    missing_customer = order()
    del missing_customer["customer"]
    cases = [(order(**change), field) for change, field in INVALID_ORDERS] + [(missing_customer, "customer")]

    for body, field in cases:
        # When it sends an order with one bad (or missing, or unknown) field
        response = await platform.client.post("/v1/orders", json=body, headers=tenant.headers)

        # Then it gets a validation problem naming exactly that field
        problem = assert_problem(response, 422, "validation-error")
        assert [(error["field"], error["in"]) for error in problem["errors"]] == [(field, "body")], field
        assert problem["detail"].startswith(f"{field}: "), field
        assert problem["instance"] == "/v1/orders"
    # And nothing was stored
    assert await listed(platform, tenant) == []


async def test_malformed_json_is_a_422_problem_not_a_500(platform: RunningPlatform) -> None:
    # Given a tenant
    tenant = await platform.new_tenant()
    headers = {**tenant.headers, "Content-Type": "application/json"}

    for content in (b'{"external_id": "A-1",', b"{not json", b"[1, 2"):
        # When it sends a body that is not JSON
        response = await platform.client.post("/v1/orders", content=content, headers=headers)

        # Then it gets a validation problem about the body, blaming no field (there is none to blame)
        problem = assert_problem(response, 422, "validation-error")
        assert len(problem["errors"]) == 1, content
        assert problem["errors"][0]["in"] == "body"
        assert problem["errors"][0]["field"] is None
        assert problem["errors"][0]["message"].startswith("the body is not valid JSON")

    for content in (b"", b"[]", b'"order"'):
        # When it sends no body, or JSON that is not an object
        response = await platform.client.post("/v1/orders", content=content, headers=headers)

        # Then it is a validation problem about the body as a whole
        problem = assert_problem(response, 422, "validation-error")
        assert [(error["field"], error["in"]) for error in problem["errors"]] == [(None, "body")], content


async def test_a_request_without_a_valid_bearer_key_is_401_with_a_challenge(
    platform: RunningPlatform,
) -> None:
    # Given a tenant with an order (so there is something to see)
    tenant = await platform.new_tenant()
    placed = await place(platform, tenant, order())
    credentials: list[dict[str, str]] = [
        {},
        {"Authorization": "Bearer dk_not_a_real_key"},
        {"Authorization": "Basic dXNlcjpwYXNz"},
        {"Authorization": "Bearer "},
        {"Authorization": tenant.api_key},
    ]

    for headers in credentials:
        # When a caller without a valid bearer key places, lists or reads orders
        responses = [
            await platform.client.post("/v1/orders", json=order("A-2"), headers=headers),
            await platform.client.get("/v1/orders", headers=headers),
            await platform.client.get(f"/v1/orders/{placed['id']}", headers=headers),
        ]

        # Then each is refused with a 401 problem and a Bearer challenge
        for response in responses:
            assert_problem(response, 401, "unauthenticated")
            assert response.headers["www-authenticate"] == "Bearer", headers
    # And nothing was placed
    assert await listed(platform, tenant) == ["A-1"]


async def test_the_same_external_id_twice_answers_200_with_the_existing_order(
    platform: RunningPlatform,
) -> None:
    # Given a tenant that placed an order with an external id
    tenant = await platform.new_tenant()
    first = await platform.client.post("/v1/orders", json=order("A-1"), headers=tenant.headers)
    assert first.status_code == 201

    # When it sends the same external id again, even with other details
    second = await platform.client.post(
        "/v1/orders", json=order("A-1", tip=999, notes="again"), headers=tenant.headers
    )

    # Then the existing order comes back unchanged with 200, and there is still one order
    assert second.status_code == 200
    assert second.json() == first.json()
    assert await listed(platform, tenant) == ["A-1"]


async def test_orders_without_external_id_are_never_deduplicated(platform: RunningPlatform) -> None:
    # Given a tenant
    tenant = await platform.new_tenant()

    # When it places the same order twice without an external id (and no idempotency key)
    first = await place(platform, tenant, order(None))
    second = await place(platform, tenant, order(None))

    # Then both are stored
    assert first["id"] != second["id"]
    assert await listed(platform, tenant) == [None, None]


async def test_an_idempotency_key_replays_the_first_answer_for_the_same_body(
    platform: RunningPlatform,
) -> None:
    # Given a tenant that placed an order (without external id) under an idempotency key
    tenant = await platform.new_tenant()
    headers = {**tenant.headers, "Idempotency-Key": "req-42"}
    first = await platform.client.post("/v1/orders", json=order(None), headers=headers)
    assert first.status_code == 201

    # When it retries the identical request
    retry = await platform.client.post("/v1/orders", json=order(None), headers=headers)

    # Then it gets the identical answer, byte for byte, and no second order exists
    assert retry.status_code == 201
    assert retry.headers["content-type"] == "application/json"
    assert retry.content == first.content
    assert await listed(platform, tenant) == [None]


async def test_an_idempotency_key_reused_with_another_body_is_refused(platform: RunningPlatform) -> None:
    # Given a tenant that used an idempotency key for one order
    tenant = await platform.new_tenant()
    headers = {**tenant.headers, "Idempotency-Key": "req-42"}
    assert (await platform.client.post("/v1/orders", json=order("A-1"), headers=headers)).status_code == 201

    # When it sends a different order under the same key
    response = await platform.client.post("/v1/orders", json=order("A-2"), headers=headers)

    # Then it is refused, naming the header, and the second order is not placed
    problem = assert_problem(response, 422, "idempotency-key-reused")
    assert problem["type"].endswith("idempotency-key-reused")
    assert problem["errors"] == [
        {"field": "Idempotency-Key", "in": "header", "message": "used with a different body"}
    ]
    assert await listed(platform, tenant) == ["A-1"]


async def test_the_same_idempotency_key_in_another_tenant_is_independent(platform: RunningPlatform) -> None:
    # Given tenant A placed an order under an idempotency key
    a, b = await platform.new_tenant("A"), await platform.new_tenant("B")
    in_a = await platform.client.post(
        "/v1/orders", json=order("A-1"), headers={**a.headers, "Idempotency-Key": "shared"}
    )
    assert in_a.status_code == 201

    # When tenant B sends the same body under the same key
    in_b = await platform.client.post(
        "/v1/orders", json=order("A-1"), headers={**b.headers, "Idempotency-Key": "shared"}
    )

    # Then B gets its own new order
    assert in_b.status_code == 201
    assert in_b.json()["id"] != in_a.json()["id"]
    assert await listed(platform, a) == ["A-1"]
    assert await listed(platform, b) == ["A-1"]


async def test_an_empty_idempotency_key_is_a_validation_problem(platform: RunningPlatform) -> None:
    # Given a tenant
    tenant = await platform.new_tenant()

    # When it sends an empty Idempotency-Key header
    response = await platform.client.post(
        "/v1/orders", json=order(), headers={**tenant.headers, "Idempotency-Key": ""}
    )

    # Then the header is named as the problem
    problem = assert_problem(response, 422, "validation-error")
    assert problem["errors"][0]["field"] == "idempotency-key"
    assert problem["errors"][0]["in"] == "header"


# --- Tenancy ----------------------------------------------------------------------------------------


async def test_another_tenants_order_looks_exactly_like_a_missing_one(platform: RunningPlatform) -> None:
    # Given tenant A has an order, and tenant B has none
    a, b = await platform.new_tenant("A"), await platform.new_tenant("B")
    placed = await place(platform, a, order())
    path = f"/v1/orders/{placed['id']}"
    missing = "/v1/orders/01900000-0000-7000-8000-000000000000"

    # When B reads, amends and moves A's order, and a non-existent one
    attempts = {
        "get": (
            await platform.client.get(path, headers=b.headers),
            await platform.client.get(missing, headers=b.headers),
        ),
        "patch": (
            await platform.client.patch(path, json={"notes": "mine now"}, headers=b.headers),
            await platform.client.patch(missing, json={"notes": "mine now"}, headers=b.headers),
        ),
        "status": (
            await move(platform, b, placed["id"], "cancelled"),
            await move(platform, b, missing.rsplit("/", 1)[1], "cancelled"),
        ),
    }

    # Then every answer is a 404 with the same problem type as for an id that does not exist
    for foreign, absent in attempts.values():
        foreign_problem = assert_problem(foreign, 404, "order-not-found")
        absent_problem = assert_problem(absent, 404, "order-not-found")
        assert foreign_problem["type"] == absent_problem["type"]
        assert foreign_problem["title"] == absent_problem["title"]
    # And A's order is untouched
    fetched = await platform.client.get(path, headers=a.headers)
    assert fetched.json() == placed


async def test_a_tenants_list_never_shows_another_tenants_orders(platform: RunningPlatform) -> None:
    # Given two tenants with orders, some sharing external ids and customers
    a, b = await platform.new_tenant("A"), await platform.new_tenant("B")
    for external_id in ("A-1", "A-2", "A-3"):
        await place(platform, a, order(external_id))
    await place(platform, b, order("A-1"))

    # When each lists (also with filters that match the other's orders)
    # Then each sees only its own orders
    assert await listed(platform, a) == ["A-3", "A-2", "A-1"]
    assert await listed(platform, b) == ["A-1"]
    assert await listed(platform, b, {"q": "lena"}) == ["A-1"]
    assert await listed(platform, b, {"merchant_id": "m-curry", "status": "placed"}) == ["A-1"]


# --- Status -----------------------------------------------------------------------------------------


async def test_an_order_walks_its_happy_path_and_keeps_its_history(platform: RunningPlatform) -> None:
    # Given a placed order
    tenant = await platform.new_tenant()
    actor = f"api_key:{await api_key_id(platform, tenant)}"
    placed = await place(platform, tenant, order())
    walk = [
        ("accepted", "kitchen has capacity"),
        ("preparing", None),
        ("ready_for_pickup", "packed"),
        ("picked_up", "courier 7"),
        ("delivered", "left at door"),
    ]

    # When it moves through every status to delivered
    for status, reason in walk:
        response = await move(platform, tenant, placed["id"], status, reason)
        # Then each step answers the order in its new status
        assert response.status_code == 200, response.text
        assert response.json()["status"] == status

    # And the history holds every step, in order, with reasons and the actor
    final = (await platform.client.get(f"/v1/orders/{placed['id']}", headers=tenant.headers)).json()
    assert final["status"] == "delivered"
    assert final["allowed_statuses"] == []
    history = [
        (step["from_status"], step["status"], step["actor"], step["reason"])
        for step in final["status_history"]
    ]
    assert history == [
        (None, "placed", actor, None),
        ("placed", "accepted", actor, "kitchen has capacity"),
        ("accepted", "preparing", actor, None),
        ("preparing", "ready_for_pickup", actor, "packed"),
        ("ready_for_pickup", "picked_up", actor, "courier 7"),
        ("picked_up", "delivered", actor, "left at door"),
    ]
    times = [datetime.fromisoformat(step["at"]) for step in final["status_history"]]
    assert times == sorted(times)
    assert final["updated_at"] == final["status_history"][-1]["at"]


ILLEGAL_MOVES: list[tuple[list[str], str, list[str]]] = [
    ([], "delivered", ["accepted", "rejected", "cancelled"]),
    ([], "placed", ["accepted", "rejected", "cancelled"]),
    (["accepted", "preparing"], "accepted", ["ready_for_pickup", "cancelled"]),
    (["accepted", "ready_for_pickup", "picked_up"], "cancelled", ["delivered", "failed_delivery"]),
    (["cancelled"], "accepted", []),
    (["accepted", "ready_for_pickup", "picked_up", "delivered"], "returned", []),
]


async def test_an_illegal_move_is_a_409_listing_the_allowed_statuses(platform: RunningPlatform) -> None:
    tenant = await platform.new_tenant()
    for path, target, allowed in ILLEGAL_MOVES:
        # Given an order moved along `path`
        placed = await place(platform, tenant, order(None))
        for status in path:
            assert (await move(platform, tenant, placed["id"], status)).status_code == 200
        current = path[-1] if path else "placed"

        # When it is asked to move somewhere its status does not allow
        response = await move(platform, tenant, placed["id"], target)

        # Then it is a conflict that names the current, requested and allowed statuses
        problem = assert_problem(response, 409, "illegal-status-transition")
        assert problem["current_status"] == current
        assert problem["requested_status"] == target
        assert problem["allowed_statuses"] == allowed, (path, target)
        # And the order did not move
        fetched = (await platform.client.get(f"/v1/orders/{placed['id']}", headers=tenant.headers)).json()
        assert fetched["status"] == current
        assert len(fetched["status_history"]) == len(path) + 1


async def test_an_unknown_status_value_is_a_422(platform: RunningPlatform) -> None:
    # Given a placed order
    tenant = await platform.new_tenant()
    placed = await place(platform, tenant, order())
    cases: list[tuple[dict[str, Any], str]] = [
        ({"status": "teleported"}, "status"),
        ({"status": "ACCEPTED"}, "status"),
        ({}, "status"),
        ({"status": "accepted", "extra": 1}, "extra"),
        ({"status": "accepted", "reason": "x" * 501}, "reason"),
    ]

    for body, field in cases:
        # When a status change names no known status (or carries a bad field)
        response = await platform.client.post(
            f"/v1/orders/{placed['id']}/status", json=body, headers=tenant.headers
        )

        # Then it is a validation problem naming the field
        problem = assert_problem(response, 422, "validation-error")
        assert error_fields(problem) == [field], body
    # And the order stays placed
    fetched = await platform.client.get(f"/v1/orders/{placed['id']}", headers=tenant.headers)
    assert fetched.json() == placed


# --- PATCH ------------------------------------------------------------------------------------------


async def test_patching_notes_tip_and_customer_changes_them(platform: RunningPlatform) -> None:
    # Given a placed order
    tenant = await platform.new_tenant()
    placed = await place(platform, tenant, order())
    customer = {"name": "Max Mustermann", "phone": "+49 30 123456", "email": "max@example.com"}

    # When the client changes notes, tip and customer
    response = await platform.client.patch(
        f"/v1/orders/{placed['id']}",
        json={"notes": "ring twice", "tip": 250, "customer": customer},
        headers=tenant.headers,
    )

    # Then the order answers with the new values and recomputed totals
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["notes"] == "ring twice"
    assert body["tip"] == 250
    assert body["customer"] == customer
    assert body["totals"] == {"subtotal": 1200, "delivery_fee": 199, "tip": 250, "total": 1649}
    assert body["updated_at"] > placed["updated_at"]
    # And the rest is unchanged, also when read back
    assert {
        key: value
        for key, value in body.items()
        if key not in {"notes", "tip", "customer", "totals", "updated_at"}
    } == {
        key: value
        for key, value in placed.items()
        if key not in {"notes", "tip", "customer", "totals", "updated_at"}
    }
    fetched = await platform.client.get(f"/v1/orders/{placed['id']}", headers=tenant.headers)
    assert fetched.json() == body
    # And the list search finds the order under the new customer only
    assert await listed(platform, tenant, {"q": "mustermann"}) == ["A-1"]
    assert await listed(platform, tenant, {"q": "lena müller"}) == []


async def test_patching_notes_to_null_clears_them(platform: RunningPlatform) -> None:
    # Given an order with notes
    tenant = await platform.new_tenant()
    placed = await place(platform, tenant, order(notes="ring twice"))

    # When the client sends notes: null
    response = await platform.client.patch(
        f"/v1/orders/{placed['id']}", json={"notes": None}, headers=tenant.headers
    )

    # Then the notes are gone
    assert response.status_code == 200
    assert response.json()["notes"] is None


async def test_items_are_locked_once_the_order_is_being_prepared(platform: RunningPlatform) -> None:
    # Given an order that is being prepared
    tenant = await platform.new_tenant()
    placed = await place(platform, tenant, order())
    for status in ("accepted", "preparing"):
        assert (await move(platform, tenant, placed["id"], status)).status_code == 200

    # When the client tries to change its items
    response = await platform.client.patch(
        f"/v1/orders/{placed['id']}",
        json={"items": [{"name": "Falafel", "quantity": 1, "unit_price": 700}]},
        headers=tenant.headers,
    )

    # Then it is a conflict naming the locked field and the current status
    problem = assert_problem(response, 409, "order-field-locked")
    assert problem["field"] == "items"
    assert problem["current_status"] == "preparing"
    # And the items did not change, while notes still may
    fetched = await platform.client.get(f"/v1/orders/{placed['id']}", headers=tenant.headers)
    assert fetched.json()["items"] == placed["items"]
    notes = await platform.client.patch(
        f"/v1/orders/{placed['id']}", json={"notes": "extra napkins"}, headers=tenant.headers
    )
    assert notes.status_code == 200
    assert notes.json()["notes"] == "extra napkins"


async def test_items_can_change_before_preparation_and_the_totals_follow(platform: RunningPlatform) -> None:
    # Given an accepted order
    tenant = await platform.new_tenant()
    placed = await place(platform, tenant, order())
    assert (await move(platform, tenant, placed["id"], "accepted")).status_code == 200

    # When the client replaces its items
    response = await platform.client.patch(
        f"/v1/orders/{placed['id']}",
        json={"items": [{"name": "Falafel", "quantity": 3, "unit_price": 700}]},
        headers=tenant.headers,
    )

    # Then the items and totals change
    assert response.status_code == 200
    assert response.json()["totals"] == {"subtotal": 2100, "delivery_fee": 199, "tip": 100, "total": 2399}


async def test_patching_a_field_that_is_not_editable_is_a_422_naming_it(platform: RunningPlatform) -> None:
    # Given a placed order
    tenant = await platform.new_tenant()
    placed = await place(platform, tenant, order())

    for field in ("status", "external_id", "source", "id", "totals", "currency"):
        # When the client tries to patch a field outside the editable set
        response = await platform.client.patch(
            f"/v1/orders/{placed['id']}", json={field: "delivered"}, headers=tenant.headers
        )

        # Then it is a validation problem naming that field
        problem = assert_problem(response, 422, "validation-error")
        assert error_fields(problem) == [field]
    # And nothing changed
    fetched = await platform.client.get(f"/v1/orders/{placed['id']}", headers=tenant.headers)
    assert fetched.json() == placed


async def test_patching_a_required_field_to_null_is_a_422_naming_it(platform: RunningPlatform) -> None:
    # Given a placed order
    tenant = await platform.new_tenant()
    placed = await place(platform, tenant, order())

    for field in ("customer", "items", "tip", "pickup", "dropoff", "delivery_fee", "payment"):
        # When the client sends an explicit null for a field every order must have
        response = await platform.client.patch(
            f"/v1/orders/{placed['id']}", json={field: None}, headers=tenant.headers
        )

        # Then it is refused naming the field
        problem = assert_problem(response, 422, "invalid-input")
        assert error_fields(problem) == [field]
    # And nothing changed
    fetched = await platform.client.get(f"/v1/orders/{placed['id']}", headers=tenant.headers)
    assert fetched.json() == placed


# --- GET /v1/orders ---------------------------------------------------------------------------------


async def test_the_list_filters_by_status_source_merchant_text_and_time(platform: RunningPlatform) -> None:
    # Given a tenant with orders of different statuses, merchants, customers and sources
    tenant = await platform.new_tenant()
    o1 = await place(platform, tenant, order("O-1"))
    o2 = await place(
        platform,
        tenant,
        order(
            "O-2",
            merchant_id="m-pizza",
            customer={"name": "Jonas Weber", "phone": "+49 170 9999999"},
            dropoff={**ORDER["dropoff"], "address": "Kastanienallee 5, Berlin"},
        ),
    )
    o3 = await place(
        platform, tenant, order("O-3", customer={"name": "Ömer Öztürk", "email": "oemer@example.com"})
    )
    await move(platform, tenant, o2["id"], "accepted")
    await move(platform, tenant, o3["id"], "cancelled")
    csv_file = (
        "external_id,pickup_name,pickup_address,pickup_lat,pickup_lon,dropoff_name,dropoff_address,"
        "dropoff_lat,dropoff_lon,customer_name,item_name,quantity,unit_price,currency\n"
        'O-4,Pho House,"Kantstr. 1, Berlin",52.5,13.3,Anna,"Bergstr. 2, Berlin",52.51,13.39,Anna Schmidt,Pho,1,900,EUR\n'
    )
    imported = await platform.client.post(
        "/v1/orders/import",
        files={"file": ("orders.csv", csv_file.encode(), "text/csv")},
        headers=tenant.headers,
    )
    assert imported.json()["created"] == 1

    # When it lists with each filter, then it gets exactly the matching orders, newest first
    assert await listed(platform, tenant) == ["O-4", "O-3", "O-2", "O-1"]
    assert await listed(platform, tenant, {"status": "placed"}) == ["O-4", "O-1"]
    assert await listed(platform, tenant, [("status", "accepted"), ("status", "cancelled")]) == ["O-3", "O-2"]
    assert await listed(platform, tenant, {"status": "delivered"}) == []
    assert await listed(platform, tenant, {"source": "csv"}) == ["O-4"]
    assert await listed(platform, tenant, {"source": "api"}) == ["O-3", "O-2", "O-1"]
    assert await listed(platform, tenant, {"merchant_id": "m-curry"}) == ["O-3", "O-1"]
    assert await listed(platform, tenant, {"merchant_id": "m-curry", "status": "placed"}) == ["O-1"]
    # Text search: customer name in any case, address, phone, email, and non-ASCII letters in any case
    assert await listed(platform, tenant, {"q": "LENA"}) == ["O-1"]
    assert await listed(platform, tenant, {"q": "jonas weber"}) == ["O-2"]
    assert await listed(platform, tenant, {"q": "kastanienallee"}) == ["O-2"]
    assert await listed(platform, tenant, {"q": "bergstr"}) == ["O-4"]
    assert await listed(platform, tenant, {"q": "170 9999"}) == ["O-2"]
    assert await listed(platform, tenant, {"q": "oemer@"}) == ["O-3"]
    assert await listed(platform, tenant, {"q": "öztürk"}) == ["O-3"]
    assert await listed(platform, tenant, {"q": "ÖMER"}) == ["O-3"]
    assert await listed(platform, tenant, {"q": "%"}) == []
    assert await listed(platform, tenant, {"q": "nobody"}) == []
    # Time: created_from is inclusive, created_to exclusive, and a UTC offset is honoured
    berlin = timezone(timedelta(hours=2))
    new_york = timezone(timedelta(hours=-4))
    at = {
        name: datetime.fromisoformat(o["created_at"]) for name, o in {"O-1": o1, "O-2": o2, "O-3": o3}.items()
    }
    window = {
        "created_from": at["O-2"].astimezone(berlin).isoformat(),
        "created_to": at["O-3"].astimezone(new_york).isoformat(),
    }
    assert await listed(platform, tenant, window) == ["O-2"]
    assert await listed(platform, tenant, {"created_from": at["O-2"].astimezone(berlin).isoformat()}) == [
        "O-4",
        "O-3",
        "O-2",
    ]
    assert await listed(platform, tenant, {"created_to": at["O-2"].astimezone(new_york).isoformat()}) == [
        "O-1"
    ]
    later = (at["O-3"] + timedelta(hours=1)).astimezone(berlin).isoformat()
    assert await listed(platform, tenant, {"created_from": later}) == []
    earlier = (at["O-1"] - timedelta(hours=1)).astimezone(new_york).isoformat()
    assert await listed(platform, tenant, {"created_to": earlier}) == []
    # And list items carry the order view without history
    items = (await platform.client.get("/v1/orders", params={"q": "LENA"}, headers=tenant.headers)).json()[
        "items"
    ]
    assert "status_history" not in items[0]
    assert items[0] == {key: value for key, value in o1.items() if key != "status_history"}


async def test_pagination_returns_every_order_once_newest_first(platform: RunningPlatform) -> None:
    # Given five orders
    tenant = await platform.new_tenant()
    created = [(await place(platform, tenant, order(f"P-{n}")))["id"] for n in range(5)]

    # When the client pages through them two at a time
    seen: list[str] = []
    pages = 0
    params: dict[str, Any] = {"limit": 2}
    while True:
        response = await platform.client.get("/v1/orders", params=params, headers=tenant.headers)
        assert response.status_code == 200
        page = response.json()
        pages += 1
        assert len(page["items"]) <= 2
        seen.extend(item["id"] for item in page["items"])
        if page["next_cursor"] is None:
            break
        params = {"limit": 2, "cursor": page["next_cursor"]}

    # Then it saw all five exactly once, newest first, in three pages ending with a null cursor
    assert seen == list(reversed(created))
    assert pages == 3


async def test_a_page_that_exactly_fills_the_limit_has_no_next_cursor(platform: RunningPlatform) -> None:
    # Given two orders
    tenant = await platform.new_tenant()
    for n in range(2):
        await place(platform, tenant, order(f"P-{n}"))

    # When the client asks for two
    page = (await platform.client.get("/v1/orders", params={"limit": 2}, headers=tenant.headers)).json()

    # Then there is no further page
    assert [item["external_id"] for item in page["items"]] == ["P-1", "P-0"]
    assert page["next_cursor"] is None


async def test_a_cursor_keeps_filters_applied(platform: RunningPlatform) -> None:
    # Given orders of two merchants, interleaved
    tenant = await platform.new_tenant()
    for n in range(6):
        await place(platform, tenant, order(f"F-{n}", merchant_id="m-even" if n % 2 == 0 else "m-odd"))

    # When the client pages through one merchant's orders one at a time
    seen: list[str | None] = []
    params: dict[str, Any] = {"limit": 1, "merchant_id": "m-even"}
    while True:
        page = (await platform.client.get("/v1/orders", params=params, headers=tenant.headers)).json()
        seen.extend(item["external_id"] for item in page["items"])
        if page["next_cursor"] is None:
            break
        params = {**params, "cursor": page["next_cursor"]}

    # Then it sees only that merchant's orders, each once
    assert seen == ["F-4", "F-2", "F-0"]


async def test_a_cursor_the_api_did_not_issue_is_a_422_naming_cursor(platform: RunningPlatform) -> None:
    # Given a tenant with an order
    tenant = await platform.new_tenant()
    await place(platform, tenant, order())

    # garbage, a JSON list, an empty object, a non-string position
    for cursor in ("not-a-cursor!", "%%%", "WzFd", "e30", "eyJiZWZvcmUiOjF9"):
        # When it lists with a cursor the API never issued
        response = await platform.client.get("/v1/orders", params={"cursor": cursor}, headers=tenant.headers)

        # Then the problem names the cursor
        problem = assert_problem(response, 422, "invalid-input")
        assert error_fields(problem) == ["cursor"], cursor


async def test_bad_list_parameters_are_named(platform: RunningPlatform) -> None:
    # Given a tenant
    tenant = await platform.new_tenant()
    cases: list[tuple[dict[str, Any], str]] = [
        ({"limit": 0}, "limit"),
        ({"limit": 201}, "limit"),
        ({"status": "lost"}, "status.0"),
        ({"created_from": "yesterday"}, "created_from"),
        ({"q": ""}, "q"),
    ]

    for params, field in cases:
        # When it lists with a bad query parameter
        response = await platform.client.get("/v1/orders", params=params, headers=tenant.headers)

        # Then the problem names the parameter
        problem = assert_problem(response, 422, "validation-error")
        assert [(error["field"], error["in"]) for error in problem["errors"]] == [(field, "query")], params


# --- Events -----------------------------------------------------------------------------------------


async def test_placing_and_moving_an_order_publishes_cloudevents(platform: RunningPlatform) -> None:
    # Given a tenant that places an order and accepts it
    tenant = await platform.new_tenant()
    placed = await place(platform, tenant, order())
    assert (await move(platform, tenant, placed["id"], "accepted", "kitchen ok")).status_code == 200

    # When the outboxes are flushed
    await platform.settle()

    # Then the orders outbox holds one created and one status_changed event, each after the audit entry
    # of its change (written while handling; the aggregate's events are collected at commit), all published
    async with platform.services["orders"].database.reader() as session:
        rows = (await session.execute(select(outbox).order_by(outbox.c.seq))).all()
    assert [row.type for row in rows] == [
        "doorstep.audit.recorded.v1",
        "doorstep.orders.order.created.v1",
        "doorstep.audit.recorded.v1",
        "doorstep.orders.order.status_changed.v1",
    ]
    assert all(row.published_at is not None for row in rows)
    assert all(row.tenant_id == tenant.tenant_id for row in rows)
    envelopes = [json.loads(row.envelope) for row in rows]
    for row, envelope in zip(rows, envelopes, strict=True):
        assert envelope["specversion"] == "1.0"
        assert envelope["source"] == "/doorstep/orders"
        assert envelope["type"] == row.type
        assert envelope["id"] == row.id
        assert envelope["tenantid"] == tenant.tenant_id
        assert envelope["subject"] == placed["id"]
        assert envelope["datacontenttype"] == "application/json"
    _, created, _, changed = (envelope["data"] for envelope in envelopes)
    # And the payloads describe the order as the API answered it
    assert created["order"]["id"] == placed["id"]
    assert created["order"]["status"] == "placed"
    assert created["order"]["totals"] == placed["totals"]
    assert changed["order_id"] == placed["id"]
    assert changed["from_status"] == "placed"
    assert changed["to_status"] == "accepted"
    assert changed["reason"] == "kitchen ok"
    assert changed["actor"] == f"api_key:{await api_key_id(platform, tenant)}"


async def test_refused_requests_publish_nothing(platform: RunningPlatform) -> None:
    # Given a placed order, whose creation event is flushed
    tenant = await platform.new_tenant()
    placed = await place(platform, tenant, order())
    await platform.settle()

    # When an illegal move, a duplicate external id and a patch that changes nothing are sent
    await move(platform, tenant, placed["id"], "delivered")
    await platform.client.post("/v1/orders", json=order(), headers=tenant.headers)
    await platform.client.patch(
        f"/v1/orders/{placed['id']}", json={"tip": placed["tip"]}, headers=tenant.headers
    )
    await platform.settle()

    # Then the outbox still holds only the creation event and its audit entry
    async with platform.services["orders"].database.reader() as session:
        types = (await session.execute(select(outbox.c.type).order_by(outbox.c.seq))).scalars().all()
    assert types == ["doorstep.audit.recorded.v1", "doorstep.orders.order.created.v1"]
