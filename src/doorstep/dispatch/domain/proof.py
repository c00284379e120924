"""Proof of delivery: what a job demands at the door, and the check of what the driver brings."""

from __future__ import annotations

import hmac
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from doorstep.kernel.errors import InvalidInput

PIN_PATTERN = re.compile(r"^[0-9]{4,8}$")
MAX_PHOTOS = 10


class InvalidProof(InvalidInput):
    slug = "invalid-proof-of-delivery"
    title = "The proof of delivery is not valid"

    def __init__(self, detail: str, *, field: str, **extensions: Any) -> None:
        super().__init__(detail, field=field, location="body", **extensions)


class MissingProof(InvalidProof):
    slug = "missing-proof-of-delivery"
    title = "The job cannot be delivered without this proof"


class WrongPin(InvalidProof):
    slug = "wrong-delivery-pin"
    title = "The PIN does not match the job's"


class AgeCheckFailed(InvalidProof):
    """The recipient is too young: the driver fails the job with `age_check_failed` instead."""

    slug = "age-check-failed"
    title = "The recipient does not meet the minimum age"


@dataclass(frozen=True, slots=True)
class ProofRequirements:
    """What the door must yield before a job counts as delivered."""

    photo: bool = False
    signature: bool = False
    pin: str | None = None  # the code the recipient was given
    minimum_age: int | None = None
    cash_to_collect: int | None = None  # minor units

    def __post_init__(self) -> None:
        if self.pin is not None and not PIN_PATTERN.match(self.pin):
            raise InvalidProof("the PIN must be 4 to 8 digits", field="pin")
        if self.minimum_age is not None and not 1 <= self.minimum_age <= 99:
            raise InvalidProof("the minimum age must be within 1..99", field="age_check")
        if self.cash_to_collect is not None and self.cash_to_collect <= 0:
            raise InvalidProof("cash to collect must be a positive amount", field="cash_to_collect")


@dataclass(frozen=True, slots=True)
class AgeCheck:
    """The driver saw the recipient's birth year, or checked an identity document."""

    birth_year: int | None = None
    verified_by_id: bool = False


@dataclass(frozen=True, slots=True)
class ProofOfDelivery:
    photo_keys: tuple[str, ...] = ()  # keys in the file store
    signature_key: str | None = None
    pin: str | None = None
    age_check: AgeCheck | None = None
    cash_collected: int | None = None  # minor units

    def __post_init__(self) -> None:
        if len(self.photo_keys) > MAX_PHOTOS:
            raise InvalidProof(f"at most {MAX_PHOTOS} photos", field="photo_keys")
        for index, key in enumerate(self.photo_keys):
            if not key.strip():
                raise InvalidProof("a photo key must not be empty", field=f"photo_keys[{index}]")
        if self.signature_key is not None and not self.signature_key.strip():
            raise InvalidProof("the signature key must not be empty", field="signature_key")


def check_proof(required: ProofRequirements, proof: ProofOfDelivery, *, now: datetime) -> None:
    """Raise the first thing the proof lacks or gets wrong; return when it satisfies the job."""
    if required.photo and not proof.photo_keys:
        raise MissingProof("this job needs a photo of the delivery", field="proof.photo_keys")
    if required.signature and proof.signature_key is None:
        raise MissingProof("this job needs the recipient's signature", field="proof.signature_key")
    if required.pin is not None:
        if proof.pin is None:
            raise MissingProof("this job needs the recipient's PIN", field="proof.pin")
        if not hmac.compare_digest(proof.pin.encode(), required.pin.encode()):
            raise WrongPin("the PIN entered does not match", field="proof.pin")
    if required.minimum_age is not None:
        _check_age(required.minimum_age, proof.age_check, now=now)
    if required.cash_to_collect is not None:
        if proof.cash_collected is None:
            raise MissingProof(
                f"this job collects {required.cash_to_collect} in cash", field="proof.cash_collected"
            )
        if proof.cash_collected != required.cash_to_collect:
            raise InvalidProof(
                f"collected {proof.cash_collected} but the job collects {required.cash_to_collect}",
                field="proof.cash_collected",
            )


def _check_age(minimum_age: int, check: AgeCheck | None, *, now: datetime) -> None:
    if check is None or (check.birth_year is None and not check.verified_by_id):
        raise MissingProof(
            f"this job needs an age check ({minimum_age}+): the birth year or an identity check",
            field="proof.age_check",
        )
    if check.verified_by_id:
        return
    assert check.birth_year is not None
    if not 1900 <= check.birth_year <= now.year:
        raise InvalidProof(f"{check.birth_year} is not a birth year", field="proof.age_check.birth_year")
    # A birth year alone proves only the age reached by the year's last day minus one: someone who turns
    # the minimum age this year may not have had the birthday yet, so the driver checks an ID instead.
    if now.year - check.birth_year - 1 < minimum_age:
        raise AgeCheckFailed(
            f"born in {check.birth_year}, the recipient may be under {minimum_age}; check an identity "
            "document and set verified_by_id",
            field="proof.age_check.birth_year",
        )
