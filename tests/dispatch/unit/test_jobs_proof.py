"""Proof of delivery: a job that needs a PIN, an age check, a photo, a signature or cash is not delivered
without it, and a refusal names the missing proof."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from doorstep.contracts.orders import OrderStatus
from doorstep.dispatch.domain.execution import arrive_at_dropoff, arrive_at_pickup, deliver, pick_up
from doorstep.dispatch.domain.job_events import Actor, JobDelivered
from doorstep.dispatch.domain.jobs import Job, JobStatus, JobStop, TaskStatus, Window
from doorstep.dispatch.domain.offers import assign
from doorstep.dispatch.domain.proof import (
    AgeCheck,
    AgeCheckFailed,
    InvalidProof,
    MissingProof,
    ProofOfDelivery,
    ProofRequirements,
    WrongPin,
)

NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
DOOR = NOW + timedelta(minutes=30)


def at_the_door(requirements: ProofRequirements) -> Job:
    job = Job.create(
        id="job-1",
        tenant_id="tenant-a",
        order_id="order-1",
        pickup=JobStop("Torstrasse 1, Berlin", 52.529, 13.401, Window(start=NOW)),
        dropoff=JobStop("Kastanienallee 5, Berlin", 52.538, 13.410, Window(end=NOW + timedelta(hours=1))),
        requirements=requirements,
        now=NOW,
    )
    assign(job, driver_id="driver-1", actor=Actor.AUTOMATIC, now=NOW)
    arrive_at_pickup(job, driver_id="driver-1", now=NOW + timedelta(minutes=10))
    pick_up(job, driver_id="driver-1", now=NOW + timedelta(minutes=11))
    arrive_at_dropoff(job, driver_id="driver-1", now=DOOR)
    return job


def test_a_job_without_requirements_is_delivered_with_the_proof_the_driver_brings() -> None:
    # given
    job = at_the_door(ProofRequirements())
    proof = ProofOfDelivery(photo_keys=("pod/job-1/door.jpg",))

    # when
    events = deliver(job, driver_id="driver-1", proof=proof, now=DOOR)

    # then
    assert events == [
        JobDelivered(
            job_id="job-1",
            order_id="order-1",
            tenant_id="tenant-a",
            at=DOOR,
            driver_id="driver-1",
            proof=proof,
        )
    ]
    assert events[0].order_status is OrderStatus.DELIVERED
    assert (job.status, job.proof, job.dropoff.status) == (JobStatus.DELIVERED, proof, TaskStatus.DONE)


@pytest.mark.parametrize(
    ("requirements", "proof", "error", "field"),
    [
        (ProofRequirements(pin="4711"), ProofOfDelivery(), MissingProof, "proof.pin"),
        (ProofRequirements(pin="4711"), ProofOfDelivery(pin="4712"), WrongPin, "proof.pin"),
        (ProofRequirements(minimum_age=18), ProofOfDelivery(), MissingProof, "proof.age_check"),
        (
            ProofRequirements(minimum_age=18),
            ProofOfDelivery(age_check=AgeCheck()),
            MissingProof,
            "proof.age_check",
        ),
        (
            ProofRequirements(minimum_age=18),
            ProofOfDelivery(age_check=AgeCheck(birth_year=2010)),
            AgeCheckFailed,
            "proof.age_check.birth_year",
        ),
        # Turns 18 in 2025 but maybe later in the year: the birth year alone does not prove it.
        (
            ProofRequirements(minimum_age=18),
            ProofOfDelivery(age_check=AgeCheck(birth_year=2007)),
            AgeCheckFailed,
            "proof.age_check.birth_year",
        ),
        (
            ProofRequirements(minimum_age=18),
            ProofOfDelivery(age_check=AgeCheck(birth_year=1850)),
            InvalidProof,
            "proof.age_check.birth_year",
        ),
        (
            ProofRequirements(photo=True),
            ProofOfDelivery(signature_key="sig/1.png"),
            MissingProof,
            "proof.photo_keys",
        ),
        (
            ProofRequirements(signature=True),
            ProofOfDelivery(photo_keys=("p/1.jpg",)),
            MissingProof,
            "proof.signature_key",
        ),
        (ProofRequirements(cash_to_collect=2450), ProofOfDelivery(), MissingProof, "proof.cash_collected"),
        (
            ProofRequirements(cash_to_collect=2450),
            ProofOfDelivery(cash_collected=2000),
            InvalidProof,
            "proof.cash_collected",
        ),
    ],
)
def test_a_delivery_without_the_proof_the_job_needs_is_refused_naming_it(
    requirements: ProofRequirements, proof: ProofOfDelivery, error: type[InvalidProof], field: str
) -> None:
    # given
    job = at_the_door(requirements)

    # when
    with pytest.raises(InvalidProof) as refused:
        deliver(job, driver_id="driver-1", proof=proof, now=DOOR)

    # then
    assert type(refused.value) is error
    assert refused.value.field == field
    assert refused.value.status == 422
    assert refused.value.extensions["errors"] == [
        {"field": field, "in": "body", "message": refused.value.detail}
    ]
    assert (job.status, job.proof, job.dropoff.status) == (
        JobStatus.ARRIVED_AT_DROPOFF,
        None,
        TaskStatus.ARRIVED,
    )


@pytest.mark.parametrize(
    ("requirements", "proof"),
    [
        (ProofRequirements(pin="4711"), ProofOfDelivery(pin="4711")),
        (ProofRequirements(minimum_age=18), ProofOfDelivery(age_check=AgeCheck(birth_year=2006))),
        (ProofRequirements(minimum_age=18), ProofOfDelivery(age_check=AgeCheck(verified_by_id=True))),
        (ProofRequirements(photo=True, signature=True), ProofOfDelivery(("p/1.jpg",), "sig/1.png")),
        (ProofRequirements(cash_to_collect=2450), ProofOfDelivery(cash_collected=2450)),
    ],
)
def test_a_delivery_with_the_proof_the_job_needs_is_accepted(
    requirements: ProofRequirements, proof: ProofOfDelivery
) -> None:
    # given
    job = at_the_door(requirements)

    # when
    deliver(job, driver_id="driver-1", proof=proof, now=DOOR)

    # then
    assert (job.status, job.proof) == (JobStatus.DELIVERED, proof)


@pytest.mark.parametrize(
    ("build", "field"),
    [
        (lambda: ProofRequirements(pin="47a1"), "pin"),
        (lambda: ProofRequirements(pin="123"), "pin"),
        (lambda: ProofRequirements(minimum_age=0), "age_check"),
        (lambda: ProofRequirements(cash_to_collect=0), "cash_to_collect"),
        (lambda: ProofOfDelivery(photo_keys=("p/1.jpg", " ")), "photo_keys[1]"),
        (lambda: ProofOfDelivery(photo_keys=tuple(f"p/{n}.jpg" for n in range(11))), "photo_keys"),
        (lambda: ProofOfDelivery(signature_key=""), "signature_key"),
    ],
)
def test_malformed_requirements_or_proof_are_refused_naming_the_field(build: object, field: str) -> None:
    # given
    assert callable(build)

    # when
    with pytest.raises(InvalidProof) as refused:
        build()

    # then
    assert refused.value.field == field
