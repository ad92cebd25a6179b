"""The JSON schema of every wire message, generated from the Python types.

Requests come from the ``TypedDict`` s of :mod:`.wire`, replies from the dataclasses of
:mod:`.replies`. The generated schema is committed as ``schema.json`` beside this module;
``tests/test_widget_protocol.py`` checks that the Python types still produce it and
``js/tests/protocol.test.ts`` checks that ``js/schema.ts`` (typed against ``js/protocol.ts``)
produces it too, so a change to either side alone fails a test. After changing the protocol on
both sides, bump :data:`~manet_widget.protocol.PROTOCOL_VERSION` and regenerate the file::

    python -m manet_widget.protocol.schema --write
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import types
import typing
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin, get_type_hints

from manet_widget.protocol.replies import REPLY_TYPES
from manet_widget.protocol.version import PROTOCOL_VERSION
from manet_widget.protocol.wire import REQUEST_MESSAGES

SCHEMA_FILE = Path(__file__).with_name("schema.json")
Schema = dict[str, Any]
_SCALARS: dict[Any, Schema] = {int: {"type": "integer"}, float: {"type": "number"}, str: {"type": "string"},
                               bool: {"type": "boolean"}, type(None): {"type": "null"}}


def message_schema() -> Schema:
    """The schema document: shared definitions, then every request and reply by its ``type``."""
    definitions: dict[str, Schema] = {}
    requests = {_type_name(message): _object(message, definitions, is_message=True) for message in REQUEST_MESSAGES}
    replies = {reply.TYPE: _object(reply, definitions, is_message=True) for reply in REPLY_TYPES}
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "manet_widget wire protocol",
        "protocol_version": PROTOCOL_VERSION,
        "$defs": dict(sorted(definitions.items())),
        "requests": dict(sorted(requests.items())),
        "replies": dict(sorted(replies.items())),
    }


def _type_name(message: type) -> str:
    (literal,) = get_args(get_type_hints(message)["type"])
    return str(literal)


def _fields(cls: type) -> tuple[dict[str, Any], set[str]]:
    """(annotation per field, required field names) of a TypedDict or a dataclass."""
    hints = get_type_hints(cls)
    if typing.is_typeddict(cls):
        return hints, set(cls.__required_keys__)  # type: ignore[attr-defined]
    names = [item.name for item in dataclasses.fields(cls)]
    required = {item.name for item in dataclasses.fields(cls) if item.default is not None}
    return {name: hints[name] for name in names}, required


def _object(cls: type, definitions: dict[str, Schema], is_message: bool = False) -> Schema:
    hints, required = _fields(cls)
    properties: dict[str, Schema] = {}
    if is_message and dataclasses.is_dataclass(cls):
        properties["type"] = {"const": cls.TYPE}  # type: ignore[attr-defined]
        required.add("type")
    for name, annotation in hints.items():
        if name == "type" and is_message and typing.is_typeddict(cls):
            properties[name] = {"const": _type_name(cls)}
        else:
            properties[name] = _schema_of(annotation, definitions, optional=name not in required)
    return {"type": "object", "properties": properties, "required": sorted(required), "additionalProperties": False}


def _schema_of(annotation: Any, definitions: dict[str, Schema], optional: bool = False) -> Schema:
    origin = get_origin(annotation)
    if annotation in _SCALARS:
        return dict(_SCALARS[annotation])
    if origin is Literal:
        values = list(get_args(annotation))
        return {"const": values[0]} if len(values) == 1 else {"enum": values}
    if origin in (Union, types.UnionType):
        members = [arg for arg in get_args(annotation) if not (optional and arg is type(None))]
        if len(members) == 1:  # an optional field: absent rather than null on the wire
            return _schema_of(members[0], definitions)
        return {"anyOf": [_schema_of(arg, definitions) for arg in members]}
    if origin is list:
        (item,) = get_args(annotation)
        return {"type": "array", "items": _schema_of(item, definitions)}
    if typing.is_typeddict(annotation):
        definitions.setdefault(annotation.__name__, _object(annotation, definitions))
        return {"$ref": f"#/$defs/{annotation.__name__}"}
    raise TypeError(f"no JSON schema for wire field type {annotation!r}: use int, float, str, bool, "
                    "Literal, list, a TypedDict or a union of them")


def main(argv: list[str] | None = None) -> None:
    """Print the schema, or ``--write`` it to ``schema.json``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help=f"write {SCHEMA_FILE.name} beside this module")
    args = parser.parse_args(argv)
    text = json.dumps(message_schema(), indent=1) + "\n"
    if args.write:
        SCHEMA_FILE.write_text(text, encoding="utf-8")
    else:
        print(text, end="")


if __name__ == "__main__":
    main()
