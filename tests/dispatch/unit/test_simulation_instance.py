"""Reading an MDRP instance folder: the four files, and errors that name the file and the line."""

from __future__ import annotations

from pathlib import Path

import pytest

from doorstep.dispatch.simulation.instance import (
    Courier,
    InstanceError,
    Order,
    Parameters,
    Point,
    Restaurant,
    load_instance,
    travel_minutes,
)

FILES = {
    "restaurants.txt": "restaurant\tx\ty\nr1\t100\t200\nr2\t1000.5\t0\n",
    "orders.txt": (
        "order\tx\ty\tplacement_time\trestaurant\tready_time\n"
        "o1\t300\t400\t13\tr1\t28\n"
        "o2\t0\t0\t24\tr2\t29\n"
    ),
    "couriers.txt": "courier\tx\ty\ton_time\toff_time\nc1\t7209\t186\t0\t90\n",
    "instance_parameters.txt": (
        "meters_per_minute\tpickup service minutes\tdropoff service minutes\ttarget click-to-door\t"
        "maximum click-to-door\tpay per order\tguaranteed pay per hour\n"
        "320\t4\t4\t40\t90\t10\t15\n"
    ),
}


def write(folder: Path, **changes: str) -> Path:
    folder.mkdir(exist_ok=True)
    for name, text in {**FILES, **changes}.items():
        (folder / name).write_text(text)
    return folder


def test_an_instance_folder_reads_into_frozen_records(tmp_path: Path) -> None:
    # given a small instance folder
    folder = write(tmp_path / "1o50t100s1p100")

    # when it is read
    instance = load_instance(folder)

    # then every record is there, typed
    assert instance.name == "1o50t100s1p100"
    assert instance.orders == (
        Order("o1", Point(300, 400), placement_time=13, restaurant_id="r1", ready_time=28),
        Order("o2", Point(0, 0), placement_time=24, restaurant_id="r2", ready_time=29),
    )
    assert instance.restaurants == {
        "r1": Restaurant("r1", Point(100, 200)),
        "r2": Restaurant("r2", Point(1000.5, 0)),
    }
    assert instance.couriers == (Courier("c1", Point(7209, 186), on_time=0, off_time=90),)
    assert instance.parameters == Parameters(320, 4, 4, 40, 90, 10, 15)


def test_travel_time_is_the_ceiling_of_distance_over_speed() -> None:
    # given points 500 m and 640 m apart, at 320 m a minute
    # when / then 500/320 = 1.56 rounds up to 2, 640/320 is exactly 2, and no distance takes 0
    assert travel_minutes(Point(0, 0), Point(300, 400), 320) == 2
    assert travel_minutes(Point(0, 0), Point(640, 0), 320) == 2
    assert travel_minutes(Point(5, 5), Point(5, 5), 320) == 0


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        (
            {"orders.txt": FILES["orders.txt"] + "o3\t1\t2\t30\tr1\n"},
            "orders.txt, line 4: expected 6 fields, found 5",
        ),
        (
            {"orders.txt": FILES["orders.txt"] + "o3\t1\t2\tsoon\tr1\t40\n"},
            "orders.txt, line 4: could not convert",
        ),
        (
            {"orders.txt": FILES["orders.txt"] + "o3\t1\t2\t30.5\tr1\t40\n"},
            "line 4: '30.5' is not a whole number",
        ),
        (
            {"orders.txt": FILES["orders.txt"] + "o3\t1\t2\t30\tr9\t40\n"},
            "line 4: order o3 names unknown restaurant r9",
        ),
        (
            {"orders.txt": FILES["orders.txt"] + "o3\t1\t2\t30\tr1\t20\n"},
            "line 4: order o3 is ready before it is placed",
        ),
        ({"orders.txt": FILES["orders.txt"] + "o1\t1\t2\t30\tr1\t40\n"}, "line 4: order o1 appears twice"),
        (
            {"couriers.txt": "courier\tx\ty\ton_time\toff_time\nc1\t0\t0\t90\t90\n"},
            "couriers.txt, line 2: courier c1 goes off",
        ),
        (
            {"restaurants.txt": "restaurant\tx\ty\nr1\tnan\t0\n"},
            "restaurants.txt, line 2: 'nan' is not a finite number",
        ),
        (
            {"instance_parameters.txt": "header\n"},
            "instance_parameters.txt: expected one line of values, found 0",
        ),
    ],
)
def test_a_malformed_file_is_named_with_its_line(
    tmp_path: Path, changes: dict[str, str], message: str
) -> None:
    # given an instance with one bad file
    folder = write(tmp_path / "bad", **changes)

    # when it is read, then the error names the file and the line
    with pytest.raises(InstanceError, match=message.replace("(", r"\(")):
        load_instance(folder)


def test_a_missing_file_or_folder_is_named(tmp_path: Path) -> None:
    # given a folder without couriers.txt, and a path that does not exist
    folder = write(tmp_path / "partial")
    (folder / "couriers.txt").unlink()

    # when read, then each error names what is missing
    with pytest.raises(InstanceError, match=r"couriers.txt: cannot be read \(No such file or directory\)"):
        load_instance(folder)
    with pytest.raises(InstanceError, match="nowhere: not a folder with an MDRP instance"):
        load_instance(tmp_path / "nowhere")
