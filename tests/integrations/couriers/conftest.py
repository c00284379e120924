"""The courier networks of these tests are local servers: the platform allows their address."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from tests.platform import LOCAL_NETWORKS, RunningPlatform, running_platform, settings_for


@pytest.fixture
async def platform(tmp_path: Path) -> AsyncIterator[RunningPlatform]:
    settings = settings_for(tmp_path, webhooks_allowed_networks=LOCAL_NETWORKS)
    async with running_platform(settings) as running:
        yield running
