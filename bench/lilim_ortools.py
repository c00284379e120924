"""The benchmark's peer: OR-Tools' routing solver with guided local search on the same routing model.

Shipments only (Li & Lim has nothing else), one time window per stop, single-threaded. Arc cost is the
distance, a used vehicle costs its fixed cost, time is a dimension with waiting allowed and load another.
"""

from __future__ import annotations

from ortools.constraint_solver import pywrapcp, routing_enums_pb2  # type: ignore[import-untyped]

from doorstep.dispatch.routing import Plan, Problem, StopKind, UnsupportedProblem, plan_from_sequences


def solve(problem: Problem, *, time_limit: float, seed: int = 0) -> Plan:
    del seed  # the search is deterministic
    depots = {(v.start, v.end) for v in problem.vehicles}
    if len(depots) != 1 or len({v.profile for v in problem.vehicles}) != 1:
        raise UnsupportedProblem("the peer takes one depot and one profile", field="vehicles")
    ((depot, end),) = depots
    if depot != end:
        raise UnsupportedProblem("the peer takes routes that end where they start", field="vehicles")
    matrices = problem.matrices[problem.vehicles[0].profile]
    # Node 0 is the depot; then each job's pickup and delivery.
    nodes: list[tuple[int, int, int, int, int]] = [
        (depot, 0, 0, 0, 0)
    ]  # location, early, late, service, load
    stops: list[tuple[str, StopKind]] = [("", StopKind.PICKUP)]
    horizon = max(v.shift.end for v in problem.vehicles)
    for job in problem.jobs:
        if job.pickup is None or job.delivery is None or len(job.size) != 1:
            raise UnsupportedProblem(f"job {job.id}: the peer takes shipments of one size", field="jobs")
        for kind, stop, load in (
            (StopKind.PICKUP, job.pickup, job.size[0]),
            (StopKind.DELIVERY, job.delivery, -job.size[0]),
        ):
            if len(stop.windows) > 1:
                raise UnsupportedProblem(f"job {job.id}: one time window per stop", field="windows")
            early, late = (stop.windows[0].start, stop.windows[0].end) if stop.windows else (0, horizon)
            nodes.append((stop.location, early, late, stop.service, load))
            stops.append((job.id, kind))
    locations = [n[0] for n in nodes]
    distance = [[matrices.distances[a][b] for b in locations] for a in locations]
    transit = [[n[3] + matrices.durations[n[0]][b] for b in locations] for n in nodes]
    vehicles = problem.vehicles
    manager = pywrapcp.RoutingIndexManager(len(nodes), len(vehicles), 0)
    routing = pywrapcp.RoutingModel(manager)
    routing.SetArcCostEvaluatorOfAllVehicles(routing.RegisterTransitMatrix(distance))
    for k, vehicle in enumerate(vehicles):
        routing.SetFixedCostOfVehicle(vehicle.fixed_cost, k)
    routing.AddDimension(routing.RegisterTransitMatrix(transit), horizon, horizon, False, "Time")
    clock = routing.GetDimensionOrDie("Time")
    for node, (_, early, late, _, _) in enumerate(nodes[1:], start=1):
        clock.CumulVar(manager.NodeToIndex(node)).SetRange(early, late)
    for k, vehicle in enumerate(vehicles):
        clock.CumulVar(routing.Start(k)).SetRange(vehicle.shift.start, vehicle.shift.end)
        clock.CumulVar(routing.End(k)).SetRange(vehicle.shift.start, vehicle.shift.end)
    loads = routing.RegisterUnaryTransitVector([n[4] for n in nodes])
    routing.AddDimensionWithVehicleCapacity(loads, 0, [v.capacity[0] for v in vehicles], True, "Load")
    solver = routing.solver()
    for node in range(1, len(nodes), 2):
        pickup, delivery = manager.NodeToIndex(node), manager.NodeToIndex(node + 1)
        routing.AddPickupAndDelivery(pickup, delivery)
        solver.Add(routing.VehicleVar(pickup) == routing.VehicleVar(delivery))
        solver.Add(clock.CumulVar(pickup) <= clock.CumulVar(delivery))
    parameters = pywrapcp.DefaultRoutingSearchParameters()
    parameters.first_solution_strategy = routing_enums_pb2.FirstSolutionStrategy.PARALLEL_CHEAPEST_INSERTION
    parameters.local_search_metaheuristic = routing_enums_pb2.LocalSearchMetaheuristic.GUIDED_LOCAL_SEARCH
    parameters.time_limit.FromMilliseconds(int(time_limit * 1000))
    solution = routing.SolveWithParameters(parameters)
    sequences: dict[str, list[tuple[str, StopKind]]] = {}
    if solution is not None:
        for k, vehicle in enumerate(vehicles):
            index = solution.Value(routing.NextVar(routing.Start(k)))
            while not routing.IsEnd(index):
                sequences.setdefault(vehicle.id, []).append(stops[manager.IndexToNode(index)])
                index = solution.Value(routing.NextVar(index))
    return plan_from_sequences(problem, sequences)
