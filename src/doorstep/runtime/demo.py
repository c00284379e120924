"""The demo tenant: merchants across Berlin, a Shopify connection, a delivery rate card, a few hundred
orders from every channel, and a fleet of three drivers on duty in Mitte."""

from __future__ import annotations

import io
import json
import random
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from doorstep.contracts.orders import (
    Customer,
    GeoPoint,
    Item,
    OrderDraft,
    OrderStatus,
    Payment,
    PaymentMethod,
    PaymentStatus,
    Stop,
    TimeWindow,
)
from doorstep.identity import views as identity_views
from doorstep.identity.domain.commands import CreateTenant, CreateUser
from doorstep.infra.service import Service
from doorstep.integrations.adapters.platforms.shopify import sign_shopify_payload
from doorstep.integrations.deliveries.domain.rate_card import (
    PeakWindow,
    Polygon,
    RateCard,
    Size,
    SizeClass,
    ZoneSurcharge,
)
from doorstep.integrations.deliveries.handlers import PutRateCard
from doorstep.integrations.deliveries.repository import DeliveryApiRepository
from doorstep.integrations.domain.commands import OpenConnection, ReceiveWebhook
from doorstep.kernel.clock import utcnow
from doorstep.kernel.settings import Settings
from doorstep.orders.domain.commands import ChangeOrderStatus, PlaceOrder
from doorstep.orders.handlers import Placement
from doorstep.orders.importing import import_csv
from doorstep.runtime.demo_fleet import ensure_fleet
from doorstep.runtime.services import build_services, migrate

MERCHANTS = [
    ("curry-corner", "Curry Corner", "Oranienstraße 12, 10999 Berlin", 52.5011, 13.4183, ["Currywurst", "Pommes", "Bio-Limo"]),
    ("pho-saigon", "Phở Saigon", "Kastanienallee 40, 10119 Berlin", 52.5365, 13.4089, ["Phở Bò", "Sommerrollen", "Eistee"]),
    ("pizzeria-roma", "Pizzeria Roma", "Simon-Dach-Straße 20, 10245 Berlin", 52.5090, 13.4575, ["Margherita", "Diavola", "Tiramisu"]),
    ("baeckerei-schmidt", "Bäckerei Schmidt", "Torstraße 110, 10119 Berlin", 52.5291, 13.4010, ["Roggenbrot", "Franzbrötchen", "Kaffee"]),
    ("sushi-kaiten", "Sushi Kaiten", "Kantstraße 55, 10627 Berlin", 52.5058, 13.3050, ["Maki-Set", "Miso-Suppe", "Edamame"]),
]  # fmt: skip
STREETS = [
    ("Skalitzer Straße", "10997"), ("Wiener Straße", "10999"), ("Bergmannstraße", "10961"), ("Schönhauser Allee", "10435"),
    ("Danziger Straße", "10405"), ("Warschauer Straße", "10243"), ("Boxhagener Straße", "10245"), ("Sonnenallee", "12047"),
    ("Karl-Marx-Straße", "12043"), ("Hermannstraße", "12049"), ("Kurfürstendamm", "10719"), ("Wilmersdorfer Straße", "10627"),
    ("Invalidenstraße", "10115"), ("Brunnenstraße", "10119"), ("Müllerstraße", "13353"), ("Turmstraße", "10559"),
]  # fmt: skip
FIRST = [
    "Lena",
    "Jonas",
    "Aylin",
    "Mehmet",
    "Sophie",
    "Lukas",
    "Zoë",
    "Piotr",
    "Amira",
    "Felix",
    "Nguyễn",
    "Hannah",
]
LAST = ["Müller", "Schmidt", "Yılmaz", "Kowalski", "Weber", "Nguyen", "Fischer", "Becker", "Haddad", "Schulz"]  # noqa: RUF001


# What the demo tenant charges through the delivery API (`POST /v1/deliveries/quotes`), in euro cents.
DEMO_RATE_CARD = RateCard(
    currency="EUR",
    base_fee=290,
    per_km=85,
    per_minute=12,
    minimum_fee=490,
    time_zone="Europe/Berlin",
    peak_windows=[
        PeakWindow(
            weekdays=["mon", "tue", "wed", "thu", "fri", "sat", "sun"],
            start="17:30",
            end="21:00",
            multiplier=1.25,
        )
    ],
    # The centre, roughly: stopping there costs the driver the search for a place to stop.
    zones=[
        ZoneSurcharge(
            name="Mitte",
            area=Polygon(
                type="Polygon",
                coordinates=[
                    [[13.365, 52.505], [13.430, 52.505], [13.430, 52.540], [13.365, 52.540], [13.365, 52.505]]
                ],
            ),
            amount=150,
        )
    ],
    sizes={
        Size.SMALL: SizeClass(),
        Size.MEDIUM: SizeClass(),
        Size.LARGE: SizeClass(multiplier=1.25, surcharge=100),
        Size.XL: SizeClass(multiplier=1.5, surcharge=300),
    },
)

# People to log in as (`POST /v1/identity/login`); the demo's password is no secret.
DEMO_PASSWORD = "doorstep-demo"  # noqa: S105
DEMO_USERS = [
    ("admin@demo.doorstep.test", "tenant_admin"),
    ("dispatcher@demo.doorstep.test", "dispatcher"),
    ("customer@demo.doorstep.test", "customer"),
]


def _state_path(settings: Settings) -> Any:
    return settings.data_dir / "demo.json"


async def seed_demo(
    settings: Settings, *, public_url: str, orders: int, services: Sequence[Service] | None = None
) -> dict[str, str]:
    """Migrate, and on first run create the demo tenant and its data. Returns its ids, key and webhook URL.

    `services`: those the process then serves with, so the drivers' live positions land in their geo
    store (in the all-in-one shape it is in the process); by default the demo builds its own.
    """
    built = list(services) if services is not None else build_services(settings)
    by_name = {service.name: service for service in built}
    try:
        await migrate(built)
        path = _state_path(settings)
        state: dict[str, str] | None = None
        if path.exists():
            state = json.loads(path.read_text())
            if await identity_views.tenant(by_name["identity"].database, state["tenant_id"]) is None:
                state = None
            else:
                await _ensure_rate_card(by_name["integrations"], state["tenant_id"])
        if state is None:
            state = await _create(by_name, public_url=public_url, orders=orders)
            path.write_text(json.dumps(state, indent=2))
        await ensure_fleet(by_name, state["tenant_id"], password=DEMO_PASSWORD)
        return state
    finally:
        # Whoever serves with these services next runs its own event loop: no connection outlives this one.
        for service in built:
            await service.database.dispose()
        await built[0].shared.close()


async def _create(services: dict[str, Service], *, public_url: str, orders: int) -> dict[str, str]:
    tenant, issued = await services["identity"].bus.handle(CreateTenant(name="Demo Deliveries Berlin"))
    merchant_id, name, address, lat, lon, _menu = MERCHANTS[1]
    pickup = {
        "name": name,
        "address": address,
        "phone": "+49 30 1234567",
        "location": {"lat": lat, "lon": lon},
    }
    connection = await services["integrations"].bus.handle(
        OpenConnection(
            tenant_id=tenant.id, platform="shopify", settings={"pickup": pickup, "merchant_id": merchant_id}
        )
    )
    await _ensure_rate_card(services["integrations"], tenant.id)
    rng = random.Random(20261121)
    api_count = orders * 7 // 10
    csv_count = orders * 2 // 10
    shopify_count = orders - api_count - csv_count
    placed: list[str] = []
    for number in range(api_count):
        placement: Placement = await services["orders"].bus.handle(
            PlaceOrder(
                tenant_id=tenant.id,
                source="api",
                draft=_draft(rng, f"API-{10000 + number}"),
                actor="demo",
            )
        )
        placed.append(json.loads(placement.body)["id"])
    await import_csv(
        io.BytesIO(_csv(rng, csv_count).encode()),
        bus=services["orders"].bus,
        tenant_id=tenant.id,
        actor="demo",
    )
    for number in range(shopify_count):
        body = json.dumps(_shopify_order(rng, 820000000 + number)).encode()
        await services["integrations"].bus.handle(
            ReceiveWebhook(
                platform="shopify",
                token=connection.token,
                headers={
                    "x-shopify-hmac-sha256": sign_shopify_payload(body, connection.secret),
                    "x-shopify-webhook-id": f"demo-{number}",
                    "x-shopify-topic": "orders/create",
                },
                body=body,
            )
        )
    await _advance(services["orders"], tenant.id, placed, rng)
    for email, role in DEMO_USERS:
        await services["identity"].bus.handle(
            CreateUser(tenant_id=tenant.id, email=email, password=DEMO_PASSWORD, name=role, roles=[role])
        )
    return {
        "tenant_id": tenant.id,
        "api_key": issued.plaintext,
        "admin_email": DEMO_USERS[0][0],
        "password": DEMO_PASSWORD,
        "connection_id": connection.id,
        "webhook_url": f"{public_url}/v1/integrations/webhooks/shopify/{connection.token}",
        "webhook_secret": connection.secret,
    }


async def _ensure_rate_card(integrations: Service, tenant_id: str) -> None:
    """The demo's rate card, unless the tenant has one (a demo seeded before there was one gets it too)."""
    async with integrations.database.reader() as session:
        card = await DeliveryApiRepository(await session.connection()).rate_card(tenant_id)
    if card is None:
        await integrations.bus.handle(PutRateCard(tenant_id=tenant_id, card=DEMO_RATE_CARD, actor="demo"))


async def _advance(orders: Service, tenant_id: str, order_ids: list[str], rng: random.Random) -> None:
    """Move some orders along so every lifecycle stage has examples."""
    path = [
        OrderStatus.ACCEPTED,
        OrderStatus.PREPARING,
        OrderStatus.READY_FOR_PICKUP,
        OrderStatus.PICKED_UP,
        OrderStatus.DELIVERED,
    ]
    for order_id in order_ids:
        steps = rng.choice([0, 0, 1, 2, 3, 4, 5, 5, 5])
        for status in path[:steps]:
            await orders.bus.handle(
                ChangeOrderStatus(
                    tenant_id=tenant_id, order_id=order_id, status=status, reason=None, actor="demo"
                )
            )
        if steps == 0 and rng.random() < 0.15:
            await orders.bus.handle(
                ChangeOrderStatus(
                    tenant_id=tenant_id,
                    order_id=order_id,
                    status=OrderStatus.REJECTED,
                    reason="kitchen closed early",
                    actor="demo",
                )
            )


def _dropoff(rng: random.Random, lat: float, lon: float) -> tuple[str, str, float, float]:
    street, postcode = rng.choice(STREETS)
    name = f"{rng.choice(FIRST)} {rng.choice(LAST)}"
    return (
        name,
        f"{street} {rng.randint(1, 180)}, {postcode} Berlin",
        round(lat + rng.uniform(-0.03, 0.03), 6),
        round(lon + rng.uniform(-0.05, 0.05), 6),
    )


def _draft(rng: random.Random, external_id: str) -> OrderDraft:
    merchant_id, name, address, lat, lon, menu = rng.choice(MERCHANTS)
    customer, drop_address, drop_lat, drop_lon = _dropoff(rng, lat, lon)
    start = utcnow() + timedelta(minutes=rng.randint(20, 90))
    phone = f"+49 15{rng.randint(10, 79)} {rng.randint(1000000, 9999999)}"
    return OrderDraft(
        external_id=external_id,
        merchant_id=merchant_id,
        pickup=Stop(name=name, address=address, location=GeoPoint(lat=lat, lon=lon)),
        dropoff=Stop(
            name=customer,
            address=drop_address,
            phone=phone,
            location=GeoPoint(lat=drop_lat, lon=drop_lon),
            window=TimeWindow(start=start, end=start + timedelta(minutes=30)),
        ),
        customer=Customer(name=customer, phone=phone),
        items=[
            Item(name=dish, quantity=rng.randint(1, 3), unit_price=rng.randrange(250, 1800, 50))
            for dish in rng.sample(menu, rng.randint(1, len(menu)))
        ],
        currency="EUR",
        tip=rng.choice([0, 0, 100, 200, 300]),
        delivery_fee=rng.choice([199, 249, 299]),
        payment=Payment(
            method=rng.choice([PaymentMethod.CARD, PaymentMethod.CASH, PaymentMethod.ONLINE]),
            status=rng.choice([PaymentStatus.PAID, PaymentStatus.PENDING]),
        ),
    )


def _csv(rng: random.Random, count: int) -> str:
    header = (
        "external_id,pickup_name,pickup_address,pickup_lat,pickup_lon,dropoff_name,dropoff_address,"
        "dropoff_lat,dropoff_lon,dropoff_phone,customer_name,customer_phone,item_name,quantity,unit_price,currency,notes"
    )
    lines = [header]
    for number in range(count):
        _merchant_id, name, address, lat, lon, menu = rng.choice(MERCHANTS)
        customer, drop_address, drop_lat, drop_lon = _dropoff(rng, lat, lon)
        # Half the rows give the address only (the geocoder finds it); the last one an address no
        # geocoder knows, so the dispatcher has an order in needs_attention.
        drop_point = f"{drop_lat},{drop_lon}" if number % 2 else ","
        if number == count - 1:
            drop_address, drop_point = "Hinterhaus, Aufgang C, 10999 Berlin", ","
        phone = f"+49 16{rng.randint(10, 79)} {rng.randint(1000000, 9999999)}"
        for dish in rng.sample(menu, rng.randint(1, 2)):
            lines.append(
                f'CSV-{5000 + number},{name},"{address}",{lat},{lon},{customer},"{drop_address}",'
                f"{drop_point},{phone},{customer},{phone},{dish},{rng.randint(1, 2)},"
                f"{rng.randrange(300, 1500, 50)},EUR,Bitte klingeln"
            )
    return "\n".join(lines) + "\n"


def _shopify_order(rng: random.Random, order_id: int) -> dict[str, Any]:
    _merchant_id, _name, _address, lat, lon, _menu = MERCHANTS[1]
    customer, drop_address, drop_lat, drop_lon = _dropoff(rng, lat, lon)
    first, _, last = customer.partition(" ")
    street, _, rest = drop_address.partition(", ")
    price = f"{rng.randrange(8, 16)}.90"
    return {
        "id": order_id,
        "name": f"#{order_id % 10000}",
        "email": f"{first.lower()}@example.com",
        "currency": "EUR",
        "financial_status": "paid",
        "payment_gateway_names": ["shopify_payments"],
        "total_tip_received": "1.00",
        "note": None,
        "customer": {"first_name": first, "last_name": last, "email": f"{first.lower()}@example.com"},
        "shipping_address": {
            "first_name": first,
            "last_name": last,
            "name": customer,
            "address1": street,
            "city": "Berlin",
            "zip": rest.split()[0],
            "country": "Germany",
            "country_code": "DE",
            "latitude": drop_lat,
            "longitude": drop_lon,
        },
        "shipping_lines": [{"title": "Lieferung", "price": "2.49"}],
        "line_items": [{"title": "Phở Bò", "sku": "PHO-BO", "quantity": rng.randint(1, 2), "price": price}],
    }
