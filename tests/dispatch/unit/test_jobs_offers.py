"""Offers of a job to drivers: accepted, declined, timed out, broadcast with the first accept winning."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from doorstep.dispatch.domain.job_events import (
    Actor,
    JobAssigned,
    JobHandedToCourier,
    JobOffered,
    OfferAccepted,
    OfferDeclined,
    OfferExpired,
    OfferWithdrawn,
)
from doorstep.dispatch.domain.jobs import (
    IllegalJobTransition,
    InvalidJob,
    Job,
    JobStatus,
    JobStop,
    OfferStatus,
    Window,
)
from doorstep.dispatch.domain.offers import (
    DriverExcluded,
    OfferNotFound,
    OfferNotOpen,
    OfferTimedOut,
    accept_offer,
    assign,
    decline_offer,
    expire_offers,
    hand_to_courier,
    offer_job,
)

NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
S = JobStatus
IDS = {"job_id": "job-1", "order_id": "order-1", "tenant_id": "tenant-a"}


def new_job() -> Job:
    return Job.create(
        id="job-1",
        tenant_id="tenant-a",
        order_id="order-1",
        pickup=JobStop("Torstrasse 1, Berlin", 52.529, 13.401, Window(start=NOW)),
        dropoff=JobStop("Kastanienallee 5, Berlin", 52.538, 13.410, Window(end=NOW + timedelta(hours=1))),
        now=NOW,
    )


def at(seconds: int) -> datetime:
    return NOW + timedelta(seconds=seconds)


def test_a_driver_accepts_an_offer_and_gets_the_job() -> None:
    # given
    job = new_job()
    offered = offer_job(job, driver_ids=["driver-1"], expires_at=at(30), now=at(0))

    # when
    events = accept_offer(job, driver_id="driver-1", now=at(10))

    # then
    assert offered == [JobOffered(**IDS, at=at(0), driver_ids=("driver-1",), expires_at=at(30))]
    assert events == [
        OfferAccepted(**IDS, at=at(10), driver_id="driver-1"),
        JobAssigned(**IDS, at=at(10), driver_id="driver-1", actor=Actor.DRIVER, pinned=False),
    ]
    assert (job.status, job.driver_id, job.pinned) == (S.ASSIGNED, "driver-1", False)
    assert [(o.driver_id, o.status, o.answered_at) for o in job.offers] == [
        ("driver-1", OfferStatus.ACCEPTED, at(10))
    ]


def test_a_declined_offer_puts_the_job_back_and_the_driver_is_not_asked_again() -> None:
    # given
    job = new_job()
    offer_job(job, driver_ids=["driver-1"], expires_at=at(30), now=at(0))

    # when
    events = decline_offer(job, driver_id="driver-1", now=at(5))

    # then
    assert events == [OfferDeclined(**IDS, at=at(5), driver_id="driver-1", back_in_queue=True)]
    assert job.status is S.UNASSIGNED
    assert job.excluded_drivers == frozenset({"driver-1"})
    with pytest.raises(DriverExcluded) as refused:
        offer_job(job, driver_ids=["driver-2", "driver-1"], expires_at=at(60), now=at(6))
    assert refused.value.extensions["driver_ids"] == ["driver-1"]
    assert job.status is S.UNASSIGNED
    offer_job(job, driver_ids=["driver-2"], expires_at=at(60), now=at(6))
    assert [(offer.driver_id, offer.status) for offer in job.open_offers] == [("driver-2", OfferStatus.OPEN)]


def test_an_offer_not_answered_in_time_expires_and_the_job_goes_to_the_next_driver() -> None:
    # given
    job = new_job()
    offer_job(job, driver_ids=["driver-1"], expires_at=at(30), now=at(0))

    # when
    early = expire_offers(job, now=at(29))
    due = expire_offers(job, now=at(30))

    # then
    assert early == []
    assert due == [OfferExpired(**IDS, at=at(30), driver_id="driver-1", back_in_queue=True)]
    assert job.status is S.UNASSIGNED
    assert job.expired_for == {"driver-1"}
    assert job.excluded_drivers == frozenset({"driver-1"})
    with pytest.raises(DriverExcluded):
        offer_job(job, driver_ids=["driver-1"], expires_at=at(90), now=at(31))


def test_accepting_after_the_expiry_is_refused_even_before_the_sweep() -> None:
    # given
    job = new_job()
    offer_job(job, driver_ids=["driver-1"], expires_at=at(30), now=at(0))

    # when
    with pytest.raises(OfferTimedOut) as refused:
        accept_offer(job, driver_id="driver-1", now=at(30))

    # then
    assert refused.value.status == 409
    assert (job.status, job.driver_id, job.offers[0].status) == (S.OFFERED, None, OfferStatus.OPEN)


def test_a_broadcast_offer_goes_to_the_first_driver_who_accepts_and_is_withdrawn_from_the_others() -> None:
    # given
    job = new_job()
    offer_job(job, driver_ids=["driver-1", "driver-2", "driver-3"], expires_at=at(30), now=at(0))

    # when
    events = accept_offer(job, driver_id="driver-2", now=at(4))

    # then
    assert events == [
        OfferAccepted(**IDS, at=at(4), driver_id="driver-2"),
        OfferWithdrawn(**IDS, at=at(4), driver_id="driver-1"),
        OfferWithdrawn(**IDS, at=at(4), driver_id="driver-3"),
        JobAssigned(**IDS, at=at(4), driver_id="driver-2", actor=Actor.DRIVER, pinned=False),
    ]
    assert [(o.driver_id, o.status) for o in job.offers] == [
        ("driver-1", OfferStatus.WITHDRAWN),
        ("driver-2", OfferStatus.ACCEPTED),
        ("driver-3", OfferStatus.WITHDRAWN),
    ]
    with pytest.raises(OfferNotOpen) as late:
        accept_offer(job, driver_id="driver-1", now=at(5))
    assert late.value.detail == "the offer of job job-1 was withdrawn"
    assert job.driver_id == "driver-2"


def test_a_broadcast_waits_for_the_other_drivers_when_one_declines() -> None:
    # given
    job = new_job()
    offer_job(job, driver_ids=["driver-1", "driver-2"], expires_at=at(30), now=at(0))

    # when
    declined = decline_offer(job, driver_id="driver-1", now=at(3))
    expired = expire_offers(job, now=at(31))

    # then
    assert declined == [OfferDeclined(**IDS, at=at(3), driver_id="driver-1", back_in_queue=False)]
    assert expired == [OfferExpired(**IDS, at=at(31), driver_id="driver-2", back_in_queue=True)]
    assert job.status is S.UNASSIGNED
    assert (job.declined_by, job.expired_for) == ({"driver-1"}, {"driver-2"})


def test_a_driver_who_was_never_offered_the_job_cannot_accept_it() -> None:
    # given
    job = new_job()
    offer_job(job, driver_ids=["driver-1"], expires_at=at(30), now=at(0))

    # when
    with pytest.raises(OfferNotFound) as refused:
        accept_offer(job, driver_id="driver-9", now=at(1))

    # then
    assert refused.value.status == 404
    assert job.status is S.OFFERED


@pytest.mark.parametrize(
    ("driver_ids", "expires_at", "field"),
    [
        ([], at(30), "driver_ids"),
        (["driver-1", "driver-1"], at(30), "driver_ids"),
        (["driver-1"], at(0), "expires_at"),
    ],
)
def test_a_malformed_offer_is_refused_naming_the_field(
    driver_ids: list[str], expires_at: datetime, field: str
) -> None:
    # given
    job = new_job()

    # when
    with pytest.raises(InvalidJob) as refused:
        offer_job(job, driver_ids=driver_ids, expires_at=expires_at, now=at(0))

    # then
    assert refused.value.field == field
    assert (job.status, job.offers) == (S.UNASSIGNED, [])


def test_an_assigned_job_is_not_offered() -> None:
    # given
    job = new_job()
    assign(job, driver_id="driver-1", actor=Actor.AUTOMATIC, now=at(0))

    # when
    with pytest.raises(IllegalJobTransition) as refused:
        offer_job(job, driver_ids=["driver-2"], expires_at=at(30), now=at(1))

    # then
    assert refused.value.extensions["requested_status"] == "offered"
    assert job.offers == []


def test_automatic_dispatch_may_not_assign_a_driver_who_declined_but_a_dispatcher_may() -> None:
    # given
    job = new_job()
    offer_job(job, driver_ids=["driver-1"], expires_at=at(30), now=at(0))
    decline_offer(job, driver_id="driver-1", now=at(1))

    # when
    with pytest.raises(DriverExcluded):
        assign(job, driver_id="driver-1", actor=Actor.AUTOMATIC, now=at(2))
    events = assign(job, driver_id="driver-1", actor=Actor.DISPATCHER, now=at(3))

    # then
    assert events == [JobAssigned(**IDS, at=at(3), driver_id="driver-1", actor=Actor.DISPATCHER, pinned=True)]
    assert (job.status, job.driver_id) == (S.ASSIGNED, "driver-1")


def test_a_dispatcher_assigning_an_offered_job_withdraws_the_open_offers() -> None:
    # given
    job = new_job()
    offer_job(job, driver_ids=["driver-1", "driver-2"], expires_at=at(30), now=at(0))

    # when
    events = assign(job, driver_id="driver-3", actor=Actor.DISPATCHER, now=at(2))

    # then
    assert events == [
        OfferWithdrawn(**IDS, at=at(2), driver_id="driver-1"),
        OfferWithdrawn(**IDS, at=at(2), driver_id="driver-2"),
        JobAssigned(**IDS, at=at(2), driver_id="driver-3", actor=Actor.DISPATCHER, pinned=True),
    ]
    assert job.open_offers == []


def test_an_offered_job_is_handed_to_a_courier_when_no_own_driver_can_make_it() -> None:
    # given
    job = new_job()
    offer_job(job, driver_ids=["driver-1"], expires_at=at(30), now=at(0))

    # when
    events = hand_to_courier(job, courier="uber_direct", actor=Actor.AUTOMATIC, now=at(40))

    # then
    assert events == [
        OfferWithdrawn(**IDS, at=at(40), driver_id="driver-1"),
        JobHandedToCourier(**IDS, at=at(40), courier="uber_direct", actor=Actor.AUTOMATIC),
    ]
    assert (job.status, job.courier) == (S.HANDED_TO_COURIER, "uber_direct")
    assert events[1].order_status is None


def test_a_job_with_a_driver_is_not_handed_to_a_courier() -> None:
    # given
    job = new_job()
    assign(job, driver_id="driver-1", actor=Actor.AUTOMATIC, now=at(0))

    # when
    with pytest.raises(IllegalJobTransition) as refused:
        hand_to_courier(job, courier="uber_direct", actor=Actor.DISPATCHER, now=at(1))

    # then
    assert refused.value.extensions["requested_status"] == "handed_to_courier"
    assert (job.status, job.courier) == (S.ASSIGNED, None)


def test_a_courier_hand_over_names_the_courier() -> None:
    # given
    job = new_job()

    # when
    with pytest.raises(InvalidJob) as refused:
        hand_to_courier(job, courier=" ", actor=Actor.DISPATCHER, now=at(1))

    # then
    assert refused.value.field == "courier"
    assert job.status is S.UNASSIGNED
