"""An MDRP instance (Grubhub's meal delivery routing problem): the folder's files as frozen dataclasses.

Each file is tab-separated (any whitespace is accepted) with a header line first, as the upstream
evaluator reads them; see FORMAT.md beside the instances.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")


class InstanceError(ValueError):
    """A file of the instance is missing or malformed; the message names the file and the line."""


@dataclass(frozen=True, slots=True)
class Point:
    x: float
    y: float


@dataclass(frozen=True, slots=True)
class Restaurant:
    id: str
    location: Point


@dataclass(frozen=True, slots=True)
class Order:
    id: str
    drop_off: Point
    placement_time: int
    restaurant_id: str
    ready_time: int


@dataclass(frozen=True, slots=True)
class Courier:
    id: str
    on_location: Point
    on_time: int
    off_time: int


@dataclass(frozen=True, slots=True)
class Parameters:
    meters_per_minute: float
    pickup_service_minutes: float
    dropoff_service_minutes: float
    target_click_to_door: float
    maximum_click_to_door: float
    pay_per_order: float
    guaranteed_pay_per_hour: float


@dataclass(frozen=True, slots=True)
class Instance:
    name: str
    orders: tuple[Order, ...]
    restaurants: Mapping[str, Restaurant]
    couriers: tuple[Courier, ...]
    parameters: Parameters

    def travel_minutes(self, origin: Point, destination: Point) -> int:
        return travel_minutes(origin, destination, self.parameters.meters_per_minute)


def travel_minutes(origin: Point, destination: Point, meters_per_minute: float) -> int:
    """ceil(euclidean metres / speed), computed as the upstream evaluator does (sqrt, not hypot)."""
    dx = destination.x - origin.x
    dy = destination.y - origin.y
    return math.ceil(math.sqrt(dx * dx + dy * dy) / meters_per_minute)


def load_instance(folder: Path) -> Instance:
    if not folder.is_dir():
        raise InstanceError(f"{folder}: not a folder with an MDRP instance")
    restaurants = {
        one.id: one
        for one in _rows(
            folder / "restaurants.txt", 3, lambda f: Restaurant(f[0], Point(_num(f[1]), _num(f[2])))
        )
    }
    orders = _rows(
        folder / "orders.txt",
        6,
        lambda f: Order(f[0], Point(_num(f[1]), _num(f[2])), _int(f[3]), f[4], _int(f[5])),
    )
    couriers = _rows(
        folder / "couriers.txt",
        5,
        lambda f: Courier(f[0], Point(_num(f[1]), _num(f[2])), _int(f[3]), _int(f[4])),
    )
    parameters = _rows(folder / "instance_parameters.txt", 7, lambda f: Parameters(*(_num(v) for v in f)))
    parameters_file = folder / "instance_parameters.txt"
    if len(parameters) != 1:
        raise InstanceError(f"{parameters_file}: expected one line of values, found {len(parameters)}")
    if parameters[0].meters_per_minute <= 0:
        raise InstanceError(f"{parameters_file}, line 2: meters_per_minute must be positive")
    _check(folder, orders, restaurants, couriers)
    return Instance(folder.name, tuple(orders), restaurants, tuple(couriers), parameters[0])


def _check(
    folder: Path, orders: list[Order], restaurants: Mapping[str, Restaurant], couriers: list[Courier]
) -> None:
    seen: set[str] = set()
    for line, order in enumerate(orders, start=2):
        where = f"{folder / 'orders.txt'}, line {line}"
        if order.restaurant_id not in restaurants:
            raise InstanceError(f"{where}: order {order.id} names unknown restaurant {order.restaurant_id}")
        if order.ready_time < order.placement_time:
            raise InstanceError(f"{where}: order {order.id} is ready before it is placed")
        if order.id in seen:
            raise InstanceError(f"{where}: order {order.id} appears twice")
        seen.add(order.id)
    seen.clear()
    for line, courier in enumerate(couriers, start=2):
        where = f"{folder / 'couriers.txt'}, line {line}"
        if courier.off_time <= courier.on_time:
            raise InstanceError(f"{where}: courier {courier.id} goes off duty before going on")
        if courier.id in seen:
            raise InstanceError(f"{where}: courier {courier.id} appears twice")
        seen.add(courier.id)


def _rows(path: Path, width: int, build: Callable[[list[str]], T]) -> list[T]:
    try:
        lines = path.read_text().splitlines()
    except OSError as error:
        raise InstanceError(f"{path}: cannot be read ({error.strerror or error})") from None
    rows: list[T] = []
    for number, line in enumerate(lines[1:], start=2):
        fields = line.split()
        if not fields:
            continue
        if len(fields) != width:
            raise InstanceError(f"{path}, line {number}: expected {width} fields, found {len(fields)}")
        try:
            rows.append(build(fields))
        except ValueError as error:
            raise InstanceError(f"{path}, line {number}: {error}") from None
    return rows


def _num(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{text!r} is not a finite number")
    return value


def _int(text: str) -> int:
    value = _num(text)
    if value != int(value):
        raise ValueError(f"{text!r} is not a whole number of minutes")
    return int(value)
