"""Reading and evolving MySQL/MariaDB ENUM labels (target_dap_sql/dialects/mysql_enum.py)."""

from __future__ import annotations

import pytest

from target_dap_sql.dialects.mysql_enum import enum_labels, plan_enum
from target_dap_sql.dialects.mysql_schema import enum_ddl

TYPES = ["__dap_unspecified__", "StudentEnrollment", "TeacherEnrollment", "TaEnrollment"]


def test_labels_keep_their_case_and_order() -> None:
    assert enum_labels("enum('__dap_unspecified__','StudentEnrollment','TeacherEnrollment')") == [
        "__dap_unspecified__", "StudentEnrollment", "TeacherEnrollment"]


def test_labels_unescape_what_the_server_escapes() -> None:
    # column_type as MariaDB 10.11 reports ENUM('a\\b','it''s','x,y','n\nl','z\0z','t<TAB>b')
    reported = "enum('a\\\\b','it''s','x,y','q\"r','n\\nl','z\\0z','t\tb','()')"
    assert enum_labels(reported) == ["a\\b", "it's", "x,y", 'q"r', "n\nl", "z\0z", "t\tb", "()"]


def test_nothing_changes_when_the_labels_match() -> None:
    plan = plan_enum(TYPES, TYPES, case_blind=False)
    assert not plan.changes(TYPES) and plan.renames == {}


def test_new_labels_are_appended_and_dropped_ones_kept() -> None:
    current = ["__dap_unspecified__", "b", "a"]
    plan = plan_enum(current, ["__dap_unspecified__", "a", "c", "C"], case_blind=False)
    assert plan.labels == ["__dap_unspecified__", "b", "a", "c", "C"]
    assert plan.renames == {}


def test_labels_differing_only_by_case_are_distinct() -> None:
    plan = plan_enum(["x", "X"], ["X", "x", "Xx"], case_blind=False)
    assert plan.labels == ["x", "X", "Xx"] and plan.renames == {}


def test_lower_cased_copies_of_an_older_version_merge_back_in_order() -> None:
    # what the old evolution produced from TYPES: lower-cased copies, then the real labels
    corrupted = ["__dap_unspecified__", "studentenrollment", "teacherenrollment",
                 "taenrollment", "StudentEnrollment", "TeacherEnrollment", "TaEnrollment"]
    plan = plan_enum(corrupted, TYPES, case_blind=False)
    assert plan.labels == TYPES
    assert plan.renames == {"studentenrollment": "StudentEnrollment",
                            "teacherenrollment": "TeacherEnrollment",
                            "taenrollment": "TaEnrollment"}


def test_case_blind_column_with_only_lower_cased_labels_is_repaired() -> None:
    lowered = ["__dap_unspecified__", "studentenrollment", "teacherenrollment"]
    plan = plan_enum(lowered, TYPES, case_blind=True)
    assert plan.labels == TYPES
    assert set(plan.renames) == {"studentenrollment", "teacherenrollment"}


def test_a_label_the_schema_respelled_is_kept_not_renamed() -> None:
    # a case-sensitive column holding only 'foo' is not a copy: the schema renamed the label
    plan = plan_enum(["__dap_unspecified__", "foo"], ["__dap_unspecified__", "Foo"],
                     case_blind=False)
    assert plan.labels == ["__dap_unspecified__", "foo", "Foo"] and plan.renames == {}


def test_ambiguous_copies_are_kept() -> None:
    plan = plan_enum(["ab", "Ab", "aB"], ["Ab", "aB"], case_blind=False)
    assert plan.labels == ["ab", "Ab", "aB"] and plan.renames == {}


def test_trailing_spaces_the_server_strips_do_not_add_labels() -> None:
    plan = plan_enum(["a", " b"], ["a", " b "], case_blind=False)
    assert not plan.changes(["a", " b"])


@pytest.mark.parametrize("label", ["it's", "a\\b", "x,y", 'q"r', "n\nl"])
def test_enum_ddl_round_trips_hostile_labels(label: str) -> None:
    ddl = enum_ddl(["__dap_unspecified__", label])
    assert ddl.endswith("CHARACTER SET ascii COLLATE ascii_bin")
    # the literal the DDL spells is what the server reports back, modulo newline escaping
    reported = ddl.split(" CHARACTER SET")[0].replace("ENUM (", "enum(").replace(", ", ",")
    assert enum_labels(reported.replace("\n", "\\n")) == ["__dap_unspecified__", label]
