"""CSV import over HTTP (`POST /v1/orders/import`) exactly as a client sees it."""

from __future__ import annotations

from typing import Any

import httpx
from sqlalchemy import func, select
from tests.platform import RunningPlatform, Tenant

from doorstep.orders.adapters.tables import orders

PROBLEMS = "https://doorstep.dev/problems/"

HEADER = (
    "external_id,merchant_id,pickup_name,pickup_address,pickup_lat,pickup_lon,"
    "dropoff_name,dropoff_address,dropoff_lat,dropoff_lon,customer_name,customer_phone,"
    "item_name,quantity,unit_price,currency,tip,delivery_fee,payment_method,notes"
)


def row(
    external_id: str,
    *,
    item: str = "Pho",
    quantity: int = 1,
    unit_price: int = 900,
    pickup_lat: str = "52.5",
    customer: str = "Anna Schmidt",
    currency: str = "EUR",
    tip: str = "",
    notes: str = "",
) -> str:
    return (
        f'{external_id},m-pho,Pho House,"Kantstraße 1, Berlin",{pickup_lat},13.3,'
        f'{customer},"Bergstraße 2, Berlin",52.51,13.39,{customer},+49 30 555,'
        f"{item},{quantity},{unit_price},{currency},{tip},199,card,{notes}"
    )


def csv_text(*rows: str, header: str = HEADER) -> str:
    return "\n".join([header, *rows]) + "\n"


# Three orders (C-2 with two items), one invalid row (C-3) and a repeat of C-1 further down.
MIXED = csv_text(
    row("C-1", tip="150"),
    row("C-2", item="Summer rolls", quantity=2, unit_price=450, customer="Ömer Öztürk"),
    row("C-2", item="Jasmine tea", quantity=3, unit_price=250, customer="Ömer Öztürk"),
    row("C-3", pickup_lat="95"),
    row("C-4", currency="eur", notes="leave at the door"),
    row("C-1", item="Another Pho"),
)
MIXED_ERRORS = [{"row": 4, "field": "pickup_lat", "message": "Input should be less than or equal to 90"}]


async def upload(platform: RunningPlatform, tenant: Tenant, content: bytes | str) -> httpx.Response:
    data = content.encode() if isinstance(content, str) else content
    return await platform.client.post(
        "/v1/orders/import", files={"file": ("orders.csv", data, "text/csv")}, headers=tenant.headers
    )


async def csv_orders(platform: RunningPlatform, tenant: Tenant) -> dict[str, dict[str, Any]]:
    response = await platform.client.get(
        "/v1/orders", params={"source": "csv", "limit": 200}, headers=tenant.headers
    )
    assert response.status_code == 200
    return {item["external_id"]: item for item in response.json()["items"]}


def assert_problem(response: httpx.Response, status: int, slug: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem: dict[str, Any] = response.json()
    assert problem["type"] == PROBLEMS + slug
    return problem


async def test_an_import_reports_created_duplicates_and_row_errors(platform: RunningPlatform) -> None:
    # Given a tenant and a file with three orders, one invalid row and one repeated external id
    tenant = await platform.new_tenant()

    # When it imports the file
    response = await upload(platform, tenant, MIXED)

    # Then the report counts exactly that, naming the bad row and its column
    assert response.status_code == 200
    assert response.json() == {"created": 3, "duplicates": 1, "errors": MIXED_ERRORS, "errors_total": 1}
    # And the three orders are stored, newest first by position in the file
    assert list(await csv_orders(platform, tenant)) == ["C-4", "C-2", "C-1"]


async def test_imported_orders_carry_the_files_values_and_source_csv(platform: RunningPlatform) -> None:
    # Given a tenant that imported the mixed file
    tenant = await platform.new_tenant()
    assert (await upload(platform, tenant, MIXED)).status_code == 200
    keys = await platform.client.get("/v1/identity/api-keys", headers=tenant.headers)
    actor = f"api_key:{keys.json()['items'][0]['id']}"

    # When it reads the imported orders
    imported = await csv_orders(platform, tenant)
    detail = await platform.client.get(f"/v1/orders/{imported['C-2']['id']}", headers=tenant.headers)

    # Then they are placed orders with source csv and the file's values
    assert {external_id: (o["source"], o["status"]) for external_id, o in imported.items()} == {
        "C-1": ("csv", "placed"),
        "C-2": ("csv", "placed"),
        "C-4": ("csv", "placed"),
    }
    order = detail.json()
    assert order["items"] == [
        {"name": "Summer rolls", "sku": None, "quantity": 2, "unit_price": 450},
        {"name": "Jasmine tea", "sku": None, "quantity": 3, "unit_price": 250},
    ]
    assert order["totals"] == {"subtotal": 1650, "delivery_fee": 199, "tip": 0, "total": 1849}
    assert order["merchant_id"] == "m-pho"
    assert order["customer"] == {"name": "Ömer Öztürk", "phone": "+49 30 555", "email": None}
    assert order["pickup"]["address"] == "Kantstraße 1, Berlin"
    assert order["pickup"]["location"] == {"lat": 52.5, "lon": 13.3}
    assert order["payment"] == {"method": "card", "status": "pending"}
    assert [(step["status"], step["actor"]) for step in order["status_history"]] == [("placed", actor)]
    # And the first row of a repeated id is the one kept; lowercase currency is read as the code
    assert imported["C-1"]["items"] == [{"name": "Pho", "sku": None, "quantity": 1, "unit_price": 900}]
    assert imported["C-1"]["tip"] == 150
    assert imported["C-4"]["currency"] == "EUR"
    assert imported["C-4"]["notes"] == "leave at the door"
    # And imported orders are found like any other
    search = await platform.client.get(
        "/v1/orders", params={"q": "öztürk", "source": "csv"}, headers=tenant.headers
    )
    assert [item["external_id"] for item in search.json()["items"]] == ["C-2"]


async def test_importing_the_same_file_again_creates_nothing(platform: RunningPlatform) -> None:
    # Given a tenant that imported the mixed file once
    tenant = await platform.new_tenant()
    assert (await upload(platform, tenant, MIXED)).json()["created"] == 3

    # When it imports the same file again
    again = await upload(platform, tenant, MIXED)

    # Then every valid order is a duplicate, the bad row is reported again, and no order is added
    assert again.status_code == 200
    assert again.json() == {"created": 0, "duplicates": 4, "errors": MIXED_ERRORS, "errors_total": 1}
    assert list(await csv_orders(platform, tenant)) == ["C-4", "C-2", "C-1"]


async def test_duplicates_are_counted_per_tenant(platform: RunningPlatform) -> None:
    # Given tenant A imported the mixed file
    a, b = await platform.new_tenant("A"), await platform.new_tenant("B")
    assert (await upload(platform, a, MIXED)).json()["created"] == 3

    # When tenant B imports the same file
    response = await upload(platform, b, MIXED)

    # Then B gets its own orders, and A still has only its three
    assert response.json() == {"created": 3, "duplicates": 1, "errors": MIXED_ERRORS, "errors_total": 1}
    assert list(await csv_orders(platform, b)) == ["C-4", "C-2", "C-1"]
    assert list(await csv_orders(platform, a)) == ["C-4", "C-2", "C-1"]
    ids_a = {o["id"] for o in (await csv_orders(platform, a)).values()}
    ids_b = {o["id"] for o in (await csv_orders(platform, b)).values()}
    assert ids_a.isdisjoint(ids_b)


async def test_a_file_missing_a_required_column_is_refused_naming_file(platform: RunningPlatform) -> None:
    # Given a tenant and a file without the currency column
    tenant = await platform.new_tenant()
    header = HEADER.replace(",currency", "")
    body = csv_text(row("C-1").replace(",EUR", ""), header=header)

    # When it imports the file
    response = await upload(platform, tenant, body)

    # Then the whole file is refused, naming the file and the missing column
    problem = assert_problem(response, 422, "invalid-input")
    assert problem["errors"] == [
        {"field": "file", "in": "body", "message": "missing required columns: currency"}
    ]
    assert problem["detail"] == "missing required columns: currency"
    assert await csv_orders(platform, tenant) == {}


async def test_a_file_that_is_not_utf8_is_refused(platform: RunningPlatform) -> None:
    # Given a tenant and a Latin-1 export (ß and Ö are not UTF-8 there)
    tenant = await platform.new_tenant()
    latin1 = csv_text(row("C-1", customer="Ömer Öztürk")).encode("latin-1")

    # When it imports the file
    response = await upload(platform, tenant, latin1)

    # Then it is refused, naming the file, and nothing is stored
    problem = assert_problem(response, 422, "invalid-input")
    assert [error["field"] for error in problem["errors"]] == ["file"]
    assert "UTF-8" in problem["detail"]
    assert await csv_orders(platform, tenant) == {}


async def test_an_empty_file_or_no_file_is_refused_naming_file(platform: RunningPlatform) -> None:
    # Given a tenant
    tenant = await platform.new_tenant()

    # When it uploads an empty file, or posts without the `file` field
    empty = await upload(platform, tenant, b"")
    no_file = await platform.client.post(
        "/v1/orders/import", files={"other": ("x.csv", b"a", "text/csv")}, headers=tenant.headers
    )

    # Then both are problems naming `file`
    assert assert_problem(empty, 422, "invalid-input")["errors"] == [
        {"field": "file", "in": "body", "message": "the file is empty"}
    ]
    assert [(e["field"], e["in"]) for e in assert_problem(no_file, 422, "validation-error")["errors"]] == [
        ("file", "body")
    ]


async def test_an_import_needs_a_valid_bearer_key(platform: RunningPlatform) -> None:
    # Given a file
    # When it is uploaded without credentials
    response = await platform.client.post(
        "/v1/orders/import", files={"file": ("orders.csv", MIXED.encode(), "text/csv")}
    )

    # Then it is a 401 problem with a Bearer challenge
    assert_problem(response, 401, "unauthenticated")
    assert response.headers["www-authenticate"] == "Bearer"


async def test_a_large_file_is_imported_in_full(platform: RunningPlatform) -> None:
    # Given a tenant and a generated file of 5,000 single-item orders
    tenant = await platform.new_tenant()
    body = csv_text(*(row(f"L-{n:05d}", unit_price=100 + n % 50) for n in range(5000)))

    # When it imports the file
    response = await upload(platform, tenant, body)

    # Then all 5,000 are created and stored
    assert response.status_code == 200
    assert response.json() == {"created": 5000, "duplicates": 0, "errors": [], "errors_total": 0}
    async with platform.services["orders"].database.reader() as session:
        stored = await session.scalar(
            select(func.count()).select_from(orders).where(orders.c.tenant_id == tenant.tenant_id)
        )
    assert stored == 5000
