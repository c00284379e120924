"""Errors that cross the edge as RFC 9457 problem details, each with a stable `type`."""

from __future__ import annotations

from typing import Any, ClassVar

PROBLEM_BASE = "https://doorstep.dev/problems/"


class DoorstepError(Exception):
    """Base for errors the API reports. Subclasses set `slug`, `title` and `status`."""

    slug: ClassVar[str] = "error"
    title: ClassVar[str] = "Something went wrong"
    status: ClassVar[int] = 400

    def __init__(self, detail: str, **extensions: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.extensions = extensions
        self.headers: dict[str, str] = {}

    @property
    def type(self) -> str:
        return PROBLEM_BASE + self.slug


class NotFound(DoorstepError):
    slug = "not-found"
    title = "Not found"
    status = 404


class Conflict(DoorstepError):
    slug = "conflict"
    title = "Conflict"
    status = 409


class InvalidInput(DoorstepError):
    """Bad input that passed schema validation; names the field."""

    slug = "invalid-input"
    title = "Invalid input"
    status = 422

    def __init__(
        self, detail: str, *, field: str | None, location: str | None = None, **extensions: Any
    ) -> None:
        super().__init__(detail, errors=[{"field": field, "in": location, "message": detail}], **extensions)
        self.field = field


class Unauthenticated(DoorstepError):
    slug = "unauthenticated"
    title = "Authentication required"
    status = 401


class Forbidden(DoorstepError):
    slug = "forbidden"
    title = "Forbidden"
    status = 403


class ServiceUnavailable(DoorstepError):
    """A service this request depends on did not answer; retrying later may succeed."""

    slug = "service-unavailable"
    title = "Service unavailable"
    status = 503


class TooManyRequests(DoorstepError):
    """A rate limit said no; `headers` carry `Retry-After` and the `RateLimit-*` fields."""

    slug = "too-many-requests"
    title = "Too many requests"
    status = 429

    def __init__(self, detail: str, *, headers: dict[str, str], **extensions: Any) -> None:
        super().__init__(detail, **extensions)
        self.headers = dict(headers)
