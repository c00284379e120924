"""Position pings and the downsampled track kept for replay. No I/O."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from doorstep.dispatch.domain.geometry import Point, distance_m
from doorstep.kernel.errors import InvalidInput

# A driver pings every few seconds; replaying a route needs far less. A ping joins the track when this
# long has passed since the last kept point, or when the driver has moved this far from it.
KEEP_EVERY = timedelta(seconds=15)
KEEP_MOVED_M = 25.0
# Phones' clocks run a little ahead; more than this in the future is a wrong clock, not a position.
CLOCK_SKEW = timedelta(seconds=30)
MAX_BATCH = 100


@dataclass(frozen=True, slots=True)
class Ping:
    point: Point
    recorded_at: datetime
    accuracy_m: float | None = None
    speed_mps: float | None = None
    heading: float | None = None


def check_recorded(pings: Sequence[Ping], *, now: datetime, skew: timedelta = CLOCK_SKEW) -> None:
    """Refuse a ping recorded in the future (beyond the skew), naming it."""
    for index, ping in enumerate(pings):
        if ping.recorded_at > now + skew:
            raise InvalidInput(
                f"recorded_at is {ping.recorded_at.isoformat()}, later than now ({now.isoformat()}) "
                f"by more than {int(skew.total_seconds())} s: is the device's clock right?",
                field=f"pings.{index}.recorded_at",
                location="body",
            )


def latest(pings: Iterable[Ping]) -> Ping | None:
    return max(pings, key=lambda ping: ping.recorded_at, default=None)


def downsample(
    pings: Iterable[Ping],
    *,
    last_kept: Ping | None,
    every: timedelta = KEEP_EVERY,
    moved_m: float = KEEP_MOVED_M,
) -> list[Ping]:
    """The pings to keep, in time order, after `last_kept` (the track's newest point so far).

    A ping not newer than the last kept point is dropped: a batch sent twice, or one that arrives after
    a later one, adds nothing.
    """
    kept: list[Ping] = []
    for ping in sorted(pings, key=lambda p: p.recorded_at):
        if last_kept is not None:
            if ping.recorded_at <= last_kept.recorded_at:
                continue
            elapsed = ping.recorded_at - last_kept.recorded_at
            if elapsed < every and distance_m(last_kept.point, ping.point) < moved_m:
                continue
        kept.append(ping)
        last_kept = ping
    return kept
