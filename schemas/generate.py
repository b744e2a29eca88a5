"""Write the JSON Schemas and the AsyncAPI document from the contract models.

    python -m schemas.generate          # rewrite schemas/json/*.json and asyncapi.yaml
    python -m schemas.generate --check  # exit 1 if the committed files are stale

The models are the source of truth; these files are derived and committed so
that non-Python consumers can read the contract.
"""

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel
from pydantic.json_schema import JsonSchemaMode, models_json_schema

from schemas.catalog import CHANNELS, DLQ_REASONS, MESSAGES, MessageSpec
from schemas.envelope import CONTENT_TYPE
from schemas.jsonschema_tools import reachable, set_additional_properties
from schemas.topics import TopicNames

ROOT = Path(__file__).resolve().parent
CONTRACT_VERSION = "1.0.0"
SCHEMA_BASE_URI = "https://schemas.msp-account-import.dev/v1/"


def _pin_type(schema: dict[str, Any], spec: MessageSpec) -> dict[str, Any]:
    """Narrow the envelope's ``type`` to this message's one value."""
    props = schema.setdefault("properties", {})
    props["type"] = {"const": spec.type, "title": "Type", "type": "string"}
    return schema


def message_json_schema(spec: MessageSpec) -> dict[str, Any]:
    """The standalone JSON Schema (draft 2020-12) of one message's envelope."""
    schema = spec.envelope_model().model_json_schema(mode="validation")
    schema = _pin_type(schema, spec)
    # Tolerant readers (docs/contract.md §2): what agents send may carry more fields
    # than the contract knows; what this system produces carries only its own.
    set_additional_properties(schema, spec.inbound)
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": f"{SCHEMA_BASE_URI}{spec.type}.json",
        **{k: v for k, v in schema.items() if k != "title"},
        "title": spec.type,
        "description": spec.summary,
    }


def asyncapi_document() -> dict[str, Any]:
    """The AsyncAPI 3.0 document: every topic, its key, message types and schemas."""
    topics = TopicNames()
    envelopes: list[tuple[type[BaseModel], JsonSchemaMode]] = [
        (spec.envelope_model(), "validation") for spec in MESSAGES
    ]
    refs, definitions = models_json_schema(envelopes, ref_template="#/components/schemas/{model}")
    schemas = dict(definitions.get("$defs", {}))
    open_names = reachable(
        [
            refs[(model, "validation")]
            for spec, (model, _) in zip(MESSAGES, envelopes, strict=True)
            if spec.inbound
        ],
        schemas,
    )
    for name, definition in schemas.items():
        set_additional_properties(definition, name in open_names)

    messages: dict[str, Any] = {}
    for spec, (model, _mode) in zip(MESSAGES, envelopes, strict=True):
        ref = refs[(model, "validation")]
        messages[spec.type] = {
            "name": spec.type,
            "title": spec.type,
            "summary": spec.summary,
            "contentType": CONTENT_TYPE,
            "payload": {
                "allOf": [ref, {"properties": {"type": {"const": spec.type}}}],
            },
            "bindings": {"kafka": {"key": {"type": "string", "description": _key_of(spec)}}},
        }
    messages["dead_letter"] = {
        "name": "dead_letter",
        "title": "Dead-lettered message",
        "summary": "The original bytes as received, with why they were not acted on.",
        "headers": {
            "type": "object",
            "required": [
                "x-error-reason",
                "x-error-detail",
                "x-original-topic",
                "x-original-partition",
                "x-original-offset",
            ],
            "properties": {
                "x-error-reason": {"type": "string", "enum": list(DLQ_REASONS)},
                "x-error-detail": {"type": "string"},
                "x-original-topic": {"type": "string"},
                "x-original-partition": {"type": "string", "pattern": "^[0-9]+$"},
                "x-original-offset": {"type": "string", "pattern": "^[0-9]+$"},
            },
        },
        "payload": {"description": "The original message value, unchanged."},
        "bindings": {"kafka": {"key": {"description": "The original key, unchanged."}}},
    }

    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    for channel in CHANNELS:
        names = [spec.type for spec in MESSAGES if spec.channel == channel.name]
        if channel.name.endswith("_dlq"):
            names = ["dead_letter"]
        channels[channel.name] = {
            "address": topics.channel(channel.name),
            "description": f"{channel.description} Key: {channel.key}. "
            f"Producer: {channel.producer}.",
            "messages": {n: {"$ref": f"#/components/messages/{n}"} for n in names},
            "bindings": {"kafka": {"partitions": topics.partitions}},
        }
        operations[f"send_{channel.name}"] = {
            "action": "send",
            "channel": {"$ref": f"#/channels/{channel.name}"},
            "summary": f"The {channel.producer} publishes to {topics.channel(channel.name)}.",
        }

    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "MSP account import: events and commands",
            "version": CONTRACT_VERSION,
            "description": (
                "Every message value is a CloudEvents 1.0 envelope in structured JSON mode "
                "(header content-type: application/cloudevents+json). Command ids are "
                "UUIDv5(namespace, '<account key>|<command type>'), namespace = "
                "UUIDv5(NAMESPACE_URL, 'urn:msp-account-import'). Generated from the "
                "pydantic models in schemas/; do not edit by hand."
            ),
        },
        "defaultContentType": CONTENT_TYPE,
        "channels": channels,
        "operations": operations,
        "components": {"messages": messages, "schemas": schemas},
    }


def _key_of(spec: MessageSpec) -> str:
    return next(c.key for c in CHANNELS if c.name == spec.channel)


def render() -> dict[Path, str]:
    """Every generated file and its exact text."""
    files: dict[Path, str] = {}
    for spec in MESSAGES:
        text = json.dumps(message_json_schema(spec), indent=2, sort_keys=True) + "\n"
        files[ROOT / "json" / f"{spec.type}.json"] = text
    files[ROOT / "asyncapi.yaml"] = yaml.safe_dump(
        asyncapi_document(), sort_keys=False, allow_unicode=True, width=100
    )
    return files


def stale_files() -> list[Path]:
    """Generated files whose committed text differs from what the models give."""
    stale = [
        path
        for path, text in render().items()
        if not path.exists() or path.read_text(encoding="utf-8") != text
    ]
    known = set(render())
    stale += [p for p in (ROOT / "json").glob("*.json") if p not in known]
    return stale


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--check", action="store_true", help="fail if files are stale")
    args = parser.parse_args(argv)
    if args.check:
        stale = stale_files()
        for path in stale:
            print(f"stale: {path.relative_to(ROOT.parent)}", file=sys.stderr)
        return 1 if stale else 0
    (ROOT / "json").mkdir(exist_ok=True)
    for old in (ROOT / "json").glob("*.json"):
        old.unlink()
    for path, text in render().items():
        path.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
