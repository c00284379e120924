from collections.abc import Iterable
from typing import Any

from doorstep.kernel.errors import Conflict, InvalidInput, NotFound


class DriverNotFound(NotFound):
    slug = "driver-not-found"
    title = "Driver not found"


class NotADriver(NotFound):
    slug = "not-a-driver"
    title = "The caller has no driver profile in this tenant"


class VehicleNotFound(NotFound):
    slug = "vehicle-not-found"
    title = "Vehicle not found"


class TeamNotFound(NotFound):
    slug = "team-not-found"
    title = "Team not found"


class ZoneNotFound(NotFound):
    slug = "zone-not-found"
    title = "Zone not found"


class ShiftNotFound(NotFound):
    slug = "shift-not-found"
    title = "Shift not found"


class InvalidZone(InvalidInput):
    slug = "invalid-zone"
    title = "The zone is not a valid GeoJSON Polygon or MultiPolygon"

    def __init__(self, detail: str, *, field: str, **extensions: Any) -> None:
        super().__init__(detail, field=field, location="body", **extensions)


class InvalidFleetInput(InvalidInput):
    """A reference to something the tenant does not have, or values that contradict each other."""

    slug = "invalid-fleet-input"
    title = "The fleet data is not valid"

    def __init__(self, detail: str, *, field: str, location: str = "body", **extensions: Any) -> None:
        super().__init__(detail, field=field, location=location, **extensions)


class IllegalDriverTransition(Conflict):
    slug = "illegal-driver-transition"
    title = "The driver cannot move to that state"

    def __init__(self, current: str, target: str, allowed: Iterable[str]) -> None:
        allowed_states = sorted(allowed)
        super().__init__(
            f"a driver who is {current} cannot become {target}; allowed: {', '.join(allowed_states)}",
            current_state=current,
            requested_state=target,
            allowed_states=allowed_states,
        )


class DriverOffline(Conflict):
    slug = "driver-offline"
    title = "The driver is off duty"


class StillReferenced(Conflict):
    slug = "still-referenced"
    title = "Something still refers to it"


class UserAlreadyADriver(Conflict):
    slug = "user-already-a-driver"
    title = "That user has a driver profile already"
