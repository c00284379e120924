"""The revocation list as the distributed gateway's edge asks it: a recent "not revoked" is reused briefly.

Every request's credential is checked against the revocation list, a Redis round trip. At the gateway that
round trip is only a first line: the service behind it asks the list itself on every request (defence in
depth) and refuses a revoked credential at once. So the edge may reuse a "not revoked" answer for a second;
a credential revoked meanwhile is still refused, by the service, with the same 401, and the gateway stops
forwarding it a second later. A "revoked" answer is never reused: it is final anyway.

Not for the all-in-one shape, where the edge's verdict is the only one (its list is in memory there).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime
from typing import Final

from doorstep.kernel.limits import RevocationList

RECHECK_SECONDS: Final = 1.0
MAX_ENTRIES: Final = 10_000


class RecheckedRevocations:
    """`RevocationList` over `inner`, reusing a "not revoked" answer for `seconds`."""

    def __init__(
        self,
        inner: RevocationList,
        *,
        seconds: float = RECHECK_SECONDS,
        clock: Callable[[], float] = time.monotonic,
        max_entries: int = MAX_ENTRIES,
    ) -> None:
        self._inner = inner
        self._seconds = seconds
        self._clock = clock
        self._max_entries = max_entries
        self._clear_until: dict[tuple[str, str, datetime], float] = {}

    def __len__(self) -> int:
        return len(self._clear_until)

    async def revoke_token(self, token_id: str, *, until: datetime) -> None:
        self._clear_until.clear()
        await self._inner.revoke_token(token_id, until=until)

    async def revoke_subject(self, subject: str, *, issued_before: datetime, until: datetime) -> None:
        self._clear_until.clear()
        await self._inner.revoke_subject(subject, issued_before=issued_before, until=until)

    async def is_revoked(self, token_id: str, subject: str, issued_at: datetime) -> bool:
        key = (token_id, subject, issued_at)
        now = self._clock()
        clear_until = self._clear_until.get(key)
        if clear_until is not None and clear_until > now:
            return False
        revoked = await self._inner.is_revoked(token_id, subject, issued_at)
        if revoked:
            self._clear_until.pop(key, None)
            return True
        if len(self._clear_until) >= self._max_entries:
            # Drop what has expired; if that is not enough, everything (it is only a shortcut).
            self._clear_until = {k: until for k, until in self._clear_until.items() if until > now}
            if len(self._clear_until) >= self._max_entries:
                self._clear_until.clear()
        self._clear_until[key] = now + self._seconds
        return False
