"""The smallest end-to-end slice on the all-in-one shape: place an order, read it back."""

from tests.platform import RunningPlatform

ORDER = {
    "external_id": "A-1",
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
    "items": [{"name": "Currywurst", "quantity": 2, "unit_price": 450}],
    "currency": "EUR",
    "delivery_fee": 199,
    "tip": 100,
}


async def test_an_order_placed_over_the_api_can_be_read_back(platform: RunningPlatform) -> None:
    # Given a tenant
    tenant = await platform.new_tenant()
    # When it places an order
    created = await platform.client.post("/v1/orders", json=ORDER, headers=tenant.headers)
    # Then it is stored with its totals and can be read back
    assert created.status_code == 201
    order = created.json()
    assert order["totals"] == {"subtotal": 900, "delivery_fee": 199, "tip": 100, "total": 1199}
    fetched = await platform.client.get(f"/v1/orders/{order['id']}", headers=tenant.headers)
    assert fetched.status_code == 200
    assert fetched.json()["status_history"][0]["status"] == "placed"
