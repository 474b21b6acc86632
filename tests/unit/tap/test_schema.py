"""Schema conversion DAP VersionedSchema -> Singer schema, over real-shaped DAP schemas."""

from __future__ import annotations

import copy
import json

import jsonschema
import pytest

from tap_dap.errors import SchemaConversionError
from tap_dap.schema import convert_table_schema

# Shaped like the live canvas.accounts schema (trimmed): draft-07 header, key/value/meta parts,
# a nested condensed object, an enum containing __dap_unspecified__, descriptions everywhere.
ACCOUNTS_SCHEMA = {
    "$schema": "http://json-schema.org/draft-07/schema#",
    "type": "object",
    "title": "Accounts",
    "description": "Accounts are the highest-level organizational unit in Canvas.",
    "properties": {
        "key": {
            "type": "object",
            "properties": {
                "id": {
                    "type": "integer",
                    "format": "int64",
                    "description": "The unique identifier of the account.",
                }
            },
            "required": ["id"],
            "additionalProperties": False,
        },
        "value": {
            "type": "object",
            "properties": {
                "name": {"type": "string", "maxLength": 255, "description": "Account name."},
                "workflow_state": {
                    "type": "string",
                    "enum": ["active", "deleted", "__dap_unspecified__"],
                    "description": "Life-cycle state for account.",
                },
                "created_at": {"type": "string", "format": "date-time"},
                "default_storage_quota": {"type": "integer", "format": "int64"},
                "uuid": {"type": "string", "maxLength": 255, "title": "Account UUID"},
                "settings": {
                    "type": "object",
                    "description": "Account settings.",
                    "properties": {
                        "restrict_quiz_questions": {"type": "boolean"},
                        "sis_app_token": {"type": "string"},
                    },
                    "required": ["restrict_quiz_questions"],
                    "additionalProperties": False,
                },
                "lti_guid": {"type": "string", "format": "uuid"},
                "grade_points": {
                    "type": "number",
                    "format": "float64",
                    "exclusiveMinimum": -1000000,
                    "exclusiveMaximum": 1000000,
                    "multipleOf": 0.01,
                },
                "storage_quota_percent": {
                    "type": "integer",
                    "format": "int32",
                    "minimum": 0,
                    "maximum": 100,
                },
                "ip_address": {"type": "string", "format": "ipv4"},
                "tags": {"type": "array", "items": {"type": "string", "maxLength": 64}},
            },
            "required": ["workflow_state", "created_at"],
            "additionalProperties": False,
        },
        "meta": {
            "type": "object",
            "properties": {
                "ts": {"type": "string", "format": "date-time"},
                "action": {"type": "string", "enum": ["U", "D"]},
            },
            "required": ["ts"],
            "additionalProperties": False,
        },
    },
    "required": ["key", "meta"],
    "additionalProperties": False,
}

# A composite key and a $ref into definitions, as in the catalog / new_quizzes namespaces.
COMPOSITE_SCHEMA = {
    "$schema": "http://json-schema.org/draft-07/schema#",
    "type": "object",
    "definitions": {
        "Grade": {
            "type": "object",
            "properties": {"score": {"type": "number", "format": "float64"}},
            "additionalProperties": False,
        }
    },
    "properties": {
        "key": {
            "type": "object",
            "properties": {
                "course_id": {"type": "integer", "format": "int64"},
                "user_id": {"type": "integer", "format": "int64"},
            },
            "required": ["course_id", "user_id"],
        },
        "value": {
            "type": "object",
            "properties": {
                "grade": {"$ref": "#/definitions/Grade"},
                "kind": {"oneOf": [{"type": "integer"}, {"type": "string"}]},
            },
            "required": ["grade"],
        },
        "meta": {"type": "object", "properties": {"ts": {"type": "string"}}},
    },
    "required": ["key", "meta"],
}


def test_flat_properties_are_key_then_value_in_server_order_plus_meta_columns() -> None:
    result = convert_table_schema("canvas", "accounts", ACCOUNTS_SCHEMA, 3)
    assert result.stream_name == "canvas-accounts"
    assert result.key_properties == ["id"]
    assert result.version == 3
    assert list(result.schema["properties"]) == [
        "id", "name", "workflow_state", "created_at", "default_storage_quota", "uuid",
        "settings", "lti_guid", "grade_points", "storage_quota_percent", "ip_address", "tags",
        "meta", "_sdc_deleted_at",
    ]  # fmt: skip


def test_nullability_follows_dap_required_and_keywords_are_kept() -> None:
    props = convert_table_schema("canvas", "accounts", ACCOUNTS_SCHEMA, 3).schema["properties"]
    assert props["id"] == {
        "type": "integer",
        "format": "int64",
        "description": "The unique identifier of the account.",
    }
    assert props["name"] == {
        "type": ["string", "null"], "maxLength": 255, "description": "Account name.",
    }  # fmt: skip
    assert props["workflow_state"] == {
        "type": "string",
        "enum": ["active", "deleted", "__dap_unspecified__"],
        "description": "Life-cycle state for account.",
    }
    assert props["created_at"] == {"type": "string", "format": "date-time"}
    assert props["uuid"]["title"] == "Account UUID"
    assert props["lti_guid"] == {"type": ["string", "null"], "format": "uuid"}
    assert props["ip_address"] == {"type": ["string", "null"], "format": "ipv4"}
    assert props["grade_points"] == {
        "type": ["number", "null"],
        "format": "float64",
        "exclusiveMinimum": -1000000,
        "exclusiveMaximum": 1000000,
        "multipleOf": 0.01,
    }
    assert props["storage_quota_percent"] == {
        "type": ["integer", "null"], "format": "int32", "minimum": 0, "maximum": 100,
    }  # fmt: skip
    assert props["tags"] == {
        "type": ["array", "null"],
        "items": {"type": "string", "maxLength": 64},
    }


def test_nested_value_objects_stay_objects_with_their_own_nullability() -> None:
    props = convert_table_schema("canvas", "accounts", ACCOUNTS_SCHEMA, 3).schema["properties"]
    assert props["settings"] == {
        "type": ["object", "null"],
        "description": "Account settings.",
        "properties": {
            "restrict_quiz_questions": {"type": "boolean"},
            "sis_app_token": {"type": ["string", "null"]},
        },
        "required": ["restrict_quiz_questions"],
        "additionalProperties": False,
    }


def test_meta_deleted_at_key_properties_and_provenance_annotation() -> None:
    original = copy.deepcopy(ACCOUNTS_SCHEMA)
    schema = convert_table_schema("canvas", "accounts", ACCOUNTS_SCHEMA, 3).schema
    assert schema["properties"]["meta"] == {
        "type": "object",
        "properties": {
            "action": {"type": "string", "enum": ["U", "D"]},
            "ts": {"type": "string", "format": "date-time"},
        },
        "required": ["action", "ts"],
    }
    assert schema["properties"]["_sdc_deleted_at"] == {
        "type": ["string", "null"],
        "format": "date-time",
    }
    assert schema["required"] == ["id", "meta"]
    annotation = schema["x-dap"]
    assert annotation == {
        "namespace": "canvas", "table": "accounts", "version": 3, "schema": original,
    }  # fmt: skip
    # server key order of the original survives (target-dap-sql stores it verbatim)
    assert json.dumps(annotation["schema"]) == json.dumps(original)
    assert original == ACCOUNTS_SCHEMA, "the input must not be mutated"


def test_nullable_enum_admits_null() -> None:
    schema = copy.deepcopy(ACCOUNTS_SCHEMA)
    schema["properties"]["value"]["required"] = ["created_at"]
    props = convert_table_schema("canvas", "accounts", schema, 1).schema["properties"]
    assert props["workflow_state"]["type"] == ["string", "null"]
    assert props["workflow_state"]["enum"] == ["active", "deleted", "__dap_unspecified__", None]


def test_composite_key_refs_and_unions() -> None:
    result = convert_table_schema("canvas", "enrollment_grades", COMPOSITE_SCHEMA, 7)
    assert result.key_properties == ["course_id", "user_id"]
    props = result.schema["properties"]
    assert props["grade"] == {
        "type": "object",
        "properties": {"score": {"type": ["number", "null"], "format": "float64"}},
        "additionalProperties": False,
    }
    assert props["kind"] == {"anyOf": [{"type": "integer"}, {"type": "string"}, {"type": "null"}]}
    assert result.schema["required"] == ["course_id", "user_id", "meta"]


def test_converted_schema_validates_dap_shaped_records() -> None:
    schema = convert_table_schema("canvas", "accounts", ACCOUNTS_SCHEMA, 3).schema
    validator = jsonschema.Draft202012Validator(schema)
    upsert = {
        "id": 1, "name": "Root", "workflow_state": "active", "created_at": "2024-01-01T00:00:00Z",
        "settings": {"restrict_quiz_questions": True},
        "meta": {"action": "U", "ts": "2024-02-01T00:00:00Z"}, "_sdc_deleted_at": None,
    }  # fmt: skip
    delete = {"id": 2, "meta": {"action": "D", "ts": "2024-02-01T00:00:00Z"},
              "_sdc_deleted_at": "2024-02-01T00:00:00Z"}  # fmt: skip
    assert list(validator.iter_errors(upsert)) == []
    assert list(validator.iter_errors(delete)) == []
    bad = dict(upsert, workflow_state="archived")
    assert [e.validator for e in validator.iter_errors(bad)] == ["enum"]


def _value_props(schema: dict) -> dict:
    return schema["properties"]["value"]["properties"]


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (
            lambda s: s["properties"].pop("key"),
            "canvas.accounts (schema version 3): schema property 'key' is missing",
        ),
        (
            lambda s: _value_props(s).update(id={"type": "integer"}),
            "property 'id' of 'value' clashes",
        ),
        (
            lambda s: _value_props(s).update(x={"$ref": "#/definitions/Nope"}),
            "x: unresolved $ref '#/definitions/Nope'",
        ),
        (
            lambda s: _value_props(s).update(y={"description": "no type"}),
            "property 'y' has no 'type'",
        ),
        (
            lambda s: _value_props(s).update(meta={"type": "string"}),
            "property 'meta' of 'value' clashes",
        ),
    ],
)
def test_unusable_schemas_raise_one_clear_error(mutate, message: str) -> None:
    schema = copy.deepcopy(ACCOUNTS_SCHEMA)
    mutate(schema)
    with pytest.raises(SchemaConversionError) as info:
        convert_table_schema("canvas", "accounts", schema, 3)
    assert message in str(info.value)
    assert str(info.value).startswith("canvas.accounts (schema version 3): ")
