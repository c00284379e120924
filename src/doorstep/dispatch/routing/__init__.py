"""Vehicle routing for dispatch: a solver-neutral model, its feasibility check and the solver adapters.

The adapters (`pyvrp_solver`, `vroom_solver`) import their vendor library when imported; import them
where a plan is made, not at start-up.
"""

from doorstep.dispatch.routing.feasibility import Violation, ViolationKind, check
from doorstep.dispatch.routing.model import (
    InvalidProblem,
    Job,
    JobKind,
    Plan,
    Problem,
    Stop,
    StopKind,
    TimeWindow,
    TravelMatrices,
    Vehicle,
    Visit,
    earliest_visits,
    plan_cost,
    plan_from_sequences,
)
from doorstep.dispatch.routing.ports import Solver, UnsupportedProblem

__all__ = [
    "InvalidProblem",
    "Job",
    "JobKind",
    "Plan",
    "Problem",
    "Solver",
    "Stop",
    "StopKind",
    "TimeWindow",
    "TravelMatrices",
    "UnsupportedProblem",
    "Vehicle",
    "Violation",
    "ViolationKind",
    "Visit",
    "check",
    "earliest_visits",
    "plan_cost",
    "plan_from_sequences",
]
