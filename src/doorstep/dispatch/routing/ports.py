"""What the dispatch planner needs from a routing solver."""

from __future__ import annotations

from typing import Protocol

from doorstep.dispatch.routing.model import Plan, Problem
from doorstep.kernel.errors import InvalidInput


class UnsupportedProblem(InvalidInput):
    """The solver cannot express part of the problem; another solver may."""

    slug = "unsupported-routing-problem"
    title = "This routing solver cannot plan that problem"


class Solver(Protocol):
    def __call__(self, problem: Problem, *, time_limit: float, seed: int = 0) -> Plan:
        """The best plan found within `time_limit` seconds; jobs it cannot serve are left unassigned."""
        ...
