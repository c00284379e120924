"""The gateway's view of the revocation list: a "not revoked" is reused for a second, a "revoked" never."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from doorstep.gateway.revocations import RecheckedRevocations
from doorstep.infra.revocations import MemoryRevocationList

ISSUED = datetime(2026, 11, 21, 18, 0, tzinfo=UTC)
LATER = datetime(2026, 11, 21, 19, 0, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class CountingList(MemoryRevocationList):
    def __init__(self) -> None:
        super().__init__(clock=lambda: ISSUED)
        self.asked = 0

    async def is_revoked(self, token_id: str, subject: str, issued_at: datetime) -> bool:
        self.asked += 1
        return await super().is_revoked(token_id, subject, issued_at)


async def test_a_clear_answer_is_reused_for_a_second_then_asked_again() -> None:
    # Given the gateway's view of a list that has nothing revoked
    inner, clock = CountingList(), Clock()
    view = RecheckedRevocations(inner, seconds=1.0, clock=clock)
    # When one credential is checked three times within the second, and once after it
    answers = [await view.is_revoked("api_key:k-1", "api_key:k-1", ISSUED) for _ in range(3)]
    clock.now += 1.0
    answers.append(await view.is_revoked("api_key:k-1", "api_key:k-1", ISSUED))
    # Then the list was asked twice: once at first, once when the answer was a second old
    assert answers == [False, False, False, False]
    assert inner.asked == 2


async def test_a_revocation_is_seen_at_the_edge_within_the_second() -> None:
    # Given a credential the gateway has just seen as clear
    inner, clock = CountingList(), Clock()
    view = RecheckedRevocations(inner, seconds=1.0, clock=clock)
    assert await view.is_revoked("jti-1", "u-1", ISSUED) is False
    # When it is revoked elsewhere (identity writes the shared list)
    await inner.revoke_token("jti-1", until=ISSUED + timedelta(hours=1))
    # Then the edge may still pass it within the second (the service behind re-checks), not after
    assert await view.is_revoked("jti-1", "u-1", ISSUED) is False
    clock.now += 1.0
    assert await view.is_revoked("jti-1", "u-1", ISSUED) is True
    # And a revoked answer is never reused: the list is asked each time
    asked = inner.asked
    assert await view.is_revoked("jti-1", "u-1", ISSUED) is True
    assert inner.asked == asked + 1


async def test_answers_are_per_token_subject_and_issue_time() -> None:
    # Given a subject whose tokens issued before LATER are revoked
    inner, clock = CountingList(), Clock()
    await inner.revoke_subject("u-1", issued_before=LATER, until=LATER + timedelta(hours=1))
    view = RecheckedRevocations(inner, seconds=1.0, clock=clock)
    # When a token issued after the cut-off and one issued before are checked
    newer = await view.is_revoked("jti-new", "u-1", LATER + timedelta(minutes=1))
    older = await view.is_revoked("jti-old", "u-1", ISSUED)
    # Then each gets its own answer
    assert (newer, older) == (False, True)


async def test_revoking_through_the_view_forgets_every_reused_answer() -> None:
    # Given a clear answer the view would reuse
    inner, clock = CountingList(), Clock()
    view = RecheckedRevocations(inner, seconds=1.0, clock=clock)
    assert await view.is_revoked("jti-1", "u-1", ISSUED) is False
    # When the token is revoked through the view itself
    await view.revoke_token("jti-1", until=ISSUED + timedelta(hours=1))
    # Then the next check asks the list, and sees it
    assert await view.is_revoked("jti-1", "u-1", ISSUED) is True
    assert len(view) == 0


async def test_the_view_stays_bounded() -> None:
    # Given a view that keeps at most three answers
    inner, clock = CountingList(), Clock()
    view = RecheckedRevocations(inner, seconds=1.0, clock=clock, max_entries=3)
    # When five credentials are checked
    for index in range(5):
        assert await view.is_revoked(f"jti-{index}", "u-1", ISSUED) is False
    # Then it never held more than three
    assert len(view) <= 3
