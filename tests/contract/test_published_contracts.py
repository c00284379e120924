"""The published contracts: names that follow the rules, and docs that match the code."""

import json
import re
from pathlib import Path

import pytest
from tests.platform import settings_for

import doorstep.contracts
from doorstep.kernel.asyncapi import asyncapi_document
from doorstep.kernel.messages import CloudEvent, Event
from doorstep.kernel.settings import SERVICES
from doorstep.runtime.app import build_app
from doorstep.runtime.services import build_services, make_broker

DOCS = Path(__file__).parents[2] / "docs"
EVENT_TYPE = re.compile(r"^doorstep\.(?P<service>[a-z]+)\.[a-z_]+\.[a-z_]+\.v[0-9]+$")
# Published by several services (they list them in `producers`): doorstep.<topic>.<past tense>.v<N>.
SHARED_EVENT_TYPE = re.compile(r"^doorstep\.(?P<topic>[a-z]+)\.[a-z_]+\.v[0-9]+$")


def test_every_event_type_names_its_producer_and_version() -> None:
    # Given every registered event
    assert doorstep.contracts.orders is not None
    for event_type, event_class in Event.registry.items():
        if event_class.producers:
            # Then one that several services publish reads doorstep.<topic>.<past tense>.v<N>, names
            # only real services as producers, and lives in the topic's module
            shared = SHARED_EVENT_TYPE.match(event_type)
            assert shared, event_type
            assert set(event_class.producers) <= set(SERVICES), event_type
            assert shared["topic"] not in SERVICES, event_type
            assert event_class.__module__ == f"doorstep.contracts.{shared['topic']}", event_type
            continue
        # Then its type reads doorstep.<service>.<entity>.<past tense>.v<N> and it lives in that service's module
        match = EVENT_TYPE.match(event_type)
        assert match, event_type
        assert event_class.__module__ == f"doorstep.contracts.{match['service']}", event_type


def test_an_envelope_round_trips_to_the_same_typed_event() -> None:
    # Given a published event in its envelope
    from doorstep.contracts.identity import TenantCreated

    envelope = CloudEvent.wrap(
        TenantCreated(tenant_id="t-1", name="Acme"), source="/doorstep/identity", tenant_id="t-1"
    )
    # When it crosses the wire as JSON and is read back
    received = CloudEvent.model_validate_json(envelope.model_dump_json())
    # Then the consumer gets the same typed event
    assert received == envelope
    assert received.payload() == TenantCreated(tenant_id="t-1", name="Acme")
    assert received.subject == "t-1"


def test_the_committed_asyncapi_document_matches_the_contracts() -> None:
    # Given the AsyncAPI document generated from the registry now
    current = json.loads(json.dumps(asyncapi_document()))
    # Then docs/asyncapi.json is that document (run `doorstep docs` after changing a contract)
    assert json.loads((DOCS / "asyncapi.json").read_text()) == current
    assert sorted(current["channels"]) == sorted(Event.registry)


@pytest.mark.parametrize("name", ["openapi.json"])
def test_the_committed_openapi_document_matches_the_routes(tmp_path: Path, name: str) -> None:
    # Given the all-in-one app's OpenAPI document
    settings = settings_for(tmp_path)
    app = build_app(settings, build_services(settings), make_broker(settings))
    current = json.loads(json.dumps(app.openapi()))
    # Then docs/openapi.json is that document (run `doorstep docs` after changing an endpoint)
    assert json.loads((DOCS / name).read_text()) == current
