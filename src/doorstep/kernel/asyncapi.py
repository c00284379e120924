"""The AsyncAPI 3.0 document of every published event, generated from the contracts registry."""

from __future__ import annotations

from typing import Any

from doorstep import __version__
from doorstep.kernel.messages import CloudEvent, Event

_REF = "#/components/schemas/{model}"


def asyncapi_document(*, exchange: str = "doorstep.events") -> dict[str, Any]:
    import doorstep.contracts  # noqa: F401 - registers every published event

    schemas: dict[str, Any] = {}
    messages: dict[str, Any] = {}
    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    envelope = _hoist(CloudEvent.model_json_schema(ref_template=_REF), schemas)
    envelope["properties"].pop("data", None)
    schemas["CloudEvent"] = envelope
    for event_type, event_class in sorted(Event.registry.items()):
        name = event_class.__name__
        schemas[name] = _hoist(event_class.model_json_schema(ref_template=_REF), schemas)
        producers = event_class.producers or (event_type.split(".")[1],)
        sources = [f"/doorstep/{producer}" for producer in producers]
        messages[name] = {
            "name": event_type,
            "title": name,
            "summary": (event_class.__doc__ or "").strip().splitlines()[0]
            if event_class.__doc__
            else event_type,
            "contentType": "application/cloudevents+json",
            "payload": {
                "allOf": [
                    {"$ref": "#/components/schemas/CloudEvent"},
                    {
                        "type": "object",
                        "properties": {
                            "type": {"const": event_type},
                            "source": {"const": sources[0]} if len(sources) == 1 else {"enum": sources},
                            "data": {"$ref": f"#/components/schemas/{name}"},
                        },
                        "required": ["data"],
                    },
                ]
            },
        }
        channels[event_type] = {
            "address": event_type,
            "title": event_type,
            "messages": {name: {"$ref": f"#/components/messages/{name}"}},
            "bindings": {
                "amqp": {
                    "is": "routingKey",
                    "exchange": {"name": exchange, "type": "topic", "durable": True, "vhost": "/"},
                }
            },
        }
        for producer in producers:
            operations[f"{producer}.publishes.{name}"] = {
                "action": "send",
                "channel": {"$ref": f"#/channels/{event_type}"},
                "summary": f"The {producer} service publishes {event_type} after the change commits.",
                "messages": [{"$ref": f"#/channels/{event_type}/messages/{name}"}],
            }
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "Doorstep events",
            "version": __version__,
            "description": (
                "Every event a Doorstep service publishes, in a CloudEvents 1.0 envelope with the extension "
                "attributes tenantid, correlationid and causationid. Events leave through each service's "
                "outbox after the transaction commits; consumers dedupe by `id` in their inbox, so delivery "
                "is at least once and effects happen exactly once. All-in-one: an in-process broker. "
                f"Distributed: RabbitMQ topic exchange `{exchange}`, routing key = `type`."
            ),
        },
        "defaultContentType": "application/cloudevents+json",
        "servers": {
            "rabbitmq": {"host": "127.0.0.1:5672", "protocol": "amqp", "description": "DOORSTEP_BROKER_URL"}
        },
        "channels": channels,
        "operations": operations,
        "components": {"schemas": schemas, "messages": messages},
    }


def _hoist(schema: dict[str, Any], into: dict[str, Any]) -> dict[str, Any]:
    """Move pydantic's `$defs` into the shared components, so each model is defined once."""
    for name, definition in schema.pop("$defs", {}).items():
        into.setdefault(name, definition)
    return schema
