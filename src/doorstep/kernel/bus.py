"""The message bus: routes each command to its one handler with a fresh unit of work."""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from doorstep.kernel.messages import CloudEvent, Command

Handler = Callable[..., Awaitable[Any]]


class NoHandler(LookupError):
    pass


class MessageBus:
    """`handle(command)` calls the command's handler with `uow=` and any other dependency it names."""

    def __init__(
        self,
        *,
        uow_factory: Callable[[CloudEvent | None], Any],
        handlers: Mapping[type[Command], Handler],
        dependencies: Mapping[str, Any],
    ) -> None:
        self._uow_factory = uow_factory
        self._handlers = {
            command: (handler, _wanted(handler, dependencies)) for command, handler in handlers.items()
        }

    async def handle(self, command: Command, *, causing_message: CloudEvent | None = None) -> Any:
        try:
            handler, dependencies = self._handlers[type(command)]
        except KeyError:
            raise NoHandler(f"no handler for {type(command).__name__}") from None
        return await handler(command, uow=self._uow_factory(causing_message), **dependencies)


def _wanted(handler: Handler, dependencies: Mapping[str, Any]) -> dict[str, Any]:
    """The dependencies a handler names as keyword-only parameters (besides `uow`)."""
    wanted: dict[str, Any] = {}
    for name, parameter in inspect.signature(handler).parameters.items():
        if parameter.kind is not inspect.Parameter.KEYWORD_ONLY or name == "uow":
            continue
        if name not in dependencies:
            if parameter.default is inspect.Parameter.empty:
                raise NoHandler(f"{handler.__qualname__} needs {name!r}, which bootstrap does not provide")
            continue
        wanted[name] = dependencies[name]
    return wanted
