"""Proof-of-delivery files: upload, a signed link that serves them, and delivering with them."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tests.dispatch.integration.test_fleet_api import a_driver, dispatcher
from tests.dispatch.integration.test_jobs_api import accepted_order, job_of, ok, on_duty
from tests.orders.integration.test_orders_api import assert_problem
from tests.platform import RunningPlatform

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


async def created(response: Any) -> Any:
    assert response.status_code == 201, response.text
    return response.json()


async def upload(platform: RunningPlatform, me: dict[str, str], data: bytes, content_type: str) -> Any:
    return await platform.client.post(
        "/v1/dispatch/files", files={"file": ("proof.png", data, content_type)}, headers=me
    )


async def test_a_driver_uploads_a_photo_and_its_signed_link_serves_it(platform: RunningPlatform) -> None:
    # Given a driver
    tenant = await platform.new_tenant()
    headers = await dispatcher(platform, tenant)
    _ada, ada_me = await a_driver(platform, tenant, headers)

    # When they upload a PNG
    stored = await created(await upload(platform, ada_me, PNG, "image/png"))

    # Then it is stored under the tenant with its size and type, and its link serves exactly the bytes
    assert re.fullmatch(rf"{tenant.tenant_id}/[0-9a-f-]{{36}}\.png", stored["key"])
    assert (stored["size"], stored["content_type"]) == (len(PNG), "image/png")
    link = urlsplit(stored["url"])
    assert link.path == f"/v1/dispatch/files/{stored['key']}"
    served = await platform.client.get(f"{link.path}?{link.query}")
    assert served.status_code == 200
    assert (served.content, served.headers["content-type"]) == (PNG, "image/png")
    assert served.headers["x-content-type-options"] == "nosniff"

    # And a link whose signature was made for another file, or with a changed expiry, is refused
    query = parse_qs(link.query)
    other = f"/v1/dispatch/files/{tenant.tenant_id}/someone-else.png?{link.query}"
    assert_problem(await platform.client.get(other), 403, "file-link-refused")
    later = int(query["expires"][0]) + 3600
    forged = f"{link.path}?expires={later}&signature={query['signature'][0]}"
    assert_problem(await platform.client.get(forged), 403, "file-link-refused")


async def test_what_is_not_a_small_image_is_refused_naming_the_file(platform: RunningPlatform) -> None:
    # Given a driver
    tenant = await platform.new_tenant()
    headers = await dispatcher(platform, tenant)
    _ada, ada_me = await a_driver(platform, tenant, headers)

    # When they upload an SVG, an empty image and one over the size limit (10 MiB by default)
    svg = await upload(platform, ada_me, b"<svg/>", "image/svg+xml")
    empty = await upload(platform, ada_me, b"", "image/png")
    huge = await upload(platform, ada_me, PNG + b"\x00" * (10 * 1024 * 1024), "image/png")

    # Then each is refused, naming the file
    for response, status, slug in (
        (svg, 422, "invalid-input"),
        (empty, 422, "invalid-input"),
        (huge, 413, "file-too-large"),
    ):
        assert_problem(response, status, slug)
        assert [(e["field"], e["in"]) for e in response.json()["errors"]] == [("file", "body")]


async def test_a_delivery_is_proven_with_uploaded_files_of_the_tenant_only(platform: RunningPlatform) -> None:
    # Given a job assigned to Ada, who has uploaded a photo
    tenant = await platform.new_tenant()
    headers = await dispatcher(platform, tenant)
    ada, ada_me = await a_driver(platform, tenant, headers)
    await on_duty(platform, ada_me)
    placed = await accepted_order(platform, tenant)
    path = f"/v1/dispatch/jobs/{(await job_of(platform, headers, placed['id']))['id']}"
    await ok(await platform.client.post(f"{path}/assign", json={"driver_id": ada["id"]}, headers=headers))
    for step in ({"stop": "pickup"}, None, {"stop": "dropoff"}):
        if step is None:
            await ok(await platform.client.post(f"{path}/pick-up", headers=ada_me))
        else:
            await ok(await platform.client.post(f"{path}/arrive", json=step, headers=ada_me))
    photo = await created(await upload(platform, ada_me, PNG, "image/png"))

    # When she delivers naming a key that is not one of the tenant's uploads
    foreign = await platform.client.post(
        f"{path}/deliver", json={"photo_keys": ["someone-else/x.png"]}, headers=ada_me
    )

    # Then it is refused naming the photo, and with her photo the job is delivered with it as proof
    assert_problem(foreign, 422, "invalid-input")
    assert foreign.json()["errors"][0]["field"] == "photo_keys.0"
    done = await ok(
        await platform.client.post(f"{path}/deliver", json={"photo_keys": [photo["key"]]}, headers=ada_me)
    )
    assert (done["status"], done["proof"]["photo_keys"]) == ("delivered", [photo["key"]])
