"""Derive the packaged canvas dataset schemas from the Canvas ERD (run manually, output committed).

    python -m tap_dap.emulator.build_tables PATH/canvas_erd_entity_graph_2024-11-18.json \
        PATH/submissions_enums_from_generated_java_client_2024-05.json

writes ``tap_dap/emulator/data/canvas_schemas.json.gz`` = ``{"<ns>": {"<table>": <JSON Schema>}}``.
The ERD is the database a replicator built (PostgreSQL types), so every column type maps back to the
DAP JSON Schema keyword that produces it (see docs/database-layout.md). The ERD names enum *types*
but not their labels; labels come from the submissions enum file where known and from Canvas' model
constants below, always with the ``__dap_unspecified__`` sentinel first. Nothing at run time reads
the ERD.
"""

from __future__ import annotations

import gzip
import json
import re
import sys
from pathlib import Path
from typing import Any

SCHEMA_DIALECT = "http://json-schema.org/draft-07/schema#"
UNSPECIFIED = "__dap_unspecified__"
SKIPPED_ENTITIES = {"canvas_logs.Action", "canvas_logs.Controller"}  # replicator lookup artefacts

# Enum labels by column name (Canvas model constants); a table-specific entry wins.
ENUM_LABELS: dict[str, list[str]] = {
    "courses.workflow_state": ["created", "claimed", "available", "completed", "deleted"],
    "enrollments.workflow_state": [
        "active", "invited", "creation_pending", "deleted", "rejected", "completed", "inactive",
    ],
    "enrollments.type": [
        "StudentEnrollment", "TeacherEnrollment", "TaEnrollment", "DesignerEnrollment",
        "ObserverEnrollment", "StudentViewEnrollment",
    ],
    "users.workflow_state": ["registered", "pre_registered", "creation_pending", "deleted"],
    "pseudonyms.workflow_state": ["active", "suspended", "deleted"],
    "assignments.workflow_state": [
        "unpublished", "published", "deleted", "duplicating", "failed_to_duplicate", "importing",
        "fail_to_import", "migrating", "failed_to_migrate",
    ],
    "assignments.grading_type": [
        "pass_fail", "percent", "letter_grade", "gpa_scale", "points", "not_graded",
    ],
    "assignments.submission_types": [
        "none", "on_paper", "online_quiz", "discussion_topic", "external_tool", "online_upload",
        "online_text_entry", "online_url", "media_recording", "student_annotation", "wiki_page",
        "attendance", "not_graded",
    ],
    "quizzes.quiz_type": ["practice_quiz", "assignment", "graded_survey", "survey"],
    "quizzes.workflow_state": ["created", "edited", "unpublished", "available", "deleted"],
    "quiz_submissions.workflow_state": [
        "untaken", "pending_review", "complete", "settings_only", "preview",
    ],
    "discussion_topics.discussion_type": ["side_comment", "threaded", "flat", "not_threaded"],
    "discussion_topics.type": ["Announcement", "DiscussionTopic"],
    "discussion_topics.workflow_state": [
        "active", "unpublished", "post_delayed", "locked", "deleted",
    ],
    "attachments.file_state": ["available", "deleted", "broken", "hidden", "errored"],
    "attachments.workflow_state": [
        "pending_upload", "processing", "processed", "unattached", "zipped", "errored", "deleted",
    ],
    "scores.workflow_state": ["active", "deleted"],
    "enrollment_states.state": [
        "active", "invited", "creation_pending", "deleted", "rejected", "completed", "inactive",
        "pending_active", "pending_invited",
    ],
    "roles.base_role_type": [
        "AccountMembership", "StudentEnrollment", "TeacherEnrollment", "TaEnrollment",
        "DesignerEnrollment", "ObserverEnrollment", "NoPermissions",
    ],
    "asset_user_accesses.action_level": ["view", "participate", "submit"],
    "asset_user_accesses.membership_type": [
        "StudentEnrollment", "TeacherEnrollment", "TaEnrollment", "AccountUser",
    ],
    "asset_user_accesses.asset_category": [
        "announcements", "assignments", "attachments", "calendar", "collaborations", "files",
        "grades", "home", "modules", "pages", "quizzes", "roster", "syllabus", "topics",
    ],
    "learning_outcomes.calculation_method": [
        "decaying_average", "n_mastery", "highest", "latest", "average",
        "standard_decaying_average",
    ],
    "web_conferences.conference_type": ["BigBlueButton", "Wimba", "AdobeConnect"],
    "group_categories.role": ["communities", "student_organized", "imported", "uncategorized"],
    "groups.default_view": ["feed", "files", "modules", "pages", "wiki"],
    "content_tags.tag_type": ["default", "context_module", "learning_outcome_association"],
    "assignment_overrides.set_type": ["ADHOC", "CourseSection", "Group", "Noop"],
    "HTTPMethod": ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"],
    "HTTPStatus": ["200", "201", "204", "302", "304", "400", "401", "403", "404", "422", "500"],
    "HTTPVersion": ["HTTP/1.0", "HTTP/1.1", "HTTP/2.0"],
    "ContextType": ["Course", "Account", "User", "Group"],
    "context_type": ["Course", "Account", "User", "Group"],
    "associated_asset_type": ["Assignment", "Quizzes::Quiz", "DiscussionTopic"],
    "artifact_type": ["Submission", "RubricAssessment", "Quizzes::QuizSubmission"],
    "asset_type": ["Submission", "Assignment", "DiscussionTopic"],
    "content_type": ["Assignment", "Attachment", "WikiPage", "Quizzes::Quiz", "DiscussionTopic"],
    "media_comment_type": ["audio", "video"],
    "association_type": ["Assignment", "Course", "Account"],
    "assessment_type": ["grading", "peer_review", "provisional_grade"],
    "participation_type": ["attendee", "initiator"],
    "enrollment_type": ["StudentEnrollment", "TeacherEnrollment"],
    "read_state": ["read", "unread"],
    "type": ["SentContentShare", "ReceivedContentShare"],
    "unique_type": ["conversation attachments", "profile pictures", "student annotation documents"],
    "import_type": ["full", "selective"],
    "state": ["queued", "completed", "failed"],
    "workflow_state": ["active", "deleted"],
}
NESTED_SETTINGS: dict[str, dict[str, Any]] = {
    "boolean": {"type": "boolean"},
    "int": {"type": "integer", "format": "int64"},
    "text": {"type": "string"},
}
NESTED_OBJECT_FIELDS = [("enabled", "boolean"), ("count", "int"), ("label", "text")]


def enum_labels(table: str, column: str, enum_type: str, known: dict[str, list[str]]) -> list[str]:
    type_name = enum_type.split(".")[-1].strip('"')
    labels = (
        known.get(column)
        or ENUM_LABELS.get(f"{table}.{column}")
        or ENUM_LABELS.get(type_name)
        or ENUM_LABELS.get(column)
        or ENUM_LABELS["workflow_state"]
    )
    return [UNSPECIFIED] + [label for label in labels if label != UNSPECIFIED]


def nested_object() -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {name: dict(NESTED_SETTINGS[kind]) for name, kind in NESTED_OBJECT_FIELDS},
        "additionalProperties": False,
    }


def column_schema(table: str, column: str, pg_type: str, known: dict[str, list[str]]) -> dict:
    if pg_type.endswith(" ARRAY"):
        item = column_schema(table, column, pg_type.removesuffix(" ARRAY"), known)
        return {"type": "array", "items": item}
    if pg_type == '"canvas"."Annotated"':
        return nested_object()
    if pg_type.startswith('"'):
        return {"type": "string", "enum": enum_labels(table, column, pg_type, known)}
    simple = {
        "bigint": {"type": "integer", "format": "int64"},
        "integer": {"type": "integer", "format": "int32"},
        "smallint": {"type": "integer", "format": "int16"},
        "double precision": {"type": "number", "format": "float64"},
        "decimal": {"type": "number"},
        "boolean": {"type": "boolean"},
        "timestamp": {"type": "string", "format": "date-time"},
        "date": {"type": "string", "format": "date"},
        "text": {"type": "string"},
        "uuid": {"type": "string", "format": "uuid"},
        "inet": {"type": "string", "format": "ipv4"},
    }
    if pg_type in simple:
        return dict(simple[pg_type])
    if match := re.fullmatch(r"varchar\((\d+)\)", pg_type):
        return {"type": "string", "maxLength": int(match.group(1))}
    if match := re.fullmatch(r"decimal\((\d+), (\d+)\)", pg_type):
        precision, scale = int(match.group(1)), int(match.group(2))
        bound = 10 ** (precision - scale)
        return {
            "type": "number",
            "exclusiveMinimum": -bound,
            "exclusiveMaximum": bound,
            "multipleOf": float(f"1e-{scale}") if scale else 1,
        }
    raise ValueError(f"{table}.{column}: unmapped ERD type {pg_type!r}")


def table_schema(name: str, entity: dict, known: dict[str, list[str]]) -> dict[str, Any]:
    namespace, table = name.split(".", 1)
    key_name = entity["keys"]["primary"]
    columns = entity["properties"]
    key_props = {key_name: column_schema(table, key_name, columns[key_name]["type"], known)}
    value_props: dict[str, Any] = {}
    value_required: list[str] = []
    for column, spec in columns.items():
        if column == key_name:
            continue
        value_props[column] = column_schema(table, column, spec["type"], known)
        if not spec["nullable"]:
            value_required.append(column)
    return {
        "$schema": SCHEMA_DIALECT,
        "type": "object",
        "title": f"{namespace}.{table}",
        "properties": {
            "key": {
                "type": "object",
                "properties": key_props,
                "additionalProperties": False,
                "required": [key_name],
            },
            "value": {
                "type": "object",
                "properties": value_props,
                "additionalProperties": False,
                "required": value_required,
            },
            "meta": {
                "type": "object",
                "properties": {
                    "ts": {"type": "string", "format": "date-time"},
                    "action": {"type": "string", "enum": ["U", "D"]},
                },
                "additionalProperties": False,
                "required": ["ts"],
            },
        },
        "additionalProperties": False,
        "required": ["key", "meta"],
    }


def build(erd_path: Path, enums_path: Path) -> dict[str, dict[str, Any]]:
    erd = json.loads(erd_path.read_text())
    submissions_enums = json.loads(enums_path.read_text())["enums"]
    out: dict[str, dict[str, Any]] = {}
    for name, entity in sorted(erd["entities"].items()):
        if name in SKIPPED_ENTITIES:
            continue
        namespace, table = name.split(".", 1)
        known = submissions_enums if name == "canvas.submissions" else {}
        out.setdefault(namespace, {})[table] = table_schema(name, entity, known)
    return out


def main(argv: list[str]) -> None:
    if len(argv) != 2:
        sys.exit("usage: python -m tap_dap.emulator.build_tables ERD.json SUBMISSIONS_ENUMS.json")
    schemas = build(Path(argv[0]), Path(argv[1]))
    target = Path(__file__).parent / "data" / "canvas_schemas.json.gz"
    payload = json.dumps(schemas, separators=(",", ":"), sort_keys=False).encode()
    target.write_bytes(gzip.compress(payload, 9, mtime=0))
    counts = {ns: len(tables) for ns, tables in schemas.items()}
    print(f"wrote {target} ({len(payload)} bytes raw): {counts}")


if __name__ == "__main__":
    main(sys.argv[1:])
