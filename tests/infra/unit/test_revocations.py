"""MemoryRevocationList: revoked tokens and subjects, and forgetting them once no token they cover is alive."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from doorstep.infra.revocations import MemoryRevocationList

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


class FakeClock:
    def __init__(self, now: datetime = T0) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


def seconds(n: float) -> timedelta:
    return timedelta(seconds=n)


async def test_a_revoked_token_is_refused_until_it_would_have_expired() -> None:
    # Given a token revoked until ten minutes from now
    clock = FakeClock()
    revocations = MemoryRevocationList(clock=clock)
    await revocations.revoke_token("jti-1", until=T0 + seconds(600))
    # When it is checked just before and at that moment
    clock.advance(599.999)
    before = await revocations.is_revoked("jti-1", "user-1", T0)
    clock.advance(0.001)
    after = await revocations.is_revoked("jti-1", "user-1", T0)
    # Then it is refused before, no longer listed after, and the entry is gone
    assert before is True
    assert after is False
    assert len(revocations) == 0


async def test_other_tokens_of_the_subject_are_not_affected_by_one_token() -> None:
    # Given one revoked token
    revocations = MemoryRevocationList(clock=FakeClock())
    await revocations.revoke_token("jti-1", until=T0 + seconds(600))
    # When another token of the same subject is checked
    revoked = await revocations.is_revoked("jti-2", "user-1", T0)
    # Then it passes
    assert revoked is False


async def test_a_token_already_expired_is_not_stored() -> None:
    # Given a list
    revocations = MemoryRevocationList(clock=FakeClock())
    # When a token that expired a second ago is revoked
    await revocations.revoke_token("jti-1", until=T0 - seconds(1))
    # Then nothing is stored
    assert len(revocations) == 0
    assert await revocations.is_revoked("jti-1", "user-1", T0) is False


async def test_a_subject_cut_off_refuses_tokens_issued_before_it_only() -> None:
    # Given a subject revoked for tokens issued before T0
    revocations = MemoryRevocationList(clock=FakeClock())
    await revocations.revoke_subject("user-1", issued_before=T0, until=T0 + seconds(600))
    # When tokens issued just before, at and after the cut-off are checked
    earlier = await revocations.is_revoked("jti-1", "user-1", T0 - seconds(0.000001))
    at = await revocations.is_revoked("jti-2", "user-1", T0)
    later = await revocations.is_revoked("jti-3", "user-1", T0 + seconds(1))
    other_subject = await revocations.is_revoked("jti-4", "user-2", T0 - seconds(60))
    # Then only the one issued before is refused
    assert (earlier, at, later, other_subject) == (True, False, False, False)


async def test_a_subject_cut_off_expires_at_until() -> None:
    # Given a subject revoked until ten minutes from now
    clock = FakeClock()
    revocations = MemoryRevocationList(clock=clock)
    await revocations.revoke_subject("user-1", issued_before=T0, until=T0 + seconds(600))
    # When ten minutes pass
    clock.advance(600)
    # Then its old tokens are no longer listed and the entry is gone
    assert await revocations.is_revoked("jti-1", "user-1", T0 - seconds(60)) is False
    assert len(revocations) == 0


async def test_an_earlier_cut_off_never_narrows_a_later_one() -> None:
    # Given a subject cut off at T0 until T0 + 10 min
    clock = FakeClock()
    revocations = MemoryRevocationList(clock=clock)
    await revocations.revoke_subject("user-1", issued_before=T0, until=T0 + seconds(600))
    # When it is revoked again with an earlier cut-off and an earlier expiry
    await revocations.revoke_subject("user-1", issued_before=T0 - seconds(60), until=T0 + seconds(300))
    # Then a token issued between the two cut-offs stays refused until the later expiry
    issued_between = T0 - seconds(30)
    assert await revocations.is_revoked("jti-1", "user-1", issued_between) is True
    clock.advance(599)
    assert await revocations.is_revoked("jti-1", "user-1", issued_between) is True
    clock.advance(1)
    assert await revocations.is_revoked("jti-1", "user-1", issued_between) is False


async def test_a_later_cut_off_replaces_an_earlier_one() -> None:
    # Given a subject cut off at T0 - 1 min
    revocations = MemoryRevocationList(clock=FakeClock())
    await revocations.revoke_subject("user-1", issued_before=T0 - seconds(60), until=T0 + seconds(600))
    # When it is cut off again at T0
    await revocations.revoke_subject("user-1", issued_before=T0, until=T0 + seconds(600))
    # Then tokens issued before T0 are refused
    assert await revocations.is_revoked("jti-1", "user-1", T0 - seconds(30)) is True


async def test_a_later_revocation_extends_an_entry_and_the_earlier_expiry_does_not_drop_it() -> None:
    # Given a token revoked until T0 + 1 min, then again until T0 + 10 min
    clock = FakeClock()
    revocations = MemoryRevocationList(clock=clock)
    await revocations.revoke_token("jti-1", until=T0 + seconds(60))
    await revocations.revoke_token("jti-1", until=T0 + seconds(600))
    # When the first expiry passes
    clock.advance(60)
    # Then the token is still refused and listed once
    assert await revocations.is_revoked("jti-1", "user-1", T0) is True
    assert len(revocations) == 1


async def test_naive_datetimes_are_refused() -> None:
    # Given a list
    revocations = MemoryRevocationList(clock=FakeClock())
    # When a datetime without a timezone is given, then it is refused rather than read as local time
    with pytest.raises(ValueError, match="timezone-aware"):
        await revocations.revoke_token("jti-1", until=datetime(2025, 3, 1, 13, 0))
